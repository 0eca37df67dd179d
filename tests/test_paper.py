"""The paper exchange as a Venue: fills, funds, refusals, determinism, and prices from a feed
that is not synthetic (its simulated edges of an exchange: tests/test_paper_edges.py)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sim.clock import FakeClock
from tests.paper_support import (  # noqa: F401 (fixtures)
    BTC,
    ETH,
    clock_fixture,
    limit,
    market,
    paper_fixture,
    ticker,
)
from trading.errors import DuplicateOrder, Rejected, Transient
from trading.models import Candle, Market, OrderRequest, OrderStatus, OrderType, Side, Ticker
from trading.venues.market_sim import SyntheticFeed
from trading.venues.paper import PaperExchange

# -- fills, fees and balances ---------------------------------------------------------------


async def test_market_buy_fills_at_ask_plus_slippage_with_fee_in_quote(paper: PaperExchange):
    t = await ticker(paper, BTC)
    order = await paper.create_order(market(BTC, Side.BUY, 0.01, "b1"))
    fill = t.ask * 1.0005
    assert order.status is OrderStatus.CLOSED
    assert order.filled == order.amount == 0.01
    assert order.average == pytest.approx(fill)
    assert order.fee_cost == pytest.approx(0.01 * fill * 0.001)
    assert order.fee_currency == "USDT"
    balance = await paper.fetch_balance()
    assert balance.total_of("USDT") == pytest.approx(10_000 - 0.01 * fill * 1.001)
    assert balance.free_of("BTC") == pytest.approx(0.01)


async def test_market_sell_fills_at_bid_minus_slippage_and_pays_fee_from_proceeds(
    paper: PaperExchange,
):
    t = await ticker(paper, ETH)
    order = await paper.create_order(market(ETH, Side.SELL, 0.5, "s1"))
    fill = t.bid * (1 - 0.0005)
    assert order.average == pytest.approx(fill)
    balance = await paper.fetch_balance()
    assert balance.total_of("ETH") == pytest.approx(1.5)
    assert balance.total_of("USDT") == pytest.approx(10_000 + 0.5 * fill * 0.999)


async def test_amount_is_rounded_down_to_the_lot_size(paper: PaperExchange):
    step = (await paper.load_markets())[BTC].amount_step
    assert step == 1e-5
    order = await paper.create_order(market(BTC, Side.BUY, 0.0123456789, "r1"))
    assert order.amount == 0.01234


async def test_resting_limit_buy_reserves_quote_and_fills_at_limit_after_a_drop(
    clock: FakeClock, paper: PaperExchange
):
    t = await ticker(paper, BTC)
    price = round(t.bid * 0.98)
    order = await paper.create_order(limit(BTC, Side.BUY, 0.1, price, "l1"))
    assert order.status is OrderStatus.OPEN
    reserved = 0.1 * price * 1.001
    balance = await paper.fetch_balance()
    assert balance.free_of("USDT") == pytest.approx(10_000 - reserved)
    assert balance.total_of("USDT") == pytest.approx(10_000)

    paper.shock(BTC, -5)
    clock.advance(1)
    filled = await paper.fetch_order(order.id, BTC)
    assert filled.status is OrderStatus.CLOSED
    assert filled.average == price  # at the limit, not at the lower market price
    assert filled.fee_cost == pytest.approx(0.1 * price * 0.001)
    balance = await paper.fetch_balance()
    assert balance.total_of("USDT") == pytest.approx(10_000 - reserved)
    assert balance.free_of("USDT") == pytest.approx(balance.total_of("USDT"))
    assert balance.total_of("BTC") == pytest.approx(0.1)


async def test_limit_sell_fills_once_the_random_walk_crosses_it_after_clock_advance(
    clock: FakeClock, paper: PaperExchange
):
    t = await ticker(paper, ETH)
    price = round(t.ask * 1.002, 2)
    order = await paper.create_order(limit(ETH, Side.SELL, 1.0, price, "l2"))
    assert (await paper.fetch_balance()).free_of("ETH") == pytest.approx(1.0)
    for _ in range(7 * 24 * 60):  # a bounded week of minutes
        clock.advance(60)
        state = await paper.fetch_order(order.id, ETH)
        if not state.is_open:
            break
    assert state.status is OrderStatus.CLOSED
    assert state.average == state.price == pytest.approx(price, abs=0.1)  # on the tick
    price = state.price
    assert (await ticker(paper, ETH)).bid >= price * 0.99  # it crossed recently, not by fiat
    balance = await paper.fetch_balance()
    assert balance.total_of("ETH") == pytest.approx(1.0)
    assert balance.total_of("USDT") == pytest.approx(10_000 + price * 0.999)


async def test_with_a_fill_share_a_resting_limit_sell_fills_in_parts_one_per_crossing(
    clock: FakeClock,
):
    paper = PaperExchange(clock=clock, balances={"USDT": 10_000.0, "ETH": 2.0}, fill_share=0.5)
    t = await ticker(paper, ETH)
    order = await paper.create_order(limit(ETH, Side.SELL, 1.5, round(t.ask * 1.01, 2), "p1"))
    paper.shock(ETH, 5)  # through the limit: each price refresh fills half
    half = await paper.fetch_order(order.id, ETH)
    assert half.status is OrderStatus.OPEN and half.filled == pytest.approx(0.75)
    assert half.fee_cost == pytest.approx(0.75 * order.price * 0.001)
    balance = await paper.fetch_balance()
    assert balance.total_of("ETH") == pytest.approx(1.25)
    assert balance.free_of("ETH") == pytest.approx(0.5)  # the unfilled half is still held back
    clock.advance(1)
    done = await paper.fetch_order(order.id, ETH)
    assert done.status is OrderStatus.CLOSED and done.filled == 1.5
    assert done.average == pytest.approx(order.price)
    assert (await paper.fetch_balance()).total_of("USDT") == pytest.approx(
        10_000 + 1.5 * order.price * 0.999
    )


async def test_marketable_limit_order_fills_at_once_at_its_limit_price(paper: PaperExchange):
    t = await ticker(paper, BTC)
    price = round(t.ask * 1.01)
    order = await paper.create_order(limit(BTC, Side.BUY, 0.01, price, "m1"))
    assert order.status is OrderStatus.CLOSED
    assert order.average == price


async def test_cancel_returns_reserved_funds(paper: PaperExchange):
    t = await ticker(paper, ETH)
    order = await paper.create_order(limit(ETH, Side.SELL, 1.5, round(t.ask * 1.2, 2), "c1"))
    assert (await paper.fetch_balance()).free_of("ETH") == pytest.approx(0.5)
    await paper.cancel_order(order.id, ETH)
    balance = await paper.fetch_balance()
    assert balance.free_of("ETH") == pytest.approx(2.0)
    assert (await paper.fetch_order(order.id, ETH)).status is OrderStatus.CANCELED
    assert await paper.fetch_open_orders() == []


async def test_fetch_open_orders_lists_every_open_order_of_the_account(paper: PaperExchange):
    bt, et = await ticker(paper, BTC), await ticker(paper, ETH)
    a = await paper.create_order(limit(BTC, Side.BUY, 0.01, round(bt.bid * 0.9), "o1"))
    b = await paper.create_order(limit(ETH, Side.SELL, 0.5, round(et.ask * 1.1, 2), "o2"))
    await paper.create_order(market(BTC, Side.BUY, 0.01, "o3"))
    assert [o.id for o in await paper.fetch_open_orders()] == [a.id, b.id]
    assert [o.client_order_id for o in paper.order_log] == ["o1", "o2", "o3"]


async def test_find_order_by_client_id_open_or_closed(paper: PaperExchange):
    t = await ticker(paper, BTC)
    resting = await paper.create_order(limit(BTC, Side.BUY, 0.01, round(t.bid * 0.9), "find-1"))
    done = await paper.create_order(market(BTC, Side.BUY, 0.01, "find-2"))
    assert (await paper.find_order("find-1", BTC)).id == resting.id
    found = await paper.find_order("find-2", BTC)
    assert found.id == done.id and found.status is OrderStatus.CLOSED
    assert await paper.find_order("never-sent", BTC) is None
    assert await paper.find_order("find-1", ETH) is None


# -- refusals --------------------------------------------------------------------------------


async def inactive_symbol(paper: PaperExchange) -> str:
    return next(s for s, m in (await paper.load_markets()).items() if not m.active)


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (market("NOPE/USDT", Side.BUY, 1, "x"), "unknown symbol"),
        (market(BTC, Side.BUY, 0.000001, "x"), "under the minimum"),
        (market(BTC, Side.BUY, 0.0001, "x"), "cost"),  # ~4 USDT, under min_cost
        (market(BTC, Side.BUY, 1.0, "x"), "insufficient funds"),
        (market(BTC, Side.SELL, 0.01, "x"), "insufficient funds"),
        (OrderRequest(BTC, Side.BUY, OrderType.LIMIT, 0.01, "x"), "positive price"),
    ],
)
async def test_refusals_raise_rejected_with_a_clear_message(
    paper: PaperExchange, request_: OrderRequest, words: str
):
    with pytest.raises(Rejected, match=words):
        await paper.create_order(request_)
    assert paper.order_log == []
    assert (await paper.fetch_balance()).total_of("USDT") == 10_000.0


async def test_inactive_market_refuses_orders(paper: PaperExchange):
    symbol = await inactive_symbol(paper)
    with pytest.raises(Rejected, match="not active"):
        await paper.create_order(market(symbol, Side.BUY, 1000, "x"))


async def test_insufficient_funds_counts_reservations(paper: PaperExchange):
    t = await ticker(paper, ETH)
    await paper.create_order(limit(ETH, Side.SELL, 1.5, round(t.ask * 1.2, 2), "a"))
    with pytest.raises(Rejected, match="insufficient funds"):
        await paper.create_order(market(ETH, Side.SELL, 1.0, "b"))


async def test_unknown_or_closed_orders_are_rejected_on_cancel_and_fetch(paper: PaperExchange):
    with pytest.raises(Rejected, match="not found"):
        await paper.cancel_order("P999", BTC)
    with pytest.raises(Rejected, match="not found"):
        await paper.fetch_order("P999", BTC)
    done = await paper.create_order(market(BTC, Side.BUY, 0.01, "d"))
    with pytest.raises(Rejected, match="already closed"):
        await paper.cancel_order(done.id, BTC)
    with pytest.raises(Rejected, match="not found"):
        await paper.fetch_order(done.id, ETH)


async def test_a_client_order_id_is_accepted_only_once(paper: PaperExchange):
    await paper.create_order(market(BTC, Side.BUY, 0.01, "same"))
    with pytest.raises(DuplicateOrder, match="duplicate"):  # a Rejected that means "it exists"
        await paper.create_order(market(BTC, Side.BUY, 0.01, "same"))
    assert len(paper.order_log) == 1


# -- determinism and observability -----------------------------------------------------------


async def scripted_session(seed: int) -> tuple[list, dict]:
    clock = FakeClock()
    paper = PaperExchange(clock=clock, seed=seed, balances={"USDT": 10_000.0, "ETH": 2.0})
    tickers = await paper.fetch_tickers()
    await paper.create_order(market(BTC, Side.BUY, 0.05, "a"))
    await paper.create_order(limit(ETH, Side.SELL, 1.0, tickers[ETH].ask * 1.001, "b"))
    await paper.create_order(limit(BTC, Side.BUY, 0.02, tickers[BTC].bid * 0.998, "c"))
    for _ in range(180):
        clock.advance(60)
        await paper.fetch_balance()
    await paper.create_order(market(BTC, Side.SELL, 0.03, "d"))
    return paper.order_log, (await paper.fetch_balance()).total


async def test_same_seed_and_calls_give_identical_fills_and_balances():
    log_a, balance_a = await scripted_session(seed=7)
    log_b, balance_b = await scripted_session(seed=7)
    assert log_a == log_b and balance_a == balance_b
    log_c, _ = await scripted_session(seed=8)
    assert log_c[0].average != log_a[0].average


async def test_price_and_shock_need_no_request(paper: PaperExchange):
    before = paper.price(BTC)
    paper.shock(BTC, -10)
    assert paper.price(BTC) == pytest.approx(before * 0.9)
    assert (await ticker(paper, BTC)).last == pytest.approx(before * 0.9, rel=1e-4)
    assert sum(paper.calls.values()) == 1


# -- a feed that is not synthetic (DRY_RUN on a real exchange) --------------------------------


class CountingFeed:
    """Stands in for a ccxt venue's public data: a synthetic feed that counts its requests."""

    has_bulk_tickers = False

    def __init__(self, clock: FakeClock) -> None:
        self.inner = SyntheticFeed(seed=3, markets=20, clock=clock)
        self.ticker_requests: list[tuple[str, ...] | None] = []
        self.fail = False
        self.closed = False

    async def load_markets(self) -> dict[str, Market]:
        return await self.inner.load_markets()

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]:
        self.ticker_requests.append(tuple(symbols) if symbols is not None else None)
        if self.fail:
            raise Transient("feed down")
        return await self.inner.fetch_tickers(symbols)

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[Candle]:
        return await self.inner.fetch_ohlcv(symbol, timeframe, limit)

    async def close(self) -> None:
        self.closed = True


