"""The paper exchange's account on disk: a new PaperExchange on the same file continues the
account exactly (balances, every order with its reservations and trigger state, the id counter,
the dead man's deadline, the market's path and shocks), writes before it answers, and refuses a
file it cannot read rather than start afresh."""

from __future__ import annotations

import json
import sqlite3

import pytest

from sim.clock import FakeClock
from tests.test_paper_stops import ETH, at_dip, stop_market
from trading.errors import Transient
from trading.models import OrderRequest, OrderStatus, OrderType, Side
from trading.venues.paper import PaperExchange
from trading.venues.paper_state import PaperState, PaperStateError, state_path

SOL = "SOL/USDT"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def path(tmp_path):
    return state_path(tmp_path, "paper", "MAIN")


def exchange(clock: FakeClock, path, **options) -> PaperExchange:
    return PaperExchange(
        clock=clock, balances={"USDT": 1_000.0, "ETH": 2.0}, state=PaperState(path), **options
    )


def limit_buy(price: float, cid: str = "l1") -> OrderRequest:
    return OrderRequest(ETH, Side.BUY, OrderType.LIMIT, 0.1, cid, price=price)


async def test_a_new_exchange_on_the_file_continues_balances_orders_and_ids(clock, path):
    first = exchange(clock, path)
    price = first.price(ETH)
    await first.create_order(OrderRequest(ETH, Side.BUY, OrderType.MARKET, 0.2, "m1"))
    await first.create_order(limit_buy(round(price * 0.9, 1)))
    await first.create_order(stop_market(1.5, round(price * 0.95, 1)))
    balance, orders = first.peek_balance(), first.order_log
    await first.close()

    second = exchange(clock, path)

    assert second.restored and second.peek_balance() == balance and second.order_log == orders
    free = (await second.fetch_balance()).free
    assert free["ETH"] == pytest.approx(0.7) and free["USDT"] < balance.total["USDT"] - 89
    assert [o.client_order_id for o in await second.fetch_open_orders()] == ["l1", "s1"]
    assert (await second.find_order("m1", ETH)).status is OrderStatus.CLOSED
    new = await second.create_order(OrderRequest(ETH, Side.SELL, OrderType.MARKET, 0.1, "m2"))
    assert new.id not in {o.id for o in orders}  # an id is never given twice


async def test_what_a_call_answered_is_on_disk_before_the_answer(clock, path):
    paper = exchange(clock, path)
    order = await paper.create_order(OrderRequest(ETH, Side.BUY, OrderType.MARKET, 0.2, "m1"))

    reader = PaperState(path)  # another look at the file while the exchange still runs
    try:
        assert reader.saved is not None
        [saved] = reader.saved.orders
        assert (saved["id"], saved["filled"], saved["status"]) == (order.id, 0.2, "closed")
        assert reader.saved.head["book"]["balances"] == paper.peek_balance().total
    finally:
        reader.close()
    await paper.close()


async def test_on_a_later_day_the_market_continues_the_same_path_with_its_shocks(clock, path):
    first = exchange(clock, path)
    first.shock(SOL, -20)
    await first.close()
    clock.advance(2 * 86_400 + 3_600)  # down for two days: another anchor day if not kept

    second = exchange(clock, path)

    # `first` is closed but still knows its path: the market as if no one had restarted.
    assert second.price(ETH) == first.price(ETH)
    assert second.price(SOL) == first.price(SOL)
    await second.close()


async def test_a_resting_stop_triggers_after_a_restart_exactly_as_without_one(clock, path):
    twin_clock = FakeClock()
    twin = PaperExchange(clock=twin_clock, balances={"USDT": 1_000.0, "ETH": 2.0})
    first = exchange(clock, path)
    end, low = await at_dip(clock, first)
    twin_clock.advance(clock.time() - twin_clock.time())
    for paper in (first, twin):
        await paper.create_order(stop_market(1.0, round(low * 1.001, 1)))
    await first.close()

    second = exchange(clock, path)
    for c in (clock, twin_clock):
        c.advance(end - c.time())
    await second.advance()
    await twin.advance()

    [stop] = second.order_log
    assert stop.status is OrderStatus.CLOSED and stop.filled == 1.0
    assert second.order_log == twin.order_log and second.peek_balance() == twin.peek_balance()
    await second.close()


