"""The cyclic garbage collector and a bot that must answer within milliseconds.

CPython's collector stops the event loop while it runs, and a full collection examines every
container object alive. Nearly all of those are built at start-up and live as long as the
process: the imported libraries (ccxt's exchange classes, python-telegram-bot, APScheduler),
the configuration, the restored books, every account's markets. bench/scale.py measured full
collections of 100-260 ms at 100 accounts, with start-up objects making up most of the heap:
a /ping or /kill arriving then waited for it.

`settle()` moves every object alive into the permanent generation (gc.freeze), which later
collections skip. Frozen objects are still freed the moment their last reference goes; only a
reference cycle among them would never be reclaimed, so `settle` collects first. The bot
settles twice: before its jobs start (a full collection: no account trades yet), and once its
accounts have had their first cycles, which load their markets (the young generations only:
a few milliseconds, where a full collection of every account's markets would pause the loop
for as long as the collections it prevents).
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.date import DateTrigger

SETTLE_JOB_ID = "settle-heap"


def settle(*, full: bool = True) -> None:
    """Collect (every generation, or only the young ones), then exclude every survivor from
    later collections."""
    gc.collect() if full else gc.collect(1)
    gc.freeze()


def settle_later(scheduler: BaseScheduler, seconds: float) -> str:
    """Settle the young generations once, `seconds` from now (after the accounts' first
    cycles); returns the job id."""
    scheduler.add_job(
        _settle_young,
        DateTrigger(run_date=datetime.now(UTC) + timedelta(seconds=seconds), timezone=UTC),
        id=SETTLE_JOB_ID,
        name=SETTLE_JOB_ID,
        misfire_grace_time=None,  # late is fine: it only has to happen once
        replace_existing=True,
    )
    return SETTLE_JOB_ID


async def _settle_young() -> None:
    # A coroutine, so the scheduler runs it on the loop, not in a worker thread.
    settle(full=False)
