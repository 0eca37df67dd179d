"""One whole-universe ticker read shared by the accounts of one exchange.

Every account's cycle reads every ticker of its exchange. The answer is the same for every
account of that exchange (prices are public), while the cost is not: the exchange counts the
requests of every account on one host against one per-IP limit (Binance weighs the bulk
ticker call 80 of 6,000 a minute, so 100 accounts cycling each minute would exceed it alone),
and parsing a large universe takes the event loop tens of milliseconds each time.

`SharedTickers` is held by every account's Connector of one exchange. A whole-universe read
younger than `max_age` (on the connectors' clock) is answered from the last one; reads that
arrive while one is on its way wait for it rather than sending their own. A read that fails
fails for every caller that waited on it, and the next read tries afresh. Reads of named
symbols (a position's price) are never shared: they go to the account's own exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from trading.clock import Clock
from trading.models import Ticker

Read = Callable[[], Awaitable[dict[str, Ticker]]]


class SharedTickers:
    """The latest whole-universe ticker read of one exchange, and the one on its way."""

    def __init__(self, *, clock: Clock, max_age: float) -> None:
        self._clock = clock
        self.max_age = max_age
        self._last: dict[str, Ticker] | None = None
        self._read_at = 0.0  # clock.monotonic() of the last read's answer
        self._reading: asyncio.Future[dict[str, Ticker]] | None = None
        self.reads = 0  # reads that went to an exchange

    async def read(self, fetch: Read) -> dict[str, Ticker]:
        """Every ticker: the last read if young enough, the one on its way, or `fetch()`.
        Each caller gets its own dict (the tickers themselves are frozen)."""
        if self._last is not None and self._clock.monotonic() - self._read_at <= self.max_age:
            return dict(self._last)
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._fetch(fetch))
            # Every waiter may have been cancelled: the failure is theirs, not the loop's.
            self._reading.add_done_callback(lambda f: f.cancelled() or f.exception())
        # A caller cancelled while waiting (a /kill cancels a cycle) leaves the read to the
        # others who wait on it.
        return dict(await asyncio.shield(self._reading))

    async def _fetch(self, fetch: Read) -> dict[str, Ticker]:
        try:
            tickers = await fetch()
        finally:
            self._reading = None
        self.reads += 1
        self._last, self._read_at = tickers, self._clock.monotonic()
        return tickers
