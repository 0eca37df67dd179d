"""The paper exchange's edges: what a real exchange does to a request before it reaches the book.

Three small parts, each owned by one `PaperExchange` (trading/venues/paper.py) and consulted on
every
call it admits:

- `TokenBucket`: a token bucket; an empty bucket raises `RateLimited` with the wait until the
  next token as `retry_after`, like a 429 carrying Retry-After;
- `FaultPlan`: faults and latency injected per call by tests, benchmarks and the chaos soak;
- `ExchangeClock`: the exchange's own clock, which can drift from ours; a signed request is
  `ClockRejected` when the drift not yet corrected by `sync` exceeds the recv window (the
  Binance -1021 case).

Nothing here is random and nothing reads the wall clock: time comes from the injected Clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from trading.clock import Clock
from trading.errors import ClockRejected, Fault, RateLimited

FaultSpec = Fault | type[BaseException] | BaseException


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


@dataclass(slots=True)
class Injection:
    """One planned misbehaviour of a call: a fault, extra latency, or both."""

    call: str  # a Venue method name or "*"
    fault: FaultSpec | None  # None: latency only
    remaining: int  # -1: for ever
    latency: float
    after: bool  # raise once the call has taken effect (the answer was lost, not the request)

    def exception(self, venue: str, call: str) -> BaseException:
        """The exception to raise now: a Fault says where it happened; anything else is raised
        as given, like a bug."""
        spec = self.fault
        if isinstance(spec, type):
            if issubclass(spec, Fault):
                return spec(f"injected {spec.__name__}", venue=venue, call=call)
            return spec(f"injected {spec.__name__}")
        assert spec is not None
        if isinstance(spec, Fault):
            spec.venue = spec.venue or venue
            spec.call = spec.call or call
        return spec.with_traceback(None)  # raised again and again: keep the traceback short


class FaultPlan:
    """The injections still to fire, in the order they were planned."""

    def __init__(self, known_calls: frozenset[str]) -> None:
        self._known_calls = known_calls
        self._injections: list[Injection] = []

    def inject(
        self, call: str, fault: FaultSpec, *, count: int, latency: float, after: bool
    ) -> None:
        is_class = isinstance(fault, type) and issubclass(fault, BaseException)
        if not (is_class or isinstance(fault, BaseException)):
            raise TypeError(f"not an exception or exception class: {fault!r}")
        self._add(Injection(call, fault, count, latency, after))

    def inject_latency(self, call: str, seconds: float, count: int) -> None:
        self._add(Injection(call, None, count, seconds, False))

    def clear(self) -> None:
        self._injections.clear()

    def _add(self, injection: Injection) -> None:
        if injection.call != "*" and injection.call not in self._known_calls:
            raise ValueError(f"unknown call {injection.call!r}; one of {sorted(self._known_calls)}")
        if injection.remaining == 0 or injection.remaining < -1:
            raise ValueError("count must be positive, or -1 for ever")
        if injection.latency < 0:
            raise ValueError("latency must not be negative")
        self._injections.append(injection)

    def due(self, call: str) -> tuple[Injection | None, float]:
        """The first matching fault injection and the first matching latency-only one fire:
        returns the fault (if any) and the latency of both together."""
        fault: Injection | None = None
        slow: Injection | None = None
        for injection in list(self._injections):
            if injection.call not in ("*", call):
                continue
            if injection.fault is None:
                if slow is not None:
                    continue
                slow = injection
            elif fault is None:
                fault = injection
            else:
                continue
            if injection.remaining > 0:
                injection.remaining -= 1
                if injection.remaining == 0:
                    self._injections.remove(injection)
        latency = (fault.latency if fault else 0.0) + (slow.latency if slow else 0.0)
        return fault, latency


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
