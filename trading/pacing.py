"""An account's request pace, with exits first.

ccxt paces an exchange's requests in arrival order (its Throttler is a FIFO), so a kill's sell
would wait behind every candle read a scan had queued: on Kraken, at about one request a second,
that was seconds per read. The Pacer keeps the exchange's pace the way ccxt does (a leaky
bucket: a request goes when the bucket is not in debt, then adds its cost) but lets the most
urgent request waiting go first:

    EXIT     a kill, a stop, the failsafe, a protective exit: getting out
    NORMAL   commands and syncs
    SCAN     the scan's market reads, which can always wait a cycle

The urgency is the caller's context (`with at(Priority.EXIT):`), so it reaches the request
through ccxt without riding on every signature, and tasks started inside it (a kill's
concurrent exits) inherit it. A request that costs nothing (Kraken's orders and cancels, which
its own order limit counts, not the request counter) does not wait for the debt of others.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import IntEnum

from trading.clock import Clock


class Priority(IntEnum):
    EXIT = 0
    NORMAL = 1
    SCAN = 2


_current: ContextVar[Priority] = ContextVar("request_priority", default=Priority.NORMAL)


def current() -> Priority:
    return _current.get()


@contextmanager
def at(priority: Priority) -> Iterator[None]:
    """Requests made inside (and by tasks started inside) wait their turn at `priority`."""
    token = _current.set(priority)
    try:
        yield
    finally:
        _current.reset(token)


class Pacer:
    """A leaky bucket of `capacity` cost units refilled at `per_second`; a request goes once
    the bucket holds at least `threshold` units (ccxt: 0, so one request may put it in debt;
    a token bucket: 1), most urgent first, then in arrival order."""

    def __init__(
        self,
        clock: Clock,
        *,
        per_second: float,
        capacity: float = 1.0,
        threshold: float = 0.0,
    ) -> None:
        self._clock = clock
        self.per_second = per_second
        self._capacity = capacity
        self._threshold = threshold
        self._tokens = capacity
        self._refilled_at = clock.monotonic()
        self._queue: list[tuple[int, int, asyncio.Future[None], float]] = []
        self._order = itertools.count()
        self._runner: asyncio.Task[None] | None = None

    def seconds(self, cost: float) -> float:
        """How long `cost` units hold the pace."""
        return cost / self.per_second

    def waiting(self) -> int:
        return sum(1 for entry in self._queue if not entry[2].done())

    async def turn(self, cost: float = 1.0) -> None:
        """Wait until this request may go, then spend its cost."""
        if cost <= 0:
            return
        if not self._queue and self._wait() <= 0:
            self._tokens -= cost
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (int(current()), next(self._order), future, cost))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run())
        await future  # cancelled while waiting: the runner skips it

    async def _run(self) -> None:
        while self._queue:
            _, _, future, cost = self._queue[0]
            if future.done():
                heapq.heappop(self._queue)
                continue
            wait = self._wait()
            if wait > 0:
                # Whoever is most urgent when the bucket allows goes then, not who came first.
                await self._clock.sleep(wait)
                continue
            heapq.heappop(self._queue)
            self._tokens -= cost
            future.set_result(None)
            await asyncio.sleep(0)  # let it leave before the next one is weighed

    def _wait(self) -> float:
        now = self._clock.monotonic()
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(self._capacity, self._tokens + elapsed * self.per_second)
        self._refilled_at = now
        missing = self._threshold - self._tokens
        return missing / self.per_second if missing > 1e-9 else 0.0
