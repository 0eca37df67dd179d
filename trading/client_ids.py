"""Why the bot places an order, and the client order id that says so: the exchange keeps it, so
the bot finds an order again after a crash and tells its own orders from the user's.

An id is "cb" + purpose tag + tick + account tag + run, 18 lowercase letters and digits. 18 is
Kraken's limit for free text (cl_ord_id) and OKX takes only letters and digits (clOrdId);
Binance, Bybit and Coinbase take them too. The tick is the time in ms, bumped by one when two
orders share a millisecond, so a run never repeats an id. The account tag is random, drawn once
per account and store and kept in the store: it tells this bot's orders on an exchange account
from another bot instance's (another DATA_DIR) on the same account, which "cb" alone cannot, so
the reconciler adopts only orders with its own tag (trading/reconcile_adopt.py). The run counts
the account's runs in the store, so two runs differ even at the same tick (a fake clock in tests
does that). Fixed widths need no separator; the tick wraps after 89 years, the run after 46,656
starts.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from trading.clock import Clock
from trading.modes import Purpose

if TYPE_CHECKING:
    from trading.store import Store

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
_TICK_WIDTH, _TAG_WIDTH, _RUN_WIDTH = 8, 4, 3
_TAG_AT = len(CLIENT_ID_PREFIX) + 1 + _TICK_WIDTH
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


def client_id_account(client_order_id: str | None) -> str | None:
    """The account tag in an id of the bot's making (None: not one)."""
    if client_order_id is None or not _made_by_a_bot(client_order_id):
        return None
    return client_order_id[_TAG_AT : _TAG_AT + _TAG_WIDTH]


def _made_by_a_bot(client_order_id: str) -> bool:
    """Shaped as this bot makes ids, whatever its purpose letter ("o": a purpose it did not
    know)."""
    return (
        len(client_order_id) == _TAG_AT + _TAG_WIDTH + _RUN_WIDTH
        and client_order_id.startswith(CLIENT_ID_PREFIX)
        and all(c in _DIGITS for c in client_order_id)
    )


class ClientIds:
    """The client order ids of one account's run. The account tag and the run counter live in
    the store under the account's label; both are drawn at the first id, not before, so a
    store the bot never ordered through is never written for them."""

    def __init__(self, clock: Clock, store: Store, label: str) -> None:
        self._clock = clock
        self._store = store
        self._key = f"client_ids:{label}"
        self._prefix: str | None = None  # account tag + run, once drawn
        self._tag: str | None = None  # the account tag, once known (it never changes)
        self._tick = 0

    def new(self, purpose: str) -> str:
        """18 chars of [a-z0-9]: "cb", a purpose tag, the time in ms (never repeated in a run),
        the account's tag, this run's number. Valid on Kraken, OKX, Binance, Bybit and
        Coinbase alike."""
        if self._prefix is None:
            self._prefix = self._next_run()
        self._tick = max(int(self._clock.time() * 1000), self._tick + 1)
        tag = _TAGS.get(purpose, "o")
        return f"{CLIENT_ID_PREFIX}{tag}{_base36(self._tick, _TICK_WIDTH)}{self._prefix}"

    def ours(self, client_order_id: str | None) -> bool:
        """Made by this account of this store, in any run (a restart keeps the tag)."""
        tag = self.account_tag()
        return tag is not None and client_id_account(client_order_id) == tag

    def account_tag(self) -> str | None:
        """This account's tag (None: the bot never made an id for it with this store)."""
        if self._tag is None:
            stored = self._store.get_meta(self._key)
            self._tag = stored[:_TAG_WIDTH] if stored else None
        return self._tag

    def _next_run(self) -> str:
        stored = self._store.get_meta(self._key)
        if stored:
            tag, run = stored[:_TAG_WIDTH], int(stored[_TAG_WIDTH:], 36) + 1
        else:
            tag, run = _base36(secrets.randbelow(36**_TAG_WIDTH), _TAG_WIDTH), 0
        prefix = tag + _base36(run, _RUN_WIDTH)
        self._store.set_meta(self._key, prefix)
        self._tag = tag
        return prefix
