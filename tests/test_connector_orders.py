"""The connector's orders: placement sent once and never again, cancels, the dead man's switch.

Against the ScriptedVenue of tests/connector_support.py on a FakeClock, so every wait is
simulated time that the tests can assert exactly.
"""

from __future__ import annotations

import asyncio

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
from trading.errors import (
    DuplicateOrder,
    Fatal,
    RateLimited,
    Rejected,
    Transient,
    Unrecognized,
)
from trading.models import Order, OrderStatus
from trading.sending import OutcomeUnknown

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


@pytest.mark.parametrize("fault", [Transient("read timeout"), Unrecognized("odd answer")])
async def test_a_create_without_an_answer_is_never_sent_again(venue, clock, fault):
    """The exchange may still execute the first request after the lookup missed it: a second
    send could fill a market order twice. The original fault is raised instead."""
    conn = connect(venue, clock)
    venue.inject("create_order", fault)
    clock.advance(5.0)

    with pytest.raises(type(fault)) as caught:
        await conn.place(buy("cid-u"))

    assert caught.value is fault
    assert venue.orders == {}
    assert venue.calls["create_order"] == 1
    assert venue.calls["find_order"] == 1
    clock.advance(40.0)
    assert conn.last_sent("cid-u") == 5.0  # the window is counted from the lost answer


async def test_a_create_answered_too_many_requests_was_not_placed_and_is_not_looked_up(
    venue, clock
):
    """Exchanges turn a request away with 429/418 (Binance) or "Rate limit exceeded" (Kraken)
    before processing it: nothing to look up, nothing left in doubt."""
    conn = connect(venue, clock)
    venue.inject("create_order", RateLimited("429 Too Many Requests", retry_after=1.0))

    with pytest.raises(RateLimited):
        await conn.place(buy("cid-r"))

    assert venue.orders == {}
    assert venue.calls["find_order"] == 0


async def test_an_order_executed_after_the_lookup_missed_it_exists_exactly_once(venue, clock):
    """Binance -1007: no answer, the lookup right after does not see the order, and the
    exchange executes it a moment later. Only reconciliation may find it; nothing re-sends."""
    conn = connect(venue, clock)
    venue.inject("create_order", Transient("-1007 execution status unknown"))
    request = buy("cid-late")

    with pytest.raises(Transient):
        await conn.place(request)
    await venue.create_order(request)  # the exchange's backend gets to it after all

    assert [o.client_order_id for o in venue.orders.values()] == ["cid-late"]
    assert (await conn.find_order("cid-late", SYMBOL)).client_order_id == "cid-late"
    assert venue.calls["create_order"] == 2  # ours once, the exchange's late execution once


@pytest.mark.parametrize("fault", [Rejected("insufficient funds"), Fatal("permission denied")])
async def test_rejected_and_fatal_placements_propagate_without_a_check(venue, clock, fault):
    conn = connect(venue, clock)
    venue.inject("create_order", fault)

    with pytest.raises(type(fault)):
        await conn.place(buy())

    assert venue.calls["find_order"] == 0
    assert venue.calls["create_order"] == 1


async def test_a_duplicate_client_order_id_refusal_returns_the_order_that_exists(venue, clock):
    # How each exchange words a duplicate is read where its errors are translated
    # (tests/test_exchange_meaning.py): the connector sees only DuplicateOrder.
    conn = connect(venue, clock)
    request = buy("cid-d")
    existing = await venue.create_order(request)  # the first request got there
    venue.inject("create_order", DuplicateOrder("duplicate client order id cid-d"))

    order = await conn.place(request)

    assert order == existing
    assert venue.calls["find_order"] == 1


async def test_a_duplicate_refusal_the_lookup_cannot_see_is_an_unknown_outcome(venue, clock):
    """Never "rejected": the router would forget an order that exists."""
    conn = connect(venue, clock)
    venue.inject("create_order", DuplicateOrder("duplicate client order id cid-d"))

    with pytest.raises(OutcomeUnknown) as caught:
        await conn.place(buy("cid-d"))

    assert isinstance(caught.value, Transient) and not isinstance(caught.value, Rejected)
    assert isinstance(caught.value.__cause__, DuplicateOrder)
    assert venue.calls["create_order"] == 1


