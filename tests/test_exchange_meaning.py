"""Vendor answers classified by what they mean: the real ccxt clients' exceptions, read once in
trading/venues/ccxt_faults.py, against the loopback fake of Binance and ccxt's own error
handlers."""

from __future__ import annotations

import json

import ccxt.async_support as ccxt_async
import pytest

from sim.fakes.binance import (
    ACCOUNT,
    DISCONNECTED,
    ORDER,
    SERVER_BUSY,
    TICKER_24HR,
    UNKNOWN,
)
from tests.binance_support import fake_fixture, venue_fixture  # noqa: F401 (fixtures by name)
from trading.errors import (
    ClockRejected,
    Closed,
    DuplicateOrder,
    Fatal,
    Fault,
    OrderNotFound,
    RateLimited,
    Recoverable,
    Rejected,
    Transient,
    Unrecognized,
)
from trading.models import OrderRequest, OrderType, Side
from trading.venues.ccxt_faults import classify, vendor_codes
from trading.venues.ccxt_venue import CcxtVenue


def limit_buy(client_id: str) -> OrderRequest:
    return OrderRequest("BTC/USDT", Side.BUY, OrderType.LIMIT, 0.01, client_id, price=40_000.0)


def test_the_fault_families_are_siblings_so_recoverable_never_catches_fatal():
    assert not issubclass(Fatal, Recoverable) and not issubclass(Recoverable, Fatal)
    for kind in (Transient, RateLimited, Rejected, Unrecognized):
        assert issubclass(kind, Recoverable)
    assert Unrecognized.kind == "unrecognized"
    assert not issubclass(Closed, Exception)  # a cancellation: `except Exception` lets it by


# ----------------------------------------------------------- binance, through the real client


@pytest.mark.parametrize(
    ("answer", "path"),
    [(SERVER_BUSY, TICKER_24HR), (DISCONNECTED, ACCOUNT), (UNKNOWN, ACCOUNT)],
    ids=["-1008 busy", "-1001 internal", "-1000 unknown"],
)
async def test_binance_try_again_answers_are_transient(venue, fake, answer, path):
    fake.fail_code(path, **answer)
    read = venue.fetch_tickers if path == TICKER_24HR else venue.fetch_balance
    with pytest.raises(Transient, match=str(answer["code"])):
        await read()


@pytest.mark.parametrize("code", [-1006, -1007])
async def test_binance_execution_status_unknown_on_an_order_is_transient(venue, fake, code):
    # Transient, so the connector looks the order up by client id and never sends it again.
    fake.fail_code(ORDER, code=code, msg="Execution status unknown.", status=500)
    with pytest.raises(Transient, match=str(code)):
        await venue.create_order(limit_buy("cid-1"))


async def test_binance_weight_exceeded_is_rate_limited_even_without_a_429(venue, fake):
    fake.fail_code(ACCOUNT, code=-1003, msg="Too much request weight used.", status=400)
    with pytest.raises(RateLimited):
        await venue.fetch_balance()


async def test_an_unknown_code_is_unrecognized_but_with_a_5xx_status_transient(venue, fake):
    fake.fail_code(ACCOUNT, code=-9999, status=400)
    with pytest.raises(Unrecognized, match="-9999"):
        await venue.fetch_balance()
    fake.fail_code(ACCOUNT, code=-9999, status=503)
    with pytest.raises(Transient, match="-9999"):
        await venue.fetch_balance()


async def test_a_bad_signature_is_fatal_and_says_the_key_or_secret_is_wrong(fake):
    v = CcxtVenue("binance", "MASTER", api_key=fake.api_key, secret="wrong-secret-0123456789",
                  config=fake.ccxt_config())  # fmt: skip
    try:
        with pytest.raises(Fatal, match="-1022") as caught:
            await v.fetch_balance()
    finally:
        await v.close()
    assert "the API key or its secret is wrong" in caught.value.message


async def test_a_reused_client_order_id_is_a_duplicate_read_from_binance_wording(venue):
    await venue.create_order(limit_buy("cid-dup"))
    with pytest.raises(DuplicateOrder, match="Duplicate order sent"):
        await venue.create_order(limit_buy("cid-dup"))


async def test_a_cancel_of_an_order_binance_does_not_know_is_order_not_found(venue):
    with pytest.raises(OrderNotFound):
        await venue.cancel_order("424242", "BTC/USDT")


# ----------------------------------------------------------------------------- closed client


async def test_a_call_on_a_closed_client_is_closed_not_a_fault(fake):
    v = CcxtVenue("binance", "MASTER", config=fake.ccxt_config())
    assert "BTC/USDT" in await v.fetch_tickers()
    await v.close()
    with pytest.raises(Closed) as caught:
        await v.fetch_tickers()
    assert not isinstance(caught.value, Fault)
    assert caught.value.call == "fetch_tickers" and "closed by the user" in caught.value.message


