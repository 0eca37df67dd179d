"""The trader on the event feed: the real ccxt.pro binance client against the loopback fakes of
Binance's REST API and websockets, a real Trader and store, on real time kept short. A fill
pushed over the socket reaches the book and the notifier before any REST sync; the socket's
troubles (a drop, a silence, no websocket at all) fall back to REST polling; what the socket
never said, the REST sync finds and counts."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from sim.fakes.binance import OPEN_ORDERS
from tests.feed_support import (  # noqa: F401 (rest, ws: fixtures by name)
    FEED,
    Bot,
    rest_fixture,
    ws_fixture,
)
from tests.waiting import eventually

STOP_REASON = "stop-loss (on exchange)"


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


async def test_a_fill_the_socket_never_sent_is_found_by_the_sync_and_counted(bot, rest, ws, caplog):
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
