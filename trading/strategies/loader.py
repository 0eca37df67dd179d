"""Finding a strategy by name, built in (trading/strategies/<name>.py) or the user's own
(`STRATEGY_DIR/<name>.py`, or a package `STRATEGY_DIR/<name>/__init__.py`), checking that it
keeps the contract of base.py, and building it from validated parameters.

A user module is loaded by its path: nothing is added to sys.path, and it is registered in
sys.modules only as `strategy_dir_<name>` (dataclasses and pickling look a class's module up
there; a package's relative imports need it). A user module may not take a built-in's name: which
one runs would depend on a setting nobody reads twice.

Every failure is a `StrategyError` naming the file and each problem, for the start-up report.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from trading.strategies.base import Strategy, timeframe_seconds
from trading.strategies.params import ParamsError, field_types, parse_params

_PACKAGE = "trading.strategies"
_BUILTIN_DIR = Path(__file__).parent
_NOT_STRATEGIES = frozenset({"base", "loader", "params"})
_USER_PREFIX = "strategy_dir"


class StrategyError(ValueError):
    """A strategy that cannot run; `problems` names each reason (with the file)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StrategyParamsError(StrategyError):
    """Parameters the strategy's `Params` refuses (the module itself is fine)."""


class UnknownStrategy(StrategyError):
    """No strategy module of that name."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


def builtin_strategies() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(_BUILTIN_DIR)])
        if not m.name.startswith("_") and m.name not in _NOT_STRATEGIES
    )


def user_strategies(directory: Path) -> list[str]:
    """Module names in a user's strategy folder (files and packages, not _private ones)."""
    return sorted(m.name for m in pkgutil.iter_modules([str(directory)]) if m.name[0] != "_")


def available_strategies(directory: Path | None = None) -> list[str]:
    """Names `load_strategy` accepts: the built-ins, and the modules in `directory`."""
    users = user_strategies(directory) if directory is not None else []
    return sorted({*builtin_strategies(), *users})


def load_strategy(
    name: str, *, directory: Path | None = None, params: Mapping[str, Any] | None = None
) -> Strategy:
    """The strategy `name` built from `params` (over its defaults); StrategyError naming every
    problem (UnknownStrategy when there is no such module)."""
    module = _module(name, directory)
    try:
        return _build(module, params or {})
    except StrategyError:
        _forget(module)  # a fixed file is imported afresh, not found half-validated
        raise


def _build(module: ModuleType, params: Mapping[str, Any]) -> Strategy:
    where = module.__file__ or module.__name__
    params_type, create = _entry_points(module, where)
    try:
        values = parse_params(params_type, params)
    except ParamsError as exc:
        raise StrategyParamsError([f"{where}: {p}" for p in exc.problems]) from exc
    try:
        strategy = create(values)
    except Exception as exc:  # user code: any failure is a start-up error naming the file
        raise StrategyError([f"{where}: create(params) raised {exc!r}"]) from exc
    problems = _interface_problems(strategy)
    if problems:
        raise StrategyError([f"{where}: the strategy {p}" for p in problems])
    return strategy


def _forget(module: ModuleType) -> None:
    name = module.__name__
    if name.startswith(f"{_USER_PREFIX}_"):
        for loaded in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[loaded]


def _module(name: str, directory: Path | None) -> ModuleType:
    user = _user_file(name, directory) if directory is not None else None
    builtin = name in builtin_strategies()
    if user is not None and builtin:
        raise StrategyError([f"{user}: named like the built-in strategy {name!r}; rename it"])
    if builtin:
        return importlib.import_module(f"{_PACKAGE}.{name}")
    if user is None:
        known = ", ".join(available_strategies(directory))
        where = f" (in {_PACKAGE} or {directory})" if directory is not None else ""
        raise UnknownStrategy(f"unknown strategy {name!r}{where}; available: {known}")
    return _import_file(name, user)


def _user_file(name: str, directory: Path) -> Path | None:
    for candidate in (directory / f"{name}.py", directory / name / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _import_file(name: str, path: Path) -> ModuleType:
    qualified = f"{_USER_PREFIX}_{name}"
    loaded = sys.modules.get(qualified)
    if loaded is not None and loaded.__file__ == str(path):
        return loaded  # validated at start-up, built by the app: run the user's code once
    package = [str(path.parent)] if path.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(
        qualified, path, submodule_search_locations=package
    )
    if spec is None or spec.loader is None:
        raise StrategyError([f"{path}: not a Python module"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a syntax error, a missing import, a bug at import time
        del sys.modules[qualified]
        raise StrategyError([f"{path}: failed to import: {type(exc).__name__}: {exc}"]) from exc
    return module


def _entry_points(module: ModuleType, where: str) -> tuple[type, Any]:
    problems = []
    params_type = getattr(module, "Params", None)
    if not (isinstance(params_type, type) and dataclasses.is_dataclass(params_type)):
        problems.append("no Params dataclass (its parameters, with defaults)")
    else:
        try:
            field_types(params_type)
        except TypeError as exc:
            problems.append(str(exc))
        except NameError as exc:
            problems.append(f"Params: a field's type cannot be resolved ({exc})")
    create = getattr(module, "create", None)
    if not callable(create):
        problems.append("no create(params) function")
    if problems:
        raise StrategyError([f"{where}: {p}" for p in problems])
    return params_type, create


def _interface_problems(strategy: object) -> list[str]:
    problems = []
    if not isinstance(getattr(strategy, "name", None), str):
        problems.append("has no name (a str)")
    timeframes = getattr(strategy, "timeframes", None)
    if not isinstance(timeframes, tuple) or not timeframes:
        problems.append("has no timeframes (a tuple such as ('5m', '1h'))")
    else:
        for timeframe in timeframes:
            try:
                timeframe_seconds(timeframe)
            except (ValueError, TypeError) as exc:
                problems.append(f"timeframes: {exc}")
    limit = getattr(strategy, "candle_limit", None)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 999:
        problems.append("candle_limit must be a whole number from 1 to 999")
    for method in ("prescreen", "entry", "exit"):
        if not callable(getattr(strategy, method, None)):
            problems.append(f"has no {method}() method")
    explain = getattr(strategy, "explain", None)
    if explain is not None and not callable(explain):
        problems.append("explain is not a method")
    return problems
