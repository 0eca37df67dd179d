"""A trader's life around its work: ready for commands once its first start was tried, and
drained, not broken, when the process ends.

    restore()        book, mode and bans from the store (no I/O), before any command channel
                     opens; from then on commands wait for the start
    first start      load markets + reconcile (the first cycle); `ready` once it was tried,
                     whether the exchange answered or not
    a command        waits for `ready`, at most READY_WAIT_SECONDS and never holding the
                     trader's lock, then acts on the book as the exchange confirmed it (or, if
                     the exchange is slow, as the store remembered it)
    drain(grace)     no new cycle or sync; the running ones get `grace` seconds to finish (an
                     order on its way gets its answer recorded), then are cancelled

A run cancelled by the drain ends quietly: a shutdown is not a fault, so nothing reaches the
dead switch (no failsafe, no mode change, no emergency) and the scheduler sees a normal end.
Whatever it left half-done is what a crash leaves, and the next start reconciles it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# A start is a market load and a sync: seconds on a healthy exchange. A command waits no longer
# for it, then acts on the restored book, as it must when the exchange does not answer at all.
READY_WAIT_SECONDS = 15.0
# A cancelled run ends at its next await; this only bounds a run that ignores cancellation.
CANCEL_WAIT_SECONDS = 2.0


class Lifecycle:
    """Readiness for commands and the runs in flight, for one trader."""

    def __init__(self, log: logging.Logger, *, ready_wait: float = READY_WAIT_SECONDS) -> None:
        self.log = log
        self.ready_wait = ready_wait
        self.closing = False
        self._expected = False  # restored, so a start is coming: commands wait for it
        self._ready = asyncio.Event()
        self._running: set[asyncio.Task] = set()
        self._drained: set[asyncio.Task] = set()  # cancelled by drain(), not by anyone else

    def expect_start(self) -> None:
        """The state is restored and the exchange start will follow: commands wait for it."""
        self._expected = True

    def start_tried(self) -> None:
        """The first start attempt is over, however it went."""
        self._ready.set()

    async def wait_ready(self) -> bool:
        """Until the first start was tried (True), or `ready_wait` seconds (False). A trader
        that was never restored expects no start and is ready at once."""
        if not self._expected or self._ready.is_set():
            return True
        try:
            await asyncio.wait_for(self._ready.wait(), self.ready_wait)
        except TimeoutError:
            self.log.warning(
                "not reconciled after %.0f s: acting on the restored book", self.ready_wait
            )
            return False
        return True

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """One cycle or sync, which drain() waits for and may cancel."""
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            yield
        except asyncio.CancelledError:
            if task not in self._drained:
                raise
            task.uncancel()
            self.log.info("run cancelled by the shutdown")
        finally:
            self._running.discard(task)
            self._drained.discard(task)

    async def drain(self, grace: float) -> None:
        """No new run from now on; the running ones get `grace` seconds, then are cancelled."""
        self.closing = True
        running = {t for t in self._running if not t.done()} - {asyncio.current_task()}
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=grace)
        if not late:
            return
        self.log.warning("cancelling %d run(s) still busy after %.0f s", len(late), grace)
        for task in late:
            self._drained.add(task)
            task.cancel()
        _, stuck = await asyncio.wait(late, timeout=CANCEL_WAIT_SECONDS)
        if stuck:
            self.log.error("%d run(s) ignored the cancellation", len(stuck))
