"""The pace of a trader's order requests: its venue's own rate, most urgent first."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import TYPE_CHECKING

from trading.clock import Clock
from trading.errors import RateLimited
from trading.pacing import current

if TYPE_CHECKING:
    from trading.connector import Connector

MIN_PACE_SECONDS = 0.05  # spacing learned from a rate limit that gave no Retry-After


class OrderPacer:
    """Spaces order requests (and cancels) at the venue's own rate, on the clock that rate
    counts in (the paper exchange's bucket runs on paper time in the demo, ten or three hundred
    times faster than the trader's clock); where the rate is unknown, free-running until the
    exchange pushes back.

    Live exchanges are paced by ccxt's own limiter; this keeps a burst of concurrent exits (a
    kill of fifty positions) from turning into fifty rate-limit faults where the limiter is the
    exchange itself (the paper exchange's token bucket, an account's order limit). It spends
    none of the venue's burst: the reads it does not see (a buy's sync and ticker) may have.

    The most urgent request waiting goes first (trading/pacing.py: exits), and of those an order
    before a cancel: a kill's first sell goes as soon as its stop is lifted, not behind every
    other position's stop cancel."""

    HEADROOM = 0.9  # of the venue's rate, left to orders; the rest serves syncs and cancels

    def __init__(self, clock: Clock, rate: float | None = None) -> None:
        self._clock = clock
        self.interval = 1.0 / (rate * self.HEADROOM) if rate and rate > 0 else 0.0
        self._next = 0.0
        self._queue: list[tuple[int, int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._runner: asyncio.Task[None] | None = None

    @classmethod
    def for_venue(cls, connector: Connector, clock: Clock, rate: float | None = None) -> OrderPacer:
        """Paced by the venue's own rate and clock where it says them, else at `rate` on
        `clock` (None: free-running)."""
        limit = connector.order_limit()
        if limit is None:
            return cls(clock, rate)
        venue_rate, venue_clock = limit
        return cls(venue_clock, rate or venue_rate)

    async def wait(self, *, order: bool = False) -> None:
        """Wait for this request's turn; `order`: an order, which goes before cancels."""
        if self.interval <= 0:
            return
        if not self._queue and self._take():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (int(current()), 0 if order else 1, next(self._order), future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run())
        await future  # cancelled while waiting: the runner skips it

    def pushed_back(self, fault: RateLimited) -> None:
        retry_after = fault.retry_after or 0.0
        self.interval = max(self.interval, retry_after, MIN_PACE_SECONDS)

    async def _run(self) -> None:
        while self._queue:
            future = self._queue[0][-1]
            if future.done():
                heapq.heappop(self._queue)
                continue
            if not self._take():
                await self._clock.sleep(self._next - self._clock.monotonic())
                continue
            heapq.heappop(self._queue)
            future.set_result(None)
            await asyncio.sleep(0)  # let it leave before the next one is weighed

    def _take(self) -> bool:
        now = self._clock.monotonic()
        if self._next > now + 1e-9:
            return False
        self._next = max(now, self._next) + self.interval
        return True
