"""Leaving a /stop (issue 18, chaos seed 112): a hands-off pause landing while a stop's cycle ran,
then /resume, left the positions without stops while running. The cycle's stop placements were
refused by the hands-off mode, and the guards took that for the venue's refusal, waited ten
cycles before trying again, and the host died meanwhile. A /resume straight out of a /stop left
its limit exits resting too, holding the coins the stops need."""

from __future__ import annotations

import asyncio

import pytest

from sim.clock import FakeClock, run_simulated
from tests.engine_support import ScriptedStrategy, make_rig
from trading.models import OrderType
from trading.modes import Mode, Purpose
from trading.store import Store

HELD = ("ETH/USDT", "SOL/USDT")


def _protected(rig) -> dict[str, bool]:
    """Per position: a stop of ours rests at the exchange for all of it (a guard, or a stop's
    OCO whose stop leg is still on)."""
    book = rig.trader.book
    found = {}
    for symbol, position in book.positions.items():
        resting = [
            t.order
            for t in book.open_orders(symbol=symbol)
            if t.purpose == Purpose.GUARD or (t.order.type is OrderType.OCO and t.order.filled <= 0)
        ]
        at_exchange = [o for o in rig.paper.order_log if o.is_open and o.symbol == symbol]
        ids = {o.id for o in at_exchange}
        amount = sum(o.remaining for o in resting if o.id in ids)
        found[symbol] = amount >= position.amount * (1 - 1e-9)
    return found


def _exits_left(rig) -> list[str]:
    return [t.order.symbol for t in rig.trader.book.open_orders(purpose=Purpose.STOP)]


async def _stopping(clock, store: Store | None = None):
    """Two positions with their stops, then a /stop: its OCO limit exits rest at the touch."""
    rig = make_rig(clock, strategy=ScriptedStrategy(list(HELD)), store=store, rate_limit=0)
    await rig.trader.start()
    await rig.trader.run_cycle()
    rig.strategy.entries = []
    assert all(_protected(rig).values()) and len(rig.trader.book.positions) == 2
    await rig.trader.stop()
    assert rig.trader.mode is Mode.STOPPING and sorted(_exits_left(rig)) == list(HELD)
    return rig


async def _hands_off_during_a_stop_cycle(rig) -> None:
    """The owner's hands-off pause lands while a stopping cycle re-prices its exits: the cycle
    goes on under the new mode, which lets neither its exits nor its stops out."""
    for symbol in HELD:
        rig.paper.shock(symbol, -0.5)  # the touch moved: each exit is re-priced
    rig.paper.inject_latency("fetch_tickers", 3.0)
    cycle = asyncio.ensure_future(rig.trader.run_cycle())
    await asyncio.sleep(1.0)
    paused = await rig.trader.pause(hands_off=True)
    await cycle
    assert paused.ok and rig.trader.mode is Mode.HANDS_OFF
    assert rig.stops() == [] and _exits_left(rig) == []


async def _host_dies_and_the_price_slides(rig) -> None:
    await rig.trader.close()
    for symbol in HELD:
        rig.paper.shock(symbol, -15)
    await asyncio.sleep(600.0)
    await rig.paper.advance()


@pytest.mark.parametrize(
    ("command", "mode"), [("resume", Mode.RUNNING), ("unpause", Mode.STOPPING)]
)
def test_leaving_a_hands_off_pause_inside_a_stop_puts_every_stop_back(command, mode):
    async def main(clock):
        rig = await _stopping(clock)
        await _hands_off_during_a_stop_cycle(rig)

        result = await getattr(rig.trader, command)()

        protected = _protected(rig)
        await _host_dies_and_the_price_slides(rig)
        return rig, result, protected

    rig, result, protected = run_simulated(main)
    assert result.ok and result.mode is mode
    assert protected == {symbol: True for symbol in HELD}
    assert [rig.held(symbol) for symbol in HELD] == [0, 0]  # the exchange sold them at the stops


def test_resuming_after_a_restart_inside_the_hands_off_pause_puts_every_stop_back(tmp_path):
    async def main(clock):
        first = await _stopping(clock, Store.in_dir(tmp_path))
        await _hands_off_during_a_stop_cycle(first)
        await first.trader.close()
        first.store.close()
        rig = make_rig(
            clock, paper=first.paper, store=Store.in_dir(tmp_path), strategy=first.strategy
        )
        await rig.trader.start()
        assert rig.trader.mode is Mode.HANDS_OFF

        result = await rig.trader.resume()

        protected = _protected(rig)
        await _host_dies_and_the_price_slides(rig)
        return rig, result, protected

    rig, result, protected = run_simulated(main)
    assert result.ok and result.mode is Mode.RUNNING
    assert protected == {symbol: True for symbol in HELD}
    assert [rig.held(symbol) for symbol in HELD] == [0, 0]


@pytest.mark.parametrize("restart", [False, True])
async def test_resuming_a_stop_turns_its_resting_exits_back_into_stops(tmp_path, restart):
    rig = await _stopping(FakeClock(), Store.in_dir(tmp_path))
    if restart:
        await rig.trader.close()
        rig.store.close()
        rig = make_rig(
            rig.clock, paper=rig.paper, store=Store.in_dir(tmp_path), strategy=rig.strategy
        )
        await rig.trader.start()

    result = await rig.trader.resume()

    assert result.mode is Mode.RUNNING
    assert _exits_left(rig) == []  # nothing sells at the touch the /stop chose
    assert sorted(o.symbol for o in rig.stops()) == list(HELD)
    rig.paper.shock("ETH/USDT", 3)  # through the old exit's limit: nothing sells
    await rig.cycles(2)
    assert rig.trader.book.positions.keys() == set(HELD)
    assert all(_protected(rig).values())


async def test_resuming_a_stop_whose_exit_filled_in_part_puts_a_stop_on_the_rest():
    """An OCO's first fill cancels its stop leg: the rest was a plain limit sell, which the
    guards took for an exit on its way, so the running trader never put a stop on it."""
    clock = FakeClock()
    rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]), rate_limit=0, fill_share=0.5)
    await rig.trader.start()
    await rig.trader.run_cycle()
    rig.strategy.entries = []
    await rig.trader.stop()
    bought = rig.trader.book.positions["ETH/USDT"].amount
    rig.paper.shock("ETH/USDT", 3)
    clock.advance(60.0)
    await rig.paper.advance()
    await rig.trader.sync()
    assert 0 < rig.trader.book.positions["ETH/USDT"].amount < bought  # half sold, no stop leg

    await rig.trader.resume()

    assert _exits_left(rig) == []
    assert _protected(rig) == {"ETH/USDT": True}
    await rig.cycles(2)
    assert _protected(rig) == {"ETH/USDT": True}
