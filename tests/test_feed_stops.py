"""Stop-loss and take-profit on pushed prices between cycles (trading/pushed_stops.py): the
paper exchange's own stream on simulated time, the trader's own exit path."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sim.clock import LoopClock, run_simulated
from tests.engine_support import SETTINGS, ScriptedStrategy, make_rig
from trading.events import TradeClosed
from trading.venues.paper import PaperExchange

FEED = replace(SETTINGS, event_feed="auto", sync_interval_seconds=120.0)
ETH = "ETH/USDT"


async def first_close(rig, clock: LoopClock, within: float) -> TradeClosed | None:
    for _ in range(int(within / 0.1)):
        if rig.of(TradeClosed):
            return rig.of(TradeClosed)[0]
        await clock.sleep(0.1)
    return None


@pytest.mark.parametrize(
    ("rests_stops", "shock", "reason"),
    [((), -15, "stop-loss"), (None, 15, "take-profit")],
    ids=["stop-loss where no stop rests", "take-profit"],
)
def test_a_pushed_price_across_a_level_exits_before_the_next_cycle(
    monkeypatch, rests_stops, shock, reason
):
    if rests_stops is not None:
        monkeypatch.setattr(PaperExchange, "stop_types", rests_stops)

    async def main(clock: LoopClock) -> None:
        strategy = ScriptedStrategy([ETH], stop=0.05, target=0.05)
        rig = make_rig(clock, strategy=strategy, settings=FEED)
        await rig.trader.start()
        await rig.trader.run_cycle()  # enters ETH
        assert ETH in rig.trader.book.positions
        assert bool(rig.stops()) is (rests_stops is None)

        rig.paper.shock(ETH, shock)
        shocked = clock.time()
        closed = await first_close(rig, clock, within=30.0)  # a cycle is 60 s away

        assert closed is not None and (closed.symbol, closed.reason) == (ETH, reason)
        assert closed.at - shocked <= 2.0  # the engine's next tick pushed the price
        assert rig.trader.book.positions == {}
        assert rig.trader.pushed_stops.exits == 1
        await rig.trader.close()

    run_simulated(main)


def test_a_resting_stop_market_is_left_to_the_exchange_on_a_pushed_price():
    async def main(clock: LoopClock) -> None:
        rig = make_rig(clock, strategy=ScriptedStrategy([ETH], stop=0.05), settings=FEED)
        await rig.trader.start()
        await rig.trader.run_cycle()
        assert rig.stops()
        rig.paper.shock(ETH, -15)
        closed = await first_close(rig, clock, within=30.0)
        assert closed is not None and closed.reason == "stop-loss (on exchange)"
        assert rig.trader.pushed_stops.exits == 0  # the bot sold nothing itself
        await rig.trader.close()

    run_simulated(main)
