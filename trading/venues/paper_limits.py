"""The paper exchange's edges: what a real exchange does to a request before it reaches the book.

Two small parts, each owned by one `PaperExchange` (trading/venues/paper.py) and consulted on
every call it admits:

- `TokenBucket`: a token bucket; an empty bucket raises `RateLimited` with the wait until the
  next token as `retry_after`, like a 429 carrying Retry-After;
- `ExchangeClock`: the exchange's own clock, which can drift from ours; a signed request is
  `ClockRejected` when the drift not yet corrected by `sync` exceeds the recv window (the
  Binance -1021 case).

Nothing here is random and nothing reads the wall clock: time comes from the injected Clock.
"""

from __future__ import annotations

from trading.clock import Clock
from trading.errors import ClockRejected, RateLimited


class TokenBucket:
    """A token bucket of `burst` requests refilled at `rate` per second (rate <= 0: no limit)."""

    def __init__(self, clock: Clock, rate: float, burst: int) -> None:
        self._clock = clock
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._refilled_at = clock.monotonic()

    @property
    def rate(self) -> float:
        return self._rate

    def take(self, call: str, venue: str) -> None:
        """Spend one token, or raise RateLimited saying when the next one will be there."""
        if self._rate <= 0:
            return
        now = self._clock.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled_at) * self._rate)
        self._refilled_at = now
        if self._tokens < 1.0:
            raise RateLimited(
                f"too many requests: limit {self._rate:g}/s, burst {self._burst:g}",
                venue=venue,
                call=call,
                retry_after=(1.0 - self._tokens) / self._rate,
            )
        self._tokens -= 1.0


class ExchangeClock:
    """The exchange's clock: `skew` seconds ahead of ours (negative: behind). Our signing
    offset is only learnt by `sync`, so a skew that changes afterwards shows up as drift."""

    def __init__(self, clock: Clock, recv_window_ms: float) -> None:
        self._clock = clock
        self._recv_window_ms = recv_window_ms
        self._skew = 0.0
        self._offset_ms = 0.0

    @property
    def offset_ms(self) -> float:
        """The offset we sign with, as of the last `sync`."""
        return self._offset_ms

    def set_skew(self, seconds: float) -> None:
        self._skew = seconds

    def sync(self) -> float:
        """Learn the exchange's offset (what ccxt's time adjustment does); returns it in ms."""
        self._offset_ms = self._skew * 1000.0
        return self._offset_ms

    def time(self) -> float:
        """Epoch seconds by the exchange's clock: what it stamps its orders with."""
        return self._clock.time() + self._skew

    def check(self, call: str, venue: str) -> None:
        """Reject a signed request whose timestamp falls outside the recv window."""
        drift_ms = abs(self._skew * 1000.0 - self._offset_ms)
        if drift_ms > self._recv_window_ms:
            raise ClockRejected(
                f"Timestamp for this request is outside of the recvWindow "
                f"({drift_ms:.0f} ms off, window {self._recv_window_ms:g} ms)",
                venue=venue,
                call=call,
            )