async def test_the_dead_man_deadline_survives_a_restart(clock, path):
    first = exchange(clock, path)
    await first.create_order(limit_buy(round(first.price(ETH) * 0.9, 1)))
    await first.cancel_all_after(60)
    await first.close()
    clock.advance(61)

    second = exchange(clock, path)

    assert await second.fetch_open_orders() == []
    [order] = second.order_log
    assert order.status is OrderStatus.CANCELED
    await second.close()


async def test_a_failed_save_fails_the_call_and_goes_with_the_next_one(clock, path):
    paper = exchange(clock, path)
    blocker = sqlite3.connect(path)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(Transient, match="not saved"):
            await paper.create_order(OrderRequest(ETH, Side.BUY, OrderType.MARKET, 0.2, "m1"))
    finally:
        blocker.rollback()
        blocker.close()
    # The order took effect (an answer lost, for the caller): found by its client id, and saved.
    assert (await paper.find_order("m1", ETH)) is not None
    await paper.close()
    assert exchange(clock, path).peek_balance().total_of("ETH") == pytest.approx(2.2)


def test_an_unreadable_file_is_refused_naming_it_and_left_as_it_was(clock, path):
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database at all")

    with pytest.raises(PaperStateError) as refused:
        exchange(clock, path)

    assert str(path) in str(refused.value) and "PAPER_RESET=true" in str(refused.value)
    assert path.read_bytes() == b"not a database at all"


async def test_a_damaged_account_is_refused_not_started_afresh(clock, path):
    await exchange(clock, path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'head'", (json.dumps({"book": 1}),))
    db.close()

    with pytest.raises(PaperStateError, match="cannot be read"):
        exchange(clock, path)


async def test_an_account_of_another_universe_is_refused(clock, path):
    await exchange(clock, path, seed=1).close()

    with pytest.raises(PaperStateError, match="'seed': 1") as refused:
        exchange(clock, path, seed=2)

    assert str(path) in str(refused.value)


async def test_fresh_starts_the_account_afresh_whatever_the_file_held(clock, path):
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database at all")

    paper = PaperExchange(clock=clock, state=PaperState(path, fresh=True))

    assert not paper.restored and paper.peek_balance().total == {"USDT": 10_000.0}
    await paper.close()


async def test_reset_keeps_the_market_and_the_id_counter_and_is_saved(clock, path):
    paper = exchange(clock, path)
    placed = await paper.create_order(limit_buy(round(paper.price(ETH) * 0.9, 1)))

    assert paper.reset().total == {"USDT": 1_000.0, "ETH": 2.0}

    assert paper.order_log == [] and await paper.fetch_open_orders() == []
    again = await paper.create_order(limit_buy(round(paper.price(ETH) * 0.9, 1), "l2"))
    assert again.id != placed.id
    await paper.close()
    assert [o.client_order_id for o in exchange(clock, path).order_log] == ["l2"]


def test_the_demo_clock_goes_on_from_the_last_start_and_never_back(path):
    wall = FakeClock()
    state = PaperState(path)
    first = state.paper_clock(300.0, wall)
    started = first.time()
    wall.advance(10)
    ran_to = first.time()
    assert ran_to == started + 3_000
    state.close()

    wall.advance(5)  # down for five seconds
    state = PaperState(path)
    again = state.paper_clock(60.0, wall)  # and restarted slower
    state.close()

    assert again.time() == ran_to + 5 * 300  # the downtime at the speed it ran at
    wall.advance(1)
    assert again.time() == ran_to + 1_500 + 60
