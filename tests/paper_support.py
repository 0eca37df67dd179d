"""What the paper exchange's own tests share: a fresh exchange on a fake clock, order requests
and a quick ticker read."""

from __future__ import annotations

import pytest

from sim.clock import FakeClock
from trading.models import OrderRequest, OrderType, Side, Ticker
from trading.venues.paper import PaperExchange

BTC = "BTC/USDT"
ETH = "ETH/USDT"


def market(symbol: str, side: Side, amount: float, cid: str) -> OrderRequest:
    return OrderRequest(symbol, side, OrderType.MARKET, amount, cid)


def limit(symbol: str, side: Side, amount: float, price: float, cid: str) -> OrderRequest:
    return OrderRequest(symbol, side, OrderType.LIMIT, amount, cid, price=price)


@pytest.fixture(name="clock")
def clock_fixture() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="paper")
def paper_fixture(clock: FakeClock) -> PaperExchange:
    return PaperExchange(clock=clock, balances={"USDT": 10_000.0, "ETH": 2.0})


async def ticker(paper: PaperExchange, symbol: str) -> Ticker:
    return (await paper.fetch_tickers([symbol]))[symbol]
