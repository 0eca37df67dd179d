"""The strategy settings: which strategy (`STRATEGY`), where the user's own live
(`STRATEGY_DIR`), and its parameters (`STRATEGY_PARAMS`: JSON text, or the path of a JSON file).

The strategy is loaded here, once, so that a module that fails to import, misses part of the
contract or refuses its parameters stops the start with every other bad variable, each named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chatbot.config_reader import Reader
from trading.settings import TradingSettings
from trading.strategies import (
    StrategyError,
    StrategyParamsError,
    UnknownStrategy,
    available_strategies,
    load_strategy,
)
from trading.strategies.base import Strategy
from trading.strategies.loader import builtin_strategies

DEFAULT = "trend"


def read_strategy(r: Reader) -> tuple[str, Path | None, tuple[tuple[str, Any], ...]]:
    """(name, folder, parameters) of a strategy that loads with these parameters."""
    name = r.raw("STRATEGY") or DEFAULT
    if name.lower() in builtin_strategies():
        name = name.lower()
    directory = _directory(r)
    params = _params(r)
    unreadable_dir = directory is None and r.raw("STRATEGY_DIR") is not None
    if params is None or (unreadable_dir and name not in builtin_strategies()):
        return name, directory, ()  # already reported; the strategy cannot be judged
    try:
        load_strategy(name, directory=directory, params=params)
    except UnknownStrategy:
        known = ", ".join(available_strategies(directory))
        r.fail("STRATEGY", name, f"unknown strategy (available: {known})")
        return DEFAULT, directory, ()
    except StrategyParamsError as exc:
        r.problems.extend(f"STRATEGY_PARAMS: {p}" for p in exc.problems)
    except StrategyError as exc:
        r.problems.extend(f"STRATEGY={name}: {p}" for p in exc.problems)
    return name, directory, tuple(sorted(params.items()))


def _directory(r: Reader) -> Path | None:
    raw = r.raw("STRATEGY_DIR")
    if raw is None:
        return None
    directory = Path(raw).expanduser()
    if not directory.is_dir():
        r.fail("STRATEGY_DIR", raw, "not a folder")
        return None
    return directory.resolve()


def _params(r: Reader) -> dict[str, Any] | None:
    """The parameters as a JSON object, {} when unset, None when unreadable (reported)."""
    raw = r.raw("STRATEGY_PARAMS")
    if raw is None:
        return {}
    text, source = raw, "JSON text"
    if not raw.startswith("{"):
        path = Path(raw).expanduser()
        if not path.is_file():
            r.fail("STRATEGY_PARAMS", raw, "no such file (expected JSON text {...} or a path)")
            return None
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            r.fail("STRATEGY_PARAMS", raw, f"cannot read it: {exc}")
            return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        r.problems.append(f"STRATEGY_PARAMS: {source} is not valid JSON: {exc}")
        return None
    if not isinstance(value, dict):
        r.problems.append(f"STRATEGY_PARAMS: {source} must be a JSON object of name: value")
        return None
    return value


def strategy_of(trading: TradingSettings) -> Strategy:
    """The configured strategy, built once its settings were read (read_strategy checked it):
    the one lookup the bot and the backtest both make."""
    return load_strategy(
        trading.strategy, directory=trading.strategy_dir, params=dict(trading.strategy_params)
    )
