"""The trading jobs on a real AsyncIOScheduler with short (sub-second, bounded) intervals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from chatbot.scheduling import (
    _add_interval,
    add_daily_job,
    cycle_job_id,
    job_summary,
    new_scheduler,
    schedule_traders,
    sync_job_id,
)
from trading.settings import TradingSettings

FAST = TradingSettings(scan_interval_seconds=0.05, sync_interval_seconds=0.1)


class CountingTrader:
    """Counts cycles and syncs, and remembers how many of its cycles overlapped."""

    def __init__(self, label: str, *, stuck: bool = False) -> None:
        self.label = label
        self.cycles = 0
        self.syncs = 0
        self.running = 0
        self.max_running = 0
        self.stuck = stuck
        self.release = asyncio.Event()
        self.reached = asyncio.Event()

    async def run_cycle(self) -> None:
        self.cycles += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.stuck:
                await self.release.wait()
            if self.cycles >= 5:
                self.reached.set()
        finally:
            self.running -= 1

    async def run_sync(self) -> None:
        self.syncs += 1

    async def start(self) -> None:
        self.started_at = asyncio.get_running_loop().time()
        if self.stuck:
            await self.release.wait()


async def _stop(scheduler) -> None:
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0.02)  # the shutdown is scheduled on the loop


async def test_stuck_trader_does_not_delay_the_other_and_never_runs_twice_at_once():
    scheduler = new_scheduler()
    stuck, healthy = CountingTrader("paper:stuck", stuck=True), CountingTrader("paper:ok")
    schedule_traders(scheduler, [stuck, healthy], FAST, stagger_seconds=0.01)
    scheduler.start()
    try:
        await asyncio.wait_for(healthy.reached.wait(), timeout=5)
    finally:
        stuck.release.set()
        await _stop(scheduler)
    assert healthy.cycles >= 5
    assert healthy.syncs >= 1
    assert stuck.cycles == 1  # its later runs were skipped while the first was stuck
    assert stuck.max_running == 1
    assert healthy.max_running == 1


async def test_many_traders_cycles_spread_evenly_over_the_interval_none_at_once():
    scheduler = new_scheduler()
    traders = [CountingTrader(f"paper:a{i}") for i in range(100)]
    schedule_traders(scheduler, traders, TradingSettings())
    scheduler.start()
    try:
        phases = sorted(
            scheduler.get_job(cycle_job_id(t.label)).next_run_time.timestamp() % 60.0
            for t in traders
        )
    finally:
        await _stop(scheduler)
    gaps = [b - a for a, b in pairwise(phases)]
    assert min(gaps) > 0.5  # 60 s / 100 accounts = 0.6 s between any two cycles


async def test_two_traders_each_get_their_own_cycle_and_sync_jobs_staggered():
    scheduler = new_scheduler()
    a, b = CountingTrader("kraken:master"), CountingTrader("binance:master")
    ids = schedule_traders(
        scheduler, [a, b], TradingSettings(), stagger_seconds=7.0, first_delay=1.0
    )
    scheduler.start()
    try:
        assert set(ids) == {
            cycle_job_id("kraken:master"),
            sync_job_id("kraken:master"),
            cycle_job_id("binance:master"),
            sync_job_id("binance:master"),
        }
        first = scheduler.get_job(cycle_job_id("kraken:master")).next_run_time
        second = scheduler.get_job(cycle_job_id("binance:master")).next_run_time
        assert abs((second - first).total_seconds() - 7.0) < 0.01
        sync = scheduler.get_job(sync_job_id("kraken:master")).next_run_time
        # Half a cycle interval after its first cycle: between its own cycles, never on one.
        assert abs((sync - first).total_seconds() - 30.0) < 0.01
        job = scheduler.get_job(cycle_job_id("kraken:master"))
        assert job.max_instances == 1 and job.coalesce
    finally:
        await _stop(scheduler)


async def test_a_raising_callback_is_logged_and_runs_again(caplog):
    scheduler = new_scheduler()
    calls: list[int] = []
    done = asyncio.Event()

    def beat() -> None:
        calls.append(1)
        if len(calls) >= 3:
            done.set()
        raise RuntimeError("bug in a heartbeat")

    start = datetime.now(UTC) + timedelta(seconds=0.03)
    _add_interval(scheduler, "heartbeat", beat, 0.03, start)
    scheduler.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=5)
    finally:
        await _stop(scheduler)
    assert len(calls) >= 3
    assert "job heartbeat raised" in caplog.text


async def test_daily_job_runs_at_the_given_utc_time():
    scheduler = new_scheduler()
    ran: list[bool] = []

    async def summary() -> None:
        ran.append(True)

    add_daily_job(scheduler, 20, 30, summary)
    scheduler.start()
    try:
        next_run = scheduler.get_job("daily-summary").next_run_time.astimezone(UTC)
        assert (next_run.hour, next_run.minute, next_run.second) == (20, 30, 0)
        assert [j["id"] for j in job_summary(scheduler)] == ["daily-summary"]
    finally:
        await _stop(scheduler)
    assert ran == []


