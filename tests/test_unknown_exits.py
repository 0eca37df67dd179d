"""A sell of unknown outcome (issue 18, chaos seeds 97, 106, 127, 168): the exit's stop was
lifted so the sell could use the coins, then no answer came (a timeout, an odd or a Fatal
answer). The bot used to keep the stop off until the reconciliation settled the sell, a minute
or more: a host dying meanwhile left the position bare. Now the stop goes back at once; the
exchange lets only one of the two hold the coins, so whichever it took is the one exit: a stop
refused for want of coins means the sell holds or took them, and waits without a page for the
reconciliation."""

from __future__ import annotations

import asyncio

import pytest

from sim.clock import FakeClock
from tests.engine_support import ScriptedStrategy, make_rig
from trading.errors import Fatal, InsufficientFunds, Transient, Unrecognized
from trading.events import Emergency, OrderRejected, TradeClosed
from trading.models import OrderRequest, OrderType, Side
from trading.modes import Mode, Purpose
from trading.store import Store

ETH = "ETH/USDT"


async def _entered(clock: FakeClock, *symbols: str, store: Store | None = None):
    rig = make_rig(clock, strategy=ScriptedStrategy(list(symbols)), rate_limit=0, store=store)
    await rig.trader.start()
    await rig.trader.run_cycle()
    rig.strategy.entries = []
    assert [s.symbol for s in rig.stops()] == list(symbols)
    return rig


def _next_sell_lost(rig, *, executed: bool) -> None:
    """The next order's answer never comes: the exchange executed it and the answer was lost
    (`executed`), or it never got there; the lookup by its client id cannot say either."""
    rig.paper.inject("create_order", Transient("read timeout"), after=executed)
    rig.paper.inject("find_order", Unrecognized("odd answer"))


def _sells(rig, symbol: str = ETH) -> list:
    """The exits the exchange executed (market sells), not counting the stops."""
    return [o for o in rig.sent() if o.symbol == symbol and o.side is Side.SELL and o.filled > 0]


def _unsure(rig) -> list:
    return [t for t in rig.trader.book.orders.values() if not t.confirmed]


async def _until_settled(rig, cycles: int = 5) -> None:
    """Cycles until the reconciliation has settled every order of unknown outcome."""
    for _ in range(cycles):
        if not _unsure(rig):
            return
        await rig.cycles(1)
    assert not _unsure(rig)


async def _settle_flattening(rig, rounds: int = 500) -> None:
    for _ in range(rounds):
        task = rig.trader.failsafe.flattening
        if task is None or task.done():
            return
        await asyncio.sleep(0)


async def test_an_exit_that_never_arrived_puts_the_stop_back_at_once_and_sells_once_after():
    rig = await _entered(FakeClock(), ETH)
    rig.strategy.exits[ETH] = "scripted exit"
    _next_sell_lost(rig, executed=False)

    await rig.trader.run_cycle()

    [stop] = rig.stops()  # back at once, over the whole position
    assert stop.symbol == ETH and stop.amount == rig.held(ETH)
    assert [t.purpose for t in _unsure(rig)] == [Purpose.EXIT]  # the sell is still in doubt
    assert _sells(rig) == []
    await _until_settled(rig)  # never placed: the next cycle lifts the stop and sells
    await rig.cycles(1)
    assert len(_sells(rig)) == 1 and rig.held(ETH) == 0
    assert rig.stops() == [] and rig.trader.book.orders == {}
    assert [t.reason for t in rig.of(TradeClosed)] == ["scripted exit"]


async def test_an_exit_that_went_through_unheard_gets_its_stop_refused_for_coins_without_a_page():
    rig = await _entered(FakeClock(), ETH)
    rig.strategy.exits[ETH] = "scripted exit"
    _next_sell_lost(rig, executed=True)
    before = rig.paper.calls["create_order"]

    await rig.trader.run_cycle()

    assert rig.held(ETH) == 0 and len(_sells(rig)) == 1  # sold, once
    assert rig.paper.calls["create_order"] == before + 2  # the sell, and its stop right after
    assert rig.stops() == []  # the exchange refused the stop: no coins left for it
    assert rig.of(OrderRejected) == [] and rig.of(Emergency) == []
    assert rig.trader.guards.view(rig.trader.book.positions[ETH]).why == ""  # not "refused"
    asked = rig.paper.calls["create_order"]
    await _until_settled(rig)
    assert rig.paper.calls["create_order"] == asked  # no stop retried while the sell held them
    assert rig.trader.book.positions == {} and rig.trader.book.orders == {}
    assert [t.reason for t in rig.of(TradeClosed)] == ["scripted exit"]
    assert rig.trader.account.foreign_orders == 0 and len(_sells(rig)) == 1


async def test_a_late_sell_after_the_stop_is_back_is_refused_for_coins_and_the_stop_guards():
    """The exchange processes the lost sell only after the stop is back: the stop holds the
    coins, so the sell is refused; it is settled as never placed, and the position stays
    guarded until the bot's next exit, one sale in all."""
    rig = await _entered(FakeClock(), ETH)
    rig.strategy.exits[ETH] = "scripted exit"
    _next_sell_lost(rig, executed=False)
    await rig.trader.run_cycle()
    [doubt] = _unsure(rig)
    late = OrderRequest(ETH, Side.SELL, OrderType.MARKET, doubt.order.amount, doubt.client_id)

    try:
        await rig.paper.create_order(late)
        raise AssertionError("the late sell found coins the stop holds")
    except InsufficientFunds:
        pass

    [stop] = rig.stops()
    del rig.strategy.exits[ETH]  # the signal is gone: the position keeps its stop
    await _until_settled(rig)
    assert rig.held(ETH) > 0 and [s.id for s in rig.stops()] == [stop.id]
    rig.strategy.exits[ETH] = "scripted exit"
    await rig.cycles(1)
    assert len(_sells(rig)) == 1 and rig.held(ETH) == 0 and rig.stops() == []


