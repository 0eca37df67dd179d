"""The soak's bot processes, and how each one ends.

A seed's world (the exchange, the chaos venue, the store, the notifier, the referee) outlives the
bot's processes. Each process is what the app builds at start: a Connector and a Trader on the
seed's one store and exchange, a Desk and a Dispatcher. `Endings` decides, cycle by cycle, how
the running one ends:

    crash point    the store raises Crash at its k-th write from now: the process dies there,
                   that write and the rest of the open transaction are lost (rolled back, as
                   SQLite does when the file is opened again), and it writes, sends and
                   announces nothing more
    killed         the process dies at a random moment of the cycle (a SIGKILL): what it had in
                   flight reaches the exchange within the receive window, or never
    shutdown       a clean shutdown in the middle of a cycle while a venue call is slow, as
                   chatbot/app.py's: the trader drains with a small grace (the cycle is
                   cancelled), a command in flight finishes, the flattening stops

Then whatever the old process left running is cancelled and a new process starts from the
store: restore, market load, reconciliation. Now and then the host stays dead for a while first
(DEAD_MINUTES): no process runs, while the exchange's price path moves on and its resting
orders (the bot's protective stops) trigger on their own.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass

from handlers.context import Context
from handlers.dispatch import Dispatcher
from sim.chaos.actors import ChaosStrategy
from sim.chaos.books import open_exchange_orders
from sim.chaos.logwatch import Crash
from sim.chaos.referee import Monitor, ObservedConnector, ObservedTrader
from sim.chaos.venue import ChaosVenue
from sim.clock import LoopClock
from trading.book import client_id_purpose
from trading.desk import Desk
from trading.modes import Purpose
from trading.settings import TradingSettings
from trading.store import Store

# Calls a shutdown finds slow (the cycle's sync, scan and orders), and how slow.
SLOW_CALLS = ("fetch_open_orders", "fetch_balance", "fetch_tickers", "fetch_ohlcv", "create_order")
SLOW_SECONDS = (5.0, 20.0, 60.0)
GRACES = (0.5, 2.0, 5.0)  # seconds a shutdown lets a running cycle finish
DEAD_HOST_CHANCE = 0.3  # of the endings, those after which the host stays dead a while
DEAD_MINUTES = (2.0, 20.0)
DEAD_STEP = 30.0  # seconds between the exchange's advances (and the referee's looks) meanwhile


class Life:
    """One process of the bot: alive until it ends, and how it ended."""

    def __init__(self) -> None:
        self.alive = True
        self.how = ""

    def end(self, how: str) -> None:
        if self.alive:
            self.alive, self.how = False, how


class CrashingStore(Store):
    """The seed's store (in memory, kept across processes as a file would be). The process
    using it dies at its k-th write from `crash_after(k)`; a dead process writes nothing."""

    def __init__(self) -> None:
        self.life = Life()
        self._countdown: int | None = None
        super().__init__()

    def crash_after(self, writes: int) -> None:
        self._countdown = writes

    def _write(self, sql, params=()):
        if not self.life.alive:
            raise Crash("a write from a dead process")
        if self._countdown is not None:
            if self._countdown <= 0:
                self._countdown = None
                self.life.end("crash point")
                raise Crash("killed at a store write")
            self._countdown -= 1
        return super()._write(sql, params)


@dataclass
class Process:
    """One bot process: its life, its trader and its command channel."""

    life: Life
    trader: ObservedTrader
    dispatcher: Dispatcher | None

    async def abandon(self) -> None:
        """What the ended process still had running (its flattening, its event feed and the
        checks of its pushed prices) is cancelled."""
        flattening = {self.trader.failsafe.flattening}
        await self.trader.feed.close()
        await self.trader.pushed_stops.close()
        flattening.add(self.trader.failsafe.flattening)  # one may have started meanwhile
        tasks = [task for task in flattening if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class World:
    """What outlives the bot's processes in one seed."""

    settings: TradingSettings
    clock: LoopClock
    venue: ChaosVenue
    store: CrashingStore
    monitor: Monitor
    notifier: object  # chatbot's Notifier: one phone for every process
    strategy: ChaosStrategy
    direct: bool  # commands through the trader's operations, not the handlers

    def start(self) -> Process:
        """A new process on the seed's store and exchange (not started yet)."""
        life = Life()
        self.store.life = self.venue.life = life
        monitor, notifier, settings = self.monitor, self.notifier, self.settings

        def notify(event) -> None:
            if life.alive:  # a dead process announces nothing
                monitor.events.append(event)
                notifier.notify(event)

        connector = ObservedConnector(
            self.venue,
            monitor=monitor,
            clock=self.clock,
            notify=notify,
            sync_failure_limit=settings.sync_failure_limit_seconds,
            unrecognized_limit=settings.sync_failure_limit_seconds,
            cancel_all_after_seconds=settings.cancel_all_after_seconds,
        )
        trader = ObservedTrader(
            connector,
            store=self.store,
            strategy=self.strategy,
            settings=settings,
            clock=self.clock,
            notify=notify,
        )
        trader.monitor = monitor
        monitor.watch(trader, self.venue, notifier)
        desk = Desk([trader], store=self.store, clock=self.clock)
        context = Context(desk=desk, clock=self.clock, notifier=notifier)
        return Process(life, trader, None if self.direct else Dispatcher(context))


