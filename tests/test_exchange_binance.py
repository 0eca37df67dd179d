"""The real ccxt binance client, through CcxtVenue, against the loopback fake of Binance."""

from __future__ import annotations

import itertools
import logging

import pytest

from sim.clock import FakeClock
from sim.fakes.binance import (
    ACCOUNT,
    EXCHANGE_INFO,
    KLINES,
    OPEN_ORDERS,
    ORDER,
    TICKER_24HR,
    TIME,
    FakeBinance,
)
from trading.errors import ClockRejected, Fatal, RateLimited, Rejected, Transient, Unrecognized
from trading.models import OrderRequest, OrderStatus, OrderType, Side
from trading.venues.ccxt_venue import CcxtVenue


@pytest.fixture
async def fake():
    async with FakeBinance() as server:
        yield server


@pytest.fixture
async def venue(fake):
    v = CcxtVenue(
        "binance", "MASTER", api_key=fake.api_key, secret=fake.secret, config=fake.ccxt_config()
    )
    try:
        yield v
    finally:
        await v.close()


def limit_buy(client_id: str, amount: float = 0.01, price: float = 40_000.0) -> OrderRequest:
    return OrderRequest("BTC/USDT", Side.BUY, OrderType.LIMIT, amount, client_id, price=price)


# ------------------------------------------------------------------------------ market data


async def test_load_markets_converts_spot_markets_with_steps_and_minimums(venue):
    markets = await venue.load_markets()
    assert set(markets) == {"BTC/USDT", "ETH/USDT", "DOGE/USDT", "OLD/USDT"}
    btc = markets["BTC/USDT"]
    assert (btc.base, btc.quote, btc.active, btc.spot) == ("BTC", "USDT", True, True)
    assert (btc.min_amount, btc.min_cost) == (0.00001, 5.0)
    assert (btc.amount_step, btc.price_step) == (0.00001, 0.01)
    assert markets["DOGE/USDT"].amount_step == 1.0
    assert markets["OLD/USDT"].active is False  # status BREAK


async def test_load_markets_asks_only_for_spot_markets_and_the_server_time(venue, fake):
    await venue.load_markets()
    assert {path for _, path in fake.requests} == {EXCHANGE_INFO, TIME}


async def test_all_tickers_come_from_one_bulk_call(venue, fake):
    await venue.load_markets()
    tickers = await venue.fetch_tickers()
    assert venue.has_bulk_tickers
    assert fake.calls(TICKER_24HR) == 1
    btc = tickers["BTC/USDT"]
    assert (btc.last, btc.bid, btc.ask) == (50_000.0, 49_999.99, 50_000.01)
    assert btc.quote_volume == 5_000_000.0 and btc.change_pct == 1.5
    assert btc.timestamp > 1e9  # seconds, not milliseconds
    assert len(tickers) == 4


async def test_tickers_for_some_symbols_return_only_those(venue):
    tickers = await venue.fetch_tickers(["ETH/USDT", "DOGE/USDT"])
    assert set(tickers) == {"ETH/USDT", "DOGE/USDT"}
    assert await venue.fetch_tickers([]) == {}


async def test_candles_have_their_open_time_in_seconds(venue):
    candles = await venue.fetch_ohlcv("ETH/USDT", "1h", 5)
    assert len(candles) == 5
    assert [b.ts - a.ts for a, b in itertools.pairwise(candles)] == [3600.0] * 4
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in candles)
    assert 2_900 < candles[-1].close < 3_100


# --------------------------------------------------------------------------- account, orders


async def test_balance_shows_free_and_total_per_currency(venue):
    balance = await venue.fetch_balance()
    assert balance.free_of("USDT") == 10_000.0 and balance.total_of("BTC") == 0.5


async def test_limit_order_carries_our_client_id_and_rests_until_cancelled(venue, fake):
    order = await venue.create_order(limit_buy("bot-1"))
    assert (order.client_order_id, order.status, order.price) == ("bot-1", OrderStatus.OPEN, 40e3)
    assert [o["clientOrderId"] for o in fake.orders.values()] == ["bot-1"]
    assert [o.id for o in await venue.fetch_open_orders()] == [order.id]
    balance = await venue.fetch_balance()
    assert balance.free_of("USDT") == pytest.approx(9_600.0)
    assert balance.total_of("USDT") == pytest.approx(10_000.0)

    await venue.cancel_order(order.id, "BTC/USDT")
    assert (await venue.fetch_order(order.id, "BTC/USDT")).status is OrderStatus.CANCELED
    assert await venue.fetch_open_orders() == []
    with pytest.raises(Rejected, match="OrderNotFound"):
        await venue.cancel_order(order.id, "BTC/USDT")


