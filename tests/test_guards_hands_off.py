"""Leaving the owner's hands-off pause (issue 18, chaos seeds 152 and 160): the positions had no
stops; a /resume or /unpause back into a mode that keeps them puts each stop on before it
answers, not at the next cycle (which a dead host, or a sync that keeps failing, never runs)."""

from __future__ import annotations

import pytest

from sim.clock import FakeClock
from tests.engine_support import ScriptedStrategy, make_rig
from trading.errors import Transient
from trading.modes import Mode


async def _hands_off(*symbols: str):
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy(list(symbols)), rate_limit=0)
    await rig.trader.start()
    await rig.trader.run_cycle()
    rig.strategy.entries = []
    await rig.trader.pause(hands_off=True)
    assert rig.stops() == []  # the owner's choice: every order cancelled
    return rig


async def _host_dies_and_the_price_slides(rig, symbol: str) -> None:
    await rig.trader.close()
    rig.paper.shock(symbol, -15)
    rig.clock.advance(600.0)
    await rig.paper.advance()


@pytest.mark.parametrize("command", ["resume", "unpause"])
async def test_leaving_hands_off_puts_the_stops_back_before_it_answers(command):
    rig = await _hands_off("ETH/USDT", "SOL/USDT")

    result = await getattr(rig.trader, command)()

    assert result.mode is Mode.RUNNING
    assert sorted(o.symbol for o in rig.stops()) == ["ETH/USDT", "SOL/USDT"]
    await _host_dies_and_the_price_slides(rig, "ETH/USDT")
    assert rig.held("ETH/USDT") == 0  # the exchange sold it at the stop


async def test_leaving_hands_off_with_the_sync_failing_still_puts_the_stops_back():
    """Seed 160: fetch_balance answered 404 for good, so every cycle was skipped."""
    rig = await _hands_off("ETH/USDT")
    rig.paper.inject("fetch_balance", Transient("HTTP 404 Not Found"), count=-1)

    await rig.trader.unpause()

    assert [o.symbol for o in rig.stops()] == ["ETH/USDT"]