async def test_resting_orders_refresh_prices_at_most_once_per_second(clock: FakeClock):
    feed = CountingFeed(clock)
    paper = PaperExchange(clock=clock, feed=feed, name="binance", account="DRY")
    assert not paper.has_bulk_tickers
    t = await ticker(paper, BTC)
    await paper.create_order(limit(BTC, Side.BUY, 0.01, round(t.bid * 0.9), "r1"))
    await paper.create_order(limit(ETH, Side.BUY, 0.1, round(t.bid * 0.9 / 20), "r2"))
    feed.ticker_requests.clear()
    clock.advance(1)
    for _ in range(5):
        await paper.fetch_balance()
        await paper.fetch_open_orders()
    assert feed.ticker_requests == [(BTC, ETH)]
    clock.advance(0.5)
    await paper.fetch_balance()
    assert len(feed.ticker_requests) == 1
    clock.advance(0.5)
    await paper.fetch_balance()
    assert len(feed.ticker_requests) == 2


async def test_feed_outage_does_not_fail_account_calls(clock: FakeClock):
    feed = CountingFeed(clock)
    paper = PaperExchange(clock=clock, feed=feed)
    t = await ticker(paper, BTC)
    await paper.create_order(limit(BTC, Side.BUY, 0.01, round(t.bid * 0.9), "r1"))
    feed.fail = True
    clock.advance(5)
    assert len(await paper.fetch_open_orders()) == 1
    with pytest.raises(Transient, match="feed down"):
        await paper.create_order(market(BTC, Side.BUY, 0.01, "r2"))  # no price, no order
    assert len(paper.order_log) == 1


async def test_shock_on_a_live_feed_shifts_its_tickers_and_fills_resting_orders(clock: FakeClock):
    feed = CountingFeed(clock)
    paper = PaperExchange(clock=clock, feed=feed)
    t = await ticker(paper, BTC)
    order = await paper.create_order(limit(BTC, Side.BUY, 0.01, round(t.bid * 0.95), "s1"))
    paper.shock(BTC, -8)
    shifted = await ticker(paper, BTC)
    assert shifted.bid == pytest.approx(t.bid * 0.92, rel=1e-3)
    assert paper.price(BTC) == pytest.approx((shifted.bid + shifted.ask) / 2)
    assert (await paper.fetch_order(order.id, BTC)).status is OrderStatus.CLOSED
    await paper.close()
    assert feed.closed
