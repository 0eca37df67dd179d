"""One operation at a time per trader: a cycle, a command, a flatten round.

A command that cannot get the lock in time is told so (`TraderBusy`); a kill or a failsafe goes
ahead anyway (`force`), since its new mode already refuses whatever the running cycle would
still try. The lock is re-entrant within a task, and a request withdrawn (cancelled, timed out)
never leaves the lock taken with nobody to release it.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager


class TraderBusy(Exception):
    """A command could not get the trader's lock in time (a cycle is still running)."""


class TraderLock:
    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task | None = None

    def locked(self) -> bool:
        return self._lock.locked()

    @asynccontextmanager
    async def exclusive(self, wait: float | None = None, *, force: bool = False):
        """Hold the lock. With `wait`, give up after that many seconds: raise TraderBusy, or
        with `force` go ahead without it."""
        me = asyncio.current_task()
        if self._owner is not None and self._owner is me:
            yield
            return
        acquire = asyncio.ensure_future(self._lock.acquire())
        try:
            done, _ = await asyncio.wait({acquire}, timeout=wait)
        except asyncio.CancelledError:
            # Cancelled while waiting (a /resume stops the flattening): the request must not go
            # on to take the lock with nobody left to release it.
            _abandon(acquire, self._lock)
            raise
        if not done:
            _abandon(acquire, self._lock)
            if not force:
                raise TraderBusy("a cycle is still running; try again in a moment")
            self.log.warning("going ahead without waiting longer for the running cycle")
            yield
            return
        self._owner = me
        try:
            yield
        finally:
            self._owner = None
            self._lock.release()


def _abandon(acquire: asyncio.Future, lock: asyncio.Lock) -> None:
    """Withdraw a lock request; if it is granted all the same, give the lock straight back."""
    acquire.add_done_callback(_release_if_acquired(lock))
    acquire.cancel()


def _release_if_acquired(lock: asyncio.Lock):
    def callback(task: asyncio.Future) -> None:
        if not task.cancelled() and task.exception() is None:
            lock.release()

    return callback