async def test_last_sent_is_now_while_the_create_is_in_flight(venue, clock):
    conn = connect(venue, clock)
    venue.create_gate = asyncio.Event()
    placing = asyncio.ensure_future(conn.place(buy("cid-f")))
    for _ in range(10):
        await asyncio.sleep(0)
    assert venue.calls["create_order"] == 1

    clock.advance(100.0)
    assert conn.last_sent("cid-f") == clock.monotonic()  # it may land at any moment

    venue.create_gate.set()
    await placing
    clock.advance(1.0)
    # Answered: forgotten. An id it never sent (from before a restart) counts from the first ask.
    assert conn.last_sent("cid-f") == clock.monotonic()
    clock.advance(50.0)
    assert conn.last_sent("cid-f") == clock.monotonic() - 50.0
    conn.settled("cid-f")
    assert conn.last_sent("cid-f") == clock.monotonic()


# --------------------------------------------------------------------------- cancel


async def test_cancel_of_an_order_already_gone_returns_false_quietly(venue, clock, notes):
    conn = connect(venue, clock, notes)

    assert (await conn.cancel("nope", SYMBOL)).gone
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

    assert (await conn.cancel(order.id, SYMBOL)).gone


# ------------------------------------------------------------------ dead man's switch


async def test_dead_man_is_armed_only_while_the_bot_has_working_orders_then_disarmed(venue, clock):
    conn = connect(venue, clock, cancel_all_after_seconds=60.0)

    assert await conn.guard_dead_man(working=True, others=False) is True
    assert venue.dead_man_seconds == 60.0
    assert conn.health.has_dead_man
    assert conn.health.dead_man_armed_until == clock.time() + 60.0

    assert await conn.guard_dead_man(working=False, others=False) is False
    assert venue.dead_man_seconds == 0.0  # disarmed: it would fire on a healthy bot
    assert conn.health.dead_man_armed_until is None
    calls = venue.calls["cancel_all_after"]
    assert await conn.guard_dead_man(working=False, others=False) is False
    assert venue.calls["cancel_all_after"] == calls  # nothing to disarm twice


async def test_dead_man_is_never_armed_over_orders_that_are_not_the_bots(venue, clock):
    conn = connect(venue, clock, cancel_all_after_seconds=60.0)

    assert await conn.guard_dead_man(working=True, others=True) is False
    assert venue.dead_man_seconds == 0.0  # never armed: it would cancel the user's orders too
    assert await conn.guard_dead_man(working=True, others=True) is False
    assert venue.calls["cancel_all_after"] == 1  # disarmed once, in case a restart left it armed

    assert await conn.guard_dead_man(working=True, others=False) is True
    assert await conn.guard_dead_man(working=True, others=True) is False
    assert venue.dead_man_seconds == 0.0  # a user order appeared: disarmed at once


async def test_dead_man_without_exchange_support_does_nothing(clock):
    venue = ScriptedVenue(clock, dead_man=False)
    conn = connect(venue, clock)

    assert await conn.guard_dead_man(working=True, others=False) is False
    assert venue.calls["cancel_all_after"] == 0
    assert conn.health.has_dead_man is False


async def test_a_failed_dead_man_refresh_is_counted_not_raised_nor_paged(venue, clock, notes):
    conn = connect(venue, clock, notes)
    venue.inject("cancel_all_after", Transient("timeout"))

    assert await conn.guard_dead_man(working=True, others=False) is False

    assert notes.faults == []  # a warning in the log and a fault in the metrics only
    assert conn.health.faults_by_kind == {"transient": 1}
    assert await conn.guard_dead_man(working=True, others=False) is True


async def test_an_exchange_that_refuses_the_dead_man_outright_is_not_asked_again(venue, clock):
    """WhiteBIT's cancelAllOrdersAfter needs a symbol (ccxt: ArgumentsRequired, a Fatal): that
    must never flatten the account, only switch the extra off."""
    conn = connect(venue, clock)
    venue.inject("cancel_all_after", Fatal("ArgumentsRequired: symbol"))

    assert await conn.guard_dead_man(working=True, others=False) is False
    assert await conn.guard_dead_man(working=True, others=False) is False
    assert venue.calls["cancel_all_after"] == 1


async def test_close_closes_the_venue(venue, clock):
    conn = connect(venue, clock)

    await conn.close()

    assert venue.calls["close"] == 1
