"""The chaos soak's machinery: the whole bot on the paper exchange in simulated time, with faults,
commands, crashes and restarts thrown at it at random and the invariants of issue 7 checked
after every cycle. `bench/chaos.py` runs it over many seeds; `tests/test_chaos.py` runs a fast
variant.

    PaperExchange <- ChaosVenue          faults and retryable answers at the connector
                                         interface, every order audited
                  <- ObservedConnector   remembers each sync's account state
                  <- ObservedTrader      the real Trader; every sync and mode change is checked
    CrashingStore                        the one store every process of the bot opens
    ChaosStrategy                        random signals, a bug on demand
    Notifier (capturing sender)          every event is teed into the Monitor on its way there
    Dispatcher                           commands from the command table, else trader operations
    FaultPlanner, Commander, User        what goes wrong, what the owner does from the phone and
                                         on the exchange's website, cycle by cycle
    Endings                              how the bot's process ends: a crash point, a kill, a
                                         clean shutdown mid-cycle; then it restarts

This module runs one seed, cycle by cycle, and returns its report; the venue is in
sim/chaos/venue.py, the fault planner in sim/chaos/faults.py, the strategy, the commander and
the user in sim/chaos/actors.py, the processes and their endings in sim/chaos/process.py (all
importable from here too).

A seed fixes everything (market, settings, faults, commands and their timing). On a
VirtualTimeLoop nothing really sleeps and concurrent waits overlap as in real time, so a seed
reproduces its run: `python bench/chaos.py --seed N`. The invariants, and the Monitor that
checks them, are in sim/chaos/referee.py.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, replace

from chatbot.notifier import Notifier
from chatbot.senders import Message
from sim.chaos.actors import ChaosStrategy, Commander, User
from sim.chaos.faults import READ_CALLS, RETIRE_RATE, SIGNED_CALLS, FaultMaker, FaultPlanner
from sim.chaos.feeds import ChaosFeeds
from sim.chaos.process import (
    CrashingStore,
    Ending,
    Endings,
    Process,
    World,
    kill_at,
    restart,
    shut_down,
    stopped,
)
from sim.chaos.referee import Monitor
from sim.chaos.report import SeedReport
from sim.chaos.venue import ChaosVenue
from sim.clock import LoopClock, run_simulated
from trading.engine import Trader
from trading.settings import TradingSettings
from trading.venues.market_sim import SyntheticFeed
from trading.venues.paper import PaperExchange

__all__ = [
    "MARKETS",
    "READ_CALLS",
    "RETIRE_RATE",
    "SCAN_INTERVAL",
    "SIGNED_CALLS",
    "ChaosStrategy",
    "ChaosVenue",
    "Commander",
    "CrashingStore",
    "Endings",
    "FaultMaker",
    "FaultPlanner",
    "User",
    "run_seed",
    "seed_settings",
    "soak",
]

SCAN_INTERVAL = 60.0
MARKETS = 12
SYNC_INTERVALS = (120.0, 300.0)  # with the event feed: a REST sync every 2 or 5 cycles
# Seconds an owner command may take to answer: far more than a kill's patience, a lock's wait
# and the slowest injected latency together; a command still silent then never answers.
COMMAND_PATIENCE = 900.0


# ---- one seed -------------------------------------------------------------------------------


class _Inbox:
    """A sender that only counts (the soak checks events, not texts)."""

    def __init__(self) -> None:
        self.sent = 0
        self.emergencies = 0

    async def send(self, message: Message) -> None:
        self.sent += 1
        self.emergencies += message.emergency


def seed_settings(rng: random.Random) -> tuple[TradingSettings, float]:
    """Settings and a starting balance drawn for one seed."""
    balance = rng.choice((1_500.0, 3_000.0, 10_000.0))
    settings = TradingSettings(
        stake_amount=rng.choice((50.0, 150.0, 400.0)),
        max_positions=rng.randint(2, 6),
        max_exposure=rng.choice((0.3, 0.5, 0.8, 0.95)),
        min_quote_volume=0.0,
        reentry_cooldown_seconds=rng.choice((0.0, 300.0, 1800.0)),
        scan_interval_seconds=SCAN_INTERVAL,
        sync_failure_limit_seconds=300.0,
        stop_exit_timeout_seconds=300.0,
        failsafe_on_fatal="stop" if rng.random() < 0.2 else "flatten",
        cancel_all_after_seconds=3 * SCAN_INTERVAL,
    )
    return settings, balance


async def soak(
    seed: int,
    cycles: int,
    clock: LoopClock,
    *,
    direct: bool = False,
    retire_at: int | None = None,
    dead_host: tuple[int, float] | None = None,
    dead_hosts: bool = False,
    feed: bool | None = None,
) -> SeedReport:
    """Run one seed for `cycles` cycles on a VirtualTimeLoop and check every invariant.
    `direct`: commands call the trader's operations, not the handlers; `retire_at`: the cycle
    at which fetch_balance starts answering 404 for good (else a rare random draw); `dead_host`:
    (cycle, seconds): the bot is killed early in that cycle and its host stays dead that long;
    `dead_hosts`: after some of the random endings the host stays dead for minutes; `feed`:
    the exchange's event stream on (True), off (False), or on for half the seeds (None)."""
    rng = random.Random(seed)
    settings, balance = seed_settings(rng)
    feed_rng = random.Random(f"{seed}|feed")
    feeding = feed_rng.random() < 0.5 if feed is None else feed
    if feeding:
        interval = feed_rng.choice(SYNC_INTERVALS)
        settings = replace(settings, event_feed="auto", sync_interval_seconds=interval)
    feed = SyntheticFeed(seed=seed, markets=MARKETS, quote=settings.quote, clock=clock)
    user = User(random.Random(f"{seed}|user"))
    coins = user.holds(await feed.load_markets(), feed)
    paper = PaperExchange(
        clock=clock, feed=feed, balances={settings.quote: balance, **coins}, burst=40
    )
    monitor = Monitor(seed, settings, paper, clock)
    monitor.outsider(user)
    venue = ChaosVenue(paper, monitor, clock, random.Random(f"{seed}|venue"))
    if feeding:
        venue.feeds = feeds = ChaosFeeds(paper, clock, feed_rng, monitor.quoted)
        monitor.after_fair_sync.append(
            lambda: feeds.check(monitor.trader, venue.denied, monitor.violation)
        )
    inbox = _Inbox()
    notifier = Notifier([inbox], clock=clock, queue_size=10, emergency_repeat=300.0)
    strategy = ChaosStrategy(random.Random(f"{seed}|strategy"), monitor)
    world = World(settings, clock, venue, CrashingStore(), monitor, notifier, strategy, direct)
    process = world.start()
    planner = FaultPlanner(random.Random(f"{seed}|faults"), venue, strategy, retire_at)
    endings = Endings(random.Random(f"{seed}|endings"), dead_hosts=dead_hosts)
    commander = Commander(
        random.Random(f"{seed}|commands"), process.dispatcher, process.trader, monitor
    )
    soaking = _Soak(world, planner, endings, commander, user, dead_host)
    started = time.perf_counter()
    with monitor.capturing_logs():
        await user.begin(paper)
        await monitor.guard("start", process.trader.start())
        for cycle in range(cycles):
            process = await soaking.cycle(cycle, process)
        await monitor.guard("close", process.trader.close())
    if venue.feeds is not None:
        await venue.feeds.close()
        monitor.stats.update(venue.feeds.stats)
        monitor.stats["seeds with the event feed"] = 1
    monitor.finish(notifier)
    monitor.stats["messages sent"] = inbox.sent
    monitor.stats.update({f"user's orders {what}": n for what, n in user.actions.items()})
    monitor.stats["stops refused by the venue"] = venue.stops_refused
    return monitor.report(
        cycles=cycles,
        seconds=time.perf_counter() - started,
        planned=planner.planned,
        injected=venue.injected,
        natural=venue.natural,
        commands=commander.issued,
        via_table=commander.via_table,
        endings=endings.counts,
        retryable=venue.retryable,
        mode_commands=monitor.causes.coverage,
    )


