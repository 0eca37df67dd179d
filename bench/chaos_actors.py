"""The chaos soak's other players: a strategy that signals at random (and raises when the fault
planner arms a bug), and a human who sends random commands, through the command table where it
has them, else through the trader's operations.

The soak that drives them is bench/chaos_lib.py.
"""

from __future__ import annotations

import random
from collections import Counter

from handlers.dispatch import Dispatcher
from trading.chaos import ChaosBug, Monitor
from trading.engine import Trader
from trading.models import Position, Ticker
from trading.strategies.base import Signal

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
        return "chaos exit" if self.rng.random() < 0.04 else None


# ---- commands -------------------------------------------------------------------------------


class Commander:
    """A random command now and then, through the Dispatcher where the command table has it,
    else the trader's operation; before a cycle, or while one runs."""

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

    def pick(self) -> tuple[str, list[str], float | None] | None:
        """(command, args, delay into the cycle or None for before it), or nothing."""
        if self.rng.random() >= self.rate:
            return None
        name = self.rng.choices(self._names, self._weights)[0]
        delay = self.rng.choice((0.0, 0.01, 0.1, 0.5, 1.0, 3.0, 8.0))
        delay = delay if self.rng.random() < 0.6 else None
        return name, self._args(name), delay

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
        with self.monitor.command() as fatal:
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
