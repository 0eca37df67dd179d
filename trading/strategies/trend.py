"""The default strategy: follow an hourly uptrend when 5-minute momentum confirms it.

Entry: on 1h candles the fast EMA is above the slow EMA by a margin and the slow EMA is
rising (the trend), and on 5m candles the RSI sits in a healthy band (strength without
exhaustion), the price is above a short EMA and breaks out above the previous hour's highs
(momentum now: the entry is an event, not a state, so a long trend is entered once, not on
every cycle). The stop sits a multiple of the hourly ATR below the
price (within a floor and a ceiling, so a quiet market gets no hair-trigger stop and a wild one no
ruinous stop), the target a larger multiple above: reward above risk. Exit signal: the hourly
trend turns (fast EMA below slow EMA).

Candles are closed ones (base.py); the last 5m close is the price. Pure Python, no state
between calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from math import log10

from trading.models import Candle, Position, Ticker
from trading.strategies.base import Signal, explain_lines, param, spread_pct


@dataclass(frozen=True)
class TrendParams:
    """Tuning knobs; the defaults trade a handful of times a day on the paper markets."""

    fast: int = param(9, low=2, high=200, help="1h fast EMA periods")
    slow: int = param(21, low=3, high=400, help="1h slow EMA periods")
    rising_lookback: int = param(3, low=1, high=100, help="1h candles the slow EMA must rise over")
    min_spread_atr: float = param(1.25, low=0, high=20, help="fast - slow, in 1h ATRs, for a trend")
    momentum_ema: int = param(9, low=2, high=200, help="5m EMA the price must be above")
    rsi_period: int = param(14, low=2, high=100, help="5m RSI periods")
    rsi_low: float = param(52.0, low=0, high=100, help="5m RSI at least")
    rsi_high: float = param(72.0, low=0, high=100, help="5m RSI at most (exhaustion above)")
    breakout_lookback: int = param(12, low=1, high=500, help="5m candles whose highs to break")
    require_breakout: bool = param(True, help="enter on the break, not anywhere in a trend")
    atr_period: int = param(14, low=1, high=200, help="1h ATR periods")
    stop_atr: float = param(1.5, low=0.001, high=50, help="stop distance in 1h ATRs")
    target_atr: float = param(3.0, low=0.001, high=100, help="target distance in 1h ATRs")
    min_stop_pct: float = param(0.01, low=0.0001, high=0.5, help="stop at least this fraction")
    max_stop_pct: float = param(0.08, low=0.0001, high=0.9, help="stop at most this fraction")
    max_change_pct: float = param(25.0, low=0.1, high=1000, help="24 h change above: a spike")
    max_spread_pct: float = param(1.0, low=0, high=100, help="bid/ask spread above: too costly")
    history: int = param(49, low=10, high=999, help="closed candles per series (EMA warm-up)")

    def __post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")
        if self.rsi_low >= self.rsi_high:
            raise ValueError(f"rsi_low ({self.rsi_low}) must be below rsi_high ({self.rsi_high})")
        if self.min_stop_pct > self.max_stop_pct:
            raise ValueError("min_stop_pct must not exceed max_stop_pct")
        needed = max(
            self.slow + self.rising_lookback + 1,
            self.breakout_lookback + 2,
            self.rsi_period + 2,
        )
        if self.history < needed:
            raise ValueError(
                f"history ({self.history}) must be at least {needed} for these periods"
            )


Params = TrendParams


@dataclass(frozen=True)
class _Trend:
    """What the hourly candles say."""

    strength: float  # fast - slow, in ATRs
    atr: float
    rising: bool  # the slow EMA over `rising_lookback`
    above_slow: bool  # the last close

    def up(self, p: TrendParams) -> bool:
        return (
            self.atr > 0 and self.strength >= p.min_spread_atr and self.rising and self.above_slow
        )


@dataclass(frozen=True)
class _Momentum:
    """What the 5-minute candles say."""

    price: float  # the last close
    rsi: float
    ema: float
    breakout_level: float  # the highest high of the candles before the last

    @property
    def breakout(self) -> bool:
        return self.price > self.breakout_level


class TrendStrategy:
    """Trend + momentum on 5m and 1h candles, ATR-based stop and take-profit."""

    name = "trend"
    timeframes = ("5m", "1h")

    def __init__(self, params: TrendParams | None = None) -> None:
        self.params = params or TrendParams()
        self.candle_limit = self.params.history

    def prescreen(self, ticker: Ticker) -> float | None:
        p = self.params
        spread = spread_pct(ticker)
        if spread is None:
            return None
        change = ticker.change_pct
        if change <= 0 or change > p.max_change_pct or spread > p.max_spread_pct:
            return None
        # Prefer a steady rise over a jump: the score peaks at a third of the spike limit.
        peak = p.max_change_pct / 3
        steadiness = change if change <= peak else peak - (change - peak) / 2
        return steadiness + log10(ticker.quote_volume) / 4

    def entry(self, symbol: str, candles: Mapping[str, Sequence[Candle]]) -> Signal | None:
        p = self.params
        hourly, fast5 = candles.get("1h", ()), candles.get("5m", ())
        if not self._enough(hourly, fast5):
            return None
        trend = self._trend(hourly)
        if not trend.up(p):
            return None
        m = self._momentum(fast5)
        if m.price <= 0 or not (p.rsi_low <= m.rsi <= p.rsi_high) or m.price <= m.ema:
            return None
        if p.require_breakout and not m.breakout:
            return None
        risk = min(max(p.stop_atr * trend.atr, p.min_stop_pct * m.price), p.max_stop_pct * m.price)
        reward = risk * p.target_atr / p.stop_atr
        score = min(trend.strength, 3.0) + (m.rsi - 50) / 20 + (0.5 if m.breakout else 0.0)
        reason = "trend+momentum 5m/1h" + (" breakout" if m.breakout else "")
        return Signal(score, m.price - risk, m.price + reward, reason)

    def exit(
        self, position: Position, candles: Mapping[str, Sequence[Candle]], price: float
    ) -> str | None:
        p = self.params
        closed = [c.close for c in candles.get("1h", ())]
        if len(closed) < p.slow:
            return None  # not enough history to judge: hold, the stop still protects
        if ema(closed, p.fast)[-1] < ema(closed, p.slow)[-1]:
            return "1h trend turned down"
        return None

    def explain(self, symbol: str, candles: Mapping[str, Sequence[Candle]]) -> str:
        """Each entry condition with its value, met or not, and the verdict."""
        p = self.params
        hourly, fast5 = candles.get("1h", ()), candles.get("5m", ())
        if not self._enough(hourly, fast5):
            return explain_lines(
                [(f"history: {len(hourly)} 1h and {len(fast5)} 5m candles", False)],
                f"{symbol}: no entry: too little history",
            )
        t, m = self._trend(hourly), self._momentum(fast5)
        checks = [
            (
                f"1h fast-slow EMA {t.strength:.2f} ATR (need >= {p.min_spread_atr:g})",
                t.atr > 0 and t.strength >= p.min_spread_atr,
            ),
            (f"1h slow EMA rising over {p.rising_lookback} candles", t.rising),
            ("1h close above the slow EMA", t.above_slow),
            (
                f"5m RSI {m.rsi:.1f} (want {p.rsi_low:g}..{p.rsi_high:g})",
                p.rsi_low <= m.rsi <= p.rsi_high,
            ),
            (f"5m close {m.price:.8g} above EMA{p.momentum_ema} {m.ema:.8g}", m.price > m.ema),
            (
                f"breaks the last {p.breakout_lookback} candles' high {m.breakout_level:.8g}"
                + ("" if p.require_breakout else " (optional)"),
                m.breakout,
            ),
        ]
        signal = self.entry(symbol, candles)
        if signal is None:
            return explain_lines(checks, f"{symbol}: no entry")
        verdict = (
            f"{symbol}: entry ({signal.reason}), stop {signal.stop_loss:.8g}, "
            f"target {signal.take_profit:.8g}"
        )
        return explain_lines(checks, verdict)

    def _enough(self, hourly: Sequence[Candle], fast5: Sequence[Candle]) -> bool:
        p = self.params
        return (
            len(hourly) >= p.slow + p.rising_lookback + 1
            and len(fast5) >= max(p.rsi_period, p.breakout_lookback) + 2
        )

    def _trend(self, hourly: Sequence[Candle]) -> _Trend:
        p = self.params
        closes = [c.close for c in hourly]
        fast, slow = ema(closes, p.fast), ema(closes, p.slow)
        volatility = atr(hourly, p.atr_period)
        strength = (fast[-1] - slow[-1]) / volatility if volatility > 0 else 0.0
        rising = slow[-1] > slow[-1 - p.rising_lookback]
        return _Trend(strength, volatility, rising, closes[-1] >= slow[-1])

    def _momentum(self, fast5: Sequence[Candle]) -> _Momentum:
        p = self.params
        closes = [c.close for c in fast5]
        level = max(c.high for c in fast5[-1 - p.breakout_lookback : -1])
        return _Momentum(
            closes[-1], rsi(closes, p.rsi_period), ema(closes, p.momentum_ema)[-1], level
        )


def ema(values: Sequence[float], period: int) -> list[float]:
    """Exponential moving average, seeded with the first value; same length as `values`."""
    if not values:
        return []
    k = 2.0 / (period + 1)
    out = [float(values[0])]
    for v in values[1:]:
        out.append(out[-1] + k * (v - out[-1]))
    return out


def rsi(closes: Sequence[float], period: int = 14) -> float:
    """Wilder's relative strength index of the last close, 0..100 (50 without history)."""
    if len(closes) <= period:
        return 50.0
    gains = [max(0.0, b - a) for a, b in pairwise(closes)]
    losses = [max(0.0, a - b) for a, b in pairwise(closes)]
    avg_gain = sum(gains[:period]) / period
    avg_loss = sum(losses[:period]) / period
    for g, loss in zip(gains[period:], losses[period:], strict=True):
        avg_gain = (avg_gain * (period - 1) + g) / period
        avg_loss = (avg_loss * (period - 1) + loss) / period
    if avg_loss == 0:
        return 100.0 if avg_gain > 0 else 50.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


def atr(candles: Sequence[Candle], period: int = 14) -> float:
    """Wilder's average true range of the last candle (0.0 without history)."""
    if len(candles) < 2:
        return 0.0
    ranges = [
        max(c.high - c.low, abs(c.high - prev.close), abs(c.low - prev.close))
        for prev, c in pairwise(candles)
    ]
    value = sum(ranges[:period]) / min(period, len(ranges))
    for r in ranges[period:]:
        value = (value * (period - 1) + r) / period
    return value


def create(params: TrendParams | None = None) -> TrendStrategy:
    return TrendStrategy(params)
