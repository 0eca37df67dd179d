"""What the event feed asks of the exchange: the real ccxt.pro binance client against the loopback
fakes of Binance's REST API and websockets, a real Connector (and Trader), on real time kept
short. The feed's own REST requests are the account's (counted, scored, never its markets
again), a failed one ends its session, its ticker watches stay under the exchange's limits, and
a refusal for a limit is waited out and said once, never an emergency."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from sim.fakes.binance import ACCOUNT, EXCHANGE_INFO, OPEN_ORDERS, FakeBinance
from sim.fakes.binance_orders import FakeMarket
from sim.fakes.binance_ws import FakeBinanceWs
from tests.feed_support import (  # noqa: F401 (rest, ws: fixtures by name)
    FEED,
    Bot,
    rest_fixture,
    ws_fixture,
)
from tests.waiting import eventually
from trading.events import Emergency, FaultRaised, TradeClosed
from trading.models import OrderRequest, OrderType, Side, Ticker
from trading.risk import Level
from trading.venues.feed import FeedItem, VenueFeed


@pytest.fixture
async def bot(rest, ws):
    b = Bot(rest, ws)
    await b.trader.start()
    await eventually(lambda: b.trader.feed.healthy, 2.0, "the feed up")
    await eventually(lambda: rest.calls(ACCOUNT) >= 2, 1.0, "the feed's balance snapshot")
    try:
        yield b
    finally:
        await b.close()


def feed_of(bot: Bot) -> VenueFeed:
    feed = bot.trader.feed.feed
    assert isinstance(feed, VenueFeed)
    return feed


async def test_a_reconnection_costs_the_account_one_counted_request_and_no_markets(bot, rest, ws):
    requests, seen = bot.connector.health.requests, len(rest.requests)
    markets, snapshots = rest.calls(EXCHANGE_INFO), rest.calls(ACCOUNT)

    ws.drop()
    await eventually(lambda: ws.subscribed == 2, 2.0, "a new session after the drop")
    await eventually(lambda: rest.calls(ACCOUNT) > snapshots, 1.0, "its balance snapshot")
    await asyncio.sleep(0.1)  # anything else the session would ask, it has asked by now

    assert rest.calls(EXCHANGE_INFO) == markets  # the venue's markets, not asked again
    assert len(rest.requests) - seen == 1  # the snapshot, nothing else
    assert bot.connector.health.requests - requests == 1  # and the account counted it
    assert feed_of(bot).reconnects == 1
    assert bot.trader.status().feed.reconnects == 1


async def test_a_failed_balance_snapshot_ends_the_session_and_the_next_one_pushes_balances(
    bot, rest, ws
):
    rest.fail_server_error(ACCOUNT)  # the next session's snapshot
    ws.drop()
    await eventually(lambda: ws.subscribed == 3, 4.0, "a third session after the failed one")
    await eventually(lambda: bot.trader.feed.healthy, 2.0, "the feed up again")

    buy = OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, 0.01, "by-hand-1")
    await bot.connector.venue.create_order(buy)  # 0.5 BTC before: not the bot's order

    def pushed() -> bool:
        return bot.trader.account.balance.free_of("BTC") == pytest.approx(0.51)

    await eventually(pushed, 1.0, "the balance after the buy, pushed")
    assert bot.connector.health.faults_by_kind.get("transient", 0) >= 1  # counted
    assert bot.of(FaultRaised) == [] and bot.of(Emergency) == []  # and quiet
    assert bot.trader.mode.value == "running"


async def test_every_market_s_ticker_comes_by_one_subscription(bot, ws):
    await eventually(lambda: ws.market_subscriptions, 1.0, "the tickers subscribed")
    await asyncio.sleep(0.1)  # any other subscription would have gone out by now
    assert ws.market_subscriptions == [["!ticker@arr"]]
    assert feed_of(bot).subscriptions == 2  # the user data stream, the tickers


def many_markets() -> list[FakeMarket]:
    return [FakeMarket(f"C{i}", price=10.0 + i) for i in range(6)]


async def test_ticker_watches_past_the_exchange_s_limit_are_capped_and_said_once(caplog):
    caplog.set_level(logging.INFO, logger="trading.venues.feed")
    symbols = [f"C{i}/USDT" for i in range(6)]
    tickers: list[Ticker] = []

    async def receive(item: FeedItem) -> None:
        if isinstance(item, Ticker):
            tickers.append(item)

    async with FakeBinance(markets=many_markets()) as rest, FakeBinanceWs(rest) as ws:
        ws.max_streams = 4  # Binance: 1024 streams a connection, then it closes it
        config = ws.ccxt_config()
        config["options"] = {"subscriptionLimitByStream": {"spot": 3}}  # ccxt's binance: 200
        feed = VenueFeed("binance", "MASTER", receive, config=config, symbols=symbols)
        feed.start()
        try:
            await eventually(lambda: feed.healthy, 1.0, "the feed up")
            rest.set_price("C0USDT", 20.0)
            await eventually(lambda: tickers, 1.0, "a watched ticker pushed")
            await asyncio.sleep(0.3)  # a session past the limit would have been closed by now

            assert ws.market_subscriptions == [["c0usdt@ticker", "c1usdt@ticker", "c2usdt@ticker"]]
            assert ws.closed_for_streams == 0 and feed.reconnects == 0 and feed.healthy
        finally:
            await feed.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "3 of 6 symbols" in warnings[0]


async def test_a_feed_refused_for_a_limit_waits_the_retry_after_and_says_so_once(rest, ws, caplog):
    caplog.set_level(logging.INFO, logger="trading.venues.feed")
    ws.limit_connections(1.0)  # 429, Retry-After: 1
    keys = {"api_key": rest.api_key, "secret": rest.secret}

    async def receive(item: FeedItem) -> None:
        pass

    feed = VenueFeed(
        "binance", "MASTER", receive, config=ws.ccxt_config(), backoff_base=0.05,
        backoff_cap=0.2, **keys,
    )  # fmt: skip
    feed.start()
    try:
        await asyncio.sleep(1.5)
        assert 1 <= ws.upgrades <= 2  # not one every backoff_cap
        assert not feed.healthy
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and "refused for a limit" in lines[0] and "429" in lines[0]

        ws.limit_connections(None)
        await eventually(lambda: feed.healthy, 2.0, "the feed up once the limit is lifted")
    finally:
        await feed.close()


async def test_a_bot_whose_feed_is_refused_for_a_limit_polls_rest_and_raises_no_alarm(
    rest, ws, caplog
):
    caplog.set_level(logging.INFO)
    ws.limit_connections(30.0)
    b = Bot(rest, ws)
    try:
        await b.trader.start()
        await eventually(lambda: ws.refused >= 1, 2.0, "the feed refused")
        syncs = rest.calls(OPEN_ORDERS)
        await b.trader.run_cycle()
        await b.trader.run_cycle()

        assert rest.calls(OPEN_ORDERS) == syncs + 2  # REST at full cadence
        assert b.trader.status().feed.state == "down"
        assert b.trader.mode.value == "running" and not b.trader.status().emergencies
        assert b.of(Emergency) == [] and b.of(FaultRaised) == []
        feed_lines = [r.getMessage() for r in caplog.records if "feed" in r.getMessage()]
        assert len(feed_lines) == 1 and "refused for a limit" in feed_lines[0]
    finally:
        await b.close()


async def trade_through_a_stop(bot: Bot, rest: FakeBinance) -> list[tuple[str, str]]:
    """A cycle, /buy ETH with its stop resting at 2,900, the price through it, two cycles."""
    await bot.trader.run_cycle()
    bought = await bot.trader.buy("ETH/USDT", 300.0, stop=Level(2_900.0))
    assert bought.ok and bought.guard == "exchange"
    rest.set_price("ETHUSDT", 2_800.0)
    await bot.trader.run_cycle()
    await bot.trader.run_cycle()
    return list(rest.requests)


async def test_without_websockets_the_bot_trades_exactly_as_with_the_feed_off():
    async with FakeBinance() as rest, FakeBinanceWs(rest) as ws:
        ws.refuse_upgrades = True
        refused = Bot(rest, ws)
        try:
            await refused.trader.start()
            await eventually(lambda: ws.refused >= 2, 5.0, "the feed trying again")
            with_refused_feed = await trade_through_a_stop(refused, rest)
            closed_refused = [(e.symbol, e.reason) for e in refused.of(TradeClosed)]
        finally:
            await refused.close()
    async with FakeBinance() as rest, FakeBinanceWs(rest) as ws:
        off = Bot(rest, ws, settings=replace(FEED, event_feed="off"))
        try:
            await off.trader.start()
            without_feed = await trade_through_a_stop(off, rest)
            closed_off = [(e.symbol, e.reason) for e in off.of(TradeClosed)]
        finally:
            await off.close()

    assert with_refused_feed == without_feed  # the same requests, in the same order
    assert closed_refused == closed_off == [("ETH/USDT", "stop-loss (on exchange)")]
