"""The strategy contract: what a strategy module provides, what it is given, what it returns.

This is a public interface (docs/STRATEGIES.md shows it to users, who write strategies in their
own folder, `STRATEGY_DIR`); keep it small and change it only compatibly.

A strategy module defines

    Params                 a frozen dataclass of its tuning knobs: each field has a default, a
                           type (int, float, bool or str) and, through `param()`, bounds and a
                           one-line help. `STRATEGY_PARAMS` is validated against it at start: an
                           unknown name, a wrong type or a value out of bounds stops the bot,
                           naming every bad one. Relations between fields are checked in its
                           `__post_init__` by raising ValueError.
    create(params)         returns the strategy object, built from a validated `Params`.

The strategy object (the `Strategy` protocol below) is pure: no I/O, no clock, no state
between calls, so the same candles give the same answer live, in the paper demo and in a
backtest. It says which candle series it needs (`timeframes`, `candle_limit`), ranks the
universe from tickers (`prescreen`), and judges the best-ranked markets from their candles
(`entry`) and the positions it opened (`exit`).

Candles: for each timeframe it names, the strategy gets the last `candle_limit` CLOSED candles,
oldest first (the engine drops the candle still forming: its numbers change until it closes,
and a backtest has no such candle). The last candle's close is the latest settled price; the
engine buys at the ask, so keep the stop and the target clear of the spread and of a
candle's move. A series may be shorter than asked (a new market): check lengths.

Stop-loss and take-profit travel with the position and are enforced by the engine (and by a
stop resting at the exchange); `exit()` is only for the strategy's own reasons to leave early.
`explain()` is optional: a few lines saying why it would or would not enter now (/debug).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from trading.models import Candle, Position, Ticker

_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}


@dataclass(frozen=True)
class Signal:
    """An entry worth taking now, with where it is wrong (stop) and where it is done (target)."""

    score: float  # higher is better, for ranking candidates
    stop_loss: float  # price
    take_profit: float  # price
    reason: str  # short, e.g. "trend+momentum 5m/1h"


class Strategy(Protocol):
    """The object a strategy module's `create(params)` returns."""

    name: str
    timeframes: tuple[str, ...]  # candle series it needs, e.g. ("5m", "1h")
    candle_limit: int  # closed candles per series it wants

    def prescreen(self, ticker: Ticker) -> float | None:
        """Rank from the ticker alone, for the whole universe at once; None = skip."""

    def entry(self, symbol: str, candles: Mapping[str, Sequence[Candle]]) -> Signal | None:
        """An entry signal for this symbol now, or None."""

    def exit(
        self, position: Position, candles: Mapping[str, Sequence[Candle]], price: float
    ) -> str | None:
        """A reason to exit this position now (`price`: the bid), or None to hold."""

    # Optional: def explain(self, symbol: str, candles: Mapping[str, Sequence[Candle]]) -> str
    # (not in the protocol, so strategies without it still conform).


def param(default: Any, *, low: float | None = None, high: float | None = None, help: str = ""):
    """A `Params` field with its bounds (inclusive) and a one-line help."""
    return field(default=default, metadata={"low": low, "high": high, "help": help})


def timeframe_seconds(timeframe: str) -> int:
    """Seconds in a ccxt timeframe such as "5m", "1h", "1d"; ValueError for anything else."""
    m = re.fullmatch(r"([1-9]\d*)([mhdw])", timeframe)
    if m is None:
        raise ValueError(f"not a timeframe: {timeframe!r} (expected e.g. 5m, 1h, 4h, 1d)")
    return int(m[1]) * _UNITS[m[2]]


def closed_candles(
    series: Sequence[Candle], timeframe: str, now: float, limit: int
) -> list[Candle]:
    """The last `limit` candles of `series` that closed by `now` (the exchange's time)."""
    period = timeframe_seconds(timeframe)
    closed = [c for c in series if c.ts + period <= now]
    return closed[-limit:] if limit > 0 else []


def explain_lines(checks: Sequence[tuple[str, bool | None]], verdict: str) -> str:
    """`explain()`'s text: one line per check (✓ met, ✗ not met, · not reached), then the
    verdict."""
    marks = {True: "✓", False: "✗", None: "·"}
    return "\n".join([*(f"{marks[ok]} {text}" for text, ok in checks), verdict])


def spread_pct(ticker: Ticker) -> float | None:
    """The bid-ask spread in percent of the last price; None for a ticker a screen cannot use
    (no last price, no volume, no bid)."""
    if ticker.last <= 0 or ticker.quote_volume <= 0 or ticker.bid <= 0:
        return None
    return (ticker.ask - ticker.bid) / ticker.last * 100
