"""The synthetic market: universe, candles aggregated from one 1-minute path, tickers,
determinism from the seed, shocks, and the cost of screening a large universe."""

from __future__ import annotations

import time
from itertools import pairwise

import pytest

from sim.clock import FakeClock
from trading.errors import Rejected
from trading.models import TIMEFRAME_SECONDS, Candle
from trading.venues.market_sim import SyntheticFeed

BTC = "BTC/USDT"
START = 1_700_000_000.0 + 37.5  # mid-minute, so forming candles are partial


def feed_at(
    seed: int = 1, markets: int = 50, start: float = START
) -> tuple[SyntheticFeed, FakeClock]:
    clock = FakeClock(start)
    return SyntheticFeed(seed=seed, markets=markets, clock=clock), clock


def merged(parts: list[Candle]) -> tuple[float, ...]:
    return (
        parts[0].open,
        max(c.high for c in parts),
        min(c.low for c in parts),
        parts[-1].close,
        sum(c.volume for c in parts),
    )


# -- universe --------------------------------------------------------------------------------


async def test_universe_has_majors_first_and_unique_quote_markets():
    feed, _ = feed_at(markets=50)
    markets = await feed.load_markets()
    symbols = list(markets)
    assert len(symbols) == len(set(symbols)) == 50
    assert symbols[:4] == ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
    for m in markets.values():
        assert m.quote == "USDT" and m.spot and m.symbol == f"{m.base}/USDT"
        assert 2 <= len(m.base) <= 5
        assert m.min_cost in (5.0, 10.0)
        assert m.amount_step and m.min_amount >= m.amount_step and m.price_step


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_universe_has_inactive_and_low_volume_markets(seed: int):
    feed, _ = feed_at(seed=seed, markets=50)
    markets = await feed.load_markets()
    tickers = await feed.fetch_tickers()
    inactive = [s for s, m in markets.items() if not m.active]
    assert 1 <= len(inactive) <= 5
    assert BTC not in inactive
    volumes = [t.quote_volume for t in tickers.values()]
    assert any(v < 100_000 for v in volumes)
    assert any(v > 100_000_000 for v in volumes)
    assert tickers[BTC].quote_volume == max(volumes)


async def test_quote_currency_and_universe_size_are_configurable():
    clock = FakeClock()
    feed = SyntheticFeed(seed=1, markets=300, quote="EUR", clock=clock)
    markets = await feed.load_markets()
    assert len(markets) == 300
    assert all(s.endswith("/EUR") for s in markets)
    assert "EUR/EUR" not in markets


# -- candles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("big", "small", "n"), [("5m", "1m", 5), ("15m", "5m", 3), ("1h", "1m", 60)]
)
async def test_completed_candles_are_aggregates_of_smaller_ones(big: str, small: str, n: int):
    feed, _ = feed_at()
    larger = await feed.fetch_ohlcv(BTC, big, 3)
    smaller = await feed.fetch_ohlcv(BTC, small, 3 * n)
    completed = larger[-2]  # the one before the forming candle
    parts = [c for c in smaller if completed.ts <= c.ts < completed.ts + TIMEFRAME_SECONDS[big]]
    assert len(parts) == n
    assert merged(parts) == pytest.approx(
        (completed.open, completed.high, completed.low, completed.close, completed.volume)
    )


@pytest.mark.parametrize("timeframe", ["1m", "5m", "15m", "1h", "4h", "1d"])
async def test_last_candle_is_the_one_forming_now_and_closes_at_the_current_price(timeframe: str):
    feed, clock = feed_at()
    period = TIMEFRAME_SECONDS[timeframe]
    candles = await feed.fetch_ohlcv(BTC, timeframe, 50)
    assert len(candles) == 50
    assert candles[-1].ts <= clock.time() < candles[-1].ts + period
    assert all(b.ts - a.ts == period for a, b in pairwise(candles))
    assert candles[-1].close == pytest.approx(feed.price(BTC))
    for c in candles:
        assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
        assert c.volume >= 0


