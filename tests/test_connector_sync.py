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
    sync_at,
    venue_fixture,  # noqa: F401
)
from trading.errors import ClockRejected, Fatal, Transient

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
