"""The paper exchange's simulated edges of an exchange: rate limit, clock skew,
cancel-all-after."""

from __future__ import annotations

import pytest

from sim.clock import FakeClock
from tests.paper_support import (  # noqa: F401 (fixtures)
    BTC,
    clock_fixture,
    limit,
    market,
    paper_fixture,
    ticker,
)
from trading.errors import ClockRejected, RateLimited
from trading.models import OrderStatus, Side
from trading.venues.paper import PaperExchange

# -- rate limit and exchange clock -----------------------------------------------------------


async def test_empty_bucket_raises_rate_limited_with_retry_after_then_refills(clock: FakeClock):
    paper = PaperExchange(clock=clock, rate_limit=2.0, burst=3)
    for _ in range(3):
        await paper.fetch_tickers([BTC])
    with pytest.raises(RateLimited) as caught:
        await paper.fetch_balance()
    assert caught.value.retry_after == pytest.approx(0.5)
    assert caught.value.call == "fetch_balance" and caught.value.venue == "paper"
    clock.advance(0.5)
    await paper.fetch_balance()
    with pytest.raises(RateLimited):
        await paper.fetch_tickers([BTC])
    clock.advance(10)  # refills to the burst, no further
    for _ in range(3):
        await paper.fetch_tickers([BTC])
    with pytest.raises(RateLimited):
        await paper.fetch_tickers([BTC])
    assert paper.calls["fetch_tickers"] == 8


async def test_clock_skew_rejects_signed_calls_until_sync_time(paper: PaperExchange):
    paper.set_clock_skew(15)
    await paper.fetch_tickers([BTC])  # public data is not signed
    with pytest.raises(ClockRejected, match="recvWindow"):
        await paper.fetch_balance()
    with pytest.raises(ClockRejected):
        await paper.create_order(market(BTC, Side.BUY, 0.01, "k"))
    assert await paper.sync_time() == 15_000
    assert paper.clock_offset_ms == 15_000
    await paper.fetch_balance()
    order = await paper.create_order(market(BTC, Side.BUY, 0.01, "k"))
    assert order.timestamp == pytest.approx(1_700_000_015)  # stamped by the exchange clock


async def test_skew_inside_the_recv_window_is_accepted(clock: FakeClock):
    paper = PaperExchange(clock=clock, recv_window_ms=5_000)
    paper.set_clock_skew(-4.5)
    await paper.fetch_balance()
    paper.set_clock_skew(-5.5)
    with pytest.raises(ClockRejected):
        await paper.fetch_open_orders()


# -- cancel-all-after ------------------------------------------------------------------------


async def test_cancel_all_after_cancels_open_orders_once_the_deadline_passes(
    clock: FakeClock, paper: PaperExchange
):
    t = await ticker(paper, BTC)
    order = await paper.create_order(limit(BTC, Side.BUY, 0.01, round(t.bid * 0.8), "dm"))
    assert paper.has_cancel_all_after
    await paper.cancel_all_after(60)
    clock.advance(40)
    await paper.cancel_all_after(60)  # refreshed: the deadline moves on
    clock.advance(40)
    assert [o.id for o in await paper.fetch_open_orders()] == [order.id]
    clock.advance(21)
    assert await paper.fetch_open_orders() == []
    assert (await paper.fetch_order(order.id, BTC)).status is OrderStatus.CANCELED
    assert (await paper.fetch_balance()).free_of("USDT") == pytest.approx(10_000)


async def test_cancel_all_after_zero_disarms(clock: FakeClock, paper: PaperExchange):
    t = await ticker(paper, BTC)
    await paper.create_order(limit(BTC, Side.BUY, 0.01, round(t.bid * 0.8), "dm"))
    await paper.cancel_all_after(10)
    await paper.cancel_all_after(0)
    clock.advance(3600)
    assert len(await paper.fetch_open_orders()) == 1
