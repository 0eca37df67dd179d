"""The websocket feed (trading/venues/feed.py): the real ccxt.pro binance client against the
loopback fakes of Binance's REST API and websockets, on real time kept short."""

from __future__ import annotations

import gc
import logging

import pytest

from sim.fakes.binance import ACCOUNT, FakeBinance
from sim.fakes.binance_ws import FakeBinanceWs
from tests.waiting import eventually
from trading.models import Balance, Order, OrderRequest, OrderStatus, OrderType, Side, Ticker
from trading.venues.ccxt_venue import CcxtVenue
from trading.venues.feed import FeedItem, VenueFeed


class Received:
    """The feed's receiver: what it was handed, in order."""

    def __init__(self) -> None:
        self.items: list[FeedItem] = []

    async def __call__(self, item: FeedItem) -> None:
        self.items.append(item)

    def orders(self, client_order_id: str) -> list[Order]:
        orders = (i for i in self.items if isinstance(i, Order))
        return [o for o in orders if o.client_order_id == client_order_id]

    def balances(self) -> list[Balance]:
        return [i for i in self.items if isinstance(i, Balance)]

    def tickers(self) -> list[Ticker]:
        return [i for i in self.items if isinstance(i, Ticker)]


@pytest.fixture
async def rest():
    async with FakeBinance() as server:
        yield server


@pytest.fixture
async def ws(rest):
    async with FakeBinanceWs(rest) as server:
        yield server


@pytest.fixture
async def venue(rest, ws):
    """The REST side, to place orders the way the bot does."""
    keys = {"api_key": rest.api_key, "secret": rest.secret}
    v = CcxtVenue("binance", "MASTER", **keys, config=ws.ccxt_config())
    try:
        yield v
    finally:
        await v.close()


@pytest.fixture
def received() -> Received:
    return Received()


@pytest.fixture
async def open_feed(rest, ws, received):
    feeds: list[VenueFeed] = []

    def make(*, credentials: bool = True, **settings) -> VenueFeed:
        keys = {"api_key": rest.api_key, "secret": rest.secret} if credentials else {}
        settings = {"backoff_base": 0.05, "backoff_cap": 0.2, **settings}
        feed = VenueFeed("binance", "MASTER", received, config=ws.ccxt_config(), **keys, **settings)
        feeds.append(feed)
        feed.start()
        return feed

    yield make
    for feed in feeds:
        await feed.close()


def limit_buy(client_id: str, price: float) -> OrderRequest:
    return OrderRequest("BTC/USDT", Side.BUY, OrderType.LIMIT, 0.01, client_id, price=price)


async def test_an_order_filled_by_the_market_arrives_as_an_order_with_its_fill(
    open_feed, ws, rest, venue, received
):
    feed = open_feed()
    await eventually(lambda: ws.subscribed == 1, 1.0, "the user data stream subscribed")
    placed = await venue.create_order(limit_buy("e-fill-1", 40_000.0))

    rest.set_price("BTCUSDT", 39_000.0)  # crosses the resting buy: the exchange fills it

    def filled() -> list[Order]:
        return [o for o in received.orders("e-fill-1") if o.status is OrderStatus.CLOSED]

    await eventually(filled, 1.0, "the fill pushed")
    order = filled()[-1]
    assert (order.id, order.symbol, order.side, order.type) == (
        placed.id,
        "BTC/USDT",
        Side.BUY,
        OrderType.LIMIT,
    )
    assert (order.amount, order.filled, order.average) == (0.01, 0.01, 39_000.0)
    assert feed.healthy and feed.last_event_at is not None


async def test_a_cancel_arrives_under_the_order_s_own_client_id(open_feed, ws, venue, received):
    open_feed()
    await eventually(lambda: ws.subscribed == 1, 1.0, "the user data stream subscribed")
    placed = await venue.create_order(limit_buy("e-cancel-1", 30_000.0))

    await venue.cancel_order(placed.id, "BTC/USDT")

    def cancelled() -> list[Order]:
        return [o for o in received.orders("e-cancel-1") if o.status is OrderStatus.CANCELED]

    await eventually(cancelled, 1.0, "the cancel pushed")
    assert cancelled()[-1].filled == 0.0


async def test_a_resting_stop_triggered_by_the_market_arrives_as_a_filled_stop(
    open_feed, ws, rest, venue, received
):
    open_feed()
    await eventually(lambda: ws.subscribed == 1, 1.0, "the user data stream subscribed")
    stop = OrderRequest(
        "BTC/USDT", Side.SELL, OrderType.STOP_MARKET, 0.01, "e-stop-1", stop_price=45_000.0
    )
    await venue.create_order(stop)

    rest.set_price("BTCUSDT", 44_000.0)  # through the trigger: Binance sells at market

    def filled() -> list[Order]:
        return [o for o in received.orders("e-stop-1") if o.status is OrderStatus.CLOSED]

    await eventually(filled, 1.0, "the stop's fill pushed")
    order = filled()[-1]
    assert (order.type, order.stop_price) == (OrderType.STOP_MARKET, 45_000.0)
    assert (order.filled, order.average) == (0.01, 44_000.0)


async def test_a_balance_update_arrives_as_the_whole_account(open_feed, ws, venue, received):
    open_feed()
    await eventually(lambda: ws.subscribed == 1, 1.0, "the user data stream subscribed")

    market_buy = OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, 0.01, "e-balance-1")
    await venue.create_order(market_buy)  # 0.01 BTC for 500 USDT at 50,000

    def after_the_buy() -> list[Balance]:
        return [b for b in received.balances() if b.free_of("BTC") == pytest.approx(0.51)]

    await eventually(after_the_buy, 1.0, "the balance after the buy")
    balance = after_the_buy()[-1]
    assert balance.free_of("USDT") == pytest.approx(9_500.0)
    assert balance.total == {"BTC": pytest.approx(0.51), "USDT": pytest.approx(9_500.0)}


