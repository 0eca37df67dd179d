"""Shared pieces for the engine tests: a scripted strategy and a trader on the paper exchange."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sim.faults import FaultyPaper
from trading.clock import Clock
from trading.connector import Connector
from trading.engine import Trader
from trading.events import Event
from trading.models import Candle, Order, OrderRequest, OrderType, Position, Side, Ticker
from trading.scanner import ReadTap
from trading.settings import TradingSettings
from trading.store import Store
from trading.strategies.base import Signal
from trading.venues.paper import PaperExchange

SETTINGS = TradingSettings(
    stake_amount=100.0,
    max_positions=3,
    min_quote_volume=0.0,
    reentry_cooldown_seconds=0.0,
    stop_exit_timeout_seconds=300.0,
)


class ScriptedStrategy:
    """Enters exactly the symbols it is told to, with stops a fixed fraction away; exits a
    symbol when told; raises when told (a bug)."""

    name = "scripted"
    timeframes = ("1h",)
    candle_limit = 3

    def __init__(self, entries: Sequence[str] = (), *, stop: float = 0.05, target: float = 0.05):
        self.entries = list(entries)
        self.stop = stop
        self.target = target
        self.exits: dict[str, str] = {}
        self.bug: Exception | None = None

    def prescreen(self, ticker: Ticker) -> float | None:
        if ticker.symbol not in self.entries:
            return None
        return float(len(self.entries) - self.entries.index(ticker.symbol))

    def entry(self, symbol: str, candles: Mapping[str, Sequence[Candle]]) -> Signal | None:
        if self.bug is not None:
            raise self.bug
        price = candles["1h"][-1].close
        return Signal(
            score=float(len(self.entries) - self.entries.index(symbol)),
            stop_loss=price * (1 - self.stop),
            take_profit=price * (1 + self.target),
            reason="scripted",
        )

    def exit(
        self, position: Position, candles: Mapping[str, Sequence[Candle]], price: float
    ) -> str | None:
        return self.exits.get(position.symbol)


@dataclass
class Rig:
    """A trader on a paper exchange, with everything a test looks at."""

    clock: Clock
    paper: PaperExchange
    connector: Connector
    store: Store
    strategy: object
    trader: Trader
    events: list[Event] = field(default_factory=list)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def held(self, symbol: str) -> float:
        base = symbol.split("/")[0]
        return self.paper.peek_balance().total.get(base, 0.0)

    def open_orders(self, *, stops: bool = False) -> list[Order]:
        """Working orders at the exchange (with `stops`, the resting protective stops too)."""
        return [o for o in self.paper.order_log if o.is_open and (stops or not o.type.is_stop)]

    def sent(self) -> list[Order]:
        """Every order the exchange took, but for the protective stops."""
        return [o for o in self.paper.order_log if not o.type.is_stop]

    def stops(self) -> list[Order]:
        """The protective stops resting at the exchange."""
        return [o for o in self.paper.order_log if o.is_open and o.type.is_stop]

    def created(self) -> int:
        """Orders sent, but for the protective stops resting at the exchange."""
        stops = sum(1 for o in self.paper.order_log if o.type.is_stop)
        return self.paper.calls["create_order"] - stops

    async def sell_outside(self, symbol: str, amount: float | None = None) -> None:
        """The user sells coins on the exchange by hand: cancels what holds them, then sells."""
        for order in self.stops():
            if order.symbol == symbol:
                await self.paper.cancel_order(order.id, symbol)
        amount = self.held(symbol) if amount is None else amount
        await self.paper.create_order(
            OrderRequest(symbol, Side.SELL, OrderType.MARKET, amount, f"user-{symbol[:3]}")
        )

    async def cycles(self, n: int, step: float = 60.0) -> None:
        for _ in range(n):
            await self.trader.run_cycle()
            self.clock.advance(step)


def make_rig(
    clock: Clock,
    *,
    strategy=None,
    settings: TradingSettings = SETTINGS,
    store: Store | None = None,
    paper: PaperExchange | None = None,
    events: list[Event] | None = None,
    markets: int = 12,
    tap: ReadTap | None = None,
    **paper_options,
) -> Rig:
    events = [] if events is None else events
    paper = paper or FaultyPaper(clock=clock, markets=markets, **paper_options)
    connector = Connector(paper, clock=clock, notify=events.append)
    store = store or Store()
    strategy = strategy or ScriptedStrategy()
    trader = Trader(
        connector,
        store=store,
        strategy=strategy,
        settings=settings,
        clock=clock,
        notify=events.append,
        tap=tap,
    )
    return Rig(clock, paper, connector, store, strategy, trader, events)
