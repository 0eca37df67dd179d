"""What ccxt's real exchange classes send for our orders, through CcxtVenue, to a loopback fake.

Market buys: Coinbase, Gate, Bitget and HTX spend quote, so the venue hands ccxt the reference
price and ccxt sends amount * price; OKX, Kraken and Bybit buy the base amount and get no price.
Client order ids: ours reach each exchange under its own field, and come back as we sent them.
"""

from __future__ import annotations

import pytest

from sim.clock import FakeClock
from sim.fakes.capture import CaptureServer
from trading.book import Book
from trading.errors import Rejected
from trading.models import OrderRequest, OrderStatus, OrderType, Side
from trading.modes import Purpose
from trading.store import Store
from trading.venues.ccxt_exchanges import market_buy_needs_price
from trading.venues.ccxt_venue import CcxtVenue

CID = Book(
    "t", store=Store(), clock=FakeClock(), notify=lambda event: None, quote="USDT", markets=dict
).new_client_id(Purpose.ENTRY)

COINBASE_ORDERS = "/api/v3/brokerage/orders"
GATE_ORDERS = "/api/v4/spot/orders"
BITGET_ORDERS = "/api/v2/spot/trade/place-order"
HTX_ORDERS = "/v1/order/orders/place"
OKX_ORDERS = "/api/v5/trade/batch-orders"
KRAKEN_ORDERS = "/0/private/AddOrder"
BYBIT_ORDERS = "/v5/order/create"

# The answer of each exchange to a new order, and what ccxt needs answered before it.
ANSWERS = {
    "coinbase": {
        COINBASE_ORDERS: {
            "success": True,
            "success_response": {
                "order_id": "c-1",
                "product_id": "ETH-USDT",
                "side": "BUY",
                "client_order_id": CID,
            },
        },
    },
    "gate": {
        GATE_ORDERS: {
            "id": "g-1",
            "text": f"t-{CID}",
            "currency_pair": "ETH_USDT",
            "side": "buy",
            "type": "market",
            "status": "closed",
        }
    },
    "bitget": {BITGET_ORDERS: {"code": "00000", "data": {"orderId": "b-1", "clientOid": CID}}},
    "htx": {
        "/v1/account/accounts": {
            "status": "ok",
            "data": [{"id": 7, "type": "spot", "state": "working"}],
        },
        HTX_ORDERS: {"status": "ok", "data": "h-1"},
    },
    "okx": {OKX_ORDERS: {"code": "0", "data": [{"ordId": "o-1", "clOrdId": CID, "sCode": "0"}]}},
    "kraken": {KRAKEN_ORDERS: {"error": [], "result": {"txid": ["K-1"]}}},
    "bybit": {
        "/v5/user/query-api": {"retCode": 0, "result": {"unified": 1, "uta": 1}},
        "/v5/account/info": {"retCode": 0, "result": {"unifiedMarginStatus": 5}},
        BYBIT_ORDERS: {"retCode": 0, "result": {"orderId": "y-1", "orderLinkId": CID}},
    },
}


@pytest.fixture
async def server():
    async with CaptureServer() as fake:
        yield fake


async def venue_on(server: CaptureServer, exchange: str) -> CcxtVenue:
    for path, body in ANSWERS[exchange].items():
        server.answer(path, body)
    if exchange == "bitget":  # a classic account: the unified-account probe fails
        server.answer("/api/v3/account/settings", {"code": "40084"}, status=400)
    return CcxtVenue(exchange, "MAIN", api_key="key", secret="c2VjcmV0", password="pass",
                     config=server.ccxt_config(exchange))  # fmt: skip


def market_buy(amount: float = 0.05, reference_price: float | None = 2_000.0) -> OrderRequest:
    return OrderRequest(
        "ETH/USDT", Side.BUY, OrderType.MARKET, amount, CID, reference_price=reference_price
    )


# ---------------------------------------------------------------------------- market buys


@pytest.mark.parametrize(
    ("exchange", "path", "field", "spent"),
    [
        ("gate", GATE_ORDERS, "amount", "100"),
        ("bitget", BITGET_ORDERS, "size", "100"),
        ("htx", HTX_ORDERS, "amount", "100"),
    ],
)
async def test_market_buy_spends_amount_times_reference_price_where_buys_are_in_quote(
    server, exchange, path, field, spent
):
    venue = await venue_on(server, exchange)
    try:
        await venue.create_order(market_buy())
    finally:
        await venue.close()
    [body] = server.sent(path, "POST")
    assert body[field] == spent and "price" not in body


async def test_market_buy_on_coinbase_spends_quote_and_carries_our_client_id(server):
    venue = await venue_on(server, "coinbase")
    try:
        order = await venue.create_order(market_buy())
    finally:
        await venue.close()
    [body] = server.sent(COINBASE_ORDERS, "POST")
    assert body["order_configuration"] == {"market_market_ioc": {"quote_size": "100"}}
    assert body["client_order_id"] == CID
    assert (order.id, order.client_order_id, order.side) == ("c-1", CID, Side.BUY)


