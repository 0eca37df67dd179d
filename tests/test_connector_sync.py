"""The connector's sync: what it returns, its escalation to Fatal, and the clock resync.

Against the ScriptedVenue of tests/connector_support.py on a FakeClock, so every wait is
simulated time that the tests can assert exactly.
"""

from __future__ import annotations

import pytest

from tests.connector_support import (
    SYMBOL,
    buy,
    clock_fixture,  # noqa: F401
    connect,
    notes_fixture,  # noqa: F401
    open_circuit,
    sync_at,
    venue_fixture,  # noqa: F401
)
from trading.errors import ClockRejected, Fatal, Rejected, Transient

# -------------------------------------------------------------------- sync escalation


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
    assert not notes.faults[-1].emergency  # the trader pages, once


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


async def test_sync_reads_open_orders_before_the_balance(venue, clock):
    """A fill between the two reads then shows in the newer balance: a position it opened is
    never compared with a balance from before it."""
    conn = connect(venue, clock)

    await conn.sync()

    reads = [c for c in venue.sequence if c in ("fetch_open_orders", "fetch_balance")]
    assert reads == ["fetch_open_orders", "fetch_balance"]


async def test_a_sync_refused_as_a_bad_request_escalates_like_a_timeout(venue, clock, notes):
    """An exchange API change can make the balance call a BadRequest (Rejected) for good: it
    must not be skipped quietly for ever while no stop-loss is checked."""
    conn = connect(venue, clock, notes, sync_failure_limit=300.0)
    venue.inject("fetch_balance", Rejected("BadRequest: unknown parameter"), count=-1)
    for at in (0.0, 150.0, 299.0):
        with pytest.raises(Rejected):
            await sync_at(conn, clock, at)

    with pytest.raises(Fatal, match=r"sync failing for 301 s: .*BadRequest"):
        await sync_at(conn, clock, 301.0)
    assert venue.calls["fetch_balance"] == 4  # a refusal is not retried like a timeout


async def test_a_start_up_market_load_that_keeps_failing_escalates_to_fatal(venue, clock, notes):
    conn = connect(venue, clock, notes, sync_failure_limit=300.0)
    venue.inject("load_markets", Transient("HTTP 404: exchange not available"), count=-1)
    for at in (0.0, 200.0, 290.0):
        clock.advance(at - clock.monotonic())
        with pytest.raises(Transient):
            await conn.load_markets(critical=True)
    assert conn.health.sync_failing_since == clock.time() - clock.monotonic()

    clock.advance(302.0 - clock.monotonic())
    with pytest.raises(Fatal, match=r"markets failing for 30[0-9] s: .*404"):
        await conn.load_markets(critical=True)
    assert notes.faults[-1].kind == "fatal" and not notes.faults[-1].emergency


async def test_market_loads_and_syncs_share_one_streak_that_only_a_sync_ends(venue, clock):
    conn = connect(venue, clock, sync_failure_limit=300.0)
    venue.inject("load_markets", Transient("down"), count=3)  # every retry of the read
    with pytest.raises(Transient):
        await conn.load_markets(critical=True)  # 0 s: the streak begins
    clock.advance(200.0)
    await conn.load_markets(critical=True)  # markets load, the account is still unseen
    assert conn.health.sync_failing_since is not None
    venue.inject("fetch_balance", Transient("down"), count=-1)

    with pytest.raises(Fatal, match=r"sync failing for 30[0-9] s"):
        await sync_at(conn, clock, 301.0)

    venue.clear()
    await sync_at(conn, clock, 400.0)
    assert conn.health.sync_failing_since is None


async def test_a_scan_market_load_never_counts_toward_the_escalation(venue, clock):
    conn = connect(venue, clock, sync_failure_limit=60.0)
    venue.inject("load_markets", Transient("down"), count=-1)
    for at in (0.0, 100.0, 200.0):
        clock.advance(at - clock.monotonic())
        with pytest.raises(Transient):
            await conn.load_markets()

    assert conn.health.sync_failing_since is None


async def test_a_start_up_market_load_goes_past_an_open_circuit(venue, clock):
    conn = connect(venue, clock, breaker_threshold=2)
    await open_circuit(conn, venue, 2)
    assert conn.health.circuit == "open"

    markets = await conn.load_markets(critical=True)

    assert SYMBOL in markets and venue.calls["load_markets"] == 1


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
