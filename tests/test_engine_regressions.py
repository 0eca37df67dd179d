"""Bugs the chaos soak (bench/chaos.py) found in the engine, one test each, named for the
behaviour that is now right. Each docstring names the seed that first showed it."""

from __future__ import annotations

import asyncio

from tests.test_engine_support import ScriptedStrategy, make_rig
from trading.clock import run_simulated
from trading.errors import Transient
from trading.risk import Mode


def test_resume_while_the_flattening_waits_for_a_stuck_cycle_leaves_the_lock_free():
    """Seed 8: a /resume cancelled the background flattening while it waited for the trader's
    lock; the lock request it had started went on, took the lock when the stuck cycle ended,
    and never gave it back, so every later cycle waited for ever."""

    async def main(clock):
        rig = make_rig(clock, strategy=ScriptedStrategy([]))
        trader = rig.trader
        await trader.start()
        assert (await trader.buy("ETH/USDT", 100.0)).ok
        rig.paper.inject("fetch_open_orders", Transient, count=-1)  # flat cannot be confirmed
        kill = await trader.kill()
        assert not kill.flat and trader.book.positions == {}  # sold, not confirmed: retrying
        rig.paper.clear_faults()
        rig.paper.inject_latency("fetch_balance", 300.0)  # the next cycle hangs in its sync
        stuck = asyncio.ensure_future(trader.run_cycle())
        await asyncio.sleep(3.0)  # the flattening now waits for the lock the cycle holds
        resumed = await trader.resume()
        await stuck
        try:
            await asyncio.wait_for(trader.run_cycle(), 120.0)
            finished = True
        except TimeoutError:
            finished = False
        locked = trader._lock.locked()
        await trader.close()
        return resumed, finished, locked, trader.mode

    resumed, finished, locked, mode = run_simulated(main)
    assert resumed.ok and mode is Mode.RUNNING
    assert finished, "the cycle after the resume waited for ever for the trader's lock"
    assert not locked


def test_an_entry_gated_before_a_pause_is_not_sent_after_it():
    """Seeds 72, 131, 161 (and 70, 122 for exits and stops): the gate was asked, the order
    waited for its turn at the exchange's pace, a /pause came in, and the order went out anyway
    while paused. The router now asks again right before it sends."""

    async def main(clock):
        rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT", "SOL/USDT"]))
        trader = rig.trader
        await trader.start()
        assert trader.router.pacer.interval > 0  # the second entry waits for its turn
        cycle = asyncio.ensure_future(trader.run_cycle())
        await asyncio.sleep(trader.router.pacer.interval / 2)
        assert rig.created() == 1  # the first entry is out, the second waits
        paused = await trader.pause()
        await cycle
        await trader.close()
        return rig, paused

    rig, paused = run_simulated(main)
    assert paused.ok and rig.trader.mode is Mode.PAUSED
    assert rig.created() == 1
    assert [o.symbol for o in rig.paper.order_log] == ["ETH/USDT"]
    assert list(rig.trader.book.positions) == ["ETH/USDT"] and rig.trader.book.orders == {}
    assert rig.trader.router.counts["refused"] == 1


def test_an_order_of_unknown_outcome_is_not_sent_again_once_the_trader_is_paused():
    """The same race on the connector's second attempt: after an unknown outcome it looks the
    order up (slowly), and by then the trader was paused; it must not place it again."""

    async def main(clock):
        rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]))
        trader = rig.trader
        await trader.start()
        rig.paper.inject("create_order", Transient)  # the first attempt's answer is lost
        rig.paper.inject_latency("find_order", 3.0)  # and the look takes a while
        cycle = asyncio.ensure_future(trader.run_cycle())
        await asyncio.sleep(1.0)
        paused = await trader.pause()
        await cycle
        await trader.run_cycle()  # reconciliation settles the placeholder
        await trader.close()
        return rig, paused

    rig, paused = run_simulated(main)
    assert paused.ok and rig.trader.mode is Mode.PAUSED
    assert rig.created() == 1 and rig.paper.order_log == []  # tried once, never taken
    assert rig.trader.book.positions == {} and rig.trader.book.orders == {}


def test_a_kill_gets_flat_while_the_balance_endpoint_is_gone_and_an_exit_was_unanswered():
    """Seed 117: fetch_balance answered 404 for good (the sync escalated, nothing could be
    confirmed), and the kill's first exit got no answer. That exit of unknown outcome blocked
    every further exit of the symbol until a sync could settle it: never. Flatten rounds now
    settle such orders by client order id when the sync fails."""

    async def main(clock):
        rig = make_rig(clock, strategy=ScriptedStrategy([]))
        trader = rig.trader
        await trader.start()
        assert (await trader.buy("ETH/USDT", 100.0)).ok
        rig.paper.inject("fetch_balance", Transient("HTTP 404: exchange not available"), count=-1)
        rig.paper.inject("create_order", Transient)  # the exit's answer is lost...
        rig.paper.inject("find_order", Transient, count=3)  # ...and the look at once fails too
        kill = await trader.kill()
        await asyncio.sleep(120.0)  # the background flattening goes on
        await trader.close()
        return rig, kill

    rig, kill = run_simulated(main)
    assert rig.held("ETH/USDT") == 0  # out at the exchange: the money is safe
    assert rig.trader.book.positions == {} and rig.trader.book.orders == {}
    assert not kill.flat  # and honest about it: flat cannot be confirmed without a sync
    assert rig.trader.mode is Mode.KILLED
