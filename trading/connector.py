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
- `place()` sends an order once and never again: after an unknown outcome it looks the order
  up by client order id once and otherwise raises, leaving the decision to reconciliation
  (`last_sent`); orders and cancels bypass an open circuit so exits still go out;
- a ClockRejected on a signed call resyncs the exchange clock and retries once (the exchange
  refused that request outright, so an order is safe to send again);
- `Closed` (we closed the venue's client: a shutdown) is a cancellation, not a fault: never
  retried, never counted against health.

The parts: every request goes through trading/venue_calls.py (circuit gate, accounting, clock
resync, read retries); orders and cancels are trading/sending.py's, the exchange-side dead
man's switch trading/dead_man.py's. This module says which calls are reads and which are
critical, and reports the connector's health.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from trading.breaker import ApiHealth, Circuit
from trading.clock import Clock
from trading.cycle_pace import CyclePlan, Pace, plan
from trading.dead_man import DeadManSwitch
from trading.errors import Fault, Recoverable
from trading.escalation import Escalation
from trading.events import Notify, discard
from trading.models import (
    AccountState,
    Candle,
    Deliver,
    Feed,
    Market,
    Order,
    OrderRequest,
    Ticker,
    Venue,
    account_label,
)
from trading.sending import Cancelled, OrderSender
from trading.shared_tickers import SharedTickers
from trading.venue_calls import CircuitOpen, VenueCalls


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
        shared_tickers: SharedTickers | None = None,
    ) -> None:
        self.venue = venue
        self.shared_tickers = shared_tickers  # the exchange's whole-universe read, if shared
        self.label = account_label(venue.name, venue.account)
        self.markets: dict[str, Market] = {}
        self._clock = clock
        self._max_budget = max_budget
        self._cycle_budget = max_budget  # until fit_cycles sizes it to the venue's pace
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
        self._calls = VenueCalls(
            venue,
            clock=clock,
            health=self._health,
            escalation=self._escalation,
            label=self.label,
            log=self.log,
            read_attempts=read_attempts,
            time_resync_seconds=time_resync_seconds,
        )
        self._placement = OrderSender(venue, self._calls, clock=clock, log=self.log)
        self._dead_man = DeadManSwitch(
            venue, self._calls, clock=clock, log=self.log, seconds=cancel_all_after_seconds
        )

    # ----------------------------------------------------------------- reads

    async def load_markets(self, *, critical: bool = False) -> dict[str, Market]:
        """The exchange's markets. `critical=True` (a trader's start, which cannot sync without
        them): past an open circuit, and a failure counts toward the escalation to Fatal."""
        if not critical:
            self.markets = await self._calls.read("load_markets", self.venue.load_markets)
            return self.markets
        started = (self._clock.monotonic(), self._clock.time())
        try:
            markets = await self._calls.read(
                "load_markets", self.venue.load_markets, signed=False, gated=False
            )
        except Recoverable as fault:
            self._critical_failed("markets", fault, started)
            raise
        self.markets = markets
        return markets

    async def tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]:
        """The named markets' tickers, or every market's (shared with the exchange's other
        accounts where `shared_tickers` is set: trading/shared_tickers.py)."""
        fetch = functools.partial(self.venue.fetch_tickers, symbols)
        if symbols is None and self.shared_tickers is not None:
            return await self.shared_tickers.read(
                functools.partial(self._calls.read, "fetch_tickers", fetch)
            )
        return await self._calls.read("fetch_tickers", fetch)

    async def candles(self, symbol: str, timeframe: str, limit: int) -> list[Candle]:
        fetch = functools.partial(self.venue.fetch_ohlcv, symbol, timeframe, limit)
        return await self._calls.read("fetch_ohlcv", fetch)

    async def fetch_order(self, order_id: str, symbol: str, *, gated: bool = True) -> Order:
        """One order as the exchange has it (`gated=False`: past an open circuit, for the
        sync settling the book, as the sync itself goes)."""
        fetch = functools.partial(self.venue.fetch_order, order_id, symbol)
        return await self._calls.read("fetch_order", fetch, signed=True, gated=gated)

    def orders_per_read(self) -> int:
        """How many orders `fetch_orders` reads by id in one request (1: it is not offered)."""
        per_read = getattr(self.venue, "orders_per_read", 1)
        return per_read if isinstance(per_read, int) and per_read > 1 else 1

    async def fetch_orders(self, order_ids: Sequence[str], *, gated: bool = True) -> list[Order]:
        """Up to `orders_per_read()` orders by id in one read (for the sync settling the book,
        `gated=False` as there)."""
        fetch = functools.partial(self.venue.fetch_orders, order_ids)
        return await self._calls.read("fetch_orders", fetch, signed=True, gated=gated)

    async def find_order(
        self, client_order_id: str, symbol: str, *, gated: bool = True
    ) -> Order | None:
        """The order placed with this client order id, if the exchange has it (a read;
        `gated=False`: past an open circuit, for settling the fate of an exit)."""
        find = functools.partial(self.venue.find_order, client_order_id, symbol)
        return await self._calls.read("find_order", find, signed=True, gated=gated)

    async def sync(self) -> AccountState:
        """Open orders, then the balance: the source of truth. Any Recoverable failure (a
        clock still rejected after a resync, a BadRequest after an API change, a timeout, an
        unrecognized answer) counts toward the escalation to Fatal."""
        return await self._read_account(listing=True)

    async def sync_balance(self) -> AccountState:
        """The sync without the open-order list (`open_orders` empty), for a caller that reads
        its own orders by id instead (trading/account.py `confirm`); escalates as the sync."""
        return await self._read_account(listing=False)

    async def _read_account(self, *, listing: bool) -> AccountState:
        started = (self._clock.monotonic(), self._clock.time())
        try:
            await self._calls.refresh_time_if_due()
            # The sync asks the exchange itself even while scan traffic holds the circuit open:
            # its escalation to Fatal must rest on its own answers, and a breaker cooldown (up to
            # breaker_max_cooldown) must never run out the clock of SYNC_FAILURE_LIMIT_SECONDS.
            # Orders first: a fill between the two reads then shows in the (newer) balance, so
            # a position it opened is never compared with a balance from before it.
            orders = []
            if listing:
                orders = await self._calls.read(
                    "fetch_open_orders", self.venue.fetch_open_orders, signed=True, gated=False
                )
            balance = await self._calls.read(
                "fetch_balance", self.venue.fetch_balance, signed=True, gated=False
            )
        except Recoverable as fault:
            self._critical_failed("sync", fault, started)
            raise
        if self._escalation.sync_succeeded():
            self.log.info("sync works again")
        return AccountState(
            balance=balance, open_orders=tuple(orders), timestamp=started[1], listed=listing
        )

    # ---------------------------------------------------------------- writes

    async def place(self, request: OrderRequest) -> Order:
        """Send an order once and never again (trading/sending.py)."""
        return await self._placement.place(request)

    def last_sent(self, client_order_id: str) -> float:
        """The latest monotonic time a request for this client order id may have left."""
        return self._placement.last_sent(client_order_id)

    def settled(self, client_order_id: str) -> None:
        """Reconciliation has settled this order's fate: forget its doubt."""
        self._placement.settled(client_order_id)

    async def cancel(self, order_id: str, symbol: str) -> Cancelled:
        """Cancel an order; falsy when it was already gone (trading/sending.py)."""
        return await self._placement.cancel(order_id, symbol)

    async def guard_dead_man(self, *, working: bool, others: bool) -> bool:
        """The exchange-side cancel-all-after over the bot's own working orders
        (trading/dead_man.py). Whether it is armed now."""
        return await self._dead_man.guard(working=working, others=others)

    async def close(self) -> None:
        await self.venue.close()

    # ---------------------------------------------------------------- the event feed

    def open_feed(self, deliver: Deliver) -> Feed | None:
        """The venue's event stream (not started), or None where it has none (a wrapper of a
        venue may not). Its REST requests of its own are this account's (`feed_request`)."""
        open_feed = getattr(self.venue, "open_feed", None)
        feed = open_feed(deliver) if open_feed is not None else None
        route = getattr(feed, "route_requests", None)
        if route is not None:
            route(self.feed_request)
        return feed

    async def feed_request(self, call: str, request: Callable[[], Awaitable[Any]]) -> Any:
        """A REST request the event feed makes of its own (a session's balance snapshot):
        counted and scored like the account's others, never past an open circuit (the feed
        then waits to reconnect), and quiet: the feed says its troubles itself, and a feed
        problem alone is never the owner's."""
        return await self._calls.call(call, request, signed=True, gated=True, quiet=_always)

    # ---------------------------------------------------------------- health

    def budget(self) -> int:
        """Requests the scanner may spend this cycle, scaled by health."""
        state = self._breaker.state
        if state is Circuit.OPEN:
            return 0
        if state is Circuit.HALF_OPEN:
            return 1
        return max(1, round(self._cycle_budget * self._health.score.value))

    def unrecognized(self) -> tuple[str, float, str] | None:
        """(call, epoch since, latest message) of the call that has answered only
        Unrecognized for the longest, or None. Past `unrecognized_limit` it raises Fatal."""
        return self._escalation.oldest_unrecognized()

    @property
    def health(self) -> HealthSnapshot:
        now, mono = self._clock.time(), self._clock.monotonic()
        open_until = self._breaker.open_until
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
            dead_man_armed_until=self._dead_man.armed_until(now),
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

    def pace(self) -> Pace | None:
        """Seconds a read and a private read hold the venue's pace: ccxt's rate and costs, or
        the paper exchange's token bucket."""
        pace = getattr(self.venue, "pace", None)
        if isinstance(pace, Pace):
            return pace
        rate = self.order_rate()
        return Pace(1.0 / rate, 1.0 / rate) if rate else None

    def fit_cycles(self, interval: float, per_candidate: int) -> CyclePlan:
        """Size the scan budget to the venue's pace and the scan interval
        (trading/cycle_pace.py)."""
        pace, most = self.pace(), self._max_budget
        sized = plan(pace, interval, max_budget=most, per_candidate=per_candidate)
        self._cycle_budget = sized.budget
        return sized

    def order_rate(self) -> float | None:
        """Requests per second the venue allows, when it says (the paper exchange's bucket);
        ccxt paces live requests itself."""
        rate = getattr(self.venue, "rate_limit", None)
        return float(rate) if isinstance(rate, int | float) and rate > 0 else None

    def order_limit(self) -> tuple[float, Clock] | None:
        """(requests per second, the clock they count in) of the venue's own limit, when it
        says (the paper exchange's bucket, on paper time in the demo); None where ccxt paces
        live requests itself."""
        rate, clock = self.order_rate(), getattr(self.venue, "clock", None)
        return None if rate is None or clock is None else (rate, clock)

    def _critical_failed(self, what: str, fault: Fault, started: tuple[float, float]) -> None:
        # A fast-failing circuit says nothing new: name the fault that opened it.
        opened_by = self._health.last_transport_fault if isinstance(fault, CircuitOpen) else ""
        self._escalation.critical_failed(what, fault, started, cause=opened_by or str(fault))