async def test_a_kill_whose_sell_is_lost_keeps_the_stop_on_and_a_second_kill_sells_nothing_twice():
    rig = await _entered(FakeClock(), ETH)
    rig.trader.failsafe.kill_patience = 0.0  # one round, then the background retry
    _next_sell_lost(rig, executed=False)

    first = await rig.trader.kill()

    assert not first.flat and rig.trader.mode is Mode.KILLED
    [stop] = rig.stops()
    second = await rig.trader.kill()  # the sell in doubt holds the next one back
    assert not second.flat and [s.id for s in rig.stops()] == [stop.id]
    assert _sells(rig) == []
    for _ in range(6):  # the flattening's rounds, and the reconciliation between them
        await _settle_flattening(rig)
        if not rig.trader.book.positions:
            break
        rig.clock.advance(30.0)
        await rig.trader.run_cycle()
    assert rig.trader.book.positions == {} and rig.held(ETH) == 0
    assert len(_sells(rig)) == 1 and rig.stops() == []


async def test_a_kill_whose_sell_went_through_unheard_ends_flat_with_one_sale_and_no_stop():
    rig = await _entered(FakeClock(), ETH, "SOL/USDT")
    rig.trader.failsafe.kill_patience = 0.0
    _next_sell_lost(rig, executed=True)

    await rig.trader.kill()
    for _ in range(6):
        await _settle_flattening(rig)
        if not rig.trader.book.positions and not _unsure(rig):
            break
        rig.clock.advance(30.0)
        await rig.trader.run_cycle()

    assert rig.trader.book.positions == {} and rig.trader.book.orders == {}
    assert rig.held(ETH) == 0 and rig.held("SOL/USDT") == 0 and rig.stops() == []
    assert len(_sells(rig, ETH)) == 1 and len(_sells(rig, "SOL/USDT")) == 1
    assert sorted(t.symbol for t in rig.of(TradeClosed)) == [ETH, "SOL/USDT"]
    assert rig.of(OrderRejected) == []


async def test_a_fatal_answer_to_an_exit_puts_the_stop_back_before_the_failsafe():
    rig = await _entered(FakeClock(), ETH)
    rig.strategy.exits[ETH] = "scripted exit"
    rig.paper.inject("create_order", Fatal("API key revoked"))

    await rig.trader.run_cycle()

    assert rig.trader.mode is not Mode.RUNNING
    assert _sells(rig) == [] and [s.symbol for s in rig.stops()] == [ETH]


async def test_a_part_sold_unheard_leaves_the_rest_guarded_once_the_sale_is_settled():
    """/sell half: it went through, unheard. The stop for the whole position is refused for
    coins; once the reconciliation has read the sale, the half left gets its stop."""
    rig = await _entered(FakeClock(), ETH)
    held = rig.held(ETH)
    _next_sell_lost(rig, executed=True)

    await rig.trader.sell(ETH, fraction=0.5)

    assert rig.stops() == [] and rig.of(OrderRejected) == []
    await _until_settled(rig)
    await rig.cycles(1)
    [stop] = rig.stops()
    assert stop.amount == rig.held(ETH) and 0 < rig.held(ETH) < held
    assert rig.trader.book.positions[ETH].amount == pytest.approx(rig.held(ETH))


async def test_a_restart_with_the_sell_and_its_stop_both_in_doubt_places_no_second_stop(tmp_path):
    """The host dies right after the stop was sent back, its answer unheard too: both are in
    the store as sent (each recorded before its request). The restarted bot finds the stop by
    its client id, settles the sell as never placed, and sells once, lifting the stop first."""
    first = await _entered(FakeClock(), ETH, store=Store.in_dir(tmp_path))
    first.strategy.exits[ETH] = "scripted exit"
    _next_sell_lost(first, executed=False)
    _next_sell_lost(first, executed=True)  # the stop put back: placed, unheard
    await first.trader.run_cycle()
    [stop] = first.stops()
    assert sorted(t.purpose for t in _unsure(first)) == [Purpose.EXIT, Purpose.GUARD]
    first.store.close()  # the host dies

    second = make_rig(
        first.clock,
        paper=first.paper,
        store=Store.in_dir(tmp_path),
        strategy=first.strategy,
        rate_limit=0,
    )
    await second.trader.start()
    assert [s.id for s in second.stops()] == [stop.id]  # adopted, not placed again
    for _ in range(6):
        if not second.trader.book.positions:
            break
        await second.cycles(1)

    assert second.trader.book.positions == {} and second.trader.book.orders == {}
    assert len(_sells(second)) == 1 and second.held(ETH) == 0 and second.stops() == []
    stops_sent = [o for o in second.paper.order_log if o.type.is_stop and o.symbol == ETH]
    assert stops_sent[-1].id == stop.id  # no second stop beside the one in doubt
