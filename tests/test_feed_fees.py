"""A fill's fee when the look that applied the fill did not carry it (a pushed fill without
its fee): the next look that carries it charges it once, never twice."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sim.clock import FakeClock
from tests.engine_support import make_rig
from tests.test_book import make_book, sent
from trading.models import Order, OrderStatus, Side

ETH = "ETH/USDT"


def without_fee(order: Order) -> Order:
    return replace(order, fee_cost=0.0, fee_currency=None)


async def test_a_pushed_fill_without_its_fee_is_charged_the_fee_the_syncs_rest_look_reports():
    rig = make_rig(FakeClock())
    await rig.trader.start()
    bid = rig.paper.price(ETH)
    resting = await rig.trader.buy(ETH, 300.0, limit=round(bid * 0.99, 2))
    assert resting.ok
    rig.paper.shock(ETH, -5)
    await rig.paper.advance()  # the limit buy fills at the exchange
    [order] = [o for o in rig.sent() if o.side is Side.BUY]
    assert order.status is OrderStatus.CLOSED and order.fee_cost > 0

    rig.trader.account.reconciler.apply(without_fee(order))  # the stream's report: no fee
    assert rig.trader.book.positions[ETH].amount == pytest.approx(order.filled)
    await rig.trader.account.sync()  # REST: the order looked up once more, with its fee

    sold = await rig.trader.sell(ETH)
    assert sold.ok
    [trade] = rig.store.trades(rig.trader.label)
    [exit_order] = [o for o in rig.sent() if o.side is Side.SELL]
    assert trade.fees == pytest.approx(order.fee_cost + exit_order.fee_cost)


def test_the_placement_answer_charges_the_fee_a_push_that_came_first_lacked():
    book = make_book()
    book.free = {"USDT": 10_000.0}
    tracked, answer = sent(book, Side.BUY, 1.0, 2_000.0, fee=2.0)
    book.placed(tracked, without_fee(answer))  # the push arrived before the answer
    book.placed(tracked, answer)
    [trade] = book.placed(*sent(book, Side.SELL, 1.0, 2_100.0, fee=2.1))
    assert trade.fees == pytest.approx(2.0 + 2.1)
    assert book.free["USDT"] == pytest.approx(10_000.0 - 2_000.0 - 2.0 + 2_100.0 - 2.1)


def test_a_rest_look_without_the_fee_does_not_make_the_next_push_charge_it_twice():
    book = make_book()
    book.free = {"USDT": 10_000.0}
    tracked, resting = sent(book, Side.BUY, 1.0, 2_000.0, limit=True)
    book.placed(tracked, resting)
    half = replace(resting, filled=0.5, average=2_000.0, fee_cost=1.0, fee_currency="USDT")
    book.update(half)  # pushed with the fee of the half filled
    book.update(without_fee(half))  # the REST read of the open orders carries none
    book.update(replace(half, filled=1.0, fee_cost=2.0, status=OrderStatus.CLOSED))
    [trade] = book.placed(*sent(book, Side.SELL, 1.0, 2_100.0, fee=2.1))
    assert trade.fees == pytest.approx(2.0 + 2.1)

