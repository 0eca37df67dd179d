"""Mean reversion: buy an oversold dip below the 5-minute Bollinger band once it bounces, in a
market whose hourly trend is up or flat, and sell back at the mean.

Where the trend strategy buys strength, this one buys weakness, so the two rarely want the same
market at the same time. Entry (an event, not a state, so one dip is entered once): the
candle before the last closed below the lower band with the RSI oversold, and the last candle
closed back inside the band, above its open (the bounce). The hourly filter refuses a falling
market: the hourly mean must not have dropped more than `max_decline_pct` over
`regime_lookback` hours (a dip in a downtrend is the trend, not a dip). The stop sits below the
dip's low by a fraction of the 5m ATR (within a floor and a ceiling), the target is the middle
band; too little room to the mean for the risk and there is no trade. Exit signal: a close at
or above the middle band (the mean the target was drawn from keeps moving), or the hourly
filter breaking.

Candles are closed ones (base.py). Pure Python, no state between calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import log10, sqrt

from trading.models import Candle, Position, Ticker
from trading.strategies.base import Signal, explain_lines, param, spread_pct
from trading.strategies.trend import atr, rsi


@dataclass(frozen=True)
class MeanRevParams:
    """Tuning knobs; the defaults take a few dips a day on the paper markets."""

    band_period: int = param(20, low=5, high=500, help="5m candles in the Bollinger band")
    band_width: float = param(2.0, low=0.5, high=5, help="band half-width, standard deviations")
    rsi_period: int = param(14, low=2, high=100, help="5m RSI periods")
    rsi_oversold: float = param(32.0, low=1, high=50, help="the dip's RSI at most")
    trend_period: int = param(24, low=2, high=500, help="1h candles in the hourly mean")
    regime_lookback: int = param(6, low=1, high=200, help="1h candles the mean may fall over")
    max_decline_pct: float = param(1.5, low=0, high=50, help="hourly mean's fall allowed, %")
    atr_period: int = param(14, low=1, high=200, help="5m ATR periods")
    stop_atr: float = param(0.5, low=0, high=20, help="stop below the dip's low, in 5m ATRs")
    min_stop_pct: float = param(0.005, low=0.0001, high=0.5, help="stop at least this fraction")
    max_stop_pct: float = param(0.05, low=0.0001, high=0.9, help="stop at most this fraction")
    min_reward_risk: float = param(0.8, low=0, high=20, help="room to the mean / risk, at least")
    max_change_pct: float = param(25.0, low=0.1, high=1000, help="24 h move beyond: no range")
    max_spread_pct: float = param(1.0, low=0, high=100, help="bid/ask spread above: too costly")
    history: int = param(60, low=10, high=999, help="closed candles per series")

    def __post_init__(self) -> None:
        if self.min_stop_pct > self.max_stop_pct:
            raise ValueError("min_stop_pct must not exceed max_stop_pct")
        needed = max(
            self.band_period + 2, self.rsi_period + 3, self.trend_period + self.regime_lookback
        )
        if self.history < needed:
            raise ValueError(
                f"history ({self.history}) must be at least {needed} for these periods"
            )


Params = MeanRevParams


@dataclass(frozen=True)
class _Band:
    mean: float
    lower: float


@dataclass(frozen=True)
class _Reading:
    """What the candles say now; `entry` decides on it, `explain` shows it."""

    dip_close: float
    dip_band: _Band  # the band at the dip (the candle before the last)
    dip_rsi: float
    price: float  # the last close
    opened: float  # the last candle's open
    band: _Band  # the band at the last candle
    decline_pct: float  # the hourly mean's fall over `regime_lookback` hours (negative: rose)

    def dipped(self, p: MeanRevParams) -> bool:
        return self.dip_close < self.dip_band.lower and self.dip_rsi <= p.rsi_oversold

    def bounced(self) -> bool:
        return self.price > self.band.lower and self.price > self.opened

    def ranging(self, p: MeanRevParams) -> bool:
        return self.decline_pct <= p.max_decline_pct


class MeanRevStrategy:
    """Oversold bounce on 5m candles inside an hourly range or uptrend, target the mean."""

    name = "meanrev"
    timeframes = ("5m", "1h")

    def __init__(self, params: MeanRevParams | None = None) -> None:
        self.params = params or MeanRevParams()
        self.candle_limit = self.params.history

    def prescreen(self, ticker: Ticker) -> float | None:
        p = self.params
        spread = spread_pct(ticker)
        if spread is None:
            return None
        if abs(ticker.change_pct) > p.max_change_pct or spread > p.max_spread_pct:
            return None
        # Liquid and calm over the day: a dip in a quiet market reverts, one in a runaway not.
        return log10(ticker.quote_volume) / 4 - abs(ticker.change_pct) / 10

    def entry(self, symbol: str, candles: Mapping[str, Sequence[Candle]]) -> Signal | None:
        p = self.params
        r = self._read(candles)
        if r is None or not (r.dipped(p) and r.bounced() and r.ranging(p)):
            return None
        fast5 = candles["5m"]
        dip_low = min(c.low for c in fast5[-2:])
        floor = dip_low - p.stop_atr * atr(fast5, p.atr_period)
        risk = min(max(r.price - floor, p.min_stop_pct * r.price), p.max_stop_pct * r.price)
        reward = r.band.mean - r.price
        if reward <= 0 or reward < p.min_reward_risk * risk:
            return None
        depth = (r.dip_band.lower - r.dip_close) / max(r.dip_band.mean - r.dip_band.lower, 1e-12)
        score = depth + (p.rsi_oversold - r.dip_rsi) / 10 + reward / risk
        return Signal(score, r.price - risk, r.band.mean, "oversold bounce 5m, range 1h")

    def exit(
        self, position: Position, candles: Mapping[str, Sequence[Candle]], price: float
    ) -> str | None:
        p = self.params
        r = self._read(candles)
        if r is None:
            return None  # not enough history to judge: hold, the stop still protects
        if r.price >= r.band.mean:
            return "back at the 5m mean"
        if not r.ranging(p):
            return "1h mean falling"
        return None

    def explain(self, symbol: str, candles: Mapping[str, Sequence[Candle]]) -> str:
        """Each entry condition with its value, met or not, and the verdict."""
        p = self.params
        r = self._read(candles)
        if r is None:
            counts = ", ".join(f"{len(candles.get(tf, ()))} {tf}" for tf in self.timeframes)
            return explain_lines(
                [(f"history: {counts} candles", False)], f"{symbol}: no entry: too little history"
            )
        checks = [
            (
                f"dip close {r.dip_close:.8g} below the lower band {r.dip_band.lower:.8g}",
                r.dip_close < r.dip_band.lower,
            ),
            (f"dip RSI {r.dip_rsi:.1f} (want <= {p.rsi_oversold:g})", r.dip_rsi <= p.rsi_oversold),
            (f"last close {r.price:.8g} back above the band, above its open", r.bounced()),
            (
                f"1h mean fell {r.decline_pct:.2f}% in {p.regime_lookback} h "
                f"(want <= {p.max_decline_pct:g}%)",
                r.ranging(p),
            ),
        ]
        signal = self.entry(symbol, candles)
        if signal is not None:
            verdict = (
                f"{symbol}: entry ({signal.reason}), stop {signal.stop_loss:.8g}, "
                f"target {signal.take_profit:.8g}"
            )
        elif all(ok for _, ok in checks):
            verdict = f"{symbol}: no entry: too little room to the mean {r.band.mean:.8g}"
        else:
            verdict = f"{symbol}: no entry"
        return explain_lines(checks, verdict)

    def _read(self, candles: Mapping[str, Sequence[Candle]]) -> _Reading | None:
        p = self.params
        fast5, hourly = candles.get("5m", ()), candles.get("1h", ())
        if len(fast5) < max(p.band_period + 2, p.rsi_period + 3):
            return None
        if len(hourly) < p.trend_period + p.regime_lookback:
            return None
        closes = [c.close for c in fast5]
        hourly_closes = [c.close for c in hourly]
        now_mean = _mean(hourly_closes[-p.trend_period :])
        then = hourly_closes[-p.trend_period - p.regime_lookback : -p.regime_lookback]
        return _Reading(
            dip_close=closes[-2],
            dip_band=self._band(closes[:-1]),
            dip_rsi=rsi(closes[:-1], p.rsi_period),
            price=closes[-1],
            opened=fast5[-1].open,
            band=self._band(closes),
            decline_pct=(1 - now_mean / _mean(then)) * 100,
        )

    def _band(self, closes: Sequence[float]) -> _Band:
        window = closes[-self.params.band_period :]
        mean = _mean(window)
        deviation = sqrt(sum((c - mean) ** 2 for c in window) / len(window))
        return _Band(mean, mean - self.params.band_width * deviation)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def create(params: MeanRevParams | None = None) -> MeanRevStrategy:
    return MeanRevStrategy(params)
