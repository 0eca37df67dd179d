"""Recorded candles on disk and the feed that replays them: the layout, Freqtrade's files, no
look-ahead, and resting orders triggered inside a candle from its high and low."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.clock import FakeClock
from trading.errors import Rejected
from trading.models import Candle, OrderRequest, OrderType, Side
from trading.venues.market_files import (
    append_candles,
    import_freqtrade,
    last_time,
    load_folder,
    series_files,
)
from trading.venues.paper import PaperExchange
from trading.venues.recorded import RecordedFeed

T0 = 1_700_000_400.0 - 1_700_000_400.0 % 3600  # on the hour
BTC = "BTC/USDT"


def flat(n: int, price: float = 100.0, period: int = 300, start: float = T0) -> list[Candle]:
    return [Candle(start + i * period, price, price * 1.001, price * 0.999, price, 10.0)
            for i in range(n)]  # fmt: skip


def rising(n: int, period: int = 300, start: float = T0) -> list[Candle]:
    """Each candle opens where the last closed and closes one up."""
    return [Candle(start + i * period, 100.0 + i, 100.5 + i, 99.5 + i, 101.0 + i, 1.0 + i)
            for i in range(n)]  # fmt: skip


def feed_of(
    candles: dict[str, dict[str, list[Candle]]], at: float
) -> tuple[RecordedFeed, FakeClock]:
    clock = FakeClock(at)
    return RecordedFeed(candles, clock=clock), clock


# -- the layout --------------------------------------------------------------------------------


def test_appended_candles_read_back_sorted_with_the_last_line_of_a_time_winning(tmp_path):
    candles = rising(6)
    append_candles(tmp_path, BTC, "5m", candles[3:])
    append_candles(tmp_path, BTC, "5m", candles[:4])  # a resumed download overlapping one
    assert (tmp_path / "BTC_USDT-5m.csv").read_text().startswith("time,open,high")
    assert load_folder(tmp_path, quote="USDT").candles == {BTC: {"5m": candles}}
    assert last_time(tmp_path, BTC, "5m") == candles[-1].ts
    assert last_time(tmp_path, "ETH/USDT", "5m") is None


def test_a_folder_keeps_its_quote_and_the_largest_markets_by_turnover(tmp_path):
    append_candles(tmp_path, BTC, "5m", flat(3, 30_000.0))
    append_candles(tmp_path, "ETH/USDT", "5m", flat(3, 2_000.0))
    append_candles(tmp_path, "DOGE/USDT", "5m", flat(3, 0.1))
    append_candles(tmp_path, "ETH/BTC", "5m", flat(3, 0.05))
    assert sorted(load_folder(tmp_path, quote="USDT").candles) == [BTC, "DOGE/USDT", "ETH/USDT"]
    assert sorted(load_folder(tmp_path, quote="USDT", markets=2).candles) == [BTC, "ETH/USDT"]


def test_freqtrade_json_is_read_in_place_and_imported_feather_skipped_without_pyarrow(tmp_path):
    source = tmp_path / "user_data" / "data" / "binance"
    source.mkdir(parents=True)
    candles = rising(5)
    rows = [[int(c.ts * 1000), c.open, c.high, c.low, c.close, c.volume] for c in candles]
    (source / "BTC_USDT-5m.json").write_text(json.dumps(rows))
    (source / "ETH_USDT-1h.feather").write_bytes(b"ARROW1")
    (source / "BTC_USDT_USDT-5m-futures.json").write_text("[]")
    assert load_folder(source, quote="USDT").candles == {BTC: {"5m": candles}}
    dest = tmp_path / "market" / "binance"
    written, skipped = import_freqtrade(source, dest)
    assert written == ["BTC_USDT-5m.csv"]
    assert any("ETH_USDT-1h.feather" in s and "pyarrow" in s for s in skipped)
    assert any("futures" in s for s in skipped)
    assert load_folder(dest, quote="USDT").candles == {BTC: {"5m": candles}}
    assert [f.symbol for f in series_files(dest)[0]] == [BTC]


# -- no look-ahead -------------------------------------------------------------------------------


async def test_what_a_moment_shows_does_not_depend_on_any_later_candle():
    """The strategy, the scanner and the exchange see only candles closed by now: replacing
    every later candle changes no answer."""
    now = T0 + 7 * 3600 + 25 * 60  # 07:25
    honest = rising(24 * 12)
    future = [c._replace(open=1e6, high=2e6, low=1.0, close=5e5, volume=9e9) if c.ts >= now
              else c for c in honest]  # fmt: skip
    answers = []
    for data in (honest, future):
        feed, _ = feed_of({BTC: {"5m": data}}, now)
        answers.append((
            await feed.fetch_ohlcv(BTC, "5m", 1000),
            await feed.fetch_ohlcv(BTC, "1h", 1000),
            await feed.fetch_tickers(),
            feed.price(BTC),
        ))  # fmt: skip
    assert answers[0] == answers[1]
    five, hour, tickers, price = answers[0]
    assert five[-1] == honest[88]  # forming, in its last moment: the candle ending now
    assert five[-2] == honest[87]
    assert price == honest[88].close
    assert [c.ts for c in hour] == [T0 + h * 3600 for h in range(8)]
    assert hour[-1].open == honest[84].open and hour[-1].volume == sum(
        c.volume for c in honest[84:89]
    )
    assert tickers[BTC].last == pytest.approx(price)


async def test_a_timeframe_that_cannot_be_merged_from_the_recording_is_refused():
    feed, _ = feed_of({BTC: {"1h": flat(30, period=3600)}}, T0 + 10 * 3600)
    with pytest.raises(Rejected):
        await feed.fetch_ohlcv(BTC, "5m", 10)
    assert len(await feed.fetch_ohlcv(BTC, "1h", 5)) == 5


# -- fills inside a candle ---------------------------------------------------------------------


def wick(n: int, *, low_at: int, low: float, high: float = 100.1, open_at_low: float = 100.0):
    candles = flat(n)
    c = candles[low_at]
    candles[low_at] = c._replace(open=open_at_low, low=low, high=high)
    return candles


async def paper_on(candles: list[Candle]) -> tuple[PaperExchange, FakeClock]:
    feed, clock = feed_of({BTC: {"5m": candles}}, T0 + 300)
    paper = PaperExchange(clock=clock, feed=feed, rate_limit=0, fee_rate=0.001, slippage=0.0)
    await paper.create_order(OrderRequest(BTC, Side.BUY, OrderType.MARKET, 1.0, "entry"))
    return paper, clock


async def test_a_stop_triggers_from_a_candle_low_between_calls_at_its_trigger():
    paper, clock = await paper_on(wick(10, low_at=3, low=90.0))
    stop = await paper.create_order(
        OrderRequest(BTC, Side.SELL, OrderType.STOP_MARKET, 1.0, "stop", stop_price=95.0)
    )
    clock.advance(2 * 300)  # the wick's candle has begun, not closed
    assert (await paper.fetch_order(stop.id, BTC)).is_open
    clock.advance(300)
    filled = await paper.fetch_order(stop.id, BTC)
    assert not filled.is_open and filled.average == pytest.approx(95.0)


async def test_a_stop_gapped_through_fills_at_the_open_below_it():
    paper, clock = await paper_on(wick(10, low_at=3, low=80.0, open_at_low=85.0))
    stop = await paper.create_order(
        OrderRequest(BTC, Side.SELL, OrderType.STOP_MARKET, 1.0, "stop", stop_price=95.0)
    )
    clock.advance(5 * 300)
    assert (await paper.fetch_order(stop.id, BTC)).average == pytest.approx(85.0)


async def test_a_resting_limit_sell_fills_when_a_candle_high_reaches_it():
    paper, clock = await paper_on(wick(10, low_at=3, low=99.9, high=104.0))
    limit = await paper.create_order(
        OrderRequest(BTC, Side.SELL, OrderType.LIMIT, 1.0, "target", price=103.0)
    )
    clock.advance(2 * 300)
    assert (await paper.fetch_order(limit.id, BTC)).is_open
    clock.advance(2 * 300)
    filled = await paper.fetch_order(limit.id, BTC)
    assert not filled.is_open and filled.average == pytest.approx(103.0)


async def test_market_orders_fill_at_the_next_price_with_the_paper_fee_and_slippage():
    feed, clock = feed_of({BTC: {"5m": rising(10)}}, T0 + 3 * 300)
    paper = PaperExchange(clock=clock, feed=feed, rate_limit=0, fee_rate=0.002, slippage=0.001)
    order = await paper.create_order(OrderRequest(BTC, Side.BUY, OrderType.MARKET, 1.0, "e"))
    ticker = (await feed.fetch_tickers([BTC]))[BTC]
    assert ticker.last == pytest.approx(103.0)  # the close of the candle ending now
    assert order.average == pytest.approx(ticker.ask * 1.001)
    assert order.fee_cost == pytest.approx(order.average * 0.002)


def test_the_layout_lives_under_data_dir_market_exchange():
    from trading.venues.market_files import file_name, market_dir

    assert market_dir(Path("data"), "Binance") / file_name(BTC, "5m") == Path(
        "data/market/binance/BTC_USDT-5m.csv"
    )
