"""The chaos soak's other players: a strategy that signals at random (and raises when the fault
planner arms a bug); the owner, who sends random commands through the command table where it has
them, else through the trader's operations, and sees that every mode command meets every mode;
and the owner again on the exchange's website, holding coins and resting orders beside the bot.

The soak that drives them is sim/chaos/soak.py.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping

from handlers.dispatch import Dispatcher
from sim.chaos.causes import MODE_COMMANDS
from sim.chaos.logwatch import ChaosBug
from sim.chaos.referee import Monitor
from trading.engine import Trader
from trading.errors import Fault
from trading.models import Market, OrderRequest, OrderType, Position, Side, Ticker
from trading.strategies.base import Signal
from trading.venues.market_sim import SyntheticFeed
from trading.venues.paper import PaperExchange

# ---- the strategy ---------------------------------------------------------------------------


class ChaosStrategy:
    """Random entries and exits (cheap: one short candle series), and a bug when armed."""

    name = "chaos"
    timeframes = ("1h",)
    candle_limit = 2

    def __init__(self, rng: random.Random, monitor: Monitor) -> None:
        self.rng = rng
        self.monitor = monitor
        self.bugs = 0  # calls left to fail

    def _maybe_bug(self, where: str) -> None:
        if self.bugs > 0:
            self.bugs -= 1
            self.monitor.bug_raised(f"strategy bug in {where}")
            raise ChaosBug(f"chaos: the strategy raised in {where}")

    def prescreen(self, ticker: Ticker) -> float | None:
        return self.rng.random() if self.rng.random() < 0.3 else None

    def entry(self, symbol: str, candles) -> Signal | None:
        self._maybe_bug("entry")
        if self.rng.random() > 0.4:
            return None
        price = candles["1h"][-1].close
        return Signal(
            score=self.rng.random(),
            stop_loss=price * (1 - self.rng.uniform(0.005, 0.05)),
            take_profit=price * (1 + self.rng.uniform(0.005, 0.06)),
            reason="chaos",
        )

    def exit(self, position: Position, candles, price: float) -> str | None:
        self._maybe_bug("exit")
        if self.rng.random() >= 0.04:
            return None
        self.monitor.exit_signalled(position.symbol)
        return "chaos exit"


# ---- commands -------------------------------------------------------------------------------


class Commander:
    """A random command now and then, through the Dispatcher where the command table has it,
    else the trader's operation; before a cycle, or while one runs. A mode command not yet
    answered in the trader's mode is preferred, so each meets every mode the trader reaches."""

    COMMANDS = (
        ("pause", 2.0),
        ("unpause", 2.0),
        ("resume", 2.0),
        ("kill", 1.0),
        ("sync", 1.5),
        ("buy", 2.0),
        ("sell", 1.5),
        ("ban", 1.0),
        ("unban", 0.5),
        ("stop", 0.5),
    )
    STAKES = (None, 20.0, 60.0, 150.0, 400.0, 1500.0)
    PREFER_MISSING = 0.6  # chance of a mode command the trader's mode has not met yet

    def __init__(
        self,
        rng: random.Random,
        dispatcher: Dispatcher | None,
        trader: Trader,
        monitor: Monitor,
    ):
        self.rng = rng
        self.monitor = monitor
        self.dispatcher = dispatcher
        self.trader = trader
        self.rate = rng.uniform(0.1, 0.4)
        self.issued: Counter[str] = Counter()
        self.via_table: Counter[str] = Counter()
        self._names = [name for name, _ in self.COMMANDS]
        self._weights = [weight for _, weight in self.COMMANDS]

    def rebind(self, dispatcher: Dispatcher | None, trader: Trader) -> None:
        """The bot restarted: its new trader and command channel."""
        self.dispatcher, self.trader = dispatcher, trader

    def pick(self) -> tuple[str, list[str], float | None] | None:
        """(command, args, delay into the cycle or None for before it), or nothing."""
        if self.rng.random() >= self.rate:
            return None
        mode = self.trader.mode
        coverage = self.monitor.causes.coverage
        missing = [c for c in MODE_COMMANDS if not coverage[f"{c}@{mode}"]]
        if missing and self.rng.random() < self.PREFER_MISSING:
            name, *args = self.rng.choice(missing).split()
        else:
            name = self.rng.choices(self._names, self._weights)[0]
            args = self._args(name)
        delay = self.rng.choice((0.0, 0.01, 0.1, 0.5, 1.0, 3.0, 8.0))
        delay = delay if self.rng.random() < 0.6 else None
        return name, args, delay

    def _args(self, name: str) -> list[str]:
        markets = sorted(self.trader.connector.markets) or ["BTC/USDT"]
        held = sorted(self.trader.book.positions)
        if name == "buy":
            stake = self.rng.choice(self.STAKES)
            return [self.rng.choice(markets)] + ([] if stake is None else [f"{stake:g}"])
        if name in ("sell", "ban"):
            pool = held if held and self.rng.random() < 0.8 else markets
            return [self.rng.choice(pool)]
        if name == "pause" and self.rng.random() < 0.2:
            return ["hands-off"]  # the owner's choice: nothing sold, protection off
        if name == "unban":
            bans = sorted(self.trader.store.bans(self.trader.label))
            return [self.rng.choice(bans or markets)]
        return []

    async def run(self, name: str, args: list[str]) -> object:
        with self.monitor.command(name) as fatal:
            result = await self._run(name, args)
        self.monitor.answered(fatal, getattr(result, "text", None) or repr(result))
        return result

    async def _run(self, name: str, args: list[str]) -> object:
        self.issued[name] += 1
        dispatcher = self.dispatcher
        if dispatcher is not None and name in dispatcher.commands:
            self.via_table[name] += 1
            command = dispatcher.commands[name]
            asks = command.confirm or command.ask is not None
            text = " ".join([f"/{name}", *args, *(["now"] if asks else [])])
            return await dispatcher.handle(text, who="chaos")
        trader = self.trader
        if name == "buy":
            stake = float(args[1]) if len(args) > 1 else None
            return await trader.buy(args[0], stake)
        if name in ("sell", "ban", "unban"):
            return await getattr(trader, name)(args[0])
        if name == "pause":
            return await trader.pause(hands_off=bool(args))
        return await getattr(trader, name)()


