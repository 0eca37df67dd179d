"""One operation at a time per trader: a cycle, a command, a flatten round.

A cycle or a scheduled sync takes the lock `preemptible`. A kill, a stop or the failsafe
(`Preempt.CYCLE`) cancels it where it stands: its reads are dropped, an order it is sending is
answered and recorded first (`steady`), and its new mode refuses whatever the cycle would still
send. The owner's command (`Preempt.READS`) cancels it only while it reads (`reading`: the sync,
the scan), never between an entry and its stop. The pre-empted cycle ends quietly, as if it had
been skipped. A command that cannot get the lock in time is told so (`TraderBusy`); a kill or a
failsafe goes ahead anyway (`force`). The lock is
re-entrant within a task, and a request withdrawn (cancelled, timed out) never leaves the lock
taken with nobody to release it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from enum import IntEnum


class Preempt(IntEnum):
    """Whom a request for the lock may cancel: nobody, a cycle while it reads, any cycle."""

    NONE = 0
    READS = 1
    CYCLE = 2


class TraderBusy(Exception):
    """A command could not get the trader's lock in time (another command is still running)."""


class TraderLock:
    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task | None = None
        self._preemptible = False  # the owner is a cycle or a scheduled sync
        self._steady = 0  # the owner is sending an order: not cancelled until it is recorded
        self._preempting = False  # a pre-emption waits for the owner's order to be recorded
        self._preempted: asyncio.Task | None = None
        self._reading = 0  # the owner only reads now: a command may pre-empt it

    def locked(self) -> bool:
        return self._lock.locked()

    @asynccontextmanager
    async def exclusive(
        self,
        wait: float | None = None,
        *,
        force: bool = False,
        preempt: Preempt = Preempt.NONE,
        preemptible: bool = False,
    ):
        """Hold the lock, pre-empting a preemptible owner as `preempt` says. With `wait`, give
        up after that many seconds: raise TraderBusy, or with `force` go ahead without it."""
        me = asyncio.current_task()
        if self._owner is not None and self._owner is me:
            yield
            return
        if preempt is Preempt.CYCLE or (preempt is Preempt.READS and self._reading):
            self._preempt()
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
                raise TraderBusy("another command is still running; try again in a moment")
            self.log.warning("going ahead while another command still holds the trader")
            yield
            return
        self._owner, self._preemptible = me, preemptible
        try:
            yield
        except asyncio.CancelledError:
            if self._preempted is not me or me is None:
                raise
            me.uncancel()  # pre-empted, not shut down: the cycle ends as if skipped
            self.log.info("the running cycle gave way")
        finally:
            self._owner, self._preemptible, self._preempting = None, False, False
            self._reading = 0
            if self._preempted is me:
                self._preempted = None
            self._lock.release()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """The owner only reads: the owner's commands may pre-empt it meanwhile."""
        if self._owner is None or self._owner is not asyncio.current_task():
            yield
            return
        self._reading += 1
        try:
            yield
        finally:
            self._reading = max(0, self._reading - 1)

    @contextmanager
    def steady(self) -> Iterator[None]:
        """An order on its way: a pre-emption of this task waits until it is recorded."""
        if self._owner is None or self._owner is not asyncio.current_task():
            yield
            return
        self._steady += 1
        try:
            yield
        finally:
            self._steady -= 1
            if not self._steady and self._preempting:
                # Not from inside the owner's own step: cancelled while it waits, still inside
                # the lock, or not at all (a task cancelling itself is cancelled wherever it
                # next waits, possibly after it gave the lock back).
                asyncio.get_running_loop().call_soon(self._cancel_owner)

    def _preempt(self) -> None:
        if self._owner is None or not self._preemptible or self._preempted is self._owner:
            return
        if self._steady:
            self._preempting = True
        else:
            self._cancel_owner()

    def _cancel_owner(self) -> None:
        if self._steady:
            # The owner went straight on to send another order (an entry's stop right after
            # its fill) before this callback ran: that one too is answered and recorded first.
            self._preempting = True
            return
        owner, self._preempting = self._owner, False
        if owner is None or owner.done() or owner is asyncio.current_task():
            return
        self._preempted = owner
        owner.cancel()


def _abandon(acquire: asyncio.Future, lock: asyncio.Lock) -> None:
    """Withdraw a lock request; if it is granted all the same, give the lock straight back."""
    acquire.add_done_callback(_release_if_acquired(lock))
    acquire.cancel()


def _release_if_acquired(lock: asyncio.Lock):
    def callback(task: asyncio.Future) -> None:
        if not task.cancelled() and task.exception() is None:
            lock.release()

    return callback
