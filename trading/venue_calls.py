"""One request of the connector to its venue, made the same way whatever it asks: the circuit
gate, the accounting (health score, circuit breaker, the streaks of Unrecognized answers), one
clock resync and retry on a signed call's clock rejection; and, for reads, retries of Transient
and RateLimited with capped backoff.

Apart from trading/connector.py because every part of the connector sends through it: its reads
and syncs, order placement (trading/sending.py) and the dead man's switch
(trading/dead_man.py). Each caller says what the call is (signed, gated by the circuit, which
rejections are quiet); this module is how any call is made and counted.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from trading.breaker import ApiHealth, Circuit, Quiet
from trading.clock import Clock
from trading.errors import (
    ClockRejected,
    Fault,
    RateLimited,
    Recoverable,
    Rejected,
    Transient,
    Unrecognized,
)
from trading.escalation import Escalation
from trading.models import Venue
from trading.retry import retry

T = TypeVar("T")


class CircuitOpen(Transient):
    """A read refused locally because this connector's circuit is open; the venue was not
    touched. A Transient to callers (skip this part of the cycle), but never retried."""


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, Transient | RateLimited) and not isinstance(exc, CircuitOpen)


class VenueCalls:
    """How the connector makes every request of one venue."""

    def __init__(
        self,
        venue: Venue,
        *,
        clock: Clock,
        health: ApiHealth,
        escalation: Escalation,
        label: str,
        log: logging.Logger,
        read_attempts: int,
        time_resync_seconds: float,
    ) -> None:
        self._venue = venue
        self._clock = clock
        self._health = health
        self._breaker = health.breaker
        self._escalation = escalation
        self._label = label
        self._log = log
        self._read_attempts = read_attempts
        self._time_resync_seconds = time_resync_seconds
        self._last_time_sync: float | None = None  # monotonic

    async def read(
        self,
        call: str,
        fn: Callable[[], Awaitable[T]],
        *,
        signed: bool = False,
        quiet: Quiet | None = None,
        gated: bool = True,
    ) -> T:
        """A read: one request, retried on Transient and RateLimited with capped backoff."""
        attempt = functools.partial(self.call, call, fn, signed=signed, gated=gated, quiet=quiet)

        def on_retry(fault: BaseException, n: int, delay: float) -> None:
            kind = getattr(fault, "kind", type(fault).__name__)
            self._log.info(
                "%s failed (%s), attempt %d/%d, retrying in %.1f s",
                call,
                kind,
                n,
                self._read_attempts,
                delay,
            )

        return await retry(
            attempt,
            clock=self._clock,
            attempts=self._read_attempts,
            should_retry=_retryable,
            on_retry=on_retry,
        )

    async def call(
        self,
        call: str,
        fn: Callable[[], Awaitable[T]],
        *,
        signed: bool,
        gated: bool,
        quiet: Quiet | None = None,
    ) -> T:
        """One venue request: circuit gate, clock resync on a signed call, accounting."""
        probe = False
        if gated:
            probe = self._breaker.state is Circuit.HALF_OPEN
            if not self._breaker.admit():
                raise CircuitOpen(self._open_message(), venue=self._label, call=call)
        try:
            result = await self._request(call, fn, signed=signed, quiet=quiet)
        except (Transient, RateLimited, Rejected):
            raise  # the breaker has its verdict
        except BaseException:
            if probe:
                self._breaker.release_probe()
            raise
        return result

    async def refresh_time_if_due(self) -> None:
        """Measure the exchange's clock again once `time_resync_seconds` have passed."""
        last = self._last_time_sync
        if last is not None and self._clock.monotonic() - last < self._time_resync_seconds:
            return
        try:
            await self.read("sync_time", self._venue.sync_time)
        except (Transient, RateLimited, Unrecognized) as fault:
            # Signed calls still resync on a clock rejection; try again next sync.
            self._log.warning("clock offset not refreshed: %s", fault.kind)
            return
        self._last_time_sync = self._clock.monotonic()
        self._log.debug("clock offset %.0f ms", float(self._venue.clock_offset_ms))

    async def _request(
        self,
        call: str,
        fn: Callable[[], Awaitable[T]],
        *,
        signed: bool,
        quiet: Quiet | None,
    ) -> T:
        try:
            result = await self._counted(call, fn, quiet)
        except ClockRejected as fault:
            if not signed:
                raise
            await self._resync_after(fault)
            self._log.info("%s: clock rejected, resynced, retrying once", call)
            result = await self._counted(call, fn, quiet)
        return result

    async def _counted(
        self,
        call: str,
        fn: Callable[[], Awaitable[T]],
        quiet: Quiet | None,
    ) -> T:
        self._health.requests += 1
        try:
            result = await fn()
        except Fault as fault:
            self._health.fault(call, fault, quiet)
            if isinstance(fault, Unrecognized):
                self._escalation.unrecognized(call, fault)
            raise
        except Exception as exc:
            self._health.unclassified(call, exc)
            raise
        self._health.success(call)
        self._escalation.answered(call)
        return result

    async def _resync_after(self, fault: ClockRejected) -> None:
        try:
            await self._counted("sync_time", self._venue.sync_time, None)
        except Recoverable as resync_fault:
            raise fault from resync_fault
        self._last_time_sync = self._clock.monotonic()

    def _open_message(self) -> str:
        if self._breaker.state is Circuit.HALF_OPEN:
            return "circuit half-open, a probe is in flight"
        until = self._breaker.open_until
        left = 0.0 if until is None else max(0.0, until - self._clock.monotonic())
        return f"circuit open ({left:.0f} s left)"
