"""The backtest: the real engine replayed on recorded candles. It works offline without data,
repeats itself byte for byte, replays Freqtrade's files, cannot see the future, and takes a
stop before a target touched in the same candle."""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import pairwise

import pytest

from chatbot.__main__ import main
from sim.recording import record_synthetic
from tests.engine_support import SETTINGS, ScriptedStrategy
from trading.backtest import Market, run_backtest, window
from trading.backtest_report import report
from trading.models import Candle
from trading.strategies.trend import TrendParams, TrendStrategy
from trading.venues.market_files import load_folder

END = 1_699_920_000.0  # a UTC midnight
BTC = "BTC/USDT"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh checkout's view: no .env, DATA_DIR in a temporary folder."""
    monkeypatch.chdir(tmp_path)
    for name in ("STRATEGY", "STAKE_AMOUNT", "PAPER_BALANCE", "EXCHANGES", "DRY_RUN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_without_data_the_synthetic_market_replays_and_twice_gives_the_same_bytes(workdir, capsys):
    args = ["backtest", "--days", "1", "--markets", "6"]
    assert main(args) == 0
    first = capsys.readouterr().out
    results = workdir / "data" / "backtest"
    files = {n: (results / n).read_bytes() for n in ("report.txt", "trades.csv", "equity.png")}
    assert main(args) == 0
    assert capsys.readouterr().out == first
    assert {n: (results / n).read_bytes() for n in files} == files
    assert "synthetic paper market" in first and "Sharpe" in first and "Max drawdown" in first
    assert files["equity.png"].startswith(b"\x89PNG")


def test_a_bad_option_or_an_empty_data_folder_exits_2(workdir, capsys):
    assert main(["backtest", "--days", "x"]) == 2
    assert main(["backtest", "--data", str(workdir / "nothing")]) == 2
    assert main(["backtest", "--strategy", "nosuch"]) == 2
    capsys.readouterr()


async def test_an_imported_freqtrade_json_download_replays(workdir, capsys):
    recorded = workdir / "recorded"
    await record_synthetic(recorded, days=4, end=END, markets=6)
    freqtrade = workdir / "user_data" / "data" / "binance"
    freqtrade.mkdir(parents=True)
    for symbol, series in load_folder(recorded, quote="USDT").candles.items():
        for tf, candles in series.items():
            rows = [[int(c.ts * 1000), *c[1:]] for c in candles]
            name = f"{symbol.replace('/', '_')}-{tf}.json"
            (freqtrade / name).write_text(json.dumps(rows))
    args = ["backtest", "--data", str(workdir / "user_data" / "data"), "--days", "2"]
    assert await _in_thread(main, args) == 0
    out = capsys.readouterr().out
    assert "on binance (6 markets" in out
    trades = (workdir / "data" / "backtest" / "trades.csv").read_text().splitlines()
    assert trades[0].startswith("symbol,opened,closed") and len(trades) > 1


async def _in_thread(fn, *args):
    """The CLI runs its own event loop: keep it off the test's."""
    import asyncio

    return await asyncio.to_thread(fn, *args)


async def test_two_parameter_sets_give_different_reports_each_reproducible(tmp_path):
    await record_synthetic(tmp_path, days=4, end=END, markets=8)
    candles = load_folder(tmp_path, quote="USDT").candles
    start, end = window(candles, 300.0, days=2)
    texts = []
    for params in (TrendParams(), TrendParams(), TrendParams(require_breakout=False)):
        result = await run_backtest(
            Market(candles), strategy=TrendStrategy(params), settings=SETTINGS, start=start, end=end
        )
        texts.append(repr(report(result)))
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


async def test_the_engine_cannot_see_candles_after_the_end_of_the_replay(tmp_path):
    await record_synthetic(tmp_path, days=3, end=END, markets=6)
    honest = load_folder(tmp_path, quote="USDT").candles
    cut = END - 86_400.0
    future = {
        s: {tf: [c if c.ts < cut else c._replace(high=c.high * 3, close=c.close * 2) for c in cs]
            for tf, cs in by_tf.items()}
        for s, by_tf in honest.items()
    }  # fmt: skip
    start, _ = window(honest, 300.0, days=2)
    results = []
    for candles in (honest, future):
        strategy = TrendStrategy(TrendParams(require_breakout=False))
        result = await run_backtest(
            Market(candles), strategy=strategy, settings=SETTINGS, start=start, end=cut
        )
        results.append(result)
    assert results[0] == results[1]
    assert results[0].trades  # something was traded, so something could have differed


def _wide_candle_day(low: float, high: float, close: float) -> dict[str, dict[str, list[Candle]]]:
    """A flat BTC at 100 for a day, then one 5m candle reaching `low` and `high`."""
    t0 = END - 86_400.0
    candles = [Candle(t0 + i * 300, 100.0, 100.05, 99.95, 100.0, 50.0) for i in range(288)]
    candles[200] = Candle(candles[200].ts, 100.0, high, low, close, 50.0)
    return {BTC: {"5m": candles}}


@pytest.mark.parametrize(
    ("low", "close", "reason"),
    [(90.0, 108.0, "stop-loss (on exchange)"), (99.9, 108.0, "take-profit")],
)
async def test_a_stop_and_a_target_touched_in_one_candle_go_the_stop_s_way(low, close, reason):
    candles = _wide_candle_day(low=low, high=110.0, close=close)
    strategy = ScriptedStrategy([BTC], stop=0.05, target=0.05)
    start = candles[BTC]["5m"][190].ts
    result = await run_backtest(
        Market(candles, slippage=0.0), strategy=strategy, settings=SETTINGS, start=start,
        end=start + 20 * 300,
    )  # fmt: skip
    first = result.trades[0]
    assert first.reason == reason
    if reason.startswith("stop"):
        assert first.exit_price == pytest.approx(95.0, rel=1e-3)  # at the trigger, not the low


def _sawtooth_day() -> dict[str, dict[str, list[Candle]]]:
    """BTC climbing 1 % a 5m candle for three candles, then back down, all day: a 1 % target
    is reached on every climb, so an unguarded bot would buy and sell it again and again."""
    t0 = END - 2 * 86_400.0
    legs = (100.0, 101.0, 102.0, 103.0, 102.0, 101.0)
    candles = []
    for i in range(2 * 288):
        close, prev = legs[i % 6], legs[(i - 1) % 6]
        candles.append(Candle(t0 + i * 300, prev, max(prev, close), min(prev, close), close, 50.0))
    return {BTC: {"5m": candles}}


async def _round_trips(settings) -> list:
    candles = _sawtooth_day()
    start = candles[BTC]["5m"][288].ts  # a day of history before the first cycle
    result = await run_backtest(
        Market(candles, slippage=0.0),
        strategy=ScriptedStrategy([BTC], stop=0.5, target=0.01),
        settings=settings,
        start=start,
        end=start + 86_400.0 - 300,
    )
    return result.trades


async def test_the_reentry_cooldown_holds_in_a_backtest_as_live():
    trades = await _round_trips(replace(SETTINGS, reentry_cooldown_seconds=3600.0))
    assert len(trades) >= 3
    gaps = [b.opened_at - a.closed_at for a, b in pairwise(trades)]
    assert min(gaps) >= 3600.0


async def test_the_loop_guard_bans_a_symbol_bought_and_sold_too_often_in_a_backtest():
    free = await _round_trips(replace(SETTINGS, loop_guard_round_trips=1000))
    guarded = await _round_trips(
        replace(SETTINGS, loop_guard_round_trips=3, loop_guard_window_seconds=7200.0)
    )
    assert len(free) > 10  # without the guard the sawtooth is traded all day
    assert 3 <= len(guarded) < len(free)
    for trade in guarded:  # the trip beyond 3 within two hours bans it, as live
        within = [t for t in guarded if trade.closed_at - 7200.0 < t.closed_at <= trade.closed_at]
        assert len(within) <= 4
