"""The desk: every trader of the process behind one object, for the command handlers.

Handlers are plain async functions `(desk, args) -> Reply`; the desk resolves which accounts a
command is about (`select`) and what symbol the user meant (`normalize_symbol`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from trading.clock import Clock
from trading.store import Store

if TYPE_CHECKING:
    from trading.engine import Trader

_SEPARATORS = re.compile(r"[\s/\-_:.]+")


class UnknownAccount(LookupError):
    """A selector that names no account; `known` lists the labels there are."""

    def __init__(self, selector: str, known: Sequence[str]) -> None:
        listed = ", ".join(known) or "none"
        super().__init__(f"no account {selector!r}; known: {listed}")
        self.selector = selector
        self.known = tuple(known)


class Desk:
    """All traders of this process, one store, one clock."""

    def __init__(self, traders: Sequence[Trader], *, store: Store, clock: Clock) -> None:
        self.traders: list[Trader] = list(traders)
        self.store = store
        self.clock = clock
        self.started_at = clock.time()

    @property
    def labels(self) -> list[str]:
        return [t.label for t in self.traders]

    def uptime(self) -> float:
        """Seconds since the desk was created."""
        return max(0.0, self.clock.time() - self.started_at)

    def select(self, selector: str | None) -> list[Trader]:
        """None or "all": every trader; "kraken": every kraken account; "binance:master": one.
        Case does not matter. Raises UnknownAccount listing the known labels."""
        if selector is None or selector.strip().lower() in ("", "all"):
            return list(self.traders)
        wanted = selector.strip().lower()
        if ":" in wanted:
            chosen = [t for t in self.traders if t.label == wanted]
        else:
            chosen = [t for t in self.traders if t.label.split(":", 1)[0] == wanted]
        if not chosen:
            raise UnknownAccount(selector, self.labels)
        return chosen

    def normalize_symbol(self, text: str) -> str | None:
        """ "btc/usdt", "BTC-USDT", "btcusdt" -> "BTC/USDT", and "btc" -> "BTC/<quote>", when
        some trader knows the market; None otherwise."""
        cleaned = text.strip().upper()
        if not cleaned:
            return None
        parts = [p for p in _SEPARATORS.split(cleaned) if p]
        candidates: list[str] = []
        if len(parts) == 2:
            candidates.append(f"{parts[0]}/{parts[1]}")
        elif len(parts) == 1:
            quotes = dict.fromkeys(t.settings.quote for t in self.traders)
            for quote in quotes:
                if parts[0].endswith(quote) and len(parts[0]) > len(quote):
                    candidates.append(f"{parts[0][: -len(quote)]}/{quote}")
                candidates.append(f"{parts[0]}/{quote}")
        for symbol in candidates:
            if any(t.knows_symbol(symbol) for t in self.traders):
                return symbol
        return None