# ---- the user -----------------------------------------------------------------------------


class User:
    """The account's owner trading by hand beside the bot: coins of one market bought before the
    bot started, and orders far from the market resting on the account, placed and cancelled now
    and then straight at the exchange (its website). None of it is the bot's: it never sells
    those coins nor cancels those orders, and its dead man's switch must never hit them."""

    ACT_RATE = 0.04  # per cycle: the user places or cancels an order
    HURRIED_RATE = 0.3  # per cycle while the bot's dead man is armed: the worst moment
    MAX_ORDERS = 3
    WORTH = (200.0, 1000.0)  # quote value of the coins held, drawn per seed
    BUY_COST = 60.0  # quote reserved by a resting buy

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.coins: dict[str, float] = {}  # currency -> amount held outside the bot
        self.orders: dict[str, str] = {}  # id -> symbol of the resting orders placed
        self.actions: Counter[str] = Counter()
        self.paper: PaperExchange | None = None
        self._held: Market | None = None
        self._other: Market | None = None
        self._placed = 0

    def holds(self, markets: Mapping[str, Market], feed: SyntheticFeed) -> dict[str, float]:
        """Choose the coins held and the market bid on; the balance to start the account with."""
        active = sorted(s for s, m in markets.items() if m.active)
        held, other = self.rng.sample(active, 2)
        self._held, self._other = markets[held], markets[other]
        worth = self.rng.uniform(*self.WORTH)
        self.coins[self._held.base] = _lots(worth / feed.price(held), self._held)
        return dict(self.coins)

    async def begin(self, paper: PaperExchange) -> None:
        self.paper = paper
        for side in (Side.SELL, Side.BUY):
            if self.rng.random() < 0.5:
                await self._place(side)

    async def act(self, *, hurried: bool = False) -> None:
        """Now and then one order placed or cancelled: stretches with some resting and without
        any (when the bot may arm its dead man's switch). `hurried`: it is armed, the user is
        keener to place one."""
        if self.rng.random() >= (self.HURRIED_RATE if hurried else self.ACT_RATE):
            return
        cancel = 0.2 if hurried else 0.6
        if self.orders and (len(self.orders) >= self.MAX_ORDERS or self.rng.random() < cancel):
            await self._cancel(self.rng.choice(sorted(self.orders)))
        else:
            await self._place(self.rng.choice((Side.SELL, Side.BUY)))

    async def _place(self, side: Side) -> None:
        assert self.paper is not None and self._held is not None and self._other is not None
        market = self._held if side is Side.SELL else self._other
        price = self.paper.price(market.symbol)
        if side is Side.SELL:  # a quarter of the coins, at three times the price
            limit, amount = price * 3, _lots(self.coins[market.base] / 4, market)
        else:  # a bargain hunter's bid, at a third of the price
            limit = price * 0.3
            amount = _lots(self.BUY_COST / limit, market)
        self._placed += 1
        request = OrderRequest(
            symbol=market.symbol,
            side=side,
            type=OrderType.LIMIT,
            amount=amount,
            client_order_id=f"web{self._placed}" if self._placed % 2 else "",
            price=limit,
        )
        try:
            order = await self.paper.create_order(request)
        except Fault:  # its rate limit, its funds: the user tries again another day
            self.actions["refused"] += 1
            return
        self.orders[order.id] = market.symbol
        self.actions["placed"] += 1

    async def _cancel(self, order_id: str) -> None:
        assert self.paper is not None
        try:
            await self.paper.cancel_order(order_id, self.orders[order_id])
        except Fault:  # gone already (the referee says who did it), or rate limited
            self.actions["not cancelled"] += 1
            return
        del self.orders[order_id]
        self.actions["cancelled"] += 1


def _lots(amount: float, market: Market) -> float:
    """`amount` in whole lots, at least the market minimum."""
    step = market.amount_step or 1e-8
    return round(max(math.floor(amount / step) * step, market.min_amount), 12)
