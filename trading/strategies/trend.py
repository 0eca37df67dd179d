"""The default strategy: follow an hourly uptrend when 5-minute momentum confirms it.

Entry: on closed 1h candles the fast EMA is above the slow EMA by a margin and the slow EMA is
rising (the trend), and on 5m candles the RSI sits in a healthy band (strength without
exhaustion), the price is above a short EMA and breaks out above the last hour's highs
(momentum now: the entry is an event, not a state, so a long trend is entered once, not on
every cycle). The stop sits a multiple of the hourly ATR below the
price (within a floor and a ceiling, so a quiet market gets no hair-trigger stop and a wild one no
ruinous stop), the target a larger multiple above: reward above risk. Exit signal: the hourly
trend turns (fast EMA below slow EMA).

The last candle of each series is the one still forming: indicators use closed candles, and the
forming candle's close is the current price. Pure Python, no state between calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from math import log10

from trading.models import Candle, Position, Ticker
from trading.strategies.base import Signal


@dataclass(frozen=True)
class TrendParams:
    """Tuning knobs; the defaults trade a handful of times a day on the paper markets."""

    fast: int = 9  # 1h EMA periods
    slow: int = 21
    rising_lookback: int = 3  # 1h candles over which the slow EMA must have risen
    min_spread_atr: float = 1.25  # fast - slow, in hourly ATRs, before a trend counts
    momentum_ema: int = 9  # 5m EMA the price must be above
    rsi_period: int = 14
    rsi_low: float = 52.0
    rsi_high: float = 72.0
    breakout_lookback: int = 12  # 5m candles: the last hour
    require_breakout: bool = True  # enter on the break, not anywhere in a trend
    atr_period: int = 14
    stop_atr: float = 1.5
    target_atr: float = 3.0
    min_stop_pct: float = 0.01
    max_stop_pct: float = 0.08
    max_change_pct: float = 25.0  # 24 h change above this is a spike, not a trend
    max_spread_pct: float = 1.0  # bid/ask spread above this costs too much to trade


class TrendStrategy:
    """Trend + momentum on 5m and 1h candles, ATR-based stop and take-profit."""

    name = "trend"
    timeframes = ("5m", "1h")
    candle_limit = 50

    def __init__(self, params: TrendParams | None = None) -> None:
        self.params = params or TrendParams()

    def prescreen(self, ticker: Ticker) -> float | None:
        p = self.params
        if ticker.last <= 0 or ticker.quote_volume <= 0 or ticker.bid <= 0:
            return None
        spread_pct = (ticker.ask - ticker.bid) / ticker.last * 100
        change = ticker.change_pct
        if change <= 0 or change > p.max_change_pct or spread_pct > p.max_spread_pct:
            return None
        # Prefer a steady rise over a jump: the score peaks at a third of the spike limit.
        peak = p.max_change_pct / 3
        steadiness = change if change <= peak else peak - (change - peak) / 2
        return steadiness + log10(ticker.quote_volume) / 4

    def entry(self, symbol: str, candles: Mapping[str, Sequence[Candle]]) -> Signal | None:
        p = self.params
        hourly, fast5 = candles.get("1h", ()), candles.get("5m", ())
        if len(hourly) < p.slow + p.rising_lookback + 2 or len(fast5) < p.rsi_period + 3:
            return None
        price = fast5[-1].close
        trend = self._trend(hourly[:-1])
        if trend is None or price <= 0:
            return None
        strength, hourly_atr = trend
        closed5 = fast5[:-1]
        closes5 = [c.close for c in closed5]
        momentum = rsi(closes5, p.rsi_period)
        if not (p.rsi_low <= momentum <= p.rsi_high) or price <= ema(closes5, p.momentum_ema)[-1]:
            return None
        recent = closed5[-p.breakout_lookback :]
        breakout = price > max(c.high for c in recent)
        if p.require_breakout and not breakout:
            return None
        risk = min(max(p.stop_atr * hourly_atr, p.min_stop_pct * price), p.max_stop_pct * price)
        reward = risk * p.target_atr / p.stop_atr
        score = min(strength, 3.0) + (momentum - 50) / 20 + (0.5 if breakout else 0.0)
        reason = "trend+momentum 5m/1h" + (" breakout" if breakout else "")
        return Signal(score, price - risk, price + reward, reason)

    def exit(
        self, position: Position, candles: Mapping[str, Sequence[Candle]], price: float
    ) -> str | None:
        p = self.params
        hourly = candles.get("1h", ())
        closed = [c.close for c in hourly[:-1]]
        if len(closed) < p.slow + 1:
            return None  # not enough history to judge: hold, the stop still protects
        if ema(closed, p.fast)[-1] < ema(closed, p.slow)[-1]:
            return "1h trend turned down"
        return None

    def _trend(self, closed: Sequence[Candle]) -> tuple[float, float] | None:
        """(fast - slow in ATRs, ATR) when the hourly trend is up, else None."""
        p = self.params
        closes = [c.close for c in closed]
        fast, slow = ema(closes, p.fast), ema(closes, p.slow)
        volatility = atr(closed, p.atr_period)
        if volatility <= 0:
            return None
        strength = (fast[-1] - slow[-1]) / volatility
        rising = slow[-1] > slow[-1 - p.rising_lookback]
        if strength < p.min_spread_atr or not rising or closes[-1] < slow[-1]:
            return None
        return strength, volatility


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


def create() -> TrendStrategy:
    return TrendStrategy()
