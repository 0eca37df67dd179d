"""The resilience layer over one Venue: the only thing the engine talks to.

All retrying, health scoring, circuit breaking, clock resync and sync escalation live here,
once, so the paper exchange exercises exactly the code that runs live. What a caller still
sees is a fault that could not be absorbed:

- reads (markets, tickers, candles, fetch_order, find_order) retry Transient and RateLimited
  with capped backoff; while the circuit is open they fail fast with `CircuitOpen`
  (a Transient);
- an Unrecognized answer is never retried: it goes to the caller, and each call keeps a streak
  of them (`unrecognized()`) that a success of that call ends; one answered for longer than
  `unrecognized_limit` becomes Fatal (trading/escalation.py);
- the critical calls, `sync()` and the start-up `load_markets(critical=True)`, retry like a
  read and share one streak clock: when they keep failing with any Recoverable fault (a
  timeout, a retired endpoint's 404 that ccxt calls transient, a BadRequest after an API
  change) for longer than `sync_failure_limit`, the failure becomes Fatal;
- `place()` sends an order once and never again: after an unknown outcome (no answer, a rate
  limit, an unrecognized answer, "duplicate client order id") it looks the order up by client
  order id once and otherwise raises, leaving the decision to reconciliation, which waits until
  the request is too old for the exchange to still accept it (`last_sent`); orders and cancels
  bypass an open circuit so exits still go out;
- a ClockRejected on a signed call resyncs the exchange clock and retries once (the exchange
  refused that request outright, so an order is safe to send again);
- `Closed` (we closed the venue's client: a shutdown) is a cancellation, not a fault: never
  retried, never counted against health.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from trading.breaker import ApiHealth, Circuit, Quiet
from trading.clock import Clock
from trading.errors import (
    ClockRejected,
    DuplicateOrder,
    Fatal,
    Fault,
    OrderNotFound,
    RateLimited,
    Recoverable,
    Rejected,
    Transient,
    Unrecognized,
)
from trading.escalation import Escalation
from trading.events import Notify, discard
from trading.models import (
    AccountState,
    Candle,
    Market,
    Order,
    OrderRequest,
    Ticker,
    Venue,
    account_label,
)
from trading.retry import retry

T = TypeVar("T")


@dataclass(frozen=True)
class Cancelled:
    """What a cancel did: nothing (`gone`: the order had finished already), or cancelled it."""

    gone: bool
    order: Order | None = None  # its final state, when the exchange's answer said it

    def __bool__(self) -> bool:
        return not self.gone


class CircuitOpen(Transient):
    """A read refused locally because this connector's circuit is open; the venue was not
    touched. A Transient to callers (skip this part of the cycle), but never retried."""


class OutcomeUnknown(Transient):
    """The exchange refused an order as a duplicate of its client order id, so an order under
    that id exists, yet a lookup did not find it: placed or not is unknown, as after a timeout."""


@dataclass(frozen=True)
class HealthSnapshot:
    """A point-in-time view of one connector, for /healthz, /debug and /metrics."""

    score: float  # 0..1, recent success ratio
    circuit: str  # "closed" | "open" | "half_open"
    open_until: float | None  # epoch
    consecutive_faults: int
    requests: int  # venue requests made, faults included
    faults_by_kind: dict[str, int]
    last_fault: str | None
    sync_failing_since: float | None  # epoch
    clock_offset_ms: float
    has_dead_man: bool
    dead_man_armed_until: float | None  # epoch
    account: str = ""
    exchange: str = ""  # the venue's name: "binance", "paper"
    budget: int = 0
    unrecognized: tuple[str, float, str] | None = None  # see Connector.unrecognized()


def _transport_fault(exc: BaseException) -> bool:
    return isinstance(exc, Transient | RateLimited)


def _retryable(exc: BaseException) -> bool:
    return _transport_fault(exc) and not isinstance(exc, CircuitOpen)


def _any_rejection(fault: Rejected) -> bool:
    return True


def _not_found(fault: Rejected) -> bool:
    return isinstance(fault, OrderNotFound)


def _always(fault: Fault) -> bool:
    return True


class Connector:
    """One exchange account behind health scoring, a circuit breaker and safe retries."""

    def __init__(
        self,
        venue: Venue,
        *,
        clock: Clock,
        notify: Notify = discard,
        sync_failure_limit: float = 300.0,
        unrecognized_limit: float = 300.0,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 30.0,
        max_budget: int = 20,
        read_attempts: int = 3,
        time_resync_seconds: float = 600.0,
        cancel_all_after_seconds: float = 60.0,
        breaker_max_cooldown: float = 300.0,
    ) -> None:
        self.venue = venue
        self.label = account_label(venue.name, venue.account)
        self.markets: dict[str, Market] = {}
        self._clock = clock
        self._max_budget = max_budget
        self._read_attempts = read_attempts
        self._time_resync_seconds = time_resync_seconds
        self._cancel_all_after_seconds = cancel_all_after_seconds
        self.log = logging.getLogger(f"trading.{venue.name}.{venue.account}".lower())
        self._health = ApiHealth(
            clock=clock,
            label=self.label,
            notify=notify,
            log=self.log,
            threshold=breaker_threshold,
            cooldown=breaker_cooldown,
            max_cooldown=breaker_max_cooldown,
        )
        self._breaker = self._health.breaker
        self._escalation = Escalation(
            clock=clock,
            health=self._health,
            label=self.label,
            sync_limit=sync_failure_limit,
            unrecognized_limit=unrecognized_limit,
        )
        # Client order ids whose create may still reach the exchange's book: None while the
        # request is in flight, else the monotonic time its outcome became unknown.
        self._in_doubt: dict[str, float | None] = {}
        self._last_time_sync: float | None = None  # monotonic
        self._dead_man_until: float | None = None  # epoch
        # An earlier process may have armed it: until this one has set it, it is disarmed
        # rather than left to fire on orders that are not the bot's.
        self._dead_man_unknown = True
        self._dead_man_broken = False

    # ----------------------------------------------------------------- reads

    async def load_markets(self, *, critical: bool = False) -> dict[str, Market]:
        """The exchange's markets. `critical=True` (a trader's start, which cannot sync without
        them): past an open circuit, and a failure counts toward the escalation to Fatal."""
        if not critical:
            self.markets = await self._read("load_markets", self.venue.load_markets)
            return self.markets
        started = (self._clock.monotonic(), self._clock.time())
        try:
            markets = await self._read(
                "load_markets", self.venue.load_markets, signed=False, gated=False
            )
        except Recoverable as fault:
            self._critical_failed("markets", fault, started)
            raise
        self.markets = markets
        return markets

    async def tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]:
        fetch = functools.partial(self.venue.fetch_tickers, symbols)
        return await self._read("fetch_tickers", fetch)

    async def candles(self, symbol: str, timeframe: str, limit: int) -> list[Candle]:
        fetch = functools.partial(self.venue.fetch_ohlcv, symbol, timeframe, limit)
        return await self._read("fetch_ohlcv", fetch)

    async def fetch_order(self, order_id: str, symbol: str, *, gated: bool = True) -> Order:
        """One order as the exchange has it (`gated=False`: past an open circuit, for the
        sync settling the book, as the sync itself goes)."""
        fetch = functools.partial(self.venue.fetch_order, order_id, symbol)
        return await self._read("fetch_order", fetch, signed=True, gated=gated)

    async def find_order(
        self, client_order_id: str, symbol: str, *, gated: bool = True
    ) -> Order | None:
        """The order placed with this client order id, if the exchange has it (a read;
        `gated=False`: past an open circuit, for settling the fate of an exit)."""
        find = functools.partial(self.venue.find_order, client_order_id, symbol)
        return await self._read("find_order", find, signed=True, gated=gated)

    async def sync(self) -> AccountState:
        """Open orders, then the balance: the source of truth. Any Recoverable failure (a
        clock still rejected after a resync, a BadRequest after an API change, a timeout, an
        unrecognized answer) counts toward the escalation to Fatal."""
        started = (self._clock.monotonic(), self._clock.time())
        try:
            await self._refresh_time_if_due()
            # The sync asks the exchange itself even while scan traffic holds the circuit open:
            # its escalation to Fatal must rest on its own answers, and a breaker cooldown (up to
            # breaker_max_cooldown) must never run out the clock of SYNC_FAILURE_LIMIT_SECONDS.
            # Orders first: a fill between the two reads then shows in the (newer) balance, so
            # a position it opened is never compared with a balance from before it.
            orders = await self._read(
                "fetch_open_orders", self.venue.fetch_open_orders, signed=True, gated=False
            )
            balance = await self._read(
                "fetch_balance", self.venue.fetch_balance, signed=True, gated=False
            )
        except Recoverable as fault:
            self._critical_failed("sync", fault, started)
            raise
        if self._escalation.sync_succeeded():
            self.log.info("sync works again")
        return AccountState(balance=balance, open_orders=tuple(orders), timestamp=started[1])

    # ---------------------------------------------------------------- writes

    async def place(self, request: OrderRequest) -> Order:
        """Send an order once. The exchange's order, or: Rejected (it was not placed), Fatal,
        or Transient / RateLimited / Unrecognized when the outcome is unknown.

        Never sent twice: an exchange may still execute a request after a lookup missed it
        (Binance -1007 "execution status unknown"), and refuses a reused client order id only
        while that order is open, so a second send could fill a market order twice. After an
        unknown outcome the order is looked up once by its client order id; if it is not
        there, the original fault is raised and reconciliation settles the order later."""
        cid = request.client_order_id
        create = functools.partial(self.venue.create_order, request)
        self._in_doubt[cid] = None  # in flight
        try:
            order = await self._call("create_order", create, signed=True, gated=False)
        except Rejected as fault:
            if not isinstance(fault, DuplicateOrder):
                self._in_doubt.pop(cid, None)  # refused outright: never placed
                raise
            # The id is taken, so the order exists; if the lookup cannot see it (yet), its
            # outcome is as unknown as after a timeout, never "not placed".
            doubt: Fault = OutcomeUnknown(
                f"{fault.message} (a duplicate: looked up by its client order id)",
                venue=fault.venue,
                call="create_order",
            )
            doubt.__cause__ = fault
        except (Transient, RateLimited, Unrecognized) as fault:
            doubt = fault
        except BaseException:
            self._in_doubt[cid] = self._clock.monotonic()  # a Fatal or a bug: who knows
            raise
        else:
            self._in_doubt.pop(cid, None)
            return order
        self._in_doubt[cid] = self._clock.monotonic()
        self.log.warning(
            "create %s %s: outcome unknown (%s); looking it up, never sending it again",
            cid,
            request.symbol,
            doubt.kind,
        )
        existing = await self._find_placed(request, doubt)
        if existing is not None:
            self._in_doubt.pop(cid, None)
            return existing
        raise doubt

    def last_sent(self, client_order_id: str) -> float:
        """The latest monotonic time a request for this client order id may have left: now
        while one is in flight, else when its outcome became unknown. For an id this connector
        did not send (a placeholder from before a restart), the first time it is asked about:
        later than the real send, so a window counted from it is never too short."""
        now = self._clock.monotonic()
        since = self._in_doubt.setdefault(client_order_id, now)
        return now if since is None else since

    def settled(self, client_order_id: str) -> None:
        """Reconciliation has settled this order's fate: forget its doubt."""
        self._in_doubt.pop(client_order_id, None)

    async def cancel(self, order_id: str, symbol: str) -> Cancelled:
        """Cancel an order. Falsy when it was already gone (filled, cancelled, unknown); its
        final state when the exchange's answer said it (no lookup needed then)."""
        cancel = functools.partial(self.venue.cancel_order, order_id, symbol)
        try:
            final = await self._call(
                "cancel_order", cancel, signed=True, gated=False, quiet=_not_found
            )
        except ClockRejected:
            raise
        except Rejected as fault:
            if isinstance(fault, OrderNotFound) or await self._is_gone(order_id, symbol):
                self.log.info("cancel %s %s: already gone", order_id, symbol)
                return Cancelled(gone=True)
            raise
        return Cancelled(gone=False, order=final if isinstance(final, Order) else None)

    async def guard_dead_man(self, *, working: bool, others: bool) -> bool:
        """The exchange-side cancel-all-after, armed only to guard the bot's own working orders:
        refreshed while it has some (`working`) and nothing else rests on the account that it
        would cancel too (`others`: the user's orders, protective stops), disarmed (0) as soon as
        that no longer holds. Whether it is armed now. A failure to arm is a warning and a
        fault in the metrics, never fatal: it is an extra; an exchange that refuses the call
        outright (not supported, needs arguments) is not asked again."""
        if not self.venue.has_cancel_all_after or self._cancel_all_after_seconds <= 0:
            return False
        if self._dead_man_broken:
            return False
        armed = self._dead_man_until is not None or self._dead_man_unknown
        if working and not others:
            await self._arm_dead_man(self._cancel_all_after_seconds)
        elif armed:
            await self._arm_dead_man(0.0)
        return self._dead_man_until is not None and self._clock.time() < self._dead_man_until

    async def _arm_dead_man(self, seconds: float) -> None:
        armed_at = self._clock.time()
        try:
            arm = functools.partial(self.venue.cancel_all_after, seconds)
            await self._call("cancel_all_after", arm, signed=True, gated=False, quiet=_always)
        except Fatal as fault:
            self._dead_man_broken = True
            self.log.warning("dead man's switch unavailable here (%s); not asked again", fault)
        except Recoverable as fault:
            what = "armed" if seconds else "disarmed"
            self.log.warning("dead man's switch not %s: %s", what, fault)
        else:
            self._dead_man_until = armed_at + seconds if seconds > 0 else None
            self._dead_man_unknown = False

    async def close(self) -> None:
        await self.venue.close()

    # ---------------------------------------------------------------- health

    def budget(self) -> int:
        """Requests the scanner may spend this cycle, scaled by health."""
        state = self._breaker.state
        if state is Circuit.OPEN:
            return 0
        if state is Circuit.HALF_OPEN:
            return 1
        return max(1, round(self._max_budget * self._health.score.value))

    def unrecognized(self) -> tuple[str, float, str] | None:
        """(call, epoch since, latest message) of the call that has answered only
        Unrecognized for the longest, or None. Past `unrecognized_limit` it raises Fatal."""
        return self._escalation.oldest_unrecognized()

    @property
    def health(self) -> HealthSnapshot:
        now, mono = self._clock.time(), self._clock.monotonic()
        open_until = self._breaker.open_until
        armed = (
            self._dead_man_until if self._dead_man_until and now < self._dead_man_until else None
        )
        ledger = self._health
        return HealthSnapshot(
            score=ledger.score.value,
            circuit=self._breaker.state.value,
            open_until=None if open_until is None else now + (open_until - mono),
            consecutive_faults=self._breaker.consecutive_faults,
            requests=ledger.requests,
            faults_by_kind=dict(ledger.faults),
            last_fault=ledger.last_fault,
            sync_failing_since=self._escalation.sync_failing_since,
            clock_offset_ms=self.clock_offset_ms,
            has_dead_man=bool(self.venue.has_cancel_all_after),
            dead_man_armed_until=armed,
            account=self.label,
            exchange=self.venue.name,
            budget=self.budget(),
            unrecognized=self.unrecognized(),
        )

    def market_time(self) -> float:
        """The market's clock: the exchange's time (the paper exchange's paper time), which
        the re-entry cooldown and the loop guard run on."""
        venue_time = getattr(self.venue, "market_time", None)
        return venue_time() if venue_time is not None else self._clock.time()

    @property
    def clock_offset_ms(self) -> float:
        return float(self.venue.clock_offset_ms)

    # -------------------------------------------------------------- plumbing

    async def _read(
        self,
        call: str,
        fn: Callable[[], Awaitable[T]],
        *,
        signed: bool = False,
        quiet: Quiet | None = None,
        gated: bool = True,
    ) -> T:
        attempt = functools.partial(self._call, call, fn, signed=signed, gated=gated, quiet=quiet)
        return await self._retry(attempt, call)

    async def _retry(self, attempt: Callable[[], Awaitable[T]], call: str) -> T:
        def on_retry(fault: BaseException, n: int, delay: float) -> None:
            kind = getattr(fault, "kind", type(fault).__name__)
            self.log.info(
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

    async def _call(
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
                raise CircuitOpen(self._open_message(), venue=self.label, call=call)
        try:
            result = await self._request(call, fn, signed=signed, quiet=quiet)
        except (Transient, RateLimited, Rejected):
            raise  # the breaker has its verdict
        except BaseException:
            if probe:
                self._breaker.release_probe()
            raise
        return result

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
            self.log.info("%s: clock rejected, resynced, retrying once", call)
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
            await self._counted("sync_time", self.venue.sync_time, None)
        except Recoverable as resync_fault:
            raise fault from resync_fault
        self._last_time_sync = self._clock.monotonic()

    async def _refresh_time_if_due(self) -> None:
        last = self._last_time_sync
        if last is not None and self._clock.monotonic() - last < self._time_resync_seconds:
            return
        try:
            await self._read("sync_time", self.venue.sync_time)
        except (Transient, RateLimited, Unrecognized) as fault:
            # Signed calls still resync on a clock rejection; try again next sync.
            self.log.warning("clock offset not refreshed: %s", fault.kind)
            return
        self._last_time_sync = self._clock.monotonic()
        self.log.debug("clock offset %.0f ms", self.clock_offset_ms)

    def _critical_failed(self, what: str, fault: Fault, started: tuple[float, float]) -> None:
        # A fast-failing circuit says nothing new: name the fault that opened it.
        opened_by = self._health.last_transport_fault if isinstance(fault, CircuitOpen) else ""
        self._escalation.critical_failed(what, fault, started, cause=opened_by or str(fault))

    async def _find_placed(self, request: OrderRequest, original: Fault) -> Order | None:
        """The order the exchange holds for this client id; on any doubt, the original fault."""
        find = functools.partial(self.venue.find_order, request.client_order_id, request.symbol)
        try:
            attempt = functools.partial(self._call, "find_order", find, signed=True, gated=False)
            found = await self._retry(attempt, "find_order")
        except Recoverable as check_fault:
            self.log.warning("check of %s failed (%s)", request.client_order_id, check_fault.kind)
            raise original from check_fault
        if found is not None:
            self.log.info("order %s was accepted after all", request.client_order_id)
        return found

    async def _is_gone(self, order_id: str, symbol: str) -> bool:
        fetch = functools.partial(self.venue.fetch_order, order_id, symbol)
        try:
            order = await self._read("fetch_order", fetch, signed=True, quiet=_any_rejection)
        except Rejected:
            return True  # the exchange does not know it
        except Recoverable:
            return False  # cannot tell: the original rejection stands
        return not order.is_open

    def _open_message(self) -> str:
        if self._breaker.state is Circuit.HALF_OPEN:
            return "circuit half-open, a probe is in flight"
        until = self._breaker.open_until
        left = 0.0 if until is None else max(0.0, until - self._clock.monotonic())
        return f"circuit open ({left:.0f} s left)"
