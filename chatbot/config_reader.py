"""Reading the environment: typed values with every problem recorded, secrets that never show,
and the names that look like ours but that no loader reads.

The `Reader` remembers every name it was asked for, so the set of known variables is the code
that reads them, never a second list kept by hand.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
# <EXCHANGE>_<ACCOUNT>_API_* and <EXCHANGE>_SANDBOX, for any exchange ccxt knows
CREDENTIAL = re.compile(r"([A-Z0-9]+)_\w+_API_(?:KEY|SECRET|PASSWORD)")
SANDBOX = re.compile(r"([A-Z0-9]+)_SANDBOX")
# A name without one of our prefixes is flagged only when it is this close to a known one: a
# server's environment is full of other programs' variables.
TYPO_CUTOFF = 0.85


class Secret:
    """A credential whose repr and str never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Reader:
    """Reads variables, recording every problem instead of stopping at the first, and every
    name asked for."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []
        self.names: set[str] = set()

    def raw(self, name: str) -> str | None:
        self.names.add(name)
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def fail(self, name: str, value: str, why: str) -> None:
        self.problems.append(f"{name}={value!r}: {why}")

    def parse(self, name: str, default: T, convert: Callable[[str], T], why: str) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return convert(value)
        except (ValueError, TypeError):
            self.fail(name, value, why)
            return default

    def bool(self, name: str, default: bool) -> bool:
        def convert(v: str) -> bool:
            if v.lower() in TRUE:
                return True
            if v.lower() in FALSE:
                return False
            raise ValueError(v)

        return self.parse(name, default, convert, "expected true or false")

    def number(
        self,
        name: str,
        default: float,
        *,
        low: float | None = None,
        high: float | None = None,
        integer: bool = False,
    ) -> float:
        kind = "a whole number" if integer else "a number"
        value = self.parse(name, default, int if integer else float, f"expected {kind}")
        if value != value or value in (float("inf"), float("-inf")):  # NaN / inf
            self.fail(name, str(value), f"expected {kind}")
            return default
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
            self.fail(name, str(value), f"must be {bounds}")
            return default
        return value

    def int(self, name: str, default: int, *, low: int | None = None, high: int | None = None):
        return int(self.number(name, default, low=low, high=high, integer=True))

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() not in choices:
            self.fail(name, value, f"expected one of {', '.join(choices)}")
            return default
        return value.lower()

    def secret(self, name: str) -> Secret | None:
        value = self.raw(name)
        return Secret(value) if value is not None else None


def unknown_variables(
    env: Iterable[str],
    known: frozenset[str],
    exchange_ids: frozenset[str],
    exchanges: Iterable[str],
) -> list[str]:
    """One warning per variable that looks like ours but is read by nothing: it starts like a
    known name (its first word, or a configured exchange's name) or is a near miss of one.
    Credentials and sandbox switches of any ccxt exchange are known by their pattern. Only
    names are ever shown, never values (they may be secrets)."""
    prefixes = {n.split("_")[0] + "_" for n in known} | {x.upper() + "_" for x in exchanges}
    warnings = []
    for name in sorted(env):
        upper = name.upper()
        if name in known or _is_exchange_variable(name, exchange_ids):
            continue
        ours = upper.startswith(tuple(prefixes)) or upper in known
        near = difflib.get_close_matches(upper, known, n=1, cutoff=0.6 if ours else TYPO_CUTOFF)
        if near:
            warnings.append(f"{name} is not a setting: did you mean {near[0]}?")
        elif ours:
            warnings.append(f"{name} is not a setting (see .env.example): ignored")
    return warnings


def _is_exchange_variable(name: str, exchange_ids: frozenset[str]) -> bool:
    m = CREDENTIAL.fullmatch(name) or SANDBOX.fullmatch(name)
    return m is not None and m[1].lower() in exchange_ids