# ---------------------------------------------------- other exchanges, through ccxt's handlers


def kraken_refusal(error: str) -> Exception:
    """What ccxt's kraken client raises for Kraken's {"error": [...]} answer."""
    kraken = ccxt_async.kraken()  # never opened: no session to close
    body = json.dumps({"error": [error], "result": {}})
    with pytest.raises(Exception) as caught:
        kraken.handle_errors(
            200, "OK", "https://api.kraken.com/0/private/Balance", "POST", {}, body,
            json.loads(body), {}, "",
        )  # fmt: skip
    return caught.value


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("EService:Unavailable", Transient),
        ("EService:Busy", Transient),
        ("EGeneral:Internal error", Transient),
        ("EAPI:Rate limit exceeded", RateLimited),
        ("EOrder:Rate limit exceeded", RateLimited),
        ("EAPI:Invalid nonce", ClockRejected),
        ("EGeneral:Something new", Unrecognized),
    ],
)
def test_kraken_answers_by_meaning(error, kind):
    fault = classify(kraken_refusal(error), "kraken:main", "fetch_balance", dialect="kraken")
    assert type(fault) is kind and error in fault.message


@pytest.mark.parametrize("error", ["EAPI:Invalid signature", "EAPI:Invalid key"])
def test_kraken_key_refusals_are_fatal_and_say_the_key_or_secret_is_wrong(error):
    fault = classify(kraken_refusal(error), "kraken:main", "fetch_balance", dialect="kraken")
    assert type(fault) is Fatal
    assert "the API key or its secret is wrong" in fault.message and error in fault.message


@pytest.mark.parametrize(
    ("dialect", "text", "kind"),
    [
        ("okx", 'okx {"code":"50001","data":[],"msg":"Service unavailable"}', Transient),
        ("okx", 'okx {"code":"50013","data":[],"msg":"System is busy"}', Transient),
        ("okx", 'okx {"code":"1","data":[{"sCode":"50026","sMsg":"System error"}]}', Transient),
        ("okx", 'okx {"code":"50113","data":[],"msg":"Invalid signature"}', Fatal),
        ("bybit", 'bybit {"retCode":10016,"retMsg":"System error. Try again."}', Transient),
        ("bybit", 'bybit {"retCode":10006,"retMsg":"Too many visits!"}', RateLimited),
        ("coinbase", 'coinbase {"error":"internal_server_error","message":"oops"}', Transient),
        ("binance", 'binance {"code":-1008,"msg":"Server is currently overloaded"}', Transient),
        ("okx", 'okx {"code":"59999","data":[],"msg":"Something new"}', Unrecognized),
        ("", 'binance {"code":-1008,"msg":"overloaded"}', Unrecognized),  # no table: no guess
    ],
)
def test_vendor_codes_the_exchange_table_knows_override_a_bare_exchange_error(dialect, text, kind):
    fault = classify(ccxt_async.ExchangeError(text), f"{dialect}:main", "fetch_balance",
                     dialect=dialect)  # fmt: skip
    assert type(fault) is kind


def test_vendor_codes_are_read_from_the_json_body_only():
    assert vendor_codes('binance {"code":-1008,"msg":"x"}') == ["-1008"]
    assert vendor_codes('kraken {"error":["EAPI:Invalid key"],"result":{}}') == ["EAPI:Invalid key"]
    assert vendor_codes('okx {"code":"1","data":[{"sCode":"51016"}]}') == ["1", "51016"]
    assert vendor_codes("binance GET https://x 503 <html>busy</html>") == []
    assert vendor_codes("binance {not json") == []


@pytest.mark.parametrize(
    "text",
    ['binance {"code":-2010,"msg":"Duplicate order sent."}',
     'okx {"code":"1","data":[{"sCode":"51016","sMsg":"Duplicated clOrdId"}]}'],
)  # fmt: skip
def test_a_duplicate_is_read_from_the_wording_only_of_a_create(text):
    refusal = ccxt_async.InvalidOrder(text)
    assert type(classify(refusal, "v", "create_order")) is DuplicateOrder
    assert type(classify(refusal, "v", "fetch_order")) is Rejected


def test_an_order_gone_is_read_from_the_wording_only_of_a_cancel():
    # A lookup refused this way is not "gone" at once: reconciliation waits for it to repeat.
    refusal = ccxt_async.InvalidOrder('kraken {"error":["EOrder:Unknown order"]}')
    assert type(classify(refusal, "v", "cancel_order")) is OrderNotFound
    assert type(classify(refusal, "v", "fetch_order")) is Rejected
