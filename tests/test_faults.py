"""The test bench's paper exchange misbehaving on cue (sim/faults.py): injected faults and
latency per call, before or after the call takes effect, on top of the paper exchange's own."""

from __future__ import annotations

import asyncio

import pytest

from sim.clock import FakeClock, run_simulated
from sim.faults import FaultyPaper
from trading.errors import Fatal, RateLimited, Transient
from trading.models import OrderRequest, OrderStatus, OrderType, Side

BTC = "BTC/USDT"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def paper(clock: FakeClock) -> FaultyPaper:
    return FaultyPaper(clock=clock, balances={"USDT": 10_000.0, "ETH": 2.0})


def market(symbol: str, side: Side, amount: float, cid: str) -> OrderRequest:
    return OrderRequest(symbol, side, OrderType.MARKET, amount, cid)


async def test_injected_fault_hits_the_next_count_calls_then_clears(paper: FaultyPaper):
    paper.inject("fetch_balance", Transient, count=2)
    for _ in range(2):
        with pytest.raises(Transient, match="injected") as caught:
            await paper.fetch_balance()
        assert caught.value.call == "fetch_balance"
    await paper.fetch_balance()
    await paper.fetch_tickers([BTC])  # other calls never were affected
    assert paper.calls["fetch_balance"] == 3


async def test_forever_fault_persists_until_cleared(paper: FaultyPaper):
    paper.inject("*", Fatal("endpoint retired"), count=-1)
    for call in (paper.fetch_balance(), paper.load_markets(), paper.fetch_ohlcv(BTC, "1m", 5)):
        with pytest.raises(Fatal, match="endpoint retired"):
            await call
    for _ in range(20):
        with pytest.raises(Fatal):
            await paper.fetch_open_orders()
    paper.clear_faults()
    assert await paper.fetch_open_orders() == []


async def test_queued_injections_fire_in_order(paper: FaultyPaper):
    paper.inject("fetch_tickers", RateLimited("slow down", retry_after=2.0))
    paper.inject("fetch_tickers", Transient)
    with pytest.raises(RateLimited) as caught:
        await paper.fetch_tickers()
    assert caught.value.retry_after == 2.0
    with pytest.raises(Transient):
        await paper.fetch_tickers()
    assert BTC in await paper.fetch_tickers()


async def test_latency_passes_clock_time_before_answering(clock: FakeClock, paper: FaultyPaper):
    paper.inject("fetch_balance", Transient, latency=30)
    start = clock.time()
    with pytest.raises(Transient):
        await paper.fetch_balance()
    assert clock.time() - start == pytest.approx(30)
    paper.inject_latency("fetch_balance", 4, count=2)
    await paper.fetch_balance()
    await paper.fetch_balance()
    await paper.fetch_balance()
    assert clock.time() - start == pytest.approx(38)


async def test_fault_after_the_call_means_the_order_exists(paper: FaultyPaper):
    paper.inject("create_order", Transient("read timed out"), after=True)
    with pytest.raises(Transient, match="timed out"):
        await paper.create_order(market(BTC, Side.BUY, 0.01, "lost-answer"))
    found = await paper.find_order("lost-answer", BTC)
    assert found is not None and found.status is OrderStatus.CLOSED
    assert (await paper.fetch_balance()).total_of("BTC") == pytest.approx(0.01)


async def test_a_non_fault_exception_is_raised_as_is(paper: FaultyPaper):
    bug = RuntimeError("bug")
    paper.inject("fetch_tickers", bug)
    with pytest.raises(RuntimeError) as caught:
        await paper.fetch_tickers()
    assert caught.value is bug
    paper.inject("fetch_tickers", KeyError)
    with pytest.raises(KeyError):
        await paper.fetch_tickers()


async def test_inject_refuses_unknown_calls_and_non_exceptions(paper: FaultyPaper):
    with pytest.raises(ValueError, match="unknown call"):
        paper.inject("fetch_balances", Transient)
    with pytest.raises(TypeError):
        paper.inject("fetch_balance", "boom")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count"):
        paper.inject("fetch_balance", Transient, count=0)


# -- concurrency on simulated time -----------------------------------------------------------


def test_concurrent_slow_calls_overlap_on_virtual_time():
    async def main(clock):
        paper = FaultyPaper(clock=clock, rate_limit=5.0, burst=5)
        paper.inject_latency("*", 2.0, count=-1)
        start = clock.time()
        results = await asyncio.gather(
            *(paper.fetch_balance() for _ in range(7)), return_exceptions=True
        )
        limited = [r for r in results if isinstance(r, RateLimited)]
        return clock.time() - start, len(limited)

    elapsed, limited = run_simulated(main)
    assert elapsed == pytest.approx(2.0)  # five calls in flight together, not one after another
    assert limited == 2