@pytest.mark.parametrize(
    ("exchange", "path", "amount_field", "base_unit"),
    [
        ("okx", OKX_ORDERS, "sz", ("tgtCcy", "base_ccy")),
        ("kraken", KRAKEN_ORDERS, "volume", None),
        ("bybit", BYBIT_ORDERS, "qty", ("marketUnit", "baseCoin")),
    ],
)
async def test_market_buy_sends_the_base_amount_and_no_price_where_buys_are_in_base(
    server, exchange, path, amount_field, base_unit
):
    assert not market_buy_needs_price(exchange)
    venue = await venue_on(server, exchange)
    try:
        await venue.create_order(market_buy())
    finally:
        await venue.close()
    [body] = server.sent(path, "POST")
    fields = body[0] if isinstance(body, list) else body  # okx sends a batch of one
    assert fields[amount_field] == "0.05"
    assert not {"px", "price", "cost", "quoteOrderQty"} & set(fields)
    if base_unit is not None:
        key, unit = base_unit
        assert fields[key] == unit


async def test_market_buy_without_reference_price_is_rejected_before_any_request(server):
    venue = await venue_on(server, "coinbase")
    try:
        with pytest.raises(Rejected, match="reference price"):
            await venue.create_order(market_buy(reference_price=None))
    finally:
        await venue.close()
    assert server.requests == []


async def test_market_sell_and_limit_buy_on_coinbase_ignore_the_reference_price(server):
    venue = await venue_on(server, "coinbase")
    sell = OrderRequest("ETH/USDT", Side.SELL, OrderType.MARKET, 0.05, CID, reference_price=1.0)
    limit = OrderRequest(
        "ETH/USDT", Side.BUY, OrderType.LIMIT, 0.05, CID, price=1_990.0, reference_price=1.0
    )
    try:
        await venue.create_order(sell)
        await venue.create_order(limit)
    finally:
        await venue.close()
    sold, bought = server.sent(COINBASE_ORDERS, "POST")
    assert sold["order_configuration"] == {"market_market_ioc": {"base_size": "0.05"}}
    assert bought["order_configuration"]["limit_limit_gtc"]["base_size"] == "0.05"
    assert bought["order_configuration"]["limit_limit_gtc"]["limit_price"] == "1990"


def test_which_exchanges_size_market_buys_in_quote():
    quote_sized = {"coinbase", "gate", "bitget", "htx"}
    base_sized = {"binance", "kraken", "okx", "bybit"}
    assert {e for e in quote_sized | base_sized if market_buy_needs_price(e)} == quote_sized


# ----------------------------------------------------------------------- client order ids


@pytest.mark.parametrize(
    ("exchange", "path", "id_of"),
    [
        ("coinbase", COINBASE_ORDERS, lambda body: body["client_order_id"]),
        ("kraken", KRAKEN_ORDERS, lambda body: body["cl_ord_id"]),
        ("okx", OKX_ORDERS, lambda body: body[0]["clOrdId"]),
        ("bybit", BYBIT_ORDERS, lambda body: body["orderLinkId"]),
        ("bitget", BITGET_ORDERS, lambda body: body["clientOid"]),
        ("htx", HTX_ORDERS, lambda body: body["client-order-id"]),
        ("gate", GATE_ORDERS, lambda body: body["text"].removeprefix("t-")),
    ],
)
async def test_our_client_order_id_reaches_each_exchange_under_its_own_field(
    server, exchange, path, id_of
):
    venue = await venue_on(server, exchange)
    sell = OrderRequest("ETH/USDT", Side.SELL, OrderType.LIMIT, 0.05, CID, price=2_100.0)
    try:
        await venue.create_order(sell)
    finally:
        await venue.close()
    [body] = server.sent(path, "POST")
    assert id_of(body) == CID


async def test_gate_echoes_our_client_id_with_a_prefix_and_the_venue_takes_it_off(server):
    venue = await venue_on(server, "gate")
    echoed = {"id": "g-2", "text": f"t-{CID}", "currency_pair": "ETH_USDT", "side": "buy",
              "type": "limit", "amount": "0.05", "price": "1990", "status": "open"}  # fmt: skip
    server.answer("/api/v4/spot/open_orders", [{"currency_pair": "ETH_USDT", "orders": [echoed]}])
    server.answer(GATE_ORDERS, [echoed])  # the closed orders of the symbol (a GET)
    try:
        [listed] = await venue.fetch_open_orders()
        found = await venue.find_order(CID, "ETH/USDT")
    finally:
        await venue.close()
    assert listed.client_order_id == CID
    assert found is not None and found.id == "g-2" and found.status is OrderStatus.OPEN
