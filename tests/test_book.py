"""The book's client order ids (valid on every exchange), its fees (valued in quote), and its
changes: each one written whole or not at all, and applied once."""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import replace

import pytest

from sim.clock import FakeClock
from trading.book import Book, Tracked, client_id_purpose
from trading.events import TradeClosed
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
    kw.setdefault("notify", lambda event: None)
    return Book(
        "binance:main",
        store=store or Store(),
        clock=clock or FakeClock(),
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


def sent(
    book: Book,
    side: Side,
    amount: float,
    price: float,
    fee: float = 0.0,
    currency: str | None = "USDT",
    *,
    limit: bool = False,
) -> tuple[Tracked, Order]:
    """An order recorded by the book and sent; the exchange's answer (filled at once, or resting
    when `limit`) is returned, not yet applied."""
    purpose = Purpose.ENTRY if side is Side.BUY else Purpose.EXIT
    cid = book.new_client_id(purpose)
    kind = OrderType.LIMIT if limit else OrderType.MARKET
    tracked = book.pending(OrderRequest("ETH/USDT", side, kind, amount, cid), purpose)
    order = Order(
        id=f"x{cid}",
        symbol="ETH/USDT",
        side=side,
        type=kind,
        amount=amount,
        filled=0.0 if limit else amount,
        status=OrderStatus.OPEN if limit else OrderStatus.CLOSED,
        timestamp=book.clock.time(),
        client_order_id=cid,
        price=price if limit else None,
        average=None if limit else price,
        fee_cost=0.0 if limit else fee,
        fee_currency=currency,
    )
    return tracked, order


def fill(book: Book, side: Side, amount: float, price: float, fee: float, currency: str | None):
    """An order sent through the book and filled at once by the exchange."""
    return book.placed(*sent(book, side, amount, price, fee, currency))


def filled(order: Order, amount: float, fee: float = 0.0) -> Order:
    """A resting limit order as the exchange reports it once `amount` of it filled."""
    status = OrderStatus.CLOSED if amount >= order.amount else OrderStatus.OPEN
    return replace(order, filled=amount, average=order.price, fee_cost=fee, status=status)


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


# ------------------------------------------------------------------------- atomic changes


class FullDisk(Store):
    """A store whose writes starting with `failing` fail, as they would on a full disk."""

    failing: str | None = None

    def _write(self, sql, params=()):
        if self.failing and sql.startswith(self.failing):
            raise sqlite3.OperationalError("database or disk is full")
        return super()._write(sql, params)


def test_a_close_whose_trade_cannot_be_written_leaves_the_book_as_the_store_has_it():
    events: list = []
    store = FullDisk()
    book = make_book(store=store, notify=events.append)
    book.free = {"USDT": 10_000.0}
    fill(book, Side.BUY, 1.0, 2_000.0, 2.0, "USDT")
    tracked, order = sent(book, Side.SELL, 1.0, 2_100.0, 2.1)
    free = dict(book.free)
    store.failing = "INSERT INTO trades"

    with pytest.raises(sqlite3.OperationalError):
        book.placed(tracked, order)

    assert book.positions == {p.symbol: p for p in store.positions(book.label)}
    assert book.positions["ETH/USDT"].amount == 1.0  # still held, still to be sold
    assert list(book.orders) == [o.order.id for o in store.orders(book.label, open_only=True)]
    assert book.orders[tracked.order.id] is tracked and not tracked.confirmed
    assert book.free == free
    assert [e for e in events if isinstance(e, TradeClosed)] == []
    store.failing = None  # the disk has room again; the sync finds the order by its client id
    [trade] = book.placed(tracked, order)
    assert trade.amount == 1.0 and book.positions == {} and store.positions(book.label) == []
    assert store.trades() == [trade]
    assert [e.symbol for e in events if isinstance(e, TradeClosed)] == ["ETH/USDT"]


def test_an_older_report_of_an_order_is_ignored_and_its_fill_not_applied_again_on_restart(
    tmp_path,
):
    clock = FakeClock()
    book = make_book(clock, Store.in_dir(tmp_path))
    book.free = {"USDT": 10_000.0}
    tracked, resting = sent(book, Side.BUY, 1.0, 2_000.0, limit=True)
    book.placed(tracked, resting)
    book.update(filled(resting, 0.5))
    book.update(resting)  # a look at the order taken before the fill, arriving late
    assert book.positions["ETH/USDT"].amount == 0.5

    restarted = make_book(clock, Store.in_dir(tmp_path))
    restarted.load(since=0.0)
    restarted.update(filled(resting, 0.5))
    assert restarted.positions["ETH/USDT"].amount == 0.5
    restarted.update(filled(resting, 1.0))
    assert restarted.positions["ETH/USDT"].amount == 1.0


def test_a_position_sold_in_two_parts_across_a_restart_is_one_trade_for_the_whole(tmp_path):
    clock = FakeClock()
    book = make_book(clock, Store.in_dir(tmp_path))
    book.free = {"USDT": 10_000.0}
    fill(book, Side.BUY, 1.0, 2_000.0, 2.0, "USDT")
    tracked, resting = sent(book, Side.SELL, 1.0, 2_100.0, limit=True)
    book.placed(tracked, resting)
    book.update(filled(resting, 0.5, fee=1.05))

    restarted = make_book(clock, Store.in_dir(tmp_path))
    restarted.load(since=0.0)
    [trade] = restarted.update(filled(resting, 1.0, fee=2.1))
    assert trade.amount == 1.0 and trade.exit_price == pytest.approx(2_100.0)
    assert trade.fees == pytest.approx(2.0 + 2.1)
    assert trade.pnl == pytest.approx(100.0 - 4.1)


def test_a_placement_answer_arriving_after_a_sync_adopted_the_order_is_older_news(tmp_path):
    clock = FakeClock()
    store = Store.in_dir(tmp_path)
    book = make_book(clock, store)
    book.free = {"USDT": 10_000.0}
    tracked, resting = sent(book, Side.BUY, 1.0, 2_000.0, limit=True)
    book.placed(tracked, filled(resting, 1.0))  # a sync found it by client id, filled
    book.placed(tracked, resting)  # the send's own answer, from before the fill, comes late

    assert book.orders == {} and store.orders(book.label, open_only=True) == []
    restarted = make_book(clock, Store.in_dir(tmp_path))
    restarted.load(since=0.0)
    assert restarted.orders == {} and restarted.positions["ETH/USDT"].amount == 1.0
