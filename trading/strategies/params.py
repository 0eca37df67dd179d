"""Strategy parameters from outside the code (`STRATEGY_PARAMS`), checked against the strategy's
`Params` dataclass: every unknown name, wrong type and out-of-bounds value is named at once.

A JSON number fills a float field; a whole JSON number an int field; true/false only a bool
field (JSON's booleans are not numbers here, so `"fast": true` is refused).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Mapping
from typing import Any

_KINDS: dict[type, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
}


class ParamsError(ValueError):
    """Parameters that do not fit the strategy's `Params`; `problems` names each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def field_types(params_type: type) -> dict[str, type]:
    """Each field's type, resolved (a module with `from __future__ import annotations` keeps them
    as text). TypeError for a field of any other type than int, float, bool or str."""
    hints = typing.get_type_hints(params_type)
    types = {}
    for f in dataclasses.fields(params_type):
        kind = hints.get(f.name)
        if kind not in _KINDS:
            raise TypeError(
                f"{params_type.__name__}.{f.name}: a parameter is int, float, bool or str, "
                f"not {kind!r}"
            )
        types[f.name] = kind
    return types


def parse_params(params_type: type, raw: Mapping[str, Any]) -> Any:
    """An instance of `params_type` with `raw` over its defaults; ParamsError naming every bad
    parameter (and, when the values fit one by one, what `__post_init__` refuses)."""
    types = field_types(params_type)
    fields = {f.name: f for f in dataclasses.fields(params_type)}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in raw.items():
        if name not in types:
            near = difflib.get_close_matches(name, list(types), n=1)
            hint = f" (did you mean {near[0]}?)" if near else f" (known: {', '.join(types)})"
            problems.append(f"{name}: unknown parameter{hint}")
            continue
        converted = _convert(value, types[name])
        if converted is None:
            problems.append(f"{name}={value!r}: expected {_KINDS[types[name]]}")
            continue
        out_of_bounds = _bounds(converted, fields[name].metadata)
        if out_of_bounds:
            problems.append(f"{name}={value!r}: {out_of_bounds}")
            continue
        values[name] = converted
    if problems:
        raise ParamsError(problems)
    try:
        return params_type(**values)
    except (ValueError, TypeError) as exc:
        raise ParamsError([str(exc)]) from exc


def _convert(value: Any, kind: type) -> Any:
    if kind is bool:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if kind is int:
        if isinstance(value, int):
            return value
        return int(value) if isinstance(value, float) and value.is_integer() else None
    if kind is float:
        return float(value) if isinstance(value, int | float) else None
    return value if isinstance(value, str) else None


def _bounds(value: Any, metadata: Mapping[str, Any]) -> str | None:
    low, high = metadata.get("low"), metadata.get("high")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value):  # NaN compares false with every bound
        return "expected a finite number"
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            return f"must be between {low:g} and {high:g}"
        return f"must be >= {low:g}" if low is not None else f"must be <= {high:g}"
    return None
