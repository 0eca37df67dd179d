"""The one event loop stays free while accounts cycle: an account's cycle hands the loop back
between its requests, so /ping, /kill and the other accounts never wait for a whole cycle."""

from __future__ import annotations

import asyncio

from sim.clock import FakeClock
from tests.engine_support import make_rig
from trading.strategies import load_strategy
from trading.venues.market_sim import SyntheticFeed


class _Turns:
    """A task that counts the turns the event loop gives it."""

    def __init__(self) -> None:
        self.count = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0)
            self.count += 1

    def stop(self) -> None:
        self._task.cancel()


async def test_a_paper_cycle_lets_other_tasks_run_between_its_requests():
    rig = make_rig(FakeClock(), strategy=load_strategy("trend"), markets=200)
    await rig.trader.start()
    turns = _Turns()
    await asyncio.sleep(0)
    before, requests_before = turns.count, rig.paper.calls.total()
    await rig.trader.run_cycle()
    turns.stop()
    requests = rig.paper.calls.total() - requests_before
    assert requests >= 3  # the sync's reads, the tickers, candles
    assert turns.count - before >= requests


async def test_a_whole_universe_ticker_read_lets_other_tasks_run_while_it_draws():
    feed = SyntheticFeed(markets=200, clock=FakeClock())
    turns = _Turns()
    await asyncio.sleep(0)
    before = turns.count
    tickers = await feed.fetch_tickers()
    turns.stop()
    assert len(tickers) == 200
    assert turns.count - before >= 200 // 16 - 1


async def test_candles_read_again_later_equal_a_fresh_read_even_after_a_shock():
    clock = FakeClock()
    warm, fresh = SyntheticFeed(markets=30, clock=clock), SyntheticFeed(markets=30, clock=clock)
    for timeframe in ("1m", "5m", "1h"):
        await warm.fetch_ohlcv("ETH/USDT", timeframe, 50)
    clock.advance(7 * 60 + 13)
    for feed in (warm, fresh):
        feed.shock("ETH/USDT", -10.0)
    clock.advance(2 * 60)
    for timeframe in ("1m", "5m", "1h"):
        again = await warm.fetch_ohlcv("ETH/USDT", timeframe, 50)
        assert again == await fresh.fetch_ohlcv("ETH/USDT", timeframe, 50)
        assert len(again) == 50
