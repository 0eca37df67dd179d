"""Strategies, one module each: built in here, or the user's own in `STRATEGY_DIR`. A strategy
module defines a `Params` dataclass and `create(params)`, which returns an object following
`trading.strategies.base.Strategy` (docs/STRATEGIES.md)."""

from __future__ import annotations

from trading.strategies.base import Signal, Strategy, param
from trading.strategies.loader import (
    StrategyError,
    StrategyParamsError,
    UnknownStrategy,
    available_strategies,
    load_strategy,
)
from trading.strategies.params import ParamsError, parse_params

__all__ = [
    "ParamsError",
    "Signal",
    "Strategy",
    "StrategyError",
    "StrategyParamsError",
    "UnknownStrategy",
    "available_strategies",
    "load_strategy",
    "param",
    "parse_params",
]