async def test_market_order_fills_at_once(venue):
    request = OrderRequest("ETH/USDT", Side.BUY, OrderType.MARKET, 0.5, "bot-2")
    order = await venue.create_order(request)
    assert order.status is OrderStatus.CLOSED and order.filled == 0.5
    assert order.average == 3_000.0 and order.type is OrderType.MARKET
    assert (await venue.fetch_balance()).free_of("ETH") == 0.5


async def test_market_buy_with_a_reference_price_still_buys_the_base_amount(venue, fake):
    # Binance takes market buys in base: the reference price must not turn it into a cost.
    request = OrderRequest(
        "ETH/USDT", Side.BUY, OrderType.MARKET, 0.5, "cbe0abcdefgh1234567", reference_price=10.0
    )
    order = await venue.create_order(request)
    assert order.filled == 0.5 and order.average == 3_000.0
    assert [o["clientOrderId"] for o in fake.orders.values()] == ["cbe0abcdefgh1234567"]


async def test_find_order_by_client_id_and_none_when_the_exchange_never_saw_it(venue, fake):
    placed = await venue.create_order(limit_buy("bot-3"))
    found = await venue.find_order("bot-3", "BTC/USDT")
    assert found is not None and found.id == placed.id and found.client_order_id == "bot-3"
    assert await venue.find_order("never-sent", "BTC/USDT") is None
    assert fake.calls(ORDER, "GET") == 2  # looked up by origClientOrderId, no scan of history


async def test_open_orders_of_every_symbol_come_in_one_call(venue, fake):
    await venue.create_order(limit_buy("bot-4"))
    sell = OrderRequest("ETH/USDT", Side.SELL, OrderType.LIMIT, 0.1, "bot-5", price=9_000.0)
    fake.free["ETH"] = 1.0
    await venue.create_order(sell)
    before = fake.calls(OPEN_ORDERS)
    orders = await venue.fetch_open_orders()
    assert {o.client_order_id for o in orders} == {"bot-4", "bot-5"}
    assert fake.calls(OPEN_ORDERS) == before + 1


async def test_an_order_the_exchange_refuses_is_rejected(venue):
    too_big = OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, 10.0, "bot-6")
    with pytest.raises(Rejected, match="InsufficientFunds"):
        await venue.create_order(too_big)
    with pytest.raises(Rejected):
        await venue.create_order(limit_buy("bot-7", amount=0.00001, price=1.0))  # under notional


async def test_binance_spot_has_no_exchange_side_cancel_all_after(venue, fake):
    assert venue.has_cancel_all_after is False
    with pytest.raises(Fatal, match="NotSupported"):
        await venue.cancel_all_after(60)
    assert fake.requests == []


# ------------------------------------------------------------------------------------ clock


async def test_signed_calls_succeed_after_the_first_sync_with_the_exchange_clock_15s_ahead(fake):
    fake.clock_skew_ms = 15_000
    v = CcxtVenue(
        "binance", "M", api_key=fake.api_key, secret=fake.secret, config=fake.ccxt_config()
    )
    try:
        await v.load_markets()  # adjustForTimeDifference: ccxt reads the server time here
        assert v.clock_offset_ms == pytest.approx(15_000, abs=1_000)
        assert (await v.fetch_balance()).free_of("USDT") == 10_000.0
    finally:
        await v.close()


async def test_a_clock_that_drifts_later_is_rejected_then_fixed_by_sync_time(venue, fake):
    await venue.load_markets()
    fake.clock_skew_ms = -15_000  # the exchange now runs 15 s behind us
    with pytest.raises(ClockRejected, match="-1021"):
        await venue.fetch_balance()
    offset = await venue.sync_time()
    assert offset == pytest.approx(-15_000, abs=1_000) and venue.clock_offset_ms == offset
    assert (await venue.fetch_balance()).free_of("USDT") == 10_000.0


# ----------------------------------------------------------------------------------- faults


async def test_an_unknown_error_code_is_unrecognized_not_fatal(venue, fake):
    await venue.load_markets()
    fake.fail_code(ACCOUNT, code=-9999, status=400, times=-1)
    with pytest.raises(Unrecognized, match="-9999"):
        await venue.fetch_balance()
    assert fake.calls(ACCOUNT) == 1  # the venue itself never retries


async def test_binance_unknown_error_minus_1000_is_transient(venue, fake):
    await venue.load_markets()
    fake.fail_code(ACCOUNT, code=-1000, msg="An unknown error occured.", status=500)
    with pytest.raises(Transient, match="OperationFailed"):
        await venue.fetch_balance()


