"""The paper exchange's OCO sell: a limit above the market and a stop below it on the same
reserved coins; the first to trade cancels the other, as Binance's order list does."""

from __future__ import annotations

import pytest

from sim.clock import FakeClock
from trading.errors import Rejected
from trading.models import OrderRequest, OrderStatus, OrderType, Side
from trading.venues.paper import PaperExchange

ETH = "ETH/USDT"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def oco(amount: float, limit: float, stop: float, cid: str = "o1") -> OrderRequest:
    return OrderRequest(ETH, Side.SELL, OrderType.OCO, amount, cid, price=limit, stop_price=stop)


async def _ticker(paper: PaperExchange):
    return (await paper.fetch_tickers([ETH]))[ETH]


async def test_an_oco_holds_its_coins_once_and_its_stop_sells_them_while_nobody_calls(clock):
    paper = PaperExchange(clock=clock, balances={"USDT": 1_000.0, "ETH": 2.0})
    ticker = await _ticker(paper)
    order = await paper.create_order(oco(2.0, ticker.ask * 1.01, ticker.last * 0.95))
    assert order.is_open and (await paper.fetch_balance()).free_of("ETH") == 0.0

    paper.shock(ETH, -10)  # through the stop, with no call between
    clock.advance(120.0)
    await paper.advance()

    done = await paper.fetch_order(order.id, ETH)
    assert done.status is OrderStatus.CLOSED and done.filled == 2.0
    assert done.average is not None and done.average < ticker.last * 0.95
    assert paper.peek_balance().total_of("ETH") == 0.0


async def test_an_ocos_limit_fills_when_the_market_crosses_it(clock):
    paper = PaperExchange(clock=clock, balances={"USDT": 1_000.0, "ETH": 2.0})
    ticker = await _ticker(paper)
    limit = ticker.ask * 1.01
    order = await paper.create_order(oco(2.0, limit, ticker.last * 0.9))

    paper.shock(ETH, 3)
    clock.advance(60.0)

    done = await paper.fetch_order(order.id, ETH)
    assert done.status is OrderStatus.CLOSED and done.average == pytest.approx(limit, rel=1e-3)


async def test_a_partial_fill_of_the_limit_cancels_the_stop(clock):
    paper = PaperExchange(clock=clock, balances={"USDT": 1_000.0, "ETH": 2.0}, fill_share=0.5)
    ticker = await _ticker(paper)
    order = await paper.create_order(oco(2.0, ticker.ask * 1.01, ticker.last * 0.95))
    paper.shock(ETH, 3)
    clock.advance(60.0)
    part = await paper.fetch_order(order.id, ETH)
    assert part.is_open and part.filled == 1.0

    paper.shock(ETH, -20)  # far through the stop: it is gone, the rest rests as a limit
    clock.advance(120.0)
    await paper.advance()

    rest = await paper.fetch_order(order.id, ETH)
    assert rest.is_open and rest.filled == 1.0


async def test_an_oco_whose_limit_is_not_above_its_stop_or_whose_stop_would_trigger_is_refused(
    clock,
):
    paper = PaperExchange(clock=clock, balances={"USDT": 1_000.0, "ETH": 2.0})
    ticker = await _ticker(paper)
    with pytest.raises(Rejected, match="above its stop"):
        await paper.create_order(oco(1.0, ticker.last * 0.8, ticker.last * 0.9))
    with pytest.raises(Rejected, match="trigger immediately"):
        await paper.create_order(oco(1.0, ticker.ask * 1.2, ticker.last * 1.1))
    assert paper.order_log == []
