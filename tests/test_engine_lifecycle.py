"""A trader's start and end around its commands, on virtual time (trading/lifecycle.py): a
command waits for the first start without holding the lock and no longer than its bound, and a
cycle cancelled by the shutdown's drain is not a fault."""

from __future__ import annotations

import asyncio

import pytest

from sim.clock import run_simulated
from tests.engine_support import ScriptedStrategy, make_rig
from trading.events import Emergency, StateChanged
from trading.lifecycle import READY_WAIT_SECONDS
from trading.modes import Mode
from trading.store import Store


def test_a_cycle_cancelled_by_the_drain_ends_quietly_and_no_cycle_runs_after_it():
    async def main(clock):
        rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]))
        trader = rig.trader
        await trader.start()
        await trader.run_cycle()
        rig.paper.inject_latency("fetch_balance", 3600.0)  # the next cycle hangs in its sync
        hung = asyncio.ensure_future(trader.run_cycle())
        await asyncio.sleep(1.0)
        await trader.drain(5.0)
        calls = sum(rig.paper.calls.values())
        await trader.run_cycle()
        await trader.run_sync()
        async with trader.lock.exclusive(0.1):  # the cancelled cycle gave the lock back
            pass
        return rig, hung, calls

    rig, hung, calls = run_simulated(main)
    assert hung.done() and not hung.cancelled()  # ended as a normal run, not as a failure
    assert rig.trader.mode is Mode.RUNNING and rig.trader.last_error is None
    assert rig.of(Emergency) == [] and rig.of(StateChanged) == []
    assert rig.store.mode(rig.trader.label) is None
    assert list(rig.trader.book.positions) == ["ETH/USDT"]
    assert sum(rig.paper.calls.values()) == calls  # draining: later runs ask the exchange nothing


def test_a_kill_behind_a_hung_start_waits_its_bound_then_sells_the_restored_position():
    async def main(clock):
        store = Store(":memory:")
        first = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]), store=store)
        await first.trader.start()
        await first.trader.run_cycle()
        # The next process, on the same store and account: restored, then its start hangs.
        rig = make_rig(clock, paper=first.paper, store=store)
        trader = rig.trader
        trader.restore()
        rig.paper.inject_latency("load_markets", 3600.0)
        hung = asyncio.ensure_future(trader.run_cycle())
        began = asyncio.get_running_loop().time()
        ready = await trader.ready()
        waited = asyncio.get_running_loop().time() - began
        kill = await trader.kill()
        await trader.drain(0.0)
        await hung
        return rig, ready, waited, kill

    rig, ready, waited, kill = run_simulated(main)
    assert not ready and waited == pytest.approx(READY_WAIT_SECONDS)
    assert kill.flat and [t.symbol for t in kill.closed] == ["ETH/USDT"]
    assert rig.held("ETH/USDT") == 0
