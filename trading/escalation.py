"""When failing persistently becomes Fatal: the connector's two escalation clocks.

A single Recoverable fault never stops a trader; one that persists must, or a retired endpoint
or an exchange answering nonsense would leave it blind for ever:

- the critical calls (the sync, a start's market load) share one streak: any Recoverable
  failure starts it, only a successful sync ends it (the trader checks no stop-loss until one
  succeeds), and past `sync_limit` seconds the failure is raised as Fatal;
- every call has its own streak of Unrecognized answers: the first starts it, a success of
  that call ends it, and an Unrecognized answer more than `unrecognized_limit` seconds after
  the first is raised as Fatal.

Each escalation is reported once per streak, however often it is raised again.
"""

from __future__ import annotations

from dataclasses import dataclass

from trading.breaker import ApiHealth
from trading.clock import Clock
from trading.errors import Fatal, Fault, RateLimited, Unrecognized


@dataclass
class Streak:
    """One run of failures: when it began, what it said last, whether it was escalated."""

    monotonic: float
    epoch: float
    message: str = ""
    reported: bool = False
    only_rate_limited: bool = True  # every failure of the streak was a rate limit


class Escalation:
    """The escalation clocks of one connector."""

    def __init__(
        self,
        *,
        clock: Clock,
        health: ApiHealth,
        label: str,
        sync_limit: float,
        unrecognized_limit: float,
    ) -> None:
        self._clock = clock
        self._health = health
        self._label = label
        self._sync_limit = sync_limit
        self._unrecognized_limit = unrecognized_limit
        self._critical: Streak | None = None
        self._unrecognized: dict[str, Streak] = {}  # call -> its streak

    # ------------------------------------------------------- the critical calls

    @property
    def sync_failing_since(self) -> float | None:
        """Epoch of the first failure of the current critical streak."""
        return None if self._critical is None else self._critical.epoch

    def critical_failed(
        self, what: str, fault: Fault, started: tuple[float, float], *, cause: str
    ) -> None:
        """A critical call that began at `started` (monotonic, epoch) failed: start or extend
        the streak; past the limit, raise Fatal naming `cause`."""
        if self._critical is None:
            self._critical = Streak(*started)
        streak = self._critical
        streak.only_rate_limited &= isinstance(fault, RateLimited)
        elapsed = self._clock.monotonic() - streak.monotonic
        if elapsed <= self._sync_limit:
            return
        message = f"{what} failing for {elapsed:.0f} s: {cause}"
        escalated = Fatal(message, venue=self._label, call=what)
        escalated.halt = streak.only_rate_limited
        self._escalate(what, escalated, streak, fault)

    def sync_succeeded(self) -> bool:
        """End the critical streak; whether there was one."""
        was, self._critical = self._critical, None
        return was is not None

    # --------------------------------------------------- unrecognized answers

    def answered(self, call: str) -> None:
        """`call` succeeded: its Unrecognized streak, if any, is over."""
        self._unrecognized.pop(call, None)

    def unrecognized(self, call: str, fault: Unrecognized) -> None:
        """`call` answered something nobody recognises: start or extend its streak; past the
        limit, raise Fatal."""
        now = self._clock.monotonic()
        streak = self._unrecognized.setdefault(call, Streak(now, self._clock.time()))
        streak.message = fault.message
        elapsed = now - streak.monotonic
        if elapsed <= self._unrecognized_limit:
            return
        message = f"{call} answering unrecognized errors for {elapsed:.0f} s: {fault.message}"
        self._escalate(call, Fatal(message, venue=self._label, call=call), streak, fault)

    def oldest_unrecognized(self) -> tuple[str, float, str] | None:
        """(call, epoch of its first Unrecognized answer, its latest message) of the longest
        running streak, or None when every call's latest answer was understood."""
        if not self._unrecognized:
            return None
        call, streak = min(self._unrecognized.items(), key=lambda item: item[1].monotonic)
        return call, streak.epoch, streak.message

    def _escalate(self, call: str, escalated: Fatal, streak: Streak, fault: Fault) -> None:
        self._health.escalated(call, escalated, report=not streak.reported)
        streak.reported = True
        raise escalated from fault
