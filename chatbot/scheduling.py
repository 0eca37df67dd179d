"""When things run: the trading jobs on one AsyncIOScheduler, on the bot's one event loop.

The scheduler decides only *when* a trader's cycle or sync runs, never what it does. Each
trader gets its own jobs (max_instances=1, coalesced), and every job is a coroutine run as
its own task, so one account's slow or stuck cycle never delays another's. Trader methods
never raise (the dead switch is inside the trader); the guard here only keeps a bug in a
callback from reaching APScheduler's log unexplained.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from trading.settings import TradingSettings

log = logging.getLogger("chatbot.scheduling")

DEFAULT_STAGGER_SECONDS = 5.0
DAILY_JOB_ID = "daily-summary"

Callback = Callable[[], Awaitable[object] | object]


class ScheduledTrader(Protocol):
    """What the scheduler needs from a trader (trading.engine.Trader)."""

    @property
    def label(self) -> str: ...

    async def start(self) -> None: ...

    async def run_cycle(self) -> None: ...

    async def run_sync(self) -> None: ...


def new_scheduler() -> AsyncIOScheduler:
    """A scheduler in UTC whose jobs default to one instance, coalesced."""
    return AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"max_instances": 1, "coalesce": True},
    )


def cycle_job_id(label: str) -> str:
    return f"cycle:{label}"


def sync_job_id(label: str) -> str:
    return f"sync:{label}"


def schedule_traders(
    scheduler: AsyncIOScheduler,
    traders: Sequence[ScheduledTrader],
    settings: TradingSettings,
    *,
    stagger_seconds: float | None = None,
    first_delay: float = 0.0,
) -> list[str]:
    """Add a cycle job and a sync job per trader; returns the job ids.

    Trader i starts `first_delay + i * stagger_seconds` from now, so several accounts do not hit
    their exchanges at the same instant. By default the spacing is `stagger_spacing`: the
    accounts' cycles spread evenly over the cycle interval, however many there are. A trader's
    sync job runs half a cycle interval out of phase with its own cycles. A late run is
    coalesced into one and a run that comes due while the previous one still runs is skipped
    (max_instances=1): a slow cycle is never run twice at once.
    """
    interval = settings.scan_interval_seconds
    if stagger_seconds is None:
        stagger_seconds = stagger_spacing(len(traders), interval)
    now = datetime.now(UTC)
    ids: list[str] = []
    for i, trader in enumerate(traders):
        start = now + timedelta(seconds=first_delay + i * stagger_seconds)
        ids.append(
            _add_interval(
                scheduler,
                cycle_job_id(trader.label),
                trader.run_cycle,
                _cycle_seconds(trader, settings),
                start,
            )
        )
        sync_start = start + timedelta(seconds=interval / 2)
        ids.append(
            _add_interval(
                scheduler,
                sync_job_id(trader.label),
                trader.run_sync,
                settings.sync_interval_seconds,
                sync_start,
            )
        )
    return ids


def _cycle_seconds(trader: ScheduledTrader, settings: TradingSettings) -> float:
    """The scan interval, or longer where the trader's exchange is paced too slowly for a cycle
    to fit it (trading/cycle_pace.py; the trader said so at start)."""
    plan = getattr(trader, "cycle_plan", None)
    own = getattr(getattr(trader, "settings", None), "scan_interval_seconds", None)
    if plan is None or not plan.stretched or not own:
        return settings.scan_interval_seconds
    # The plan is in the trader's own seconds (paper seconds on the offline exchange, which
    # the cadence here compresses): stretch the cadence by the same ratio.
    return settings.scan_interval_seconds * max(1.0, plan.interval / own)


def stagger_spacing(accounts: int, interval: float) -> float:
    """Seconds between accounts' first cycles: DEFAULT_STAGGER_SECONDS while that spreads them
    within one interval, else the interval shared evenly. A fixed spacing wraps around the
    interval past interval/spacing accounts and lands whole groups of cycles on one instant
    (100 accounts 5 s apart on a 60 s cycle: 9 at a time)."""
    return min(DEFAULT_STAGGER_SECONDS, interval / max(1, accounts))


def _add_interval(
    scheduler: AsyncIOScheduler,
    job_id: str,
    call: Callback,
    seconds: float,
    start: datetime,
) -> str:
    scheduler.add_job(
        _guarded,
        IntervalTrigger(seconds=seconds, start_date=start, timezone=UTC),
        args=(job_id, call),
        id=job_id,
        name=job_id,
        max_instances=1,
        coalesce=True,
        # A run late by up to one interval still happens (coalesced); later than that it is
        # skipped, because the next one is due anyway.
        misfire_grace_time=max(1, int(seconds)),
        replace_existing=True,
    )
    return job_id


def add_daily_job(
    scheduler: AsyncIOScheduler,
    hour: int,
    minute: int,
    callback: Callback,
    *,
    job_id: str = DAILY_JOB_ID,
) -> str:
    """Run `callback` (sync or async) every day at hour:minute UTC (the daily summary)."""
    scheduler.add_job(
        _guarded,
        CronTrigger(hour=hour, minute=minute, timezone=UTC),
        args=(job_id, callback),
        id=job_id,
        name=job_id,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,  # a summary an hour late is still worth sending
        replace_existing=True,
    )
    return job_id


def job_summary(scheduler: AsyncIOScheduler) -> list[dict[str, object]]:
    """The jobs and their next run times, for /debug."""
    return [
        {
            "id": job.id,
            "next_run": job.next_run_time.timestamp() if job.next_run_time else None,
        }
        for job in scheduler.get_jobs()
    ]


async def _guarded(job_id: str, call: Callback) -> None:
    # Trader methods never raise; anything that does is a bug in a callback, logged with its
    # job so it is not lost in APScheduler's generic "job raised" line.
    try:
        result = call()
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("job %s raised", job_id)
