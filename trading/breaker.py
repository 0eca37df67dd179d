"""Per-connector API health: circuit breaker, health score, and the ledger of faults seen.

Each connector owns one `ApiHealth` (nothing here is global), so one exchange's storm never
slows another's account. Durations read only `clock.monotonic()`.

    CLOSED --threshold consecutive faults--> OPEN --cooldown passes--> HALF_OPEN
       ^                                      ^                           |
       +----------- probe succeeds -----------|---- probe fails ----------+
                                              (cooldown doubles, up to max_cooldown)

A RateLimited that says how long to wait (Retry-After) opens the circuit for at least that
long at once: the exchange has told us every request before then will be refused.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from enum import StrEnum

from trading.clock import Clock
from trading.errors import Fault, RateLimited, Rejected, Transient
from trading.events import FaultRaised, Notify

EPSILON = 1e-6


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive transport faults and decides whether a gated request may go out.

    Callers that must always go out (orders, cancels) skip `admit()` but still report their
    outcome, so the count reflects every request.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        threshold: int = 5,
        cooldown: float = 30.0,
        max_cooldown: float = 300.0,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, got {threshold}")
        self._clock = clock
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max(max_cooldown, cooldown)
        self._cooldown = cooldown
        self._open_until: float | None = None  # monotonic; None while closed
        self._probing = False
        self.consecutive_faults = 0
        self.opened = 0  # times the circuit opened, for /metrics

    @property
    def state(self) -> Circuit:
        if self._open_until is None:
            return Circuit.CLOSED
        # The epsilon absorbs float rounding: a caller that waited exactly Retry-After is due.
        if self._clock.monotonic() < self._open_until - EPSILON:
            return Circuit.OPEN
        return Circuit.HALF_OPEN

    @property
    def open_until(self) -> float | None:
        """Monotonic time the circuit stays open until, or None when not open."""
        return self._open_until if self.state is Circuit.OPEN else None

    @property
    def cooldown(self) -> float:
        """The cooldown the next opening will use."""
        return self._cooldown

    def admit(self) -> bool:
        """Whether a gated request may go now; when half-open, the first one is the probe."""
        state = self.state
        if state is Circuit.CLOSED:
            return True
        if state is Circuit.OPEN or self._probing:
            return False
        self._probing = True
        return True

    def release_probe(self) -> None:
        """The probe ended without a verdict (a Fatal, a bug, a cancellation): allow another."""
        self._probing = False

    def record_success(self) -> None:
        self.consecutive_faults = 0
        if self.state is Circuit.HALF_OPEN:
            # Still OPEN (a bypassing order went through) keeps its cooldown: a Retry-After
            # window in particular is the exchange's to end, not ours.
            self._close()

    def record_fault(self, retry_after: float | None = None) -> None:
        self.consecutive_faults += 1
        state = self.state
        if state is Circuit.HALF_OPEN:
            self._cooldown = min(self.max_cooldown, self._cooldown * 2)
            self._open_for(self._cooldown)
        elif state is Circuit.CLOSED and self.consecutive_faults >= self.threshold:
            self._open_for(self._cooldown)
        if retry_after is not None and retry_after > 0:
            self._open_for(retry_after)

    def _open_for(self, seconds: float) -> None:
        was_open = self._open_until is not None
        until = self._clock.monotonic() + seconds
        if self._open_until is None or self.state is not Circuit.OPEN:
            self._open_until = until
        else:
            self._open_until = max(self._open_until, until)
        self._probing = False
        if not was_open:
            self.opened += 1

    def _close(self) -> None:
        self._open_until = None
        self._probing = False
        self._cooldown = self.base_cooldown


class HealthScore:
    """An exponentially weighted success ratio in 0..1 (1.0 before any request).

    With alpha = 0.1 the last ~20 outcomes carry most of the weight: five straight faults take
    a healthy score to about 0.6, and it recovers as requests succeed again.
    """

    def __init__(self, alpha: float = 0.1) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self._alpha = alpha
        self.value = 1.0

    def record(self, ok: bool) -> None:
        self.value += self._alpha * ((1.0 if ok else 0.0) - self.value)


MAX_FAULT_TEXT = 300
Quiet = Callable[[Fault], bool]
"""Says a Rejected is an expected answer (an order already gone), not a fault."""


class ApiHealth:
    """What one connector knows about its API: every request's outcome feeds the breaker,
    the score and the counters, and each fault is reported once per streak of its call."""

    def __init__(
        self,
        *,
        clock: Clock,
        label: str,
        notify: Notify,
        log: logging.Logger,
        threshold: int = 5,
        cooldown: float = 30.0,
        max_cooldown: float = 300.0,
    ) -> None:
        self.breaker = CircuitBreaker(
            clock=clock, threshold=threshold, cooldown=cooldown, max_cooldown=max_cooldown
        )
        self.score = HealthScore()
        self.requests = 0
        self.faults: Counter[str] = Counter()
        self.last_fault: str | None = None
        self.last_transport_fault = ""  # what opened the circuit, for messages
        self._clock = clock
        self._label = label
        self._notify = notify
        self._log = log
        self._reported: dict[str, set[str]] = {}  # call -> kinds reported in its current streak

    def success(self, call: str) -> None:
        self.score.record(True)
        self.breaker.record_success()
        self._reported.pop(call, None)

    def fault(self, call: str, fault: Fault, quiet: Quiet | None = None) -> None:
        if isinstance(fault, Rejected):
            # The request was fine, the order was not: the API is healthy.
            self.score.record(True)
            self.breaker.record_success()
            if quiet is not None and quiet(fault):
                return
        elif isinstance(fault, Transient | RateLimited):
            self.last_transport_fault = describe(call, fault.kind, fault.message)
            was = self.breaker.state
            self.score.record(False)
            retry_after = fault.retry_after if isinstance(fault, RateLimited) else None
            self.breaker.record_fault(retry_after)
            if self.breaker.state is Circuit.OPEN and was is not Circuit.OPEN:
                self._log.warning(
                    "circuit open for %.0f s after %d consecutive faults",
                    (self.breaker.open_until or 0.0) - self._clock.monotonic(),
                    self.breaker.consecutive_faults,
                )
        else:
            self.score.record(False)
        self.faults[fault.kind] += 1
        self.last_fault = describe(call, fault.kind, fault.message)
        if quiet is None or not quiet(fault):
            self._report(call, fault.kind, fault.message)

    def unclassified(self, call: str, exc: Exception) -> None:
        """A venue raised something that is not a Fault: a bug, left to the engine's dead
        switch (which raises the emergency), only counted here."""
        self.faults["unclassified"] += 1
        self.last_fault = describe(call, type(exc).__name__, str(exc))

    def escalated(self, call: str, fault: Fault, *, report: bool) -> None:
        """A fault the connector made itself (a sync failing too long)."""
        self.faults[fault.kind] += 1
        self.last_fault = describe(call, fault.kind, fault.message)
        if report:
            self._send(call, fault.kind, fault.message)

    def _report(self, call: str, kind: str, message: str) -> None:
        kinds = self._reported.setdefault(call, set())
        if kind not in kinds:  # a retry of the same call is the same streak
            kinds.add(kind)
            self._send(call, kind, message)

    def _send(self, call: str, kind: str, message: str) -> None:
        text = message[:MAX_FAULT_TEXT]
        level = logging.ERROR if kind == "fatal" else logging.WARNING
        self._log.log(level, "%s: %s: %s", call, kind, text)
        self._notify(
            FaultRaised(
                account=self._label, at=self._clock.time(), kind=kind, call=call, message=text
            )
        )


def describe(call: str, kind: str, message: str) -> str:
    return f"{call}: {kind}: {message}"[:MAX_FAULT_TEXT]