@dataclass(frozen=True)
class Ending:
    """How the running process ends in this cycle."""

    kind: str  # "crash point", "killed" or "shutdown"
    at: float = 0.0  # seconds into the cycle (killed, shutdown)
    writes: int = 0  # crash point: store writes from now
    grace: float = 0.0  # shutdown: seconds the running cycle gets
    slow_call: str = ""  # shutdown: the call the cycle is stuck in
    slow_for: float = 0.0


class Endings:
    """Now and then, an end for the running process; counts the restarts that follow."""

    KINDS = (("crash point", 4.0), ("killed", 3.0), ("shutdown", 3.0))
    HURRIED = 10.0  # times likelier while the dead man guards orders: the worst moment

    def __init__(self, rng: random.Random, *, dead_hosts: bool = False) -> None:
        self.rng = rng
        self.dead_hosts = dead_hosts
        self.rate = rng.uniform(0.005, 0.02)
        self.counts: Counter[str] = Counter()
        self.dead_next = 0.0  # seconds the host stays dead after the next ending, if chosen
        self._names = [name for name, _ in self.KINDS]
        self._weights = [weight for _, weight in self.KINDS]

    def pick(self, *, hurried: bool = False) -> Ending | None:
        rng = self.rng
        if rng.random() >= self.rate * (self.HURRIED if hurried else 1.0):
            return None
        kind = rng.choices(self._names, self._weights)[0]
        if kind == "crash point":
            return Ending(kind, writes=rng.randint(0, 12))
        if kind == "killed":
            return Ending(kind, at=rng.uniform(0.0, 10.0))
        return Ending(
            kind,
            at=rng.uniform(0.05, 3.0),
            grace=rng.choice(GRACES),
            slow_call=rng.choice(SLOW_CALLS),
            slow_for=rng.choice(SLOW_SECONDS),
        )

    def restarted(self, how: str) -> None:
        self.counts["restarts"] += 1
        self.counts[how] += 1

    def dead_for(self) -> float:
        """Seconds the host stays dead before the restart (0: it restarts at once)."""
        if self.dead_next:
            self.counts["dead host"] += 1
            seconds, self.dead_next = self.dead_next, 0.0
            return seconds
        if not self.dead_hosts or self.rng.random() >= DEAD_HOST_CHANCE:
            return 0.0
        self.counts["dead host"] += 1
        return 60.0 * self.rng.uniform(*DEAD_MINUTES)


async def kill_at(life: Life, seconds: float) -> None:
    await asyncio.sleep(seconds)
    life.end("killed")


async def shut_down(process: Process, monitor: Monitor, ending: Ending) -> None:
    """SIGTERM in the middle of the cycle: the trader drains (chatbot/app.py's _shutdown)."""
    await asyncio.sleep(ending.at)
    if not process.life.alive:
        return
    monitor.shutdown_began()
    await monitor.guard("drain", process.trader.drain(ending.grace))


async def stopped(process: Process, monitor: Monitor) -> None:
    """After the drain and the commands in flight: the flattening stops, the process is gone."""
    if process.life.alive:
        await monitor.guard("close", process.trader.close())
        process.life.end("shutdown")


async def restart(world: World, old: Process, endings: Endings) -> Process:
    """The ended process is abandoned; a new one restores the store, as chatbot/app.py does
    before any command channel opens (its next cycle starts the exchange)."""
    await old.abandon()
    await dead_host(world, endings.dead_for())
    endings.restarted(old.life.how)
    world.monitor.restarting(old.life.how)
    new = world.start()
    new.trader.restore()
    world.monitor.restarted()
    return new


async def dead_host(world: World, seconds: float) -> None:
    """No process of the bot runs for `seconds`: the exchange advances on its own, step by step,
    and the referee looks at the positions' protection after each step."""
    if seconds <= 0:
        return
    paper, clock, protection = world.venue.paper, world.clock, world.monitor.protection
    guards = {
        o.id
        for o in open_exchange_orders(paper)
        if client_id_purpose(o.client_order_id) == Purpose.GUARD
    }
    protection.observe(alive=False)
    end = clock.monotonic() + seconds
    for _ in range(int(seconds // DEAD_STEP) + 1):
        left = end - clock.monotonic()
        if left <= 0:
            break
        await clock.sleep(min(DEAD_STEP, left))
        await paper.advance()
        protection.observe(alive=False)
    triggered = sum(1 for o in paper.order_log if o.id in guards and o.filled > 0)
    world.monitor.stats["stops triggered while dead"] += triggered
