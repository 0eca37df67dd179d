"""Bugs the chaos soak found once it restarted the bot (crash points, kills, clean shutdowns) and
traded beside a user, one test each, named for the behaviour that is now right. Each docstring
names the seed that first showed it."""

from __future__ import annotations

import asyncio

from sim.clock import FakeClock, run_simulated
from tests.engine_support import ScriptedStrategy, make_rig
from trading.errors import Rejected, Transient
from trading.models import OrderRequest, OrderStatus, OrderType, Side
from trading.modes import Mode
from trading.store import Store


async def _killed_not_flat(clock, store: Store):
    """A first process buys ETH, is killed while every exit is refused, and ends (KILLED,
    still holding ETH); the exchange's balance endpoint then stops answering for good."""
    first = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]), store=store)
    await first.trader.start()
    await first.trader.run_cycle()
    first.paper.inject("create_order", Rejected, count=-1)
    kill = await first.trader.kill()
    await first.trader.close()
    assert not kill.flat and first.trader.mode is Mode.KILLED and first.held("ETH/USDT") > 0
    first.paper.clear_faults()
    first.paper.inject("fetch_balance", Transient, count=-1)
    return first.paper


def test_a_kill_restored_while_the_balance_endpoint_is_dead_still_gets_out():
    """Seed 128: restarted after a kill that was not flat yet, the trader's exchange start
    failed at its sync (the balance endpoint was gone), and the cycle that failed to start
    never resumed the flattening: the kill stayed on paper for ever."""

    async def main(clock):
        store = Store()
        paper = await _killed_not_flat(clock, store)
        rig = make_rig(clock, paper=paper, store=store)
        rig.trader.restore()
        for _ in range(5):
            await rig.trader.run_cycle()
            await asyncio.sleep(60.0)
        await rig.trader.close()
        return rig

    rig = run_simulated(main)
    assert rig.trader.mode is Mode.KILLED and not rig.trader.started
    assert rig.held("ETH/USDT") == 0 and rig.trader.book.positions == {}


def test_a_kill_before_the_first_sync_sells_what_the_store_remembers():
    """Seed 128: a process that had not synced yet knew no free balance, so the risk gate
    refused every exit of a /kill ("no free ETH to sell") while the balance endpoint was down,
    though the exchange would have taken the sell."""

    async def main(clock):
        store = Store()
        paper = await _killed_not_flat(clock, store)
        rig = make_rig(clock, paper=paper, store=store)
        rig.trader.restore()
        kill = await rig.trader.kill()
        await rig.trader.close()
        return rig, kill

    rig, kill = run_simulated(main)
    assert [t.symbol for t in kill.closed] == ["ETH/USDT"]
    assert rig.held("ETH/USDT") == 0


async def test_a_restart_disarms_the_dead_man_an_earlier_process_armed():
    """The user's order cancelled by the bot's dead man's switch: a process armed it over its
    resting stop sells, the user then placed an order, and the bot restarted. The new process
    saw the user's order and so would not arm, but believed nothing was armed and did not
    disarm either: the old deadline passed and the exchange cancelled every order, the user's
    included."""
    clock = FakeClock()
    store = Store()
    first = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]), store=store)
    first.paper.stop_types = ()  # the stop's exit a plain limit: a working order
    await first.trader.start()
    await first.trader.run_cycle()
    await first.trader.stop()  # a limit sell rests at the ask
    await first.trader.run_cycle()  # and the dead man guards it
    assert first.connector.health.dead_man_armed_until is not None
    user = await first.paper.create_order(
        OrderRequest("BTC/USDT", Side.BUY, OrderType.LIMIT, 0.01, "web1", price=1_000.0)
    )
    # The process ends here (a deploy, a crash); the next one starts on the same account.
    second = make_rig(clock, paper=first.paper, store=store, strategy=ScriptedStrategy())
    second.trader.restore()
    await second.cycles(4)

    [mine] = [o for o in second.paper.order_log if o.id == user.id]
    assert mine.status is OrderStatus.OPEN
