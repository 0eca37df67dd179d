"""/debug SYMBOL on one trader: the market's limits and precision, a fresh ticker, the bot's
position and orders in it, ban and cooldown, and the strategy's reading now: whether the risk
gate would let an entry out and, if so, whether the strategy signals one.

The reading asks the same gate and the same `Strategy.entry()` the cycle does, on a fresh ticker
and fresh candles, and orders nothing: it explains a signal, it does not change one.
"""

from __future__ import annotations

from dataclasses import dataclass

from trading.errors import Fault
from trading.models import Market, Side, Ticker
from trading.modes import Purpose
from trading.order_commands import OrderCommands, WorkingOrder
from trading.parts import Parts, describe
from trading.results import Result
from trading.risk import OrderIntent, Refused, check, cooldown_left, entry_amount
from trading.scanner import Scanner
from trading.store import Ban
from trading.strategies.base import Strategy


@dataclass(frozen=True, kw_only=True)
class InstrumentResult(Result):
    symbol: str = ""
    market: Market | None = None
    ticker: Ticker | None = None
    ticker_error: str = ""
    position: object | None = None  # trading.models.Position
    orders: tuple[WorkingOrder, ...] = ()
    ban: Ban | None = None
    cooldown_left: float = 0.0  # seconds on the market's clock
    strategy: str = ""
    reading: str = ""  # why it would or would not enter now
    would_enter: bool = False


class Instrument:
    """What /debug SYMBOL reads of one trader."""

    def __init__(
        self, parts: Parts, strategy: Strategy, scanner: Scanner, orders: OrderCommands
    ) -> None:
        self.parts = parts
        self.strategy = strategy
        self.scanner = scanner
        self.order_commands = orders

    async def report(self, symbol: str) -> InstrumentResult:
        p = self.parts
        market = p.connector.markets.get(symbol)
        ticker, error = None, ""
        if market is not None:
            try:
                ticker = (await p.connector.tickers([symbol])).get(symbol)
            except Fault as fault:
                error = describe(fault)
        snap = p.router.snapshot()
        reading, enter = await self._reading(symbol, market, ticker, error)
        return InstrumentResult(
            account=p.label,
            ok=market is not None,
            mode=p.state.mode,
            reason="" if market is not None else f"{symbol} is not listed here",
            symbol=symbol,
            market=market,
            ticker=ticker,
            ticker_error=error,
            position=p.book.positions.get(symbol),
            orders=tuple(w for w in self.order_commands.orders().orders if w.symbol == symbol),
            ban=p.store.bans(p.label).get(symbol),
            cooldown_left=cooldown_left(symbol, snap, p.settings),
            strategy=self.strategy.name,
            reading=reading,
            would_enter=enter,
        )

    async def _reading(
        self, symbol: str, market: Market | None, ticker: Ticker | None, error: str
    ) -> tuple[str, bool]:
        """(why, would enter): the gate's answer first, then the ticker screen, then the
        strategy's entry signal on fresh candles."""
        p = self.parts
        if market is None:
            return "not listed on this exchange", False
        if ticker is None:
            return f"no price now ({error or 'no ticker'})", False
        amount = entry_amount(p.settings.stake_amount, ticker.ask, market)
        intent = OrderIntent(symbol, Side.BUY, amount, ticker.ask, Purpose.ENTRY)
        decision = check(intent, p.router.snapshot(), p.settings)
        if isinstance(decision, Refused):
            return f"the risk gate refuses an entry: {decision.reason}", False
        if ticker.quote_volume < p.settings.min_quote_volume:
            return (
                f"outside the scanned universe: 24 h volume under "
                f"MIN_QUOTE_VOLUME {p.settings.min_quote_volume:g}"
            ), False
        if self.strategy.prescreen(ticker) is None:
            return "the strategy's ticker screen skips it (24 h change or spread)", False
        try:
            candles = await self.scanner.candles_for(symbol)
        except Fault as fault:
            return f"no candles now ({describe(fault)})", False
        signal = self.strategy.entry(symbol, candles)
        explain = getattr(self.strategy, "explain", None)
        if signal is None:
            if explain is not None:  # the strategy says which of its conditions failed
                return explain(symbol, candles), False
            return f"no entry signal from {self.strategy.name} now", False
        return (
            f"would enter now: {signal.reason}, stop {signal.stop_loss:.8g}, "
            f"target {signal.take_profit:.8g} (score {signal.score:.2f})"
        ), True