@pytest.mark.parametrize("status", [429, 418])
async def test_a_rate_limit_carries_retry_after_from_the_response(venue, fake, status):
    await venue.load_markets()
    fake.fail_rate_limit(TICKER_24HR, retry_after=7, status=status)
    with pytest.raises(RateLimited) as info:
        await venue.fetch_tickers()
    assert info.value.retry_after == 7.0
    assert (await venue.fetch_tickers())["BTC/USDT"].last == 50_000.0


async def test_a_rate_limit_without_retry_after_leaves_it_unset(venue, fake):
    await venue.load_markets()
    fake.fail_rate_limit(KLINES, retry_after=None)
    with pytest.raises(RateLimited) as info:
        await venue.fetch_ohlcv("BTC/USDT", "1m", 3)
    assert info.value.retry_after is None


async def test_an_html_404_on_the_account_endpoint_is_transient(venue, fake):
    await venue.load_markets()
    fake.fail_html(ACCOUNT, status=404)
    with pytest.raises(Transient, match="404") as info:
        await venue.fetch_balance()
    assert "signature=" not in str(info.value)  # the signed query string is cut
    assert (await venue.fetch_balance()).free_of("USDT") == 10_000.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_is_transient(venue, fake, status):
    fake.fail_server_error(EXCHANGE_INFO, status=status)
    with pytest.raises(Transient, match=str(status)):
        await venue.load_markets()


async def test_a_closed_port_is_transient():
    async with FakeBinance() as gone:
        config = gone.ccxt_config()
    v = CcxtVenue("binance", "MASTER", config=config)
    try:
        with pytest.raises(Transient, match="ExchangeNotAvailable"):
            await v.load_markets()
    finally:
        await v.close()


async def test_a_wrong_key_is_fatal_and_neither_message_nor_log_shows_a_secret(fake, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "wrong-secret-0123456789"
    v = CcxtVenue("binance", "MASTER", api_key="wrong-key-abcdefghij", secret=secret,
                  config=fake.ccxt_config())  # fmt: skip
    try:
        with pytest.raises(Fatal, match="AuthenticationError") as info:
            await v.fetch_balance()
    finally:
        await v.close()
    text = f"{info.value} {info.value.__cause__} {caplog.text}"
    assert "wrong-key-abcdefghij" not in text and secret not in text


async def test_signed_requests_never_log_the_api_key_even_at_debug(venue, fake, caplog):
    caplog.set_level(logging.DEBUG)
    await venue.fetch_balance()
    await venue.create_order(limit_buy("bot-8"))
    assert fake.api_key not in caplog.text and fake.secret not in caplog.text


async def test_a_public_only_venue_reads_markets_but_no_account(fake):
    v = CcxtVenue("binance", "MASTER", config=fake.ccxt_config())
    try:
        assert v.public_only and not v.has_cancel_all_after
        assert "BTC/USDT" in await v.fetch_tickers()
        with pytest.raises(Fatal, match="apiKey"):
            await v.fetch_balance()
        assert fake.calls(ACCOUNT) == 0
    finally:
        await v.close()


async def test_sandbox_mode_talks_to_the_testnet_urls(fake):
    config = fake.ccxt_config()
    config["urls"]["api"] = {k: "http://127.0.0.1:1/unused" for k in config["urls"]["api"]}
    v = CcxtVenue("binance", "MASTER", api_key=fake.api_key, secret=fake.secret, sandbox=True,
                  config=config)  # fmt: skip
    try:
        assert (await v.fetch_balance()).free_of("USDT") == 10_000.0
    finally:
        await v.close()


async def test_sandbox_on_an_exchange_without_testnet_is_fatal():
    with pytest.raises(Fatal, match="kraken:master connect"):
        CcxtVenue("kraken", "MASTER", sandbox=True)


# ------------------------------------------------------------ through the resilience layer


async def test_a_404_on_the_balance_endpoint_is_retried_then_escalated_after_the_limit(venue, fake):
    from trading.connector import Connector

    clock = FakeClock()
    connector = Connector(venue, clock=clock, sync_failure_limit=300.0, read_attempts=3)
    await connector.load_markets()
    fake.fail_html(ACCOUNT, status=404, times=-1)
    outcomes = []
    for _ in range(10):  # a sync every 2 minutes, bounded
        try:
            await connector.sync()
        except (Transient, Fatal) as fault:
            outcomes.append((clock.monotonic(), type(fault)))
            if isinstance(fault, Fatal):
                assert "sync failing" in fault.message and "404" in fault.message
                break
        clock.advance(120.0)
    assert fake.calls(ACCOUNT) >= 3  # the first sync retried the read
    kinds = [kind for _, kind in outcomes]
    assert kinds[-1] is Fatal and all(issubclass(k, Transient) for k in kinds[:-1])
    first_failure = outcomes[0][0]
    assert all(t - first_failure <= 300.0 for t, kind in outcomes[:-1])
    assert outcomes[-1][0] - first_failure > 300.0
