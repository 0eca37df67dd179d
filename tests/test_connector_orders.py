"""The connector's orders: placement never retried blindly, cancels, the dead man's switch.

Against the ScriptedVenue of tests/connector_support.py on a FakeClock, so every wait is
simulated time that the tests can assert exactly.
"""

from __future__ import annotations

import pytest

from tests.connector_support import (
    SYMBOL,
    ScriptedVenue,
    _fields,
    buy,
    clock_fixture,  # noqa: F401
    connect,
    notes_fixture,  # noqa: F401
    venue_fixture,  # noqa: F401
)
from trading.errors import Fatal, RateLimited, Rejected, Transient
from trading.models import Order, OrderStatus

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
