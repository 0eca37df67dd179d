"""The connector's money-critical cases again, on the paper exchange (FakeClock time)."""

from __future__ import annotations

import pytest

from sim.clock import FakeClock
from sim.faults import FaultyPaper
from tests.connector_support import (
    SYMBOL,
    clock_fixture,  # noqa: F401
    notes_fixture,  # noqa: F401
    sync_at,
)
from trading.connector import Connector
from trading.errors import Fatal, Transient
from trading.models import OrderRequest, OrderType, Side


@pytest.fixture
def paper(clock: FakeClock) -> FaultyPaper:
    return FaultyPaper(clock=clock, markets=5, rate_limit=0)


def paper_buy(paper: FaultyPaper, client_id: str) -> OrderRequest:
    """A resting limit buy 10 % under the market, worth about 50 USDT."""
    price = round(paper.price(SYMBOL) * 0.9)
    return OrderRequest(SYMBOL, Side.BUY, OrderType.LIMIT, 0.002, client_id, price=price)


async def test_paper_create_accepted_then_timed_out_leaves_exactly_one_order(paper, clock):
    conn = Connector(paper, clock=clock)
    await conn.load_markets()
    paper.inject("create_order", Transient("read timeout"), after=True)

    order = await conn.place(paper_buy(paper, "bot-1"))

    assert [o.client_order_id for o in paper.order_log] == ["bot-1"]
    assert order.id == paper.order_log[0].id
    assert paper.calls["create_order"] == 1
    assert (await conn.sync()).open_orders == (order,)


async def test_paper_create_that_failed_is_not_placed_again(paper, clock):
    conn = Connector(paper, clock=clock)
    await conn.load_markets()
    paper.inject("create_order", Transient)

    with pytest.raises(Transient):
        await conn.place(paper_buy(paper, "bot-2"))

    assert paper.order_log == []
    assert paper.calls["create_order"] == 1 and paper.calls["find_order"] == 1


async def test_paper_duplicate_client_order_id_returns_the_order_it_already_has(paper, clock):
    conn = Connector(paper, clock=clock)
    await conn.load_markets()
    request = paper_buy(paper, "bot-4")
    first = await conn.place(request)

    again = await conn.place(request)  # refused as a duplicate: the order exists

    assert again.id == first.id
    assert [o.id for o in paper.order_log] == [first.id]
    assert paper.calls["find_order"] == 1


async def test_paper_skewed_clock_is_resynced_and_the_call_retried_once(paper, clock):
    conn = Connector(paper, clock=clock)
    await conn.sync()
    paper.set_clock_skew(15.0)

    state = await conn.sync()

    assert state.balance.free_of("USDT") == 10_000.0
    assert paper.calls["sync_time"] == 2
    assert conn.clock_offset_ms == 15_000.0


async def test_paper_rate_limit_is_waited_out_exactly(clock):
    paper = FaultyPaper(clock=clock, markets=5, rate_limit=2.0, burst=2)
    conn = Connector(paper, clock=clock)
    await conn.tickers()
    await conn.tickers()

    await conn.tickers()  # the bucket is empty: the exchange says come back in 0.5 s

    assert clock.monotonic() == pytest.approx(0.5)
    assert paper.calls["fetch_tickers"] == 4
    assert conn.health.faults_by_kind == {"rate_limited": 1}


async def test_paper_retired_balance_endpoint_escalates_after_the_limit(paper, clock, notes):
    conn = Connector(paper, clock=clock, notify=notes, sync_failure_limit=300.0)
    paper.inject("fetch_balance", Transient("ExchangeNotAvailable: 404"), count=-1)
    with pytest.raises(Transient):
        await sync_at(conn, clock, 0.0)
    with pytest.raises(Transient):
        await sync_at(conn, clock, 290.0)  # fails at 291.5 s, after its backoff

    with pytest.raises(Fatal, match="404"):
        await sync_at(conn, clock, 301.0)

    assert [f.kind for f in notes.faults] == ["transient", "fatal"]


async def test_paper_cancel_of_an_already_cancelled_order_returns_false(paper, clock):
    conn = Connector(paper, clock=clock)
    await conn.load_markets()
    order = await conn.place(paper_buy(paper, "bot-3"))

    assert not (await conn.cancel(order.id, SYMBOL)).gone
    assert (await conn.cancel(order.id, SYMBOL)).gone
