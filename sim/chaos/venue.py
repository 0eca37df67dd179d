"""The chaos soak's venue: the paper exchange behind the faults sim/chaos/faults.py plans, as
the connector sees it. Every order the bot sends is shown to the Monitor at the moment it is
sent, every request is counted for the protection referee (sim/chaos/protection.py), and a call
from a dead process dies with it.

    PaperExchange <- ChaosVenue    faults at the connector interface, every order audited

It stands apart from the planner because it is the Venue interface (what the bot talks to);
the planner only decides, cycle by cycle, what this venue throws.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sim.chaos.books import exchange_order
from sim.chaos.faults import RETRYABLE, FaultMaker, make_fault
from sim.chaos.logwatch import Crash
from sim.chaos.referee import Monitor
from trading.book import client_id_purpose
from trading.clock import Clock
from trading.errors import ClockRejected, Fatal, Fault, Rejected
from trading.models import Deliver, OrderRequest, OrderType, Side
from trading.modes import Purpose
from trading.venues.paper import PaperExchange

if TYPE_CHECKING:
    from sim.chaos.feeds import ChaosFeed, ChaosFeeds

# A request that reaches the exchange later than this after it left is refused there (the paper
# exchange's receive window): what a dead process had in flight lands within it, or never.
RECV_WINDOW_SECONDS = 10.0
# Why a venue refuses a resting stop (the bot's own stop check must then guard the position),
# and how often, by seed.
STOP_REFUSALS = ("Filter failure: NOTIONAL", "Order type not supported for this symbol")
STOP_REFUSAL_RATES = (0.0, 0.0, 0.1, 0.5)


class Alive(Protocol):
    """The bot process a call comes from (sim/chaos/process.py's Life)."""

    alive: bool


@dataclass
class _Injection:
    call: str  # a venue call, or "*"
    make: FaultMaker | None  # None: latency only
    remaining: int  # -1: for ever
    latency: float
    after: bool  # the call takes effect, then the answer is lost
    until: int  # the cycle after which it expires (a fault on a call never made must not linger)
    noise: bool = False  # a random retryable answer: part of a well exchange's day


class ChaosVenue:
    """The Venue the connector sees: the paper exchange behind scripted faults, with every
    order the bot sends shown to the Monitor at the moment it is sent."""

    has_cancel_all_after = True

    def __init__(
        self, paper: PaperExchange, monitor: Monitor, clock: Clock, rng: random.Random
    ) -> None:
        self.paper = paper
        self.monitor = monitor
        self.clock = clock
        self.rng = rng
        # Every call takes a little time, as on a real exchange, so that commands and the
        # scheduler's sync job really do overlap with cycles.
        self.latency = rng.choice((0.0, 0.05, 0.2, 0.5))
        self.name = paper.name
        self.account = paper.account
        self.cycle = 0
        self._injections: list[_Injection] = []
        self.injected: Counter[str] = Counter()  # faults we raised, by class
        self.natural: Counter[str] = Counter()  # faults the paper exchange raised itself
        self.faults = 0  # raised so far, but for a retired endpoint's: "is the exchange well?"
        self.created = 0
        self.markets: list[str] = []
        self.denied: set[str] = set()  # orders a lookup was refused for (injected: a lie)
        self.life: Alive | None = None  # the bot process calling now (None: always alive)
        self.retryable_rate = 0.0  # chance of a random retryable answer, per call
        self.retryable: Counter[str] = Counter()  # those answered, by kind
        self._noise = random.Random(f"{rng.random()}|retryable")
        self.stop_refusal_rate = rng.choice(STOP_REFUSAL_RATES)
        self.stops_refused = 0
        self.feeds: ChaosFeeds | None = None  # the exchange's event stream, on half the seeds

    def open_feed(self, deliver: Deliver) -> ChaosFeed | None:
        """The exchange's event stream as the calling process hears it (sim/chaos/feeds.py)."""
        return self.feeds.open(deliver, self.life) if self.feeds is not None else None

    @property
    def has_bulk_tickers(self) -> bool:
        return self.paper.has_bulk_tickers

    @property
    def stop_types(self) -> tuple[OrderType, ...]:
        return self.paper.stop_types

    @property
    def rate_limit(self) -> float:
        return self.paper.rate_limit

    @property
    def clock_offset_ms(self) -> float:
        return self.paper.clock_offset_ms

    def inject(
        self,
        call: str,
        make: FaultMaker | None,
        *,
        count: int = 1,
        latency: float = 0.0,
        after: bool = False,
        lasts: int = 3,
    ) -> None:
        until = 10**9 if count < 0 else self.cycle + lasts
        self._injections.append(_Injection(call, make, count, latency, after, until))

    def expire(self) -> None:
        self._injections = [i for i in self._injections if i.until >= self.cycle]

    def unsettled(self) -> bool:
        """Whether a fault is still pending (a retired endpoint's is the new normal)."""
        return any(i.remaining >= 0 for i in self._injections)

    def _due(self, call: str) -> _Injection | None:
        for injection in self._injections:
            if injection.call in (call, "*"):
                if injection.remaining > 0:
                    injection.remaining -= 1
                    if injection.remaining == 0:
                        self._injections.remove(injection)
                return injection
        return None

    def alive(self) -> bool:
        return self.life is None or self.life.alive

    async def _run(self, call: str, fn: Callable[[], Awaitable]):
        life = self.life
        if life is not None and not life.alive:
            raise Crash(f"{call} from a dead process")
        sent = self.clock.monotonic()
        injection = self._due(call) or self._random_retryable(call)
        delay = self.latency * self.rng.uniform(0.5, 1.5) if self.latency else 0.0
        if injection is not None:
            delay += injection.latency
        if delay > 0:
            await self.clock.sleep(delay)
        dead = life is not None and not life.alive
        if dead and (self.clock.monotonic() - sent > RECV_WINDOW_SECONDS or injection):
            raise Crash(f"{call} died with its process")
        if injection is not None and injection.make is not None and not injection.after:
            raise self._injected(call, injection)
        try:
            result = await fn()
        except Fault as fault:
            if dead:
                raise Crash(f"{call} answered a dead process") from fault
            self.natural[type(fault).__name__] += 1
            self.faults += 1
            self._seen(call, fault)
            raise
        if dead:
            raise Crash(f"{call} answered a dead process")
        if injection is not None and injection.make is not None:
            raise self._injected(call, injection)
        return result

    def _random_retryable(self, call: str) -> _Injection | None:
        """Now and then a retryable answer, as any exchange gives on any call: a timeout, a
        5xx, Binance's -1008 "server busy" (all Transient), a 429. An order or a cancel may
        have taken effect before its answer was lost, but never one answered 429: exchanges
        turn a request away for its rate before they process it."""
        if self._noise.random() >= self.retryable_rate:
            return None
        kind, make = self._noise.choice(RETRYABLE)
        self.retryable[kind] += 1
        lost = call in ("create_order", "cancel_order") and self._noise.random() < 0.5
        return _Injection(call, make, 1, 0.0, lost and kind != "429", self.cycle, noise=True)

    def _injected(self, call: str, injection: _Injection) -> BaseException:
        assert injection.make is not None
        exc = injection.make(call)
        self.injected[type(exc).__name__] += 1
        self.faults += injection.remaining >= 0 and not injection.noise
        self._seen(call, exc)
        return exc

    def _seen(self, call: str, exc: BaseException) -> None:
        if isinstance(exc, Fatal):
            self.monitor.alarm_expected(f"Fatal on {call}", call)
        elif not isinstance(exc, Fault):
            self.monitor.bug_raised(f"{type(exc).__name__} from the venue's {call}")

    # -- the Venue interface

    async def load_markets(self):
        markets = await self._run("load_markets", self.paper.load_markets)
        self.markets = sorted(s for s, m in markets.items() if m.active)
        return markets

    async def fetch_tickers(self, symbols: Sequence[str] | None = None):
        tickers = await self._run("fetch_tickers", lambda: self.paper.fetch_tickers(symbols))
        self.monitor.quoted(tickers.values())
        return tickers

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int):
        return await self._run(
            "fetch_ohlcv", lambda: self.paper.fetch_ohlcv(symbol, timeframe, limit)
        )

    async def fetch_balance(self):
        return await self._run("fetch_balance", self.paper.fetch_balance)

    async def fetch_open_orders(self):
        return await self._run("fetch_open_orders", self.paper.fetch_open_orders)

    async def fetch_order(self, order_id: str, symbol: str):
        try:
            return await self._run("fetch_order", lambda: self.paper.fetch_order(order_id, symbol))
        except ClockRejected:
            raise
        except Rejected:  # the reconciler believes "unknown" (or a refusal that repeats)
            self.denied.add(order_id)
            raise

    async def find_order(self, client_order_id: str, symbol: str):
        return await self._run("find_order", lambda: self.paper.find_order(client_order_id, symbol))

    async def create_order(self, request: OrderRequest):
        if not self.alive():  # a dead process sends nothing
            return await self._run("create_order", lambda: self.paper.create_order(request))
        self.created += 1
        self.monitor.order_sent(request)
        protection = self.monitor.protection
        # An entry leaves its position bare until its stop rests, where stops can rest.
        bares = request.side is Side.BUY and bool(self.stop_types)
        number = protection.request(request.symbol, bares=bares)
        guard = client_id_purpose(request.client_order_id) == Purpose.GUARD
        with self._answer(number):
            try:
                if guard and self._noise.random() < self.stop_refusal_rate:
                    self.stops_refused += 1
                    raise make_fault(Rejected, self._noise.choice(STOP_REFUSALS))("create_order")
                order = await self._run("create_order", lambda: self.paper.create_order(request))
            except Rejected as fault:
                # The venue refused the stop itself (a type or a minimum it does not take, an
                # injected refusal of any sell): the bot tries again later. Coins its own other
                # orders hold, or a clock it let drift, are the bot's doing, not the venue's.
                if guard and type(fault) is Rejected and "insufficient" not in fault.message:
                    protection.refused.add(request.symbol)
                raise
            if guard:
                protection.refused.discard(request.symbol)
            return order

    async def cancel_order(self, order_id: str, symbol: str):
        def cancel():
            return self.paper.cancel_order(order_id, symbol)

        if not self.alive():
            return await self._run("cancel_order", cancel)
        self.monitor.cancel_sent(order_id)
        order = exchange_order(self.paper, order_id)
        lifts = order is not None and (
            order.type is OrderType.OCO or client_id_purpose(order.client_order_id) == Purpose.GUARD
        )
        number = self.monitor.protection.request(symbol, bares=lifts)
        with self._answer(number):
            return await self._run("cancel_order", cancel)

    @contextmanager
    def _answer(self, number: int) -> Iterator[None]:
        """The bot hears request `number` answered (an error too), unless its process is dead
        or gave up on it (a shutdown cancelled it on its way): then no answer came."""
        try:
            yield
        except asyncio.CancelledError:
            raise
        except BaseException:
            if self.alive():
                self.monitor.protection.answered(number)
            raise
        if self.alive():
            self.monitor.protection.answered(number)

    async def cancel_all_after(self, timeout_seconds: float):
        if self.alive():
            if timeout_seconds > 0:
                self.monitor.dead_man_armed()
            else:
                self.monitor.dead_man_disarming()
        return await self._run(
            "cancel_all_after", lambda: self.paper.cancel_all_after(timeout_seconds)
        )

    async def sync_time(self):
        return await self._run("sync_time", self.paper.sync_time)

    async def close(self):
        await self.paper.close()