@dataclass
class _Soak:
    """One seed's cycles: faults, the user's orders, commands, the cycle itself, the scheduler's
    sync job, and now and then the end of the bot's process and its restart."""

    world: World
    planner: FaultPlanner
    endings: Endings
    commander: Commander
    user: User
    dead_host: tuple[int, float] | None

    async def cycle(self, cycle: int, process: Process) -> Process:
        world, monitor, clock = self.world, self.world.monitor, self.world.clock
        monitor.cycle = cycle
        if not process.life.alive:  # died between cycles (its flattening, a late command)
            process = await self._restart(process)
        self.planner.before_cycle(cycle)
        if world.venue.feeds is not None:
            world.venue.feeds.before_cycle()
        # The dead man's switch armed over the bot's orders: the user's orders and a restart
        # come likelier now, the moment they could meet it.
        armed = process.trader.connector.health.dead_man_armed_until is not None
        await self.user.act(hurried=armed)
        began = clock.monotonic()
        ending = self.endings.pick(hurried=armed)
        if self.dead_host is not None and cycle == self.dead_host[0]:
            ending, self.endings.dead_next = Ending("killed", at=1.0), self.dead_host[1]
        picked = self.commander.pick()
        if picked is not None and picked[0] == "kill" and self.planner.rng.random() < 0.5:
            self.planner.exits_fail()
        if picked is not None and picked[2] is None:
            await self._command(picked)
            picked = None
        trader = process.trader
        tasks = [asyncio.ensure_future(monitor.guard("cycle", trader.run_cycle()))]
        if ending is not None and ending.kind == "shutdown" and picked is not None:
            picked = picked if picked[2] < ending.at else None  # polling stops at the shutdown
        if picked is not None:
            tasks.append(asyncio.ensure_future(self._command(picked, picked[2])))
        if self.planner.rng.random() < 0.15:  # the scheduler's separate sync job, out of phase
            delay = self.planner.rng.uniform(1, 30)
            tasks.append(asyncio.ensure_future(_sync_job(trader, monitor, delay)))
        if ending is not None:
            tasks.append(asyncio.ensure_future(self._end(process, ending)))
        await asyncio.gather(*tasks)
        if ending is not None and ending.kind == "shutdown":
            await stopped(process, monitor)
        if not process.life.alive:
            process = await self._restart(process)
        await monitor.guard("notifier", world.notifier.drain())
        monitor.end_of_cycle()
        await clock.sleep(max(0.0, SCAN_INTERVAL - (clock.monotonic() - began)))
        return process

    async def _end(self, process: Process, ending: Ending) -> None:
        if ending.kind == "crash point":
            self.world.store.crash_after(ending.writes)
        elif ending.kind == "killed":
            await kill_at(process.life, ending.at)
        else:
            self.world.venue.inject(ending.slow_call, None, latency=ending.slow_for, lasts=1)
            await shut_down(process, self.world.monitor, ending)

    async def _restart(self, process: Process) -> Process:
        process = await restart(self.world, process, self.endings)
        self.commander.rebind(process.dispatcher, process.trader)
        return process

    async def _command(self, picked, delay: float = 0.0) -> None:
        name, args, _ = picked
        if delay:
            await asyncio.sleep(delay)
        monitor, life = self.world.monitor, self.world.store.life
        monitor.command_issued(name)
        answer = monitor.guard(f"/{name}", self.commander.run(name, args))
        try:
            result = await asyncio.wait_for(answer, COMMAND_PATIENCE)
        except TimeoutError:
            monitor.unanswered(name, COMMAND_PATIENCE)
            return
        if life.alive:  # else the process died under it: nobody is left to answer
            monitor.command_done(name, result)


async def _sync_job(trader: Trader, monitor: Monitor, delay: float) -> None:
    await asyncio.sleep(delay)
    await monitor.guard("sync job", trader.run_sync())


def run_seed(
    seed: int,
    cycles: int,
    direct: bool = False,
    retire_at: int | None = None,
    dead_host: tuple[int, float] | None = None,
    dead_hosts: bool = False,
    feed: bool | None = None,
) -> SeedReport:
    """One seed, start to finish, on its own VirtualTimeLoop (picklable, for a process pool)."""
    return run_simulated(
        lambda clock: soak(
            seed,
            cycles,
            clock,
            direct=direct,
            retire_at=retire_at,
            dead_host=dead_host,
            dead_hosts=dead_hosts,
            feed=feed,
        )
    )
