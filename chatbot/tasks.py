"""Two asyncio chores the chat layer's background loops share (the notifier's sender, the pager
workers, the watchdog's poller and listener): sleeping until woken or a bound has passed, and
stopping tasks for good."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


async def woken(event: asyncio.Event, seconds: float | None) -> None:
    """Wait until `event` is set or `seconds` pass (None: no bound), whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def cancel_all(tasks: Iterable[asyncio.Task]) -> None:
    """Cancel the tasks, then wait until every one has ended."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
