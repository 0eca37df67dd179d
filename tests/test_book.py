"""The book's client order ids (valid on every exchange) and its fees (valued in quote)."""

from __future__ import annotations

import logging
import re

import pytest

from trading.book import Book, client_id_purpose
from trading.clock import FakeClock
from trading.models import Market, Order, OrderRequest, OrderStatus, OrderType, Side
from trading.modes import Purpose
from trading.store import ClosedTrade, Store

PURPOSES = tuple(Purpose)
UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

# What each exchange accepts as a client order id, as its API documents it.
CLIENT_ID_RULES = {
    # newClientOrderId: "^[\.A-Z\:/a-z0-9_-]{1,36}$" (Binance spot API, new order).
    "binance": r"[.A-Z:/a-z0-9_-]{1,36}",
    # cl_ord_id: a UUID (long or 32 hex) or free text of at most 18 characters (Kraken spot
    # guide "Client Order Identifiers"); longer free text is refused.
    "kraken": rf"{UUID}|[0-9a-fA-F]{{32}}|[\x21-\x7e]{{1,18}}",
    # clOrdId: 1-32 case-sensitive letters and digits (OKX v5, place order).
    "okx": r"[A-Za-z0-9]{1,32}",
    # orderLinkId: at most 36 of letters, digits, "-" and "_" (Bybit v5, place order).
    "bybit": r"[A-Za-z0-9_-]{1,36}",
    # client_order_id: no documented format; ccxt itself sends "ccxt-" + a UUID (41 chars),
    # so letters, digits and dashes up to that length are known to pass.
    "coinbase": r"[A-Za-z0-9-]{1,41}",
}


def make_book(clock: FakeClock | None = None, store: Store | None = None, **kw) -> Book:
    markets = {"ETH/USDT": Market("ETH/USDT", "ETH", "USDT", min_amount=0.001, min_cost=5.0)}
    return Book(
        "binance:main",
        store=store or Store(),
        clock=clock or FakeClock(),
        notify=lambda event: None,
        quote="USDT",
        markets=lambda: markets,
        **kw,
    )


# ------------------------------------------------------------------------- client order ids


@pytest.mark.parametrize("exchange", sorted(CLIENT_ID_RULES))
def test_client_order_ids_of_every_purpose_are_valid_on_each_exchange(exchange):
    book = make_book()
    ids = [book.new_client_id(purpose) for purpose in (*PURPOSES, "unknown")]
    rule = re.compile(CLIENT_ID_RULES[exchange])
    assert [i for i in ids if not rule.fullmatch(i)] == []


def test_client_order_ids_are_18_lowercase_letters_and_digits_and_tell_their_purpose():
    book = make_book()
    for purpose in PURPOSES:
        cid = book.new_client_id(purpose)
        assert re.fullmatch(r"[a-z0-9]{18}", cid), cid
        assert client_id_purpose(cid) == purpose
    assert client_id_purpose("x-AB12cd") is None and client_id_purpose(None) is None


def test_client_order_ids_stay_unique_in_one_millisecond_and_across_a_restart(tmp_path):
    clock = FakeClock()  # time stands still: every id is made in the same millisecond
    store = Store.in_dir(tmp_path)
    first = [make_book(clock, store).new_client_id(Purpose.ENTRY)]
    book = make_book(clock, store)
    first += [book.new_client_id(Purpose.ENTRY) for _ in range(5_000)]
    restarted = make_book(clock, store)  # a new run, same store, same instant
    second = [restarted.new_client_id(Purpose.ENTRY) for _ in range(5_000)]
    assert len(set(first) | set(second)) == 10_001
    assert all(len(i) == 18 for i in first + second)


def test_client_order_ids_keep_their_length_and_order_as_time_goes_on():
    clock = FakeClock(start=0.0)
    book = make_book(clock)
    early = book.new_client_id(Purpose.EXIT)
    clock.advance(86_400 * 365 * 30)  # thirty years later
    late = book.new_client_id(Purpose.EXIT)
    assert len(early) == len(late) == 18
    assert early[3:11] < late[3:11]  # the time part


# -------------------------------------------------------------------------------- fees


def fill(book: Book, side: Side, amount: float, price: float, fee: float, currency: str | None):
    """An order sent through the book and filled at once by the exchange."""
    purpose = Purpose.ENTRY if side is Side.BUY else Purpose.EXIT
    cid = book.new_client_id(purpose)
    tracked = book.pending(OrderRequest("ETH/USDT", side, OrderType.MARKET, amount, cid), purpose)
    order = Order(
        id=f"x{cid}",
        symbol="ETH/USDT",
        side=side,
        type=OrderType.MARKET,
        amount=amount,
        filled=amount,
        status=OrderStatus.CLOSED,
        timestamp=book.clock.time(),
        client_order_id=cid,
        average=price,
        fee_cost=fee,
        fee_currency=currency,
    )
    return book.placed(tracked, order)


def round_trip(book: Book, fee_currency: str, entry_fee: float, exit_fee: float) -> ClosedTrade:
    book.free = {"USDT": 10_000.0, "BNB": 1.0}
    fill(book, Side.BUY, 1.0, 2_000.0, entry_fee, fee_currency)
    [trade] = fill(book, Side.SELL, 1.0, 2_100.0, exit_fee, fee_currency)
    return trade


def test_a_fee_in_bnb_is_valued_at_the_bnb_price_not_the_traded_coins():
    prices = {"BNB/USDT": 600.0}
    book = make_book(price_of=prices.get)
    trade = round_trip(book, "BNB", entry_fee=0.0015, exit_fee=0.0016)
    assert trade.fees == pytest.approx(0.0015 * 600 + 0.0016 * 600)  # 1.86, not 6.36 at ETH's
    assert trade.pnl == pytest.approx(100.0 - 1.86)
    assert book.free["BNB"] == pytest.approx(1.0 - 0.0031)  # paid in BNB ...
    assert book.free["USDT"] == pytest.approx(10_100.0)  # ... not in USDT


def test_a_fee_in_a_currency_without_a_price_is_left_out_of_pnl_and_logged_once(caplog):
    caplog.set_level(logging.WARNING)
    book = make_book()  # no prices at all
    trade = round_trip(book, "BNB", entry_fee=0.0015, exit_fee=0.0016)
    assert trade.fees == 0.0 and trade.pnl == pytest.approx(100.0)
    warnings = [r.getMessage() for r in caplog.records if "left out of PnL" in r.getMessage()]
    assert len(warnings) == 1 and "BNB" in warnings[0]


def test_a_fee_in_a_currency_quoted_the_other_way_is_divided_by_its_price():
    book = make_book(price_of={"USDT/TRY": 40.0}.get)
    trade = round_trip(book, "TRY", entry_fee=40.0, exit_fee=80.0)
    assert trade.fees == pytest.approx(3.0)


def test_a_fee_in_the_bought_coin_is_valued_at_the_fill_price_and_kept_from_the_position():
    book = make_book()
    book.free = {"USDT": 10_000.0}
    fill(book, Side.BUY, 1.0, 2_000.0, 0.001, "ETH")
    assert book.positions["ETH/USDT"].amount == pytest.approx(0.999)
    assert book.free["ETH"] == pytest.approx(0.999)
    [trade] = fill(book, Side.SELL, 0.999, 2_100.0, 2.0979, "USDT")
    assert trade.fees == pytest.approx(2.0 + 2.0979)
    assert book.free["USDT"] == pytest.approx(10_000.0 - 2_000.0 + 0.999 * 2_100.0 - 2.0979)