async def test_forming_candle_grows_as_time_passes_and_then_completes():
    feed, clock = feed_at()
    first = (await feed.fetch_ohlcv(BTC, "5m", 1))[-1]
    clock.advance(60)
    later = await feed.fetch_ohlcv(BTC, "5m", 2)
    same = later[-1] if later[-1].ts == first.ts else later[-2]
    assert same.ts == first.ts and same.open == first.open
    assert same.volume > first.volume
    assert same.high >= first.high and same.low <= first.low
    clock.advance(600)
    candles = await feed.fetch_ohlcv(BTC, "5m", 4)
    done = next(c for c in candles if c.ts == first.ts)
    assert done.close == pytest.approx(feed.price(BTC, at=first.ts + 300))


async def test_ticker_reports_24h_change_and_a_spread_around_last():
    feed, clock = feed_at()
    ticker = (await feed.fetch_tickers([BTC]))[BTC]
    day_ago = feed.price(BTC, at=clock.time() - 86_400)
    assert ticker.change_pct == pytest.approx((feed.price(BTC) / day_ago - 1) * 100)
    assert ticker.bid < ticker.last < ticker.ask
    assert (ticker.ask - ticker.bid) / ticker.last < 0.001
    assert ticker.timestamp == clock.time()
    one_day = await feed.fetch_ohlcv(BTC, "1h", 25)
    candle_volume = sum(c.volume * (c.open + c.close) / 2 for c in one_day[1:-1])
    assert ticker.quote_volume == pytest.approx(candle_volume, rel=0.1)


async def test_markets_follow_different_regimes_up_and_down():
    feed, clock = feed_at(markets=50)
    clock.advance(3 * 86_400)
    changes = [t.change_pct for t in (await feed.fetch_tickers()).values()]
    assert sum(c > 3 for c in changes) >= 3
    assert sum(c < -3 for c in changes) >= 3


async def test_unknown_symbol_or_timeframe_is_rejected():
    feed, _ = feed_at()
    with pytest.raises(Rejected, match="unknown symbol"):
        await feed.fetch_ohlcv("NOPE/USDT", "1m", 5)
    with pytest.raises(Rejected, match="unknown symbol"):
        await feed.fetch_tickers(["NOPE/USDT"])
    with pytest.raises(Rejected, match="timeframe"):
        await feed.fetch_ohlcv(BTC, "3m", 5)


# -- determinism and shocks ------------------------------------------------------------------


async def test_prices_depend_on_seed_and_symbol_not_on_the_order_of_requests():
    a, _ = feed_at(seed=9, markets=50)
    b, _ = feed_at(seed=9, markets=80)
    a_eth = await a.fetch_ohlcv("ETH/USDT", "1h", 50)
    a_btc = await a.fetch_ohlcv(BTC, "5m", 50)
    tickers_b = await b.fetch_tickers()
    assert await b.fetch_ohlcv(BTC, "5m", 50) == a_btc
    assert await b.fetch_ohlcv("ETH/USDT", "1h", 50) == a_eth
    assert (await a.fetch_tickers())[BTC] == tickers_b[BTC]
    c, _ = feed_at(seed=10)
    assert await c.fetch_ohlcv(BTC, "5m", 50) != a_btc


async def test_shock_moves_the_path_from_now_on_only():
    feed, clock = feed_at()
    before = await feed.fetch_ohlcv(BTC, "1m", 10)
    price = feed.price(BTC)
    feed.shock(BTC, 20)
    assert feed.price(BTC) == pytest.approx(price * 1.2)
    after = await feed.fetch_ohlcv(BTC, "1m", 10)
    assert after[:-1] == before[:-1]
    assert after[-1].close == pytest.approx(before[-1].close * 1.2)
    assert after[-1].high >= after[-1].close
    clock.advance(3600)
    assert feed.price(BTC) / feed.price(BTC, at=clock.time() - 3600) < 1.15  # level, not trend
    with pytest.raises(ValueError):
        feed.shock(BTC, -100)


# -- performance -----------------------------------------------------------------------------


async def test_whole_universe_of_2000_markets_is_screened_quickly():
    feed, clock = feed_at(markets=2000)
    started = time.perf_counter()
    tickers = await feed.fetch_tickers()
    first = time.perf_counter() - started
    clock.advance(60)
    started = time.perf_counter()
    await feed.fetch_tickers()
    later = time.perf_counter() - started
    assert len(tickers) == 2000
    assert first < 5.0
    assert later < 0.5
