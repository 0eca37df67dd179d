"""The paper exchange's own event stream (trading/venues/paper_feed.py) feeding the trader, on
simulated time: the same path as a live exchange's websockets, in process."""

from __future__ import annotations

from dataclasses import replace

from sim.clock import LoopClock, run_simulated
from tests.engine_support import SETTINGS, ScriptedStrategy, make_rig
from trading.events import TradeClosed, TradeOpened
from trading.models import Balance, Order, OrderRequest, OrderStatus, OrderType, Side
from trading.venues.paper import PaperExchange

FEED = replace(SETTINGS, event_feed="auto", sync_interval_seconds=120.0)


def test_a_resting_stop_the_price_path_reaches_is_announced_within_a_second_without_a_call():
    async def main(clock: LoopClock) -> None:
        rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"], stop=0.02), settings=FEED)
        await rig.trader.start()
        await rig.trader.run_cycle()  # enters ETH; its stop rests at the exchange
        assert [e.symbol for e in rig.of(TradeOpened)] == ["ETH/USDT"] and rig.stops()
        calls = sum(rig.paper.calls.values())

        rig.paper.shock("ETH/USDT", -15)
        shocked = clock.time()
        for _ in range(200):
            if rig.of(TradeClosed):
                break
            await clock.sleep(0.01)

        [closed] = rig.of(TradeClosed)
        assert (closed.symbol, closed.reason) == ("ETH/USDT", "stop-loss (on exchange)")
        assert closed.at - shocked <= 1.0
        assert rig.trader.book.positions == {}
        assert sum(rig.paper.calls.values()) == calls  # no request: the exchange pushed it
        await rig.trader.close()

    run_simulated(main)


def test_a_healthy_paper_feed_syncs_every_sync_interval_instead_of_every_cycle():
    async def main(clock: LoopClock) -> None:
        rig = make_rig(clock, strategy=ScriptedStrategy([]), settings=FEED)
        await rig.trader.start()
        syncs = rig.paper.calls["fetch_open_orders"]
        for _ in range(10):  # 100 s of cycles: inside one sync interval
            await rig.trader.run_cycle()
            await clock.sleep(10.0)
        assert rig.paper.calls["fetch_open_orders"] == syncs
        assert rig.paper.calls["fetch_tickers"] == 1  # the seed; then the pushed tickers
        await clock.sleep(30.0)
        await rig.trader.run_cycle()
        assert rig.paper.calls["fetch_open_orders"] == syncs + 1  # the interval is up
        assert rig.trader.status().feed.state == "up"
        await rig.trader.close()

    run_simulated(main)


def test_the_paper_exchange_pushes_each_changed_order_once_then_the_balance():
    async def main(clock: LoopClock) -> None:
        paper = PaperExchange(clock=clock, markets=12)
        received: list = []

        async def deliver(item) -> None:
            received.append(item)

        feed = paper.open_feed(deliver)
        feed.start()
        await paper.load_markets()
        amount = round(100.0 / paper.price("ETH/USDT"), 3)
        buy = OrderRequest("ETH/USDT", Side.BUY, OrderType.MARKET, amount, "cid-1")
        await paper.create_order(buy)  # accepted and filled in one call
        await clock.sleep(0.01)
        await feed.close()

        orders = [i for i in received if isinstance(i, Order)]
        assert [(o.client_order_id, o.status, o.filled) for o in orders] == [
            ("cid-1", OrderStatus.CLOSED, amount)
        ]
        assert isinstance(received[-1], Balance)
        assert received[-1].total_of("ETH") == amount

    run_simulated(main)
