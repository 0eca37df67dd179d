"""Why the bot places an order, and the client order id that says so: the exchange keeps it, so
the bot finds an order again after a crash and tells its own orders from the user's.

An id is "cb" + purpose tag + tick + run, 18 lowercase letters and digits. 18 is Kraken's limit
for free text (cl_ord_id) and OKX takes only letters and digits (clOrdId); Binance, Bybit and
Coinbase take them too. The tick is the time in ms, bumped by one when two orders share a
millisecond, so a run never repeats an id; the run part is random, drawn once per run, so two
runs differ even at the same tick (a fake clock in tests does that). Fixed widths need no
separator; the tick wraps after 89 years.
"""

from __future__ import annotations

import secrets

from trading.clock import Clock
from trading.modes import Purpose

_TAGS = {
    Purpose.ENTRY: "e",
    Purpose.EXIT: "x",
    Purpose.PROTECT: "p",
    Purpose.GUARD: "g",
    Purpose.STOP: "s",
    Purpose.KILL: "k",
    Purpose.MANUAL: "m",
    Purpose.FAILSAFE: "f",
}

CLIENT_ID_PREFIX = "cb"
_TICK_WIDTH, _RUN_WIDTH = 8, 7
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int, width: int) -> str:
    """`n` modulo 36**width, in exactly `width` base-36 digits."""
    n %= 36**width
    out = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
    return out


def client_id_purpose(client_order_id: str | None) -> Purpose | None:
    """The purpose an id of ours was made for (None: not one of ours)."""
    if not client_order_id or not client_order_id.startswith(CLIENT_ID_PREFIX):
        return None
    tag = client_order_id[len(CLIENT_ID_PREFIX) : len(CLIENT_ID_PREFIX) + 1]
    return next((purpose for purpose, t in _TAGS.items() if t == tag), None)


class ClientIds:
    """The client order ids of one run."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._run = _base36(secrets.randbelow(36**_RUN_WIDTH), _RUN_WIDTH)
        self._tick = 0

    def new(self, purpose: str) -> str:
        """18 chars of [a-z0-9]: "cb", a purpose tag, the time in ms (never repeated in a run),
        this run's random part. Valid on Kraken, OKX, Binance, Bybit and Coinbase alike."""
        self._tick = max(int(self._clock.time() * 1000), self._tick + 1)
        tag = _TAGS.get(purpose, "o")
        return f"{CLIENT_ID_PREFIX}{tag}{_base36(self._tick, _TICK_WIDTH)}{self._run}"
