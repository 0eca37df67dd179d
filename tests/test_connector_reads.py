"""The connector's reads: retries with backoff, the circuit breaker, the request budget, health.

Against the ScriptedVenue of tests/connector_support.py on a FakeClock, so every wait is
simulated time that the tests can assert exactly.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.connector_support import (
    SYMBOL,
    ScriptedVenue,
    buy,
    clock_fixture,  # noqa: F401
    connect,
    notes_fixture,  # noqa: F401
    open_circuit,
    venue_fixture,  # noqa: F401
)
from trading.errors import Fatal, RateLimited, Rejected, Transient
from trading.models import OrderStatus
from trading.venue_calls import CircuitOpen

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

    assert cancelled and not cancelled.gone
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


async def test_a_fatal_fault_is_reported_once_and_left_to_the_trader_to_page(venue, clock, notes):
    conn = connect(venue, clock, notes)
    venue.inject("fetch_balance", Fatal("invalid api key"))

    with pytest.raises(Fatal):
        await conn.sync()

    # One fault, one page: the trader's Emergency, which says what it does about it.
    assert [(f.call, f.kind, f.emergency) for f in notes.faults] == [
        ("fetch_balance", "fatal", False)
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
