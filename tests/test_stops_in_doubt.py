"""A stop of unknown outcome (issue 18, chaos seeds 84, 97, 168): the stop's answer never came,
so the bot did not know whether it rested. It waited for the reconciliation to settle it (half
a minute and two looks at least; a sync interval or more on the event feed; the whole of a
kill's rounds), and the position was bare all that while: a host dying then left it bare for
as long as the host stayed dead. Now the next look at the position's stop sends a fresh one:
the exchange lets only one sell hold the coins, so if the stop in doubt did rest, the fresh
one is refused for want of coins and waits, without a page, for the reconciliation."""

from __future__ import annotations

import asyncio

from sim.clock import FakeClock, run_simulated
from tests.engine_support import ScriptedStrategy, make_rig
from trading.errors import OrderNotFound, Transient, Unrecognized
from trading.events import Emergency, OrderRejected, TradeClosed
from trading.models import Side
from trading.modes import Mode, Purpose

ETH = "ETH/USDT"


async def _entered(clock: FakeClock):
    rig = make_rig(clock, strategy=ScriptedStrategy([ETH]), rate_limit=0)
    await rig.trader.start()
    await rig.trader.run_cycle()
    rig.strategy.entries = []
    assert [s.symbol for s in rig.stops()] == [ETH]
    return rig


def _next_order_lost(rig, *, executed: bool) -> None:
    """The next order's answer never comes (it was `executed`, or never got there), and the
    lookup by its client id cannot say which."""
    rig.paper.inject("create_order", Transient("read timeout"), after=executed)
    rig.paper.inject("find_order", Unrecognized("odd answer"))


def _unsure(rig) -> list:
    return [t for t in rig.trader.book.orders.values() if not t.confirmed]


async def _stop_lost(rig, *, executed: bool) -> None:
    """The resting stop went missing (cancelled by hand); the bot's new one goes unanswered."""
    [stop] = rig.stops()
    await rig.paper.cancel_order(stop.id, ETH)
    _next_order_lost(rig, executed=executed)
    await rig.cycles(1, step=5.0)
    assert [t.purpose for t in _unsure(rig)] == [Purpose.GUARD]


async def test_a_stop_that_never_arrived_is_sent_again_at_the_next_cycle():
    """Seed 84: the stop was lost on its way; the feed's sync was minutes away."""
    rig = await _entered(FakeClock())
    await _stop_lost(rig, executed=False)
    assert rig.stops() == []

    await rig.trader.run_cycle()  # five seconds on: far too early to settle the lost one

    [stop] = rig.stops()
    assert stop.amount == rig.held(ETH)
    assert rig.of(OrderRejected) == [] and rig.of(Emergency) == []


async def test_a_stop_that_rested_unheard_gets_no_twin_and_no_page():
    rig = await _entered(FakeClock())
    await _stop_lost(rig, executed=True)
    [stop] = rig.stops()

    for _ in range(4):  # the fresh one refused for coins; none tried again until settled
        await rig.cycles(1, step=30.0)

    assert [s.id for s in rig.stops()] == [stop.id] and stop.amount == rig.held(ETH)
    assert _unsure(rig) == [] and rig.trader.guards.on_exchange(ETH)
    assert rig.of(OrderRejected) == [] and rig.of(Emergency) == []
    stops_sent = [o for o in rig.paper.order_log if o.type.is_stop and o.symbol == ETH]
    assert stops_sent[-1].id == stop.id  # no second stop at the exchange, ever


async def test_a_kill_whose_sell_and_stop_are_both_lost_puts_a_stop_back_in_the_same_round():
    """Seeds 97 and 168: a kill's sell in doubt, and the stop put back beside it in doubt too.
    The round's last look at what is left held sends the stop again, so a host dying before
    the reconciliation has settled them finds the position guarded."""
    rig = await _entered(FakeClock())
    rig.trader.failsafe.kill_patience = 0.0  # one round, then the background retry
    _next_order_lost(rig, executed=False)  # the kill's sell
    _next_order_lost(rig, executed=False)  # its stop, put back at once

    await rig.trader.kill()

    assert rig.trader.mode is Mode.KILLED
    [stop] = rig.stops()
    assert stop.amount == rig.held(ETH)
    for _ in range(8):  # the reconciliation settles both; the flattening sells once
        task = rig.trader.failsafe.flattening
        if task is not None and not task.done():
            await task
        if not rig.trader.book.positions:
            break
        rig.clock.advance(30.0)
        await rig.trader.run_cycle()
    assert rig.trader.book.positions == {} and rig.held(ETH) == 0 and rig.stops() == []
    sells = [o for o in rig.sent() if o.symbol == ETH and o.side is Side.SELL and o.filled > 0]
    assert len(sells) == 1
    assert [t.symbol for t in rig.of(TradeClosed)] == [ETH]


def test_a_stop_placed_while_a_sync_reads_the_account_stays_in_the_book():
    """Seed 187 (once a stop in doubt was sent again at once): a stop went out after a sync had
    read the open-order list and before it reconciled, so the list predated it, and the lookup
    by id answered "not found" for a moment; the book dropped a stop still resting, the kill's
    sells then found its coins held, and the position was never flat. An order placed after
    the list was asked for is left to the next sync."""

    async def main(clock):
        rig = make_rig(clock, strategy=ScriptedStrategy([ETH]), rate_limit=0)
        await rig.trader.start()
        await rig.trader.run_cycle()
        [stop] = rig.stops()
        await rig.paper.cancel_order(stop.id, ETH)  # gone outside: the bot puts it back
        await rig.trader.account.sync()
        assert rig.trader.guards.resting(ETH) is None
        rig.paper.inject_latency("fetch_balance", 5.0)  # read after the list
        rig.paper.inject("fetch_order", OrderNotFound("unknown order"))
        syncing = asyncio.ensure_future(rig.trader.account.sync())
        await clock.sleep(1.0)  # the list read, the balance on its way
        await rig.trader.guards.ensure([ETH])  # the stop goes back meanwhile
        await syncing
        await rig.trader.close()
        return rig

    rig = run_simulated(main)
    [stop] = rig.stops()
    assert rig.trader.guards.on_exchange(ETH) and rig.trader.guards.resting(ETH).order.id == stop.id
