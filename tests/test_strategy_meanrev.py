"""The mean-reversion strategy on crafted candles: an oversold dip that bounces in a calm market
is bought with the mean as its target; a dip still falling, a dip in a downtrend, a calm market
and a dip with no room to the mean are not."""

from __future__ import annotations

import pytest

from sim.clock import FakeClock
from tests.engine_support import make_rig
from tests.test_strategy import held, series, ticker
from trading.events import TradeClosed, TradeOpened
from trading.models import Candle
from trading.settings import TradingSettings
from trading.strategies import load_strategy
from trading.strategies.meanrev import MeanRevParams, MeanRevStrategy


def ranging(n: int, mid: float = 100.0, amplitude: float = 0.002) -> list[float]:
    """Closes alternating a fraction above and below `mid`: a calm market."""
    return [mid * (1 + amplitude * (1 if i % 2 else -1)) for i in range(n)]


CALM_HOURS = series(ranging(60, amplitude=0.004), 3600, wick=0.001)
FALLING_HOURS = series([100 * (1 - 0.004 * i) for i in range(60)], 3600, wick=0.001)
DIP = [99.4, 98.5, 97.5, 96.5]  # four 5m closes down, the last far below the band


def fives(closes: list[float]) -> list[Candle]:
    return series(ranging(55) + closes, 300, wick=0.001)


def bounce() -> dict[str, list[Candle]]:
    return {"1h": CALM_HOURS, "5m": fives([*DIP, 97.6])}


@pytest.fixture
def meanrev() -> MeanRevStrategy:
    return MeanRevStrategy()


def test_an_oversold_dip_that_bounces_in_a_calm_market_is_bought_with_the_mean_as_target(meanrev):
    signal = meanrev.entry("X/USDT", bounce())
    assert signal is not None and signal.reason == "oversold bounce 5m, range 1h"
    closes = [c.close for c in bounce()["5m"]][-20:]
    assert signal.take_profit == pytest.approx(sum(closes) / 20)
    assert signal.stop_loss < 96.5 * 0.999 < 97.6 < signal.take_profit  # under the dip's low
    assert signal.score > 0


def test_a_dip_still_falling_is_not_bought(meanrev):
    assert meanrev.entry("X/USDT", {"1h": CALM_HOURS, "5m": fives(DIP)}) is None
    assert meanrev.entry("X/USDT", {"1h": CALM_HOURS, "5m": fives([*DIP, 96.0])}) is None


def test_a_dip_in_an_hourly_downtrend_is_not_bought(meanrev):
    assert meanrev.entry("X/USDT", {"1h": FALLING_HOURS, "5m": fives([*DIP, 97.6])}) is None


def test_a_calm_market_without_a_dip_is_not_bought(meanrev):
    assert meanrev.entry("X/USDT", {"1h": CALM_HOURS, "5m": fives([100.2, 99.8, 100.3])}) is None


def test_a_dip_not_oversold_enough_for_the_parameters_is_not_bought():
    strict = MeanRevStrategy(MeanRevParams(rsi_oversold=20.0))
    assert strict.entry("X/USDT", bounce()) is None


def test_a_bounce_with_too_little_room_to_the_mean_is_not_bought_and_explain_says_so():
    greedy = MeanRevStrategy(MeanRevParams(min_reward_risk=5.0))
    assert greedy.entry("X/USDT", bounce()) is None
    assert greedy.explain("X/USDT", bounce()).endswith("too little room to the mean 99.465")


def test_too_little_history_is_no_signal_and_no_exit(meanrev):
    candles = bounce()
    assert meanrev.entry("X/USDT", {"1h": candles["1h"][-20:], "5m": candles["5m"]}) is None
    assert meanrev.entry("X/USDT", {"5m": candles["5m"]}) is None
    assert meanrev.exit(held(97.6), {"5m": candles["5m"][-5:]}, 97.6) is None


def test_exit_back_at_the_mean(meanrev):
    candles = {"1h": CALM_HOURS, "5m": fives([*DIP, 97.6, 98.5, 99.5, 100.2])}
    assert meanrev.exit(held(97.6), candles, 100.2) == "back at the 5m mean"


def test_exit_when_the_hourly_mean_starts_falling(meanrev):
    candles = {"1h": FALLING_HOURS, "5m": fives([*DIP, 97.6])}
    assert meanrev.exit(held(97.6), candles, 97.6) == "1h mean falling"


def test_hold_below_the_mean_in_a_calm_market(meanrev):
    assert meanrev.exit(held(97.6), bounce(), 97.6) is None


def test_prescreen_skips_spikes_crashes_wide_spreads_and_prefers_calm_liquid_markets(meanrev):
    assert meanrev.prescreen(ticker(40.0)) is None
    assert meanrev.prescreen(ticker(-30.0)) is None
    assert meanrev.prescreen(ticker(1.0, spread=0.05)) is None
    assert meanrev.prescreen(ticker(1.0, volume=0.0)) is None
    calm, jumpy, thin = (
        meanrev.prescreen(ticker(1.0)),
        meanrev.prescreen(ticker(-12.0)),
        meanrev.prescreen(ticker(1.0, volume=1e4)),
    )
    assert calm > jumpy and calm > thin


def test_explain_names_every_condition_and_the_verdict(meanrev):
    lines = meanrev.explain("X/USDT", bounce()).splitlines()
    assert [line[0] for line in lines[:4]] == ["✓", "✓", "✓", "✓"]
    assert lines[-1].startswith("X/USDT: entry (oversold bounce 5m, range 1h), stop ")
    falling = meanrev.explain("X/USDT", {"1h": FALLING_HOURS, "5m": fives([*DIP, 97.6])})
    assert "✗ 1h mean fell 2.88% in 6 h (want <= 1.5%)" in falling
    assert falling.endswith("X/USDT: no entry")
    assert meanrev.explain("X/USDT", {}).endswith("no entry: too little history")


def test_parameters_that_cannot_work_together_are_refused():
    with pytest.raises(ValueError, match="history"):
        MeanRevParams(trend_period=100)
    with pytest.raises(ValueError, match="min_stop_pct"):
        MeanRevParams(min_stop_pct=0.2, max_stop_pct=0.1)


async def test_the_engine_trades_it_on_paper_markets_taking_profits_at_the_mean():
    settings = TradingSettings(min_quote_volume=0.0, max_positions=5, stake_amount=200.0)
    rig = make_rig(FakeClock(), strategy=load_strategy("meanrev"), settings=settings, markets=30)
    await rig.trader.start()

    await rig.cycles(24 * 6, step=600)  # a simulated day, a cycle every 10 minutes

    opened, closed = rig.of(TradeOpened), rig.of(TradeClosed)
    assert len(opened) >= 3 and len(closed) >= 2
    assert {"take-profit", "back at the 5m mean"} & {c.reason for c in closed}
    assert rig.trader.last_error is None
