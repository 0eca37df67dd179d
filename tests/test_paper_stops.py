"""Resting stop sells on the paper exchange: they hold the base like a limit sell and trigger on
the price path the market took between two calls, even while no bot calls at all."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from sim.clock import FakeClock
from trading.errors import Rejected
from trading.models import Candle, Market, OrderRequest, OrderStatus, OrderType, Side, Ticker
from trading.venues.market_sim import SyntheticFeed
from trading.venues.paper import PaperExchange

ETH = "ETH/USDT"
SLIPPAGE = 0.0005
FEE = 0.001


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def paper(clock: FakeClock) -> PaperExchange:
    return PaperExchange(clock=clock, balances={"USDT": 1_000.0, "ETH": 2.0})


def stop_market(amount: float, stop: float, cid: str = "s1") -> OrderRequest:
    return OrderRequest(ETH, Side.SELL, OrderType.STOP_MARKET, amount, cid, stop_price=stop)


def stop_limit(amount: float, stop: float, limit: float, cid: str = "s1") -> OrderRequest:
    return OrderRequest(
        ETH, Side.SELL, OrderType.STOP_LIMIT, amount, cid, price=limit, stop_price=stop
    )


async def last(paper: PaperExchange) -> float:
    return (await paper.fetch_tickers([ETH]))[ETH].last


def find_dip(feed: SyntheticFeed, after: float, depth: float = 0.004) -> tuple[float, float, float]:
    """(start, end, low): minute boundaries within a day after `after` between which the mid
    price fell to `low`, `depth` below its value at both ends. The path is log-linear between
    minute boundaries, so its low is at one of them."""
    first = math.floor(after / 60) + 1
    for begin in range(first, first + 1440, 10):
        low = feed.price(ETH, begin * 60.0)
        for minute in range(begin + 1, begin + 360):
            here = feed.price(ETH, minute * 60.0)
            if low < (1 - depth) * min(feed.price(ETH, begin * 60.0), here):
                return begin * 60.0, minute * 60.0, low
            low = min(low, here)
    raise AssertionError("no dip within a day: pick another depth")


async def at_dip(clock: FakeClock, paper: PaperExchange) -> tuple[float, float]:
    """Move the clock to the start of a dip; returns (its end, its low)."""
    feed = paper.feed
    assert isinstance(feed, SyntheticFeed)
    start, end, low = find_dip(feed, clock.time())
    clock.advance(start - clock.time())
    return end, low


def total(paper: PaperExchange, currency: str) -> float:
    return paper.peek_balance().total_of(currency)


async def test_resting_stop_reserves_the_base_and_shows_like_any_order(paper: PaperExchange):
    stop = round(await last(paper) * 0.95, 1)
    order = await paper.create_order(stop_market(1.5, stop))
    assert (order.status, order.filled, order.type) == (
        OrderStatus.OPEN,
        0.0,
        OrderType.STOP_MARKET,
    )
    assert order.stop_price == stop and order.price is None
    balance = await paper.fetch_balance()
    assert balance.free_of("ETH") == pytest.approx(0.5)
    assert balance.total_of("ETH") == pytest.approx(2.0)
    [listed] = await paper.fetch_open_orders()
    assert (listed.id, listed.type, listed.stop_price) == (order.id, OrderType.STOP_MARKET, stop)
    assert (await paper.fetch_order(order.id, ETH)).stop_price == stop
    found = await paper.find_order("s1", ETH)
    assert found is not None and found.id == order.id and found.is_open


async def test_cancelling_a_resting_stop_frees_the_base(paper: PaperExchange):
    price = await last(paper)
    order = await paper.create_order(stop_limit(2.0, round(price * 0.9, 1), round(price * 0.89, 1)))
    assert (await paper.fetch_balance()).free_of("ETH") == pytest.approx(0.0)
    await paper.cancel_order(order.id, ETH)
    assert (await paper.fetch_balance()).free_of("ETH") == pytest.approx(2.0)
    assert (await paper.fetch_order(order.id, ETH)).status is OrderStatus.CANCELED
    assert await paper.fetch_open_orders() == []


async def test_dip_through_the_trigger_between_two_calls_fills_at_or_below_it(
    clock: FakeClock, paper: PaperExchange
):
    end, low = await at_dip(clock, paper)
    stop = round(low * 1.001, 1)
    order = await paper.create_order(stop_market(1.0, stop))
    clock.advance(end - clock.time())
    now = await last(paper)
    assert now > stop  # the current tick alone would not trigger it: only the path between
    filled = await paper.fetch_order(order.id, ETH)
    assert filled.status is OrderStatus.CLOSED and filled.filled == 1.0
    assert stop * 0.997 < filled.average <= stop * (1 - SLIPPAGE)
    assert total(paper, "ETH") == pytest.approx(1.0)
    assert total(paper, "USDT") == pytest.approx(1_000 + filled.average * (1 - FEE))


async def test_shock_through_the_trigger_fills_at_the_gapped_price_not_the_trigger(
    clock: FakeClock, paper: PaperExchange
):
    price = await last(paper)
    stop = round(price * 0.95, 1)
    order = await paper.create_order(stop_market(1.0, stop))
    clock.advance(1)
    paper.shock(ETH, -10)
    filled = await paper.fetch_order(order.id, ETH)
    assert filled.status is OrderStatus.CLOSED
    bid = (await paper.fetch_tickers([ETH]))[ETH].bid
    assert filled.average == pytest.approx(bid * (1 - SLIPPAGE), rel=1e-4)
    assert filled.average < stop * 0.96  # the gap is the seller's loss, as on a real exchange


async def test_stop_limit_gapping_below_its_limit_rests_as_a_limit_until_the_price_returns(
    clock: FakeClock, paper: PaperExchange
):
    price = await last(paper)
    limit = round(price * 0.94, 1)
    order = await paper.create_order(stop_limit(1.0, round(price * 0.95, 1), limit))
    paper.shock(ETH, -10)
    clock.advance(1)
    resting = await paper.fetch_order(order.id, ETH)
    assert (resting.status, resting.filled, resting.type) == (
        OrderStatus.OPEN,
        0.0,
        OrderType.STOP_LIMIT,
    )
    assert (await paper.fetch_balance()).free_of("ETH") == pytest.approx(1.0)  # still held
    paper.shock(ETH, 8)  # 0.9 * 1.08 = 0.972 of the price: above the limit again
    clock.advance(1)
    filled = await paper.fetch_order(order.id, ETH)
    assert filled.status is OrderStatus.CLOSED and filled.average == limit


async def test_stop_limit_reached_on_the_path_fills_at_its_limit(
    clock: FakeClock, paper: PaperExchange
):
    end, low = await at_dip(clock, paper)
    stop = round(low * 1.002, 1)
    limit = round(stop * 0.998, 1)  # under the bid where the path crosses the trigger
    order = await paper.create_order(stop_limit(1.0, stop, limit))
    clock.advance(end - clock.time())
    filled = await paper.fetch_order(order.id, ETH)
    assert filled.status is OrderStatus.CLOSED and filled.average == limit


async def test_with_no_bot_calling_advance_runs_the_stop_on_the_path(
    clock: FakeClock, paper: PaperExchange
):
    end, low = await at_dip(clock, paper)
    order = await paper.create_order(stop_market(2.0, round(low * 1.001, 1)))
    calls = sum(paper.calls.values())
    clock.advance(end - clock.time() + 3 * 3600)  # the bot is gone for hours
    await paper.advance()
    assert sum(paper.calls.values()) == calls  # no request was made
    [closed] = [o for o in paper.order_log if o.id == order.id]
    assert closed.status is OrderStatus.CLOSED
    assert total(paper, "ETH") == 0.0


async def test_first_call_after_the_bot_was_away_finds_the_stop_filled(
    clock: FakeClock, paper: PaperExchange
):
    price = await last(paper)
    order = await paper.create_order(stop_market(2.0, round(price * 0.97, 1)))
    paper.shock(ETH, -5)
    clock.advance(6 * 3600)
    assert (await paper.fetch_balance()).total_of("ETH") == 0.0
    assert (await paper.fetch_order(order.id, ETH)).status is OrderStatus.CLOSED


async def test_stop_reached_before_the_dead_man_deadline_fills_though_nobody_called_until_after(
    clock: FakeClock, paper: PaperExchange
):
    price = await last(paper)
    order = await paper.create_order(stop_market(1.0, round(price * 0.97, 1)))
    late = await paper.create_order(
        OrderRequest(ETH, Side.SELL, OrderType.LIMIT, 1.0, "l1", price=round(price * 1.5, 1))
    )
    await paper.cancel_all_after(60)
    clock.advance(30)
    paper.shock(ETH, -5)
    clock.advance(60)
    assert (await paper.fetch_order(order.id, ETH)).status is OrderStatus.CLOSED
    assert (await paper.fetch_order(late.id, ETH)).status is OrderStatus.CANCELED


async def test_stop_at_or_above_the_market_or_to_buy_is_refused(paper: PaperExchange):
    price = await last(paper)
    with pytest.raises(Rejected, match="would trigger immediately"):
        await paper.create_order(stop_market(1.0, round(price * 1.01, 1)))
    buy = OrderRequest(ETH, Side.BUY, OrderType.STOP_MARKET, 0.1, "b1", stop_price=price * 1.1)
    with pytest.raises(Rejected, match="sell-only"):
        await paper.create_order(buy)
    no_limit = OrderRequest(ETH, Side.SELL, OrderType.STOP_LIMIT, 1.0, "n1", stop_price=price / 2)
    with pytest.raises(Rejected, match="positive price"):
        await paper.create_order(no_limit)
    with pytest.raises(Rejected, match="stop price"):
        await paper.create_order(OrderRequest(ETH, Side.SELL, OrderType.STOP_MARKET, 1.0, "n2"))
    assert paper.order_log == []
    assert paper.stop_types == (OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.OCO)


class TickerFeed:
    """A feed without a price path (live prices in DRY_RUN): only its tickers are known."""

    has_bulk_tickers = False

    def __init__(self, clock: FakeClock) -> None:
        self.inner = SyntheticFeed(clock=clock)

    async def load_markets(self) -> dict[str, Market]:
        return await self.inner.load_markets()

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]:
        return await self.inner.fetch_tickers(symbols)

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[Candle]:
        return await self.inner.fetch_ohlcv(symbol, timeframe, limit)


async def test_on_a_feed_without_a_path_a_stop_triggers_on_the_next_ticker_below_it(
    clock: FakeClock,
):
    paper = PaperExchange(clock=clock, feed=TickerFeed(clock), balances={"ETH": 1.0})
    stop = round(await last(paper) * 0.95, 1)
    order = await paper.create_order(stop_market(1.0, stop))
    clock.advance(1)
    assert (await paper.fetch_order(order.id, ETH)).is_open
    paper.shock(ETH, -10)
    clock.advance(1)
    filled = await paper.fetch_order(order.id, ETH)
    assert filled.status is OrderStatus.CLOSED
    assert filled.average <= stop * 0.96  # 0.90 / 0.95 of it: the gapped price
