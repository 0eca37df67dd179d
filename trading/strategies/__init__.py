"""Strategies, one module each: adding a strategy is adding a module with a `create()` function
that returns an object following `trading.strategies.base.Strategy`."""

from __future__ import annotations

import importlib
import pkgutil

from trading.strategies.base import Signal, Strategy

__all__ = ["Signal", "Strategy", "UnknownStrategy", "available_strategies", "load_strategy"]

_NOT_STRATEGIES = frozenset({"base"})


class UnknownStrategy(ValueError):
    """No strategy module of that name."""


def available_strategies() -> list[str]:
    """Names accepted by `load_strategy`, for configuration validation."""
    return sorted(
        m.name
        for m in pkgutil.iter_modules(__path__)
        if not m.name.startswith("_") and m.name not in _NOT_STRATEGIES
    )


def load_strategy(name: str) -> Strategy:
    """Import trading.strategies.<name> and return its `create()`."""
    if name not in available_strategies():
        known = ", ".join(available_strategies())
        raise UnknownStrategy(f"unknown strategy {name!r}; available: {known}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.create()
