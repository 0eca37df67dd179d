"""Resting stop sells through CcxtVenue and the real ccxt binance client, against the loopback
fake of Binance: what ccxt sends (STOP_LOSS / STOP_LOSS_LIMIT with stopPrice), what comes
back, and the stop triggering on the exchange's own price while nobody calls."""

from __future__ import annotations

import pytest

from sim.fakes.binance import ORDER
from tests.binance_support import fake_fixture, venue_fixture  # noqa: F401 (fixtures by name)
from trading.errors import Rejected
from trading.models import OrderRequest, OrderStatus, OrderType, Side
from trading.venues.ccxt_exchanges import spot_stop_types
from trading.venues.ccxt_venue import CcxtVenue

BTC = "BTC/USDT"




def stop_limit(stop: float, limit: float, cid: str = "stop-1", amount: float = 0.1):
    return OrderRequest(
        BTC, Side.SELL, OrderType.STOP_LIMIT, amount, cid, price=limit, stop_price=stop
    )


def stop_market(stop: float, cid: str = "stop-1", amount: float = 0.1):
    return OrderRequest(BTC, Side.SELL, OrderType.STOP_MARKET, amount, cid, stop_price=stop)


async def test_stop_limit_rests_on_binance_then_fills_at_its_limit_when_the_price_falls(
    venue, fake
):
    order = await venue.create_order(stop_limit(48_123.456, 47_000.004))
    sent = fake.orders[int(order.id)]
    assert (sent["type"], sent["stopPrice"], sent["price"], sent["timeInForce"]) == (
        "STOP_LOSS_LIMIT",
        "48123.46000000",  # on the market's tick
        "47000.00000000",
        "GTC",
    )
    assert (order.type, order.status, order.stop_price, order.price) == (
        OrderType.STOP_LIMIT,
        OrderStatus.OPEN,
        48_123.46,
        47_000.0,
    )
    [listed] = await venue.fetch_open_orders()
    assert (listed.id, listed.type, listed.stop_price) == (
        order.id,
        OrderType.STOP_LIMIT,
        48_123.46,
    )
    balance = await venue.fetch_balance()
    assert (balance.free_of("BTC"), balance.total_of("BTC")) == pytest.approx((0.4, 0.5))

    fake.set_price("BTCUSDT", 47_500.0)  # no call from us: the exchange triggers it alone
    filled = await venue.fetch_order(order.id, BTC)
    assert (filled.status, filled.filled, filled.average) == (OrderStatus.CLOSED, 0.1, 47_000.0)
    assert filled.type is OrderType.STOP_LIMIT and filled.stop_price == 48_123.46
    balance = await venue.fetch_balance()
    assert balance.total_of("BTC") == pytest.approx(0.4)
    assert balance.total_of("USDT") == pytest.approx(10_000 + 4_700)
    assert await venue.fetch_open_orders() == []


async def test_stop_market_goes_as_stop_loss_without_a_price_and_fills_at_the_new_price(
    venue, fake
):
    order = await venue.create_order(stop_market(48_000.0))
    sent = fake.orders[int(order.id)]
    assert (sent["type"], sent["stopPrice"], sent["price"]) == (
        "STOP_LOSS",
        "48000.00000000",
        "0.00000000",  # a price here would have been refused (-1106)
    )
    assert (order.type, order.stop_price, order.price) == (OrderType.STOP_MARKET, 48_000.0, None)
    fake.set_price("BTCUSDT", 46_000.0)
    filled = await venue.fetch_order(order.id, BTC)
    assert (filled.status, filled.average) == (OrderStatus.CLOSED, 46_000.0)
    assert filled.type is OrderType.STOP_MARKET


async def test_stop_limit_gapping_under_its_limit_rests_until_the_price_is_back_above(venue, fake):
    order = await venue.create_order(stop_limit(48_000.0, 47_000.0))
    fake.set_price("BTCUSDT", 45_000.0)
    resting = await venue.fetch_order(order.id, BTC)
    assert (resting.status, resting.filled, resting.type) == (
        OrderStatus.OPEN,
        0.0,
        OrderType.STOP_LIMIT,
    )
    assert fake.orders[int(order.id)]["isWorking"] is True
    assert (await venue.fetch_balance()).free_of("BTC") == pytest.approx(0.4)  # still locked
    fake.set_price("BTCUSDT", 47_200.0)
    filled = await venue.fetch_order(order.id, BTC)
    assert (filled.status, filled.average) == (OrderStatus.CLOSED, 47_000.0)


async def test_cancelling_a_resting_stop_frees_the_base_and_a_replacement_never_overlaps(
    venue, fake
):
    first = await venue.create_order(stop_limit(48_000.0, 47_500.0, "stop-1"))
    await venue.cancel_order(first.id, BTC)
    assert (await venue.fetch_balance()).free_of("BTC") == pytest.approx(0.5)
    assert (await venue.fetch_order(first.id, BTC)).status is OrderStatus.CANCELED
    second = await venue.create_order(stop_limit(49_000.0, 48_500.0, "stop-2"))
    assert [o.id for o in await venue.fetch_open_orders()] == [second.id]
    assert [(e.action, e.type) for e in fake.order_log] == [
        ("new", "STOP_LOSS_LIMIT"),
        ("canceled", "STOP_LOSS_LIMIT"),
        ("new", "STOP_LOSS_LIMIT"),
    ]
    assert fake.most_live_stops("BTCUSDT") == 1


async def test_a_stop_at_or_above_the_price_is_rejected_as_binance_refuses_it(venue, fake):
    with pytest.raises(Rejected, match="Stop price would trigger immediately"):
        await venue.create_order(stop_market(50_500.0))
    assert fake.orders == {}


async def test_a_stop_limit_without_its_limit_is_rejected_before_any_request(venue, fake):
    with pytest.raises(Rejected, match="positive price"):
        await venue.create_order(stop_limit(48_000.0, 0.0))
    assert fake.calls(ORDER) == 0


def test_stop_types_only_where_ccxt_places_stops_the_sync_can_see():
    assert spot_stop_types("binance") == (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
    assert spot_stop_types("binanceus") == (OrderType.STOP_LIMIT,)
    for exchange in ("okx", "bybit", "kucoin", "bitget", "gate", "kraken", "coinbase", "mexc"):
        assert spot_stop_types(exchange) == (), exchange


async def test_no_stop_is_sent_to_an_exchange_without_stop_types_nor_on_a_public_venue(fake):
    okx = CcxtVenue("okx", "MASTER", api_key="k", secret="s", password="p")
    public = CcxtVenue("binance", "FEED", config=fake.ccxt_config())
    try:
        assert okx.stop_types == () and public.stop_types == ()
        for venue in (okx, public):
            with pytest.raises(Rejected, match="takes no stop_market orders"):
                await venue.create_order(stop_market(48_000.0))
    finally:
        await okx.close()
        await public.close()
    assert fake.calls(ORDER) == 0
