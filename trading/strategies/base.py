"""What a strategy is: a ranking from the ticker, an entry signal and an exit signal from candles.

A strategy is pure: no I/O, no clock, no state between calls. The scanner feeds it tickers and
candles (the last candle of a series is the one still forming, as exchanges return them), the
engine turns its signals into orders. Stop-loss and take-profit levels travel with the position
and are checked by the engine every cycle; `exit()` is only for signal-based exits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from trading.models import Candle, Position, Ticker


@dataclass(frozen=True)
class Signal:
    """An entry worth taking now, with where it is wrong (stop) and where it is done (target)."""

    score: float  # higher is better, for ranking candidates
    stop_loss: float  # price
    take_profit: float  # price
    reason: str  # short, e.g. "trend+momentum 5m/1h"


class Strategy(Protocol):
    """The interface every module of trading/strategies/ provides through `create()`."""

    name: str
    timeframes: tuple[str, ...]  # candle series it needs, e.g. ("5m", "1h")
    candle_limit: int  # candles per series

    def prescreen(self, ticker: Ticker) -> float | None:
        """Rank from the ticker alone, for the whole universe at once; None = skip."""

    def entry(self, symbol: str, candles: Mapping[str, Sequence[Candle]]) -> Signal | None:
        """An entry signal for this symbol now, or None."""

    def exit(
        self, position: Position, candles: Mapping[str, Sequence[Candle]], price: float
    ) -> str | None:
        """A reason to exit this position now, or None to hold."""
