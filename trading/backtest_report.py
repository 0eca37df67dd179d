"""What a backtest's trades and equity curve add up to: pure arithmetic over a BacktestResult
(trading/backtest.py), on top of the ledger's (trading/ledger.py). The chat layer formats it.

Sharpe and Sortino are of daily returns (equity at each UTC midnight of the replay, and its
last point), annualised over 365 days, with no risk-free rate: crypto trades every day. Sortino's
downside deviation is the root mean square of the negative daily returns.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

from trading.backtest import BacktestResult
from trading.ledger import Drawdown, SymbolResult, TradeStats, max_drawdown, performance, stats

DAY = 86_400.0
SHOWN_SYMBOLS = 3


@dataclass(frozen=True)
class Report:
    result: BacktestResult
    trades: TradeStats
    final_equity: float
    pnl: float
    pnl_pct: float
    drawdown: Drawdown | None
    sharpe: float | None
    sortino: float | None
    exposure_mean: float  # share of equity held in positions, averaged over the cycles
    exposure_max: float
    in_market: float  # share of cycles with anything held
    exposure_by_day: list[tuple[float, float]]  # (UTC midnight, mean exposure of that day)
    best: list[SymbolResult]
    worst: list[SymbolResult]
    reasons: list[tuple[str, int]]  # why trades closed, most frequent first


def report(result: BacktestResult) -> Report:
    curve = [(p.at, p.equity) for p in result.curve]
    final = curve[-1][1] if curve else result.starting_equity
    pnl = final - result.starting_equity
    daily = _daily_returns(curve)
    exposures = [p.exposure for p in result.curve]
    by_symbol = performance(result.trades)
    reasons = Counter(t.reason for t in result.trades)
    return Report(
        result=result,
        trades=stats(result.trades),
        final_equity=final,
        pnl=pnl,
        pnl_pct=pnl / result.starting_equity * 100 if result.starting_equity else 0.0,
        drawdown=max_drawdown(curve),
        sharpe=_ratio(daily, _deviation(daily)),
        sortino=_ratio(daily, _downside(daily)),
        exposure_mean=math.fsum(exposures) / len(exposures) if exposures else 0.0,
        exposure_max=max(exposures, default=0.0),
        in_market=sum(1 for e in exposures if e > 0) / len(exposures) if exposures else 0.0,
        exposure_by_day=_by_day(result),
        best=[r for r in by_symbol[:SHOWN_SYMBOLS] if r.pnl > 0],
        worst=[r for r in reversed(by_symbol[-SHOWN_SYMBOLS:]) if r.pnl < 0],
        reasons=sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
    )


def _daily_returns(curve: list[tuple[float, float]]) -> list[float]:
    """Returns from one UTC day's last equity to the next day's (the first point opens)."""
    if not curve:
        return []
    closes = [curve[0][1]]
    for (before, equity), (after, _) in pairwise(curve):
        if after // DAY != before // DAY:
            closes.append(equity)
    closes.append(curve[-1][1])
    return [b / a - 1.0 for a, b in pairwise(closes) if a > 0]


def _deviation(returns: list[float]) -> float:
    if len(returns) < 2:
        return 0.0
    mean = math.fsum(returns) / len(returns)
    return math.sqrt(math.fsum((r - mean) ** 2 for r in returns) / (len(returns) - 1))


def _downside(returns: list[float]) -> float:
    if len(returns) < 2:
        return 0.0
    return math.sqrt(math.fsum(min(r, 0.0) ** 2 for r in returns) / len(returns))


def _ratio(returns: list[float], deviation: float) -> float | None:
    if deviation <= 0:
        return None
    return math.fsum(returns) / len(returns) / deviation * math.sqrt(365.0)


def _by_day(result: BacktestResult) -> list[tuple[float, float]]:
    days: dict[float, list[float]] = {}
    for p in result.curve:
        days.setdefault(p.at - p.at % DAY, []).append(p.exposure)
    return [(day, math.fsum(v) / len(v)) for day, v in sorted(days.items())]