async def test_a_dropped_socket_reconnects_and_events_flow_again(
    open_feed, ws, rest, venue, received
):
    feed = open_feed()
    await eventually(lambda: ws.subscribed == 1, 1.0, "the user data stream subscribed")

    ws.drop()
    await eventually(lambda: ws.subscribed == 2, 1.5, "a new subscription after the drop")
    await venue.create_order(limit_buy("e-after-drop", 40_000.0))
    rest.set_price("BTCUSDT", 39_000.0)

    def filled() -> bool:
        return any(o.status is OrderStatus.CLOSED for o in received.orders("e-after-drop"))

    await eventually(filled, 1.0, "the fill pushed on the new socket")
    assert feed.healthy


async def test_a_silent_socket_is_unhealthy_past_the_silence_limit_until_events_resume(
    open_feed, ws, rest, venue, received, caplog
):
    caplog.set_level(logging.INFO, logger="trading.venues.feed")
    feed = open_feed(silence_limit=0.4)
    await eventually(lambda: feed.healthy, 1.0, "the feed healthy")

    def said_silent() -> bool:
        return any("silent" in r.getMessage() for r in caplog.records)

    ws.go_silent()
    await eventually(lambda: not feed.healthy, 1.0, "the feed unhealthy while nothing arrives")
    await eventually(said_silent, 1.0, "the silence logged")
    ws.resume()
    await eventually(lambda: feed.healthy, 1.5, "the feed healthy again")

    await venue.create_order(limit_buy("e-after-silence", 40_000.0))
    rest.set_price("BTCUSDT", 39_000.0)

    def filled() -> bool:
        return any(o.status is OrderStatus.CLOSED for o in received.orders("e-after-silence"))

    await eventually(filled, 1.0, "the fill pushed after the silence")


async def test_a_server_refusing_websockets_leaves_the_feed_unhealthy_with_one_log_line(
    open_feed, ws, caplog
):
    gc.collect()  # what earlier tests left is theirs to report
    caplog.clear()
    caplog.set_level(logging.INFO, logger="trading.venues.feed")
    ws.refuse_upgrades = True

    feed = open_feed()
    await eventually(lambda: ws.refused >= 2, 5.0, "the feed trying again")

    assert not feed.healthy
    gc.collect()  # asyncio reports a future's exception nobody retrieved when it is collected
    lines = caplog.records  # the feed's, and any other logger's warnings and errors
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "down" in lines[0].getMessage() and "404" in lines[0].getMessage()
    await feed.close()  # nothing raised, at any point


async def test_a_session_ended_while_its_balance_snapshot_loads_leaves_no_error_behind(
    open_feed, ws, rest, caplog
):
    gc.collect()  # what earlier tests left is theirs to report
    caplog.clear()
    rest.stall(ACCOUNT)  # the REST snapshot of the balance hangs
    open_feed()
    await eventually(lambda: ws.subscribed == 1, 1.0, "the user data stream subscribed")
    await eventually(lambda: rest.parked.get(ACCOUNT), 1.0, "the balance snapshot asked")

    ws.drop()
    await eventually(lambda: ws.subscribed == 2, 1.5, "a new session after the drop")
    rest.release(ACCOUNT)
    await eventually(lambda: not rest.parked.get(ACCOUNT), 1.0, "the snapshots answered")

    gc.collect()  # asyncio reports a future's exception nobody retrieved when it is collected
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_without_credentials_only_the_watched_symbols_tickers_arrive(
    open_feed, ws, rest, received
):
    feed = open_feed(credentials=False, symbols=["ETH/USDT"])
    await eventually(lambda: feed.healthy, 1.0, "the feed healthy")

    rest.set_price("ETHUSDT", 3_100.0)
    rest.set_price("BTCUSDT", 51_000.0)  # not watched

    await eventually(received.tickers, 1.0, "the ticker pushed")
    ticker = received.tickers()[-1]
    assert (ticker.symbol, ticker.last, ticker.bid, ticker.ask) == (
        "ETH/USDT",
        3_100.0,
        3_099.99,
        3_100.01,
    )
    assert {t.symbol for t in received.tickers()} == {"ETH/USDT"}
    assert ws.subscribed == 0  # no user data stream without an API key


async def test_a_failing_receiver_is_logged_and_the_feed_goes_on(ws, rest, caplog):
    caplog.set_level(logging.ERROR, logger="trading.venues.feed")
    tickers: list[Ticker] = []

    async def receiver(item: FeedItem) -> None:
        if isinstance(item, Ticker) and item.last == 3_100.0:
            raise RuntimeError("the receiver broke")
        tickers.append(item)

    feed = VenueFeed("binance", "MASTER", receiver, config=ws.ccxt_config(), symbols=["ETH/USDT"])
    feed.start()
    try:
        await eventually(lambda: feed.healthy, 1.0, "the feed healthy")
        rest.set_price("ETHUSDT", 3_100.0)
        await eventually(lambda: caplog.records, 1.0, "the receiver's failure logged")
        rest.set_price("ETHUSDT", 3_200.0)
        await eventually(lambda: tickers, 1.0, "the next ticker handed over")
        assert tickers[-1].last == 3_200.0
    finally:
        await feed.close()
