"""Scripted faults for tests and benchmarks: the paper exchange misbehaving on cue.

    PaperExchange <- FaultyPaper    inject / inject_latency / clear_faults, per Venue call
    FaultPlan, Injection            the injections still to fire, and how each one raises

The product's paper exchange (trading/venues/paper.py) keeps a real exchange's edges (rate limit,
drifting clock, cancel-all-after) and a seam, `_before`, that each call passes once admitted;
FaultyPaper overrides it. The chaos soak injects at the connector interface instead
(sim/chaos/venue.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trading.errors import Fault
from trading.venues.paper import PaperExchange

FaultSpec = Fault | type[BaseException] | BaseException

# fmt: off
VENUE_CALLS = frozenset((
    "load_markets", "fetch_tickers", "fetch_ohlcv", "fetch_balance", "fetch_open_orders",
    "fetch_order", "find_order", "create_order", "cancel_order", "cancel_all_after", "sync_time",
    "close",
))
# fmt: on


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


class FaultyPaper(PaperExchange):
    """The paper exchange with faults and latency injected per call. Everything else, and a
    call no injection matches, is the paper exchange's own."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._faults = FaultPlan(VENUE_CALLS)

    def inject(
        self,
        call: str,
        fault: FaultSpec,
        *,
        count: int = 1,
        latency: float = 0.0,
        after: bool = False,
    ) -> None:
        """Make the next `count` calls of `call` ("*": any call; count=-1: for ever) raise
        `fault`, after `latency` seconds of clock time. after=True: the call takes effect and
        then raises (an order accepted whose answer was lost). A fault class is instantiated
        with a message; a non-Fault exception is raised as is, like a bug."""
        self._faults.inject(call, fault, count=count, latency=latency, after=after)

    def inject_latency(self, call: str, seconds: float, count: int = 1) -> None:
        """Make the next `count` calls of `call` take `seconds` of clock time, and succeed."""
        self._faults.inject_latency(call, seconds, count)

    def clear_faults(self) -> None:
        self._faults.clear()

    async def _before(self, call: str) -> Callable[[], None] | None:
        injection, latency = self._faults.due(call)
        if latency > 0:
            await self._clock.sleep(latency)
            self._engine.catch_up()  # the exchange's engine ran while the call was on its way
        if injection is None:
            return None
        if not injection.after:
            raise injection.exception(self.name, call)

        def lose_the_answer() -> None:
            raise injection.exception(self.name, call)

        return lose_the_answer
