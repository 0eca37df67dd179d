"""The connector's resilience: retries, circuit breaker, sync escalation, safe placement.

Most tests run against a small scripted Venue (faults queued per call, orders held in memory)
whose every call can be counted and stalled; the last section repeats the money-critical ones
on the real PaperExchange. All on a FakeClock, so every wait is simulated time that the tests
can assert exactly.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence

import pytest

from trading.clock import FakeClock
from trading.connector import CircuitOpen, Connector
from trading.errors import ClockRejected, Fatal, RateLimited, Rejected, Transient
from trading.events import Event, FaultRaised
from trading.models import (
    Balance,
    Candle,
    Market,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Ticker,
)
from trading.paper import PaperExchange

SYMBOL = "BTC/USDT"


class ScriptedVenue:
    """A Venue whose next calls fail as scripted. `after=True`: the call takes effect, then
    fails (a create that times out after the exchange accepted it)."""

    has_bulk_tickers = True

    def __init__(self, clock: FakeClock, *, name: str = "fake", dead_man: bool = True) -> None:
        self.name = name
        self.account = "MAIN"
        self.has_cancel_all_after = dead_man
        self.clock = clock
        self.calls: Counter[str] = Counter()
        self.script: dict[str, list[tuple[BaseException, bool]]] = defaultdict(list)
        self.forever: dict[str, BaseException] = {}
        self.orders: dict[str, Order] = {}
        self.offset_ms = 0.0
        self.dead_man_seconds: float | None = None
        self.gate: asyncio.Event | None = None  # when set, fetch_tickers waits for it

    def inject(self, call: str, fault: BaseException, *, count: int = 1, after: bool = False):
        if count == -1:
            self.forever[call] = fault
        else:
            self.script[call].extend([(fault, after)] * count)

    def clear(self) -> None:
        self.script.clear()
        self.forever.clear()

    def _enter(self, call: str) -> BaseException | None:
        """Count the call; raise a fault scripted to come first, return one due after."""
        self.calls[call] += 1
        if call in self.forever:
            raise self.forever[call]
        if self.script[call]:
            fault, after = self.script[call].pop(0)
            if not after:
                raise fault
            return fault
        return None

    async def load_markets(self) -> dict[str, Market]:
        self._enter("load_markets")
        return {SYMBOL: Market(SYMBOL, "BTC", "USDT")}

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]:
        self._enter("fetch_tickers")
        if self.gate is not None:
            await self.gate.wait()
        return {SYMBOL: Ticker(SYMBOL, 100.0, 99.9, 100.1, 1e6, 1.0, self.clock.time())}

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[Candle]:
        self._enter("fetch_ohlcv")
        return [Candle(self.clock.time(), 1.0, 1.0, 1.0, 1.0, 1.0)] * limit

    async def fetch_balance(self) -> Balance:
        self._enter("fetch_balance")
        return Balance(free={"USDT": 1000.0}, total={"USDT": 1000.0})

    async def fetch_open_orders(self) -> list[Order]:
        self._enter("fetch_open_orders")
        return [o for o in self.orders.values() if o.is_open]

    async def fetch_order(self, order_id: str, symbol: str) -> Order:
        self._enter("fetch_order")
        if order_id not in self.orders:
            raise Rejected(f"order {order_id} not found")
        return self.orders[order_id]

    async def find_order(self, client_order_id: str, symbol: str) -> Order | None:
        self._enter("find_order")
        return next((o for o in self.orders.values() if o.client_order_id == client_order_id), None)

    async def create_order(self, request: OrderRequest) -> Order:
        late = self._enter("create_order")
        order = Order(
            id=f"o{len(self.orders) + 1}",
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            amount=request.amount,
            filled=0.0,
            status=OrderStatus.OPEN,
            timestamp=self.clock.time(),
            client_order_id=request.client_order_id,
            price=request.price,
        )
        self.orders[order.id] = order
        if late is not None:
            raise late
        return order

    async def cancel_order(self, order_id: str, symbol: str) -> None:
        late = self._enter("cancel_order")
        if order_id not in self.orders:
            raise Rejected(f"order {order_id} not found")
        order = self.orders[order_id]
        self.orders[order_id] = Order(**{**_fields(order), "status": OrderStatus.CANCELED})
        if late is not None:
            raise late

    async def cancel_all_after(self, timeout_seconds: float) -> None:
        self._enter("cancel_all_after")
        self.dead_man_seconds = timeout_seconds

    async def sync_time(self) -> float:
        self._enter("sync_time")
        self.offset_ms = 1234.0
        return self.offset_ms

    @property
    def clock_offset_ms(self) -> float:
        return self.offset_ms

    async def close(self) -> None:
        self._enter("close")


def _fields(order: Order) -> dict:
    return {name: getattr(order, name) for name in order.__slots__}


class Recorder:
    """A notify that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def faults(self) -> list[FaultRaised]:
        return [e for e in self.events if isinstance(e, FaultRaised)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def venue(clock: FakeClock) -> ScriptedVenue:
    return ScriptedVenue(clock)


@pytest.fixture
def notes() -> Recorder:
    return Recorder()


def connect(venue: ScriptedVenue, clock: FakeClock, notes: Recorder | None = None, **kw):
    return Connector(venue, clock=clock, notify=notes or Recorder(), **kw)


def buy(client_id: str = "cid-1") -> OrderRequest:
    return OrderRequest(SYMBOL, Side.BUY, OrderType.LIMIT, 0.01, client_id, price=100.0)


# ------------------------------------------------------------------ reads and retries


async def test_read_retries_transient_faults_with_backoff_then_returns(venue, clock):
    conn = connect(venue, clock)
    venue.inject("fetch_tickers", Transient("timeout"), count=2)

    tickers = await conn.tickers()

    assert SYMBOL in tickers
    assert venue.calls["fetch_tickers"] == 3
    assert clock.monotonic() == 1.5  # 0.5 + 1.0


async def test_read_gives_up_after_read_attempts_with_the_fault(venue, clock):
    conn = connect(venue, clock, read_attempts=4)
    venue.inject("fetch_ohlcv", Transient("502"), count=-1)

    with pytest.raises(Transient):
        await conn.candles(SYMBOL, "5m", 10)

    assert venue.calls["fetch_ohlcv"] == 4
    assert clock.monotonic() == 3.5  # 0.5 + 1 + 2


async def test_rate_limited_read_waits_exactly_retry_after(venue, clock):
    conn = connect(venue, clock)
    venue.inject("load_markets", RateLimited("429", retry_after=7.0))

    markets = await conn.load_markets()

    assert conn.markets == markets and SYMBOL in markets
    assert clock.monotonic() == 7.0
    assert venue.calls["load_markets"] == 2
    assert conn.health.circuit == "closed"


async def test_retry_after_opens_the_circuit_for_other_reads_meanwhile(venue, clock):
    conn = connect(venue, clock, read_attempts=1)
    venue.inject("fetch_tickers", RateLimited("429", retry_after=20.0))
    with pytest.raises(RateLimited):
        await conn.tickers()

    with pytest.raises(CircuitOpen):
        await conn.candles(SYMBOL, "1h", 5)

    assert venue.calls["fetch_ohlcv"] == 0
    assert conn.health.open_until == clock.time() + 20.0


@pytest.mark.parametrize("fault", [Rejected("bad symbol"), Fatal("invalid api key")])
async def test_rejected_and_fatal_reads_propagate_at_once(venue, clock, fault):
    conn = connect(venue, clock)
    venue.inject("fetch_ohlcv", fault)

    with pytest.raises(type(fault)):
        await conn.candles(SYMBOL, "5m", 10)

    assert venue.calls["fetch_ohlcv"] == 1
    assert clock.monotonic() == 0.0


async def test_a_bug_in_the_venue_propagates_unchanged_and_unreported(venue, clock, notes):
    conn = connect(venue, clock, notes)
    venue.inject("fetch_tickers", RuntimeError("bug"))

    with pytest.raises(RuntimeError, match="bug"):
        await conn.tickers()

    assert venue.calls["fetch_tickers"] == 1
    assert conn.health.faults_by_kind == {"unclassified": 1}
    assert notes.faults == []  # the engine's dead switch raises the emergency


# --------------------------------------------------------------------- circuit breaker


async def open_circuit(conn: Connector, venue: ScriptedVenue, faults: int) -> None:
    venue.inject("fetch_tickers", Transient("timeout"), count=faults)
    for _ in range(faults):
        with pytest.raises(Transient):
            await conn.tickers()


async def test_circuit_opens_after_threshold_and_reads_fail_fast(venue, clock):
    conn = connect(venue, clock, read_attempts=1, breaker_threshold=3, breaker_cooldown=30.0)
    await open_circuit(conn, venue, 3)

    with pytest.raises(CircuitOpen) as caught:
        await conn.tickers()

    assert isinstance(caught.value, Transient)
    assert venue.calls["fetch_tickers"] == 3  # the venue was not touched
    health = conn.health
    assert health.circuit == "open"
    assert health.open_until == clock.time() + 30.0
    assert health.consecutive_faults == 3
    assert conn.budget() == 0


async def test_after_cooldown_one_probe_closes_the_circuit(venue, clock):
    conn = connect(venue, clock, read_attempts=1, breaker_threshold=3, breaker_cooldown=30.0)
    await open_circuit(conn, venue, 3)

    clock.advance(30.0)
    assert conn.health.circuit == "half_open"
    assert conn.budget() == 1
    await conn.tickers()

    assert conn.health.circuit == "closed"
    assert conn.budget() > 1


async def test_a_failed_probe_reopens_the_circuit_for_twice_as_long(venue, clock):
    conn = connect(venue, clock, read_attempts=1, breaker_threshold=3, breaker_cooldown=30.0)
    await open_circuit(conn, venue, 3)
    clock.advance(30.0)

    venue.inject("fetch_tickers", Transient("still down"))
    with pytest.raises(Transient):
        await conn.tickers()

    assert conn.health.circuit == "open"
    assert conn.health.open_until == clock.time() + 60.0


async def test_while_the_probe_is_in_flight_other_reads_fail_fast(venue, clock):
    conn = connect(venue, clock, read_attempts=1, breaker_threshold=3, breaker_cooldown=30.0)
    await open_circuit(conn, venue, 3)
    clock.advance(30.0)
    venue.gate = asyncio.Event()

    probe = asyncio.create_task(conn.tickers())
    for _ in range(3):  # let the probe reach the venue
        await asyncio.sleep(0)
    with pytest.raises(CircuitOpen):
        await conn.tickers()
    venue.gate.set()

    assert SYMBOL in await probe
    assert venue.calls["fetch_tickers"] == 4
    assert conn.health.circuit == "closed"


async def test_a_cancelled_probe_lets_the_next_read_probe(venue, clock):
    conn = connect(venue, clock, read_attempts=1, breaker_threshold=3, breaker_cooldown=30.0)
    await open_circuit(conn, venue, 3)
    clock.advance(30.0)
    venue.gate = asyncio.Event()
    probe = asyncio.create_task(conn.tickers())
    for _ in range(3):
        await asyncio.sleep(0)

    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    venue.gate = None

    assert SYMBOL in await conn.tickers()
    assert conn.health.circuit == "closed"


async def test_orders_and_cancels_bypass_an_open_circuit(venue, clock):
    conn = connect(venue, clock, read_attempts=1, breaker_threshold=3)
    await open_circuit(conn, venue, 3)

    order = await conn.place(buy())
    cancelled = await conn.cancel(order.id, SYMBOL)

    assert cancelled is True
    assert venue.orders[order.id].status is OrderStatus.CANCELED
    assert conn.health.circuit == "open"  # an order going through does not end the cooldown


async def test_the_sync_asks_the_exchange_while_scan_faults_hold_the_circuit_open(venue, clock):
    conn = connect(venue, clock, read_attempts=1, breaker_threshold=3, breaker_max_cooldown=300.0)
    await open_circuit(conn, venue, 3)

    state = await conn.sync()

    assert venue.calls["fetch_balance"] == 1 and state.balance is not None
    assert conn.health.sync_failing_since is None


async def test_an_open_circuit_alone_never_escalates_the_sync(venue, clock):
    # Scan faults keep the circuit open for ever longer cooldowns, past the sync's limit; the
    # exchange answers the sync every time, so nothing escalates to Fatal.
    conn = connect(
        venue,
        clock,
        read_attempts=1,
        breaker_threshold=3,
        breaker_cooldown=30.0,
        breaker_max_cooldown=300.0,
        sync_failure_limit=300.0,
    )
    for _ in range(12):
        await open_circuit(conn, venue, 3)
        await conn.sync()
        clock.advance(60)
    assert conn.health.sync_failing_since is None


async def test_a_second_connector_is_unaffected(clock):
    sick_venue, well_venue = ScriptedVenue(clock, name="sick"), ScriptedVenue(clock, name="well")
    sick = connect(sick_venue, clock, read_attempts=1, breaker_threshold=3)
    well = connect(well_venue, clock, read_attempts=1, breaker_threshold=3)

    await open_circuit(sick, sick_venue, 3)

    assert sick.budget() == 0
    assert well.health.circuit == "closed"
    assert well.budget() == 20
    assert SYMBOL in await well.tickers()


# ---------------------------------------------------------------------------- budget


async def test_budget_shrinks_as_health_drops_and_is_zero_when_open(venue, clock):
    conn = connect(venue, clock, read_attempts=1, breaker_threshold=5, max_budget=20)
    budgets = [conn.budget()]
    venue.inject("fetch_tickers", Transient("timeout"), count=5)
    for _ in range(5):
        with pytest.raises(Transient):
            await conn.tickers()
        budgets.append(conn.budget())

    assert budgets[0] == 20
    assert budgets[1:4] == sorted(budgets[1:4], reverse=True)
    assert 0 < budgets[4] < budgets[1] < 20
    assert budgets[5] == 0  # the fifth fault opened the circuit


async def test_budget_recovers_with_successes(venue, clock):
    conn = connect(venue, clock, read_attempts=1, breaker_threshold=10)
    venue.inject("fetch_tickers", Transient("timeout"), count=4)
    for _ in range(4):
        with pytest.raises(Transient):
            await conn.tickers()
    low = conn.budget()

    for _ in range(40):
        await conn.tickers()

    assert low < 15
    assert conn.budget() == 20


async def test_rejected_orders_do_not_hurt_health(venue, clock):
    conn = connect(venue, clock)
    venue.inject("create_order", Rejected("insufficient funds"), count=3)
    for n in range(3):
        with pytest.raises(Rejected):
            await conn.place(buy(f"cid-{n}"))

    assert conn.health.score == 1.0
    assert conn.health.faults_by_kind == {"rejected": 3}
    assert conn.budget() == 20


# -------------------------------------------------------------------- sync escalation


async def sync_at(conn: Connector, clock: FakeClock, at: float):
    clock.advance(at - clock.monotonic())
    return await conn.sync()


async def test_sync_escalates_to_fatal_after_the_limit_and_not_before(venue, clock, notes):
    conn = connect(venue, clock, notes, sync_failure_limit=300.0)
    venue.inject("fetch_balance", Transient("ExchangeNotAvailable 404"), count=-1)

    for at in (0.0, 100.0, 200.0, 290.0):
        with pytest.raises(Transient):
            await sync_at(conn, clock, at)
    assert conn.health.sync_failing_since == clock.time() - clock.monotonic()

    with pytest.raises(Fatal, match=r"sync failing for 30[0-9] s") as caught:
        await sync_at(conn, clock, 302.0)

    assert "404" in str(caught.value)
    kinds = [(f.call, f.kind) for f in notes.faults]
    assert kinds == [("fetch_balance", "transient"), ("sync", "fatal")]
    assert notes.faults[-1].emergency


async def test_escalated_sync_keeps_raising_fatal_but_reports_once(venue, clock, notes):
    conn = connect(venue, clock, notes, sync_failure_limit=60.0)
    venue.inject("fetch_balance", Transient("down"), count=-1)
    with pytest.raises(Transient):
        await sync_at(conn, clock, 0.0)

    for at in (100.0, 200.0, 300.0):
        with pytest.raises(Fatal):
            await sync_at(conn, clock, at)

    assert [f.kind for f in notes.faults].count("fatal") == 1


async def test_a_successful_sync_resets_the_failure_streak(venue, clock):
    conn = connect(venue, clock, sync_failure_limit=300.0)
    venue.inject("fetch_balance", Transient("down"), count=-1)
    for at in (0.0, 250.0):
        with pytest.raises(Transient):
            await sync_at(conn, clock, at)

    venue.clear()
    state = await sync_at(conn, clock, 290.0)
    assert state.balance.free_of("USDT") == 1000.0
    assert conn.health.sync_failing_since is None

    venue.inject("fetch_balance", Transient("down again"), count=-1)
    for at in (400.0, 600.0):  # 200 s into a new streak: still transient
        with pytest.raises(Transient):
            await sync_at(conn, clock, at)


async def test_a_clock_that_stays_rejected_escalates_the_sync_too(venue, clock):
    conn = connect(venue, clock, sync_failure_limit=60.0)
    venue.inject("fetch_balance", ClockRejected("-1021"), count=-1)
    with pytest.raises(ClockRejected):
        await sync_at(conn, clock, 0.0)

    with pytest.raises(Fatal, match="-1021"):
        await sync_at(conn, clock, 61.0)


async def test_sync_returns_balance_and_open_orders(venue, clock):
    conn = connect(venue, clock)
    order = await conn.place(buy())

    state = await conn.sync()

    assert state.open_orders == (order,)
    assert state.balance.total_of("USDT") == 1000.0
    assert state.timestamp == clock.time()


async def test_sync_refreshes_the_clock_offset_first_and_then_every_interval(venue, clock):
    conn = connect(venue, clock, time_resync_seconds=600.0)

    await sync_at(conn, clock, 0.0)
    assert venue.calls["sync_time"] == 1
    assert conn.clock_offset_ms == conn.health.clock_offset_ms == 1234.0
    await sync_at(conn, clock, 599.0)
    assert venue.calls["sync_time"] == 1
    await sync_at(conn, clock, 600.0)
    assert venue.calls["sync_time"] == 2


async def test_find_order_is_a_retried_read(venue, clock):
    conn = connect(venue, clock)
    placed = await conn.place(buy("cid-f"))
    venue.inject("find_order", Transient("timeout"))

    assert await conn.find_order("cid-f", SYMBOL) == placed
    assert await conn.find_order("cid-none", SYMBOL) is None
    assert venue.calls["find_order"] == 3


# ------------------------------------------------------------------------ clock resync


async def test_clock_rejected_signed_call_resyncs_and_retries_once(venue, clock):
    conn = connect(venue, clock)
    await conn.sync()
    venue.inject("fetch_balance", ClockRejected("-1021 timestamp outside recvWindow"))

    state = await conn.sync()

    assert state.balance.free_of("USDT") == 1000.0
    assert venue.calls["sync_time"] == 2
    assert venue.calls["fetch_balance"] == 3


async def test_a_second_clock_rejection_propagates(venue, clock):
    conn = connect(venue, clock)
    await conn.sync()
    venue.inject("fetch_order", ClockRejected("-1021"), count=2)

    with pytest.raises(ClockRejected):
        await conn.fetch_order("o1", SYMBOL)

    assert venue.calls["fetch_order"] == 2
    assert venue.calls["sync_time"] == 2


async def test_an_order_refused_for_its_timestamp_is_placed_after_a_resync(venue, clock):
    conn = connect(venue, clock)
    venue.inject("create_order", ClockRejected("-1021"))

    order = await conn.place(buy())

    assert [o.client_order_id for o in venue.orders.values()] == ["cid-1"]
    assert order.client_order_id == "cid-1"
    assert venue.calls["sync_time"] == 1
    assert venue.calls["find_order"] == 0


# ------------------------------------------------------------------ order placement


async def test_a_create_that_timed_out_after_acceptance_returns_the_existing_order(venue, clock):
    conn = connect(venue, clock)
    venue.inject("create_order", Transient("read timeout"), after=True)

    order = await conn.place(buy("cid-x"))

    assert len(venue.orders) == 1
    assert order == next(iter(venue.orders.values()))
    assert order.client_order_id == "cid-x"
    assert venue.calls["create_order"] == 1
    assert venue.calls["find_order"] == 1


async def test_a_create_that_truly_failed_is_placed_once_more(venue, clock):
    conn = connect(venue, clock)
    venue.inject("create_order", RateLimited("429"))

    order = await conn.place(buy())

    assert list(venue.orders.values()) == [order]
    assert venue.calls["create_order"] == 2
    assert venue.calls["find_order"] == 1


async def test_when_the_check_fails_the_original_fault_is_raised_and_nothing_placed(venue, clock):
    conn = connect(venue, clock)
    original = Transient("create timeout")
    venue.inject("create_order", original)
    venue.inject("find_order", Transient("still down"), count=-1)

    with pytest.raises(Transient) as caught:
        await conn.place(buy())

    assert caught.value is original
    assert venue.orders == {}
    assert venue.calls["create_order"] == 1
    assert venue.calls["find_order"] == 3  # the check is retried as a read


async def test_a_second_unknown_outcome_is_looked_up_never_placed_a_third_time(venue, clock):
    conn = connect(venue, clock)
    venue.inject("create_order", Transient("timeout"))
    venue.inject("create_order", Transient("timeout again"), after=True)

    order = await conn.place(buy())

    assert list(venue.orders.values()) == [order]
    assert venue.calls["create_order"] == 2
    assert venue.calls["find_order"] == 2


@pytest.mark.parametrize("fault", [Rejected("insufficient funds"), Fatal("permission denied")])
async def test_rejected_and_fatal_placements_propagate_without_a_check(venue, clock, fault):
    conn = connect(venue, clock)
    venue.inject("create_order", fault)

    with pytest.raises(type(fault)):
        await conn.place(buy())

    assert venue.calls["find_order"] == 0
    assert venue.calls["create_order"] == 1


# --------------------------------------------------------------------------- cancel


async def test_cancel_of_an_order_already_gone_returns_false_quietly(venue, clock, notes):
    conn = connect(venue, clock, notes)

    assert await conn.cancel("nope", SYMBOL) is False
    assert notes.faults == []


async def test_cancel_refused_for_another_reason_while_open_raises(venue, clock):
    conn = connect(venue, clock)
    order = await conn.place(buy())
    venue.inject("cancel_order", Rejected("market closed"))

    with pytest.raises(Rejected, match="market closed"):
        await conn.cancel(order.id, SYMBOL)


async def test_cancel_refused_because_the_order_filled_returns_false(venue, clock):
    conn = connect(venue, clock)
    order = await conn.place(buy())
    venue.orders[order.id] = Order(**{**_fields(order), "status": OrderStatus.CLOSED})
    venue.inject("cancel_order", Rejected("-2011 cancel rejected"))

    assert await conn.cancel(order.id, SYMBOL) is False


# -------------------------------------------------------------------- notifications


async def test_faults_of_a_retried_call_are_reported_once_per_streak(venue, clock, notes):
    conn = connect(venue, clock, notes, breaker_threshold=50)
    venue.inject("fetch_tickers", Transient("timeout"), count=-1)
    for _ in range(2):
        with pytest.raises(Transient):
            await conn.tickers()
    assert len(notes.faults) == 1
    assert venue.calls["fetch_tickers"] == 6

    venue.clear()
    await conn.tickers()
    venue.inject("fetch_tickers", Transient("timeout"))
    await conn.tickers()

    assert len(notes.faults) == 2
    first = notes.faults[0]
    assert (first.account, first.kind, first.call) == ("fake:main", "transient", "fetch_tickers")
    assert first.at == clock.time() - clock.monotonic()  # reported when first seen
    assert not first.emergency


async def test_a_fatal_fault_is_reported_as_an_emergency(venue, clock, notes):
    conn = connect(venue, clock, notes)
    venue.inject("fetch_balance", Fatal("invalid api key"))

    with pytest.raises(Fatal):
        await conn.sync()

    assert [(f.call, f.kind, f.emergency) for f in notes.faults] == [
        ("fetch_balance", "fatal", True)
    ]


async def test_health_snapshot_counts_requests_and_faults(venue, clock):
    conn = connect(venue, clock, read_attempts=2)
    venue.inject("fetch_tickers", Transient("timeout"))
    venue.inject("fetch_ohlcv", Rejected("bad symbol"))
    await conn.tickers()
    with pytest.raises(Rejected):
        await conn.candles("NOPE/USDT", "5m", 3)

    health = conn.health

    assert health.requests == 3
    assert health.faults_by_kind == {"transient": 1, "rejected": 1}
    assert health.last_fault == "fetch_ohlcv: rejected: bad symbol"
    assert health.account == "fake:main"


async def test_log_lines_name_the_account(venue, clock, caplog):
    conn = connect(venue, clock)
    venue.inject("fetch_tickers", Transient("timeout"))

    with caplog.at_level(logging.INFO):
        await conn.tickers()

    assert caplog.records
    assert {r.name for r in caplog.records} == {"trading.fake.main"}


# ------------------------------------------------------------------ dead man's switch


async def test_refresh_dead_man_arms_cancel_all_after(venue, clock):
    conn = connect(venue, clock, cancel_all_after_seconds=60.0)

    assert await conn.refresh_dead_man() is True

    assert venue.dead_man_seconds == 60.0
    assert conn.health.has_dead_man
    assert conn.health.dead_man_armed_until == clock.time() + 60.0
    clock.advance(61.0)
    assert conn.health.dead_man_armed_until is None


async def test_refresh_dead_man_without_exchange_support_does_nothing(clock):
    venue = ScriptedVenue(clock, dead_man=False)
    conn = connect(venue, clock)

    assert await conn.refresh_dead_man() is False
    assert venue.calls["cancel_all_after"] == 0
    assert conn.health.has_dead_man is False


async def test_a_failed_dead_man_refresh_is_reported_not_raised(venue, clock, notes):
    conn = connect(venue, clock, notes)
    venue.inject("cancel_all_after", Transient("timeout"))

    assert await conn.refresh_dead_man() is False

    assert [f.call for f in notes.faults] == ["cancel_all_after"]
    assert await conn.refresh_dead_man() is True


async def test_a_fatal_dead_man_refresh_is_raised(venue, clock):
    conn = connect(venue, clock)
    venue.inject("cancel_all_after", Fatal("not supported"))

    with pytest.raises(Fatal):
        await conn.refresh_dead_man()


async def test_close_closes_the_venue(venue, clock):
    conn = connect(venue, clock)

    await conn.close()

    assert venue.calls["close"] == 1


# ---------------------------------------------------------- on the paper exchange


@pytest.fixture
def paper(clock: FakeClock) -> PaperExchange:
    return PaperExchange(clock=clock, markets=5, rate_limit=0)


def paper_buy(paper: PaperExchange, client_id: str) -> OrderRequest:
    """A resting limit buy 10 % under the market, worth about 50 USDT."""
    price = round(paper.price(SYMBOL) * 0.9)
    return OrderRequest(SYMBOL, Side.BUY, OrderType.LIMIT, 0.002, client_id, price=price)


async def test_paper_create_accepted_then_timed_out_leaves_exactly_one_order(paper, clock):
    conn = Connector(paper, clock=clock)
    await conn.load_markets()
    paper.inject("create_order", Transient("read timeout"), after=True)

    order = await conn.place(paper_buy(paper, "bot-1"))

    assert [o.client_order_id for o in paper.order_log] == ["bot-1"]
    assert order.id == paper.order_log[0].id
    assert paper.calls["create_order"] == 1
    assert (await conn.sync()).open_orders == (order,)


async def test_paper_create_that_failed_is_placed_once_more(paper, clock):
    conn = Connector(paper, clock=clock)
    await conn.load_markets()
    paper.inject("create_order", Transient)

    order = await conn.place(paper_buy(paper, "bot-2"))

    assert [o.id for o in paper.order_log] == [order.id]
    assert paper.calls["create_order"] == 2


async def test_paper_skewed_clock_is_resynced_and_the_call_retried_once(paper, clock):
    conn = Connector(paper, clock=clock)
    await conn.sync()
    paper.set_clock_skew(15.0)

    state = await conn.sync()

    assert state.balance.free_of("USDT") == 10_000.0
    assert paper.calls["sync_time"] == 2
    assert conn.clock_offset_ms == 15_000.0


async def test_paper_rate_limit_is_waited_out_exactly(clock):
    paper = PaperExchange(clock=clock, markets=5, rate_limit=2.0, burst=2)
    conn = Connector(paper, clock=clock)
    await conn.tickers()
    await conn.tickers()

    await conn.tickers()  # the bucket is empty: the exchange says come back in 0.5 s

    assert clock.monotonic() == pytest.approx(0.5)
    assert paper.calls["fetch_tickers"] == 4
    assert conn.health.faults_by_kind == {"rate_limited": 1}


async def test_paper_retired_balance_endpoint_escalates_after_the_limit(paper, clock, notes):
    conn = Connector(paper, clock=clock, notify=notes, sync_failure_limit=300.0)
    paper.inject("fetch_balance", Transient("ExchangeNotAvailable: 404"), count=-1)
    with pytest.raises(Transient):
        await sync_at(conn, clock, 0.0)
    with pytest.raises(Transient):
        await sync_at(conn, clock, 290.0)  # fails at 291.5 s, after its backoff

    with pytest.raises(Fatal, match="404"):
        await sync_at(conn, clock, 301.0)

    assert [f.kind for f in notes.faults] == ["transient", "fatal"]


async def test_paper_cancel_of_an_already_cancelled_order_returns_false(paper, clock):
    conn = Connector(paper, clock=clock)
    await conn.load_markets()
    order = await conn.place(paper_buy(paper, "bot-3"))

    assert await conn.cancel(order.id, SYMBOL) is True
    assert await conn.cancel(order.id, SYMBOL) is False
