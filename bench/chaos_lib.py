"""The chaos soak's machinery: the whole bot on the paper exchange in simulated time, with faults
and commands thrown at it at random and the invariants of issue 7 checked after every cycle.
`bench/chaos.py` runs it over many seeds; `tests/test_chaos.py` runs a fast variant.

    PaperExchange <- ChaosVenue          faults at the connector interface, every order audited
                  <- ObservedConnector   remembers each sync's account state
                  <- ObservedTrader      the real Trader; every sync is checked
    ChaosStrategy                        random signals, a bug on demand
    Notifier (capturing sender)          every event is teed into the Monitor on its way there
    Dispatcher                           commands from the command table, else trader operations
    FaultPlanner, Commander              what goes wrong, and what the human does, cycle by cycle

This module runs one seed, cycle by cycle, and returns its report; the venue and the fault
planner are in bench/chaos_faults.py, the strategy and the commander in bench/chaos_actors.py
(all importable from here too).

A seed fixes everything (market, settings, faults, commands and their timing). On a
VirtualTimeLoop nothing really sleeps and concurrent waits overlap as in real time, so a seed
reproduces its run: `python bench/chaos.py --seed N`. The invariants, and the Monitor that
checks them, are in trading/chaos.py.
"""

from __future__ import annotations

import asyncio
import random
import time

from bench.chaos_actors import ChaosStrategy, Commander
from bench.chaos_faults import (
    READ_CALLS,
    RETIRE_RATE,
    SIGNED_CALLS,
    ChaosVenue,
    FaultMaker,
    FaultPlanner,
)
from chatbot.notifier import Notifier
from chatbot.senders import Message
from handlers.context import Context
from handlers.dispatch import Dispatcher
from sim.clock import LoopClock, run_simulated
from trading.chaos import Monitor, ObservedConnector, ObservedTrader, SeedReport
from trading.desk import Desk
from trading.engine import Trader
from trading.settings import TradingSettings
from trading.store import Store
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
    "FaultMaker",
    "FaultPlanner",
    "run_seed",
    "seed_settings",
    "soak",
]

SCAN_INTERVAL = 60.0
MARKETS = 12


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
) -> SeedReport:
    """Run one seed for `cycles` cycles on a VirtualTimeLoop and check every invariant.
    `direct`: commands call the trader's operations, not the handlers; `retire_at`: the cycle
    at which fetch_balance starts answering 404 for good (else a rare random draw)."""
    rng = random.Random(seed)
    settings, balance = seed_settings(rng)
    paper = PaperExchange(
        clock=clock, seed=seed, markets=MARKETS, balances={"USDT": balance}, burst=40
    )
    monitor = Monitor(seed, settings, paper, clock)
    venue = ChaosVenue(paper, monitor, clock, random.Random(f"{seed}|venue"))
    inbox = _Inbox()
    notifier = Notifier([inbox], clock=clock, queue_size=10, emergency_repeat=300.0)

    def notify(event) -> None:
        monitor.events.append(event)
        notifier.notify(event)

    connector = ObservedConnector(
        venue,
        clock=clock,
        notify=notify,
        sync_failure_limit=settings.sync_failure_limit_seconds,
        unrecognized_limit=settings.sync_failure_limit_seconds,
        cancel_all_after_seconds=settings.cancel_all_after_seconds,
    )
    strategy = ChaosStrategy(random.Random(f"{seed}|strategy"), monitor)
    store = Store()
    trader = ObservedTrader(
        connector, store=store, strategy=strategy, settings=settings, clock=clock, notify=notify
    )
    trader.monitor = monitor
    monitor.watch(trader, venue, notifier)
    desk = Desk([trader], store=store, clock=clock)
    dispatcher = None if direct else Dispatcher(Context(desk=desk, clock=clock, notifier=notifier))
    planner = FaultPlanner(random.Random(f"{seed}|faults"), venue, strategy, retire_at)
    commander = Commander(random.Random(f"{seed}|commands"), dispatcher, trader, monitor)
    started = time.perf_counter()
    with monitor.capturing_logs():
        await monitor.guard("start", trader.start())
        for cycle in range(cycles):
            await _one_cycle(cycle, trader, planner, commander, monitor, notifier, clock)
        await monitor.guard("close", trader.close())
    monitor.finish(notifier)
    monitor.stats["messages sent"] = inbox.sent
    return monitor.report(
        cycles=cycles,
        seconds=time.perf_counter() - started,
        planned=planner.planned,
        injected=venue.injected,
        natural=venue.natural,
        commands=commander.issued,
        via_table=commander.via_table,
    )


async def _one_cycle(cycle, trader, planner, commander, monitor, notifier, clock) -> None:
    monitor.cycle = cycle
    planner.before_cycle(cycle)
    began = clock.monotonic()
    picked = commander.pick()
    if picked is not None and picked[0] == "kill" and planner.rng.random() < 0.5:
        planner.exits_fail()
    if picked is not None and picked[2] is None:
        await _command(commander, monitor, picked)
    tasks = [asyncio.ensure_future(monitor.guard("cycle", trader.run_cycle()))]
    if picked is not None and picked[2] is not None:
        tasks.append(asyncio.ensure_future(_command(commander, monitor, picked, picked[2])))
    if planner.rng.random() < 0.15:  # the scheduler's separate sync job, out of phase
        tasks.append(asyncio.ensure_future(_sync_job(trader, monitor, planner.rng.uniform(1, 30))))
    await asyncio.gather(*tasks)
    await monitor.guard("notifier", notifier.drain())
    monitor.end_of_cycle()
    await clock.sleep(max(0.0, SCAN_INTERVAL - (clock.monotonic() - began)))


async def _command(commander: Commander, monitor: Monitor, picked, delay: float = 0.0) -> None:
    name, args, _ = picked
    if delay:
        await asyncio.sleep(delay)
    monitor.command_issued(name)
    result = await monitor.guard(f"/{name}", commander.run(name, args))
    monitor.command_done(name, result)


async def _sync_job(trader: Trader, monitor: Monitor, delay: float) -> None:
    await asyncio.sleep(delay)
    await monitor.guard("sync job", trader.run_sync())


def run_seed(
    seed: int, cycles: int, direct: bool = False, retire_at: int | None = None
) -> SeedReport:
    """One seed, start to finish, on its own VirtualTimeLoop (picklable, for a process pool)."""
    return run_simulated(
        lambda clock: soak(seed, cycles, clock, direct=direct, retire_at=retire_at)
    )
