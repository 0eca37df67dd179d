"""The strategy contract (trading/strategies/base.py) as the engine keeps it: closed candles
only, parameters checked against the `Params` dataclass, and the built-in trend strategy's
knobs all in its dataclass."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sim.clock import FakeClock
from tests.test_strategy import downtrend, uptrend
from trading.connector import Connector
from trading.models import Candle, Position, Ticker
from trading.scanner import Scanner
from trading.strategies import ParamsError, Signal, StrategyError, load_strategy, param
from trading.strategies.base import closed_candles, timeframe_seconds
from trading.strategies.params import parse_params
from trading.strategies.trend import TrendParams, TrendStrategy
from trading.venues.paper import PaperExchange

MID_CANDLE = 1_700_000_000.0 + 3 * 3600 + 1234.5  # 20 min 34.5 s into an hour


class Recorder:
    """Signals every market it is shown and keeps what it was given."""

    name = "recorder"
    timeframes = ("5m", "1h")
    candle_limit = 5

    def __init__(self) -> None:
        self.seen: list[dict[str, list[Candle]]] = []

    def prescreen(self, ticker: Ticker) -> float | None:
        return ticker.quote_volume

    def entry(self, symbol: str, candles) -> Signal | None:
        self.seen.append(dict(candles))
        price = candles["5m"][-1].close
        return Signal(1.0, price * 0.9, price * 1.2, "recorded")

    def exit(self, position: Position, candles, price: float) -> str | None:
        return None


async def scanner_for(strategy, clock: FakeClock) -> Scanner:
    paper = PaperExchange(clock=clock, markets=10, seed=1, rate_limit=0)
    connector = Connector(paper, clock=clock)
    await connector.load_markets()
    return Scanner(connector, strategy, quote="USDT", min_quote_volume=0.0)


def only_closed(series: dict[str, list[Candle]], now: float, limit: int) -> None:
    for timeframe, candles in series.items():
        period = timeframe_seconds(timeframe)
        assert len(candles) == limit
        assert all(c.ts + period <= now for c in candles)
        assert candles[-1].ts == (now // period - 1) * period  # the newest closed one


async def test_the_scanner_shows_the_strategy_closed_candles_only():
    clock = FakeClock(MID_CANDLE)
    strategy = Recorder()
    scanner = await scanner_for(strategy, clock)

    scan = await scanner.scan(exclude=set(), budget=20)
    for_exit = await scanner.candles_for(scan.candidates[0].symbol)

    assert strategy.seen
    for series in [*strategy.seen, for_exit]:
        only_closed(series, MID_CANDLE, Recorder.candle_limit)


def test_a_series_of_closed_candles_only_keeps_them_all():
    """Recorded data has no forming candle: nothing closed is dropped."""
    hour = 3600.0
    series = [Candle(i * hour, 1, 1, 1, 1, 1) for i in range(10)]
    assert closed_candles(series, "1h", 10 * hour, 4) == series[-4:]
    assert closed_candles(series, "1h", 10 * hour - 1, 4) == series[-5:-1]


def test_timeframes_are_read_in_seconds_and_nonsense_is_refused():
    assert [timeframe_seconds(t) for t in ("1m", "5m", "4h", "1d", "1w")] == [
        60,
        300,
        14_400,
        86_400,
        604_800,
    ]
    for bad in ("", "5", "0m", "1M", "1 hour", "h1"):
        with pytest.raises(ValueError):
            timeframe_seconds(bad)


@dataclass(frozen=True)
class Knobs:
    period: int = param(14, low=2, high=100)
    ratio: float = param(1.5, low=0)
    careful: bool = param(True)
    label: str = "x"


def test_parameters_fill_the_dataclass_over_its_defaults_converting_numbers():
    knobs = parse_params(Knobs, {"period": 20.0, "ratio": 2, "label": "y"})
    assert knobs == Knobs(period=20, ratio=2.0, careful=True, label="y")
    assert isinstance(knobs.ratio, float) and isinstance(knobs.period, int)


def test_every_bad_parameter_is_named_at_once():
    with pytest.raises(ParamsError) as caught:
        parse_params(
            Knobs,
            {"period": 1, "ratio": True, "careful": 1, "label": 5, "perod": 3, "ratio2": 1},
        )
    assert caught.value.problems == [
        "period=1: must be between 2 and 100",
        "ratio=True: expected a number",
        "careful=1: expected true or false",
        "label=5: expected a string",
        "perod: unknown parameter (did you mean period?)",
        "ratio2: unknown parameter (did you mean ratio?)",
    ]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2.5])
def test_non_finite_and_fractional_values_are_refused(value):
    with pytest.raises(ParamsError):
        parse_params(Knobs, {"ratio": value} if value != 2.5 else {"period": value})


def test_a_params_field_of_another_type_is_a_start_up_error(tmp_path):
    (tmp_path / "listy.py").write_text(
        "from dataclasses import dataclass\n"
        "@dataclass(frozen=True)\n"
        "class Params:\n"
        "    symbols: list = ()\n"
        "def create(params):\n"
        "    raise AssertionError('never built')\n"
    )
    with pytest.raises(StrategyError, match=r"listy\.py: Params\.symbols: a parameter is int"):
        load_strategy("listy", directory=tmp_path)


def test_the_trend_defaults_are_the_dataclass_defaults_and_history_sets_the_candle_limit():
    assert load_strategy("trend").params == TrendParams()
    assert load_strategy("trend").candle_limit == TrendParams().history
    assert load_strategy("trend", params={"history": 120}).candle_limit == 120
    with pytest.raises(StrategyError, match=r"history \(30\) must be at least 44"):
        load_strategy("trend", params={"history": 30, "slow": 40})
    with pytest.raises(StrategyError, match=r"fast \(30\) must be below slow \(21\)"):
        load_strategy("trend", params={"fast": 30})


def test_trend_explain_names_every_condition_and_the_verdict():
    trend = TrendStrategy()
    text = trend.explain("X/USDT", uptrend())
    lines = text.splitlines()
    assert len(lines) == 7 and all(line[0] == "✓" for line in lines[:6])
    assert lines[-1].startswith("X/USDT: entry (trend+momentum 5m/1h breakout), stop ")
    down = trend.explain("X/USDT", downtrend()).splitlines()
    assert down[0].startswith("✗ 1h fast-slow EMA -") and down[-1] == "X/USDT: no entry"
    assert trend.explain("X/USDT", {}).endswith("no entry: too little history")
