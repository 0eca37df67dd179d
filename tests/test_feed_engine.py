"""The trader on the event feed: the real ccxt.pro binance client against the loopback fakes of
Binance's REST API and websockets, a real Trader and store, on real time kept short. A fill
pushed over the socket reaches the book and the notifier before any REST sync; the socket's
troubles (a drop, a silence, no websocket at all) fall back to REST polling; what the socket
never said, the REST sync finds and counts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

import pytest

from sim.fakes.binance import OPEN_ORDERS, FakeBinance
from sim.fakes.binance_ws import FakeBinanceWs
from tests.engine_support import SETTINGS, ScriptedStrategy
from trading.clock import RealClock
from trading.connector import Connector
from trading.engine import Trader
from trading.events import TradeClosed
from trading.risk import Level
from trading.store import Store
from trading.venues.ccxt_venue import CcxtVenue

STOP_REASON = "stop-loss (on exchange)"
FEED = replace(SETTINGS, event_feed="auto", sync_interval_seconds=120.0)


async def eventually(predicate: Callable[[], object], within: float, what: str) -> None:
    """Wait for the predicate, checking every 10 ms; fail after `within` seconds."""
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {within:g} s: {what}")


class Bot:
    """The bot on the fake Binance with its event feed."""

    def __init__(self, rest: FakeBinance, ws: FakeBinanceWs, settings=FEED) -> None:
        self.events: list = []
        venue = CcxtVenue(
            "binance",
            "MASTER",
            api_key=rest.api_key,
            secret=rest.secret,
            config=ws.ccxt_config(),
            feed_silence_limit=0.5,
        )
        self.connector = Connector(venue, clock=RealClock(), notify=self.events.append)
        self.trader = Trader(
            self.connector,
            store=Store(),
            strategy=ScriptedStrategy([]),
            settings=settings,
            clock=RealClock(),
            notify=self.events.append,
        )

    def closed(self) -> list[TradeClosed]:
        return [e for e in self.events if isinstance(e, TradeClosed)]

    async def buy_protected(self) -> None:
        """/buy ETH with its stop resting at the exchange at 2,900."""
        bought = await self.trader.buy("ETH/USDT", 300.0, stop=Level(2_900.0))
        assert bought.ok and bought.guard == "exchange"

    async def close(self) -> None:
        await self.trader.close()
        await self.connector.close()


@pytest.fixture
async def rest():
    async with FakeBinance() as server:  # ETH at 3,000
        yield server


@pytest.fixture
async def ws(rest):
    async with FakeBinanceWs(rest) as server:
        yield server


@pytest.fixture
async def bot(rest, ws):
    b = Bot(rest, ws)
    await b.trader.start()
    await eventually(lambda: b.trader.feed.healthy, 2.0, "the feed up")
    try:
        yield b
    finally:
        await b.close()


async def test_a_stop_filled_at_the_exchange_is_on_the_book_and_announced_before_any_sync(
    bot, rest
):
    await bot.buy_protected()
    syncs = rest.calls(OPEN_ORDERS)

    rest.set_price("ETHUSDT", 2_800.0)  # through the resting stop: Binance sells

    await eventually(bot.closed, 1.0, "the stop's fill announced")
    assert [(e.symbol, e.reason) for e in bot.closed()] == [("ETH/USDT", STOP_REASON)]
    assert bot.trader.book.positions == {}
    assert rest.calls(OPEN_ORDERS) == syncs  # the socket said it, not a sync
    await bot.trader.sync()  # REST, the source of truth, agrees: nothing was missed
    assert bot.trader.status().feed.missed == 0
    assert [t.reason for t in bot.trader.store.trades("binance:master")] == [STOP_REASON]


async def test_while_the_feed_is_healthy_a_cycle_reads_neither_orders_nor_tickers(bot, rest):
    await bot.trader.run_cycle()  # the first scan seeds the pushed tickers
    syncs, requests = rest.calls(OPEN_ORDERS), len(rest.requests)

    await bot.trader.run_cycle()

    assert rest.calls(OPEN_ORDERS) == syncs
    assert len(rest.requests) == requests  # prices from the socket, no candidates to read
    assert bot.trader.status().feed.state == "up"


async def test_a_dropped_socket_reconnects_and_fills_flow_again(bot, rest, ws):
    await bot.buy_protected()

    ws.drop()
    await eventually(lambda: ws.subscribed == 2, 2.0, "a new subscription after the drop")
    await eventually(lambda: bot.trader.feed.healthy, 2.0, "the feed up again")
    rest.set_price("ETHUSDT", 2_800.0)

    await eventually(bot.closed, 1.0, "the stop's fill announced on the new socket")
    assert bot.trader.book.positions == {}


async def test_a_silent_socket_falls_back_to_rest_every_cycle_and_recovers(bot, rest, ws):
    await bot.trader.run_cycle()
    ws.go_silent()
    await eventually(lambda: not bot.trader.feed.healthy, 2.0, "the silence noticed")
    syncs = rest.calls(OPEN_ORDERS)

    await bot.trader.run_cycle()
    await bot.trader.run_cycle()

    assert rest.calls(OPEN_ORDERS) == syncs + 2  # REST at full cadence
    assert bot.trader.status().feed.state == "down"
    assert bot.trader.info().feed == "down"
    assert bot.trader.mode.value == "running" and not bot.trader.status().emergencies

    ws.resume()
    await eventually(lambda: bot.trader.feed.healthy, 2.0, "the feed up again")
    await bot.trader.run_cycle()  # the sync is recent: the feed is trusted again
    await bot.trader.run_cycle()
    assert rest.calls(OPEN_ORDERS) == syncs + 2
    assert bot.trader.status().feed.state == "up"


async def test_a_fill_the_socket_never_sent_is_found_by_the_sync_and_counted(
    bot, rest, ws, caplog
):
    await bot.buy_protected()
    ws.lose(2)  # the stop's trigger and its fill: never sent

    rest.set_price("ETHUSDT", 2_800.0)
    await asyncio.sleep(0.3)
    assert "ETH/USDT" in bot.trader.book.positions  # nobody told the bot yet

    with caplog.at_level(logging.WARNING):
        await bot.trader.sync()

    assert bot.trader.book.positions == {}
    assert [(e.symbol, e.reason) for e in bot.closed()] == [("ETH/USDT", STOP_REASON)]
    assert bot.trader.status().feed.missed == 1
    assert any("the feed missed" in r.getMessage() for r in caplog.records)


async def test_a_duplicate_or_older_report_of_a_fill_changes_nothing(bot, rest):
    await bot.buy_protected()
    rest.set_price("ETHUSDT", 2_800.0)
    await eventually(bot.closed, 1.0, "the stop's fill announced")
    filled = [o for o in rest.orders.values() if o["type"] == "STOP_LOSS"]
    final = await bot.connector.venue.fetch_order(str(filled[0]["orderId"]), "ETH/USDT")
    older = replace(final, filled=0.0, status=final.status.OPEN)

    for pushed in (final, older, final):
        await bot.trader.feed.receive(pushed)
    await asyncio.sleep(0.1)

    assert len(bot.closed()) == 1
    assert len(bot.trader.store.trades("binance:master")) == 1


async def test_without_websockets_the_bot_polls_as_before_with_one_log_line(rest, ws, caplog):
    ws.refuse_upgrades = True
    caplog.set_level(logging.INFO)
    b = Bot(rest, ws)
    try:
        await b.trader.start()
        await eventually(lambda: ws.refused >= 2, 5.0, "the feed trying again")
        syncs = rest.calls(OPEN_ORDERS)
        await b.trader.run_cycle()
        await b.trader.run_cycle()
        assert rest.calls(OPEN_ORDERS) == syncs + 2
        assert b.trader.status().feed.state == "down"
        feed_lines = [r for r in caplog.records if "feed" in r.getMessage()]
        assert len(feed_lines) == 1 and "down" in feed_lines[0].getMessage()
    finally:
        await b.close()


async def test_event_feed_off_opens_no_socket(rest, ws):
    b = Bot(rest, ws, settings=replace(FEED, event_feed="off"))
    try:
        await b.trader.start()
        await asyncio.sleep(0.2)
        assert ws.sockets == [] and b.trader.status().feed.state == "off"
    finally:
        await b.close()
