"""A paper or dry-run account kept on disk, so a restart continues it instead of starting again
at the starting balance (which would make the bot's reconciliation close every position as
"balance gone" and record a trade that never happened).

One SQLite file per account (`state_path`: DATA_DIR/paper/<exchange>-<account>.sqlite3):

    meta    format   the file's version
            head     the account apart from its orders: balances, the order id counter, the
                     dead man's deadline, the market's state (a SyntheticFeed's anchor day and
                     shocks, or the shocks laid over live prices), the paper time of the save
            clock    where the demo's paper time stood at the last start (see `paper_clock`)
    orders  one row per order, every field, in creation order

The exchange writes before it answers (trading/venues/paper.py): every call that changed the account
saves the head and the orders it changed, in one transaction, before its result is returned,
so an acknowledged order or fill is on disk. A closed order never changes again, so a save
writes a handful of rows however long the history is.

Not kept, on purpose: the request budget (it refills), injected faults and the exchange clock's
skew (test controls; a restart starts synced), cached tickers and candles (derived from the
feed). A file that cannot be read, or was written for another universe (PAPER_SEED,
PAPER_MARKETS, QUOTE_CURRENCY), is refused with an error naming it: starting afresh silently
would "sell" every position the bot holds. PAPER_RESET=true (or `fresh=True`) starts afresh.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trading.clock import Clock, RealClock, ScaledClock

if TYPE_CHECKING:
    from trading.venues.paper_market import PaperMarket
    from trading.venues.paper_orders import PaperBook

FORMAT = "1"
DIR_NAME = "paper"
# Nothing else writes the file; if something holds it anyway, the call fails (Transient) within
# this rather than stall every account on the event loop for sqlite3's default 5 s.
BUSY_SECONDS = 1.0
_SCHEMA = f"""BEGIN;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE orders (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
INSERT INTO meta VALUES ('format', '{FORMAT}');
COMMIT;"""
_UPSERT = "INSERT INTO orders (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = ?"
_HOW_TO_START_AFRESH = "set PAPER_RESET=true to start the account afresh"


class PaperStateError(Exception):
    """The saved paper account cannot be read or written; the message names the file."""


def state_path(data_dir: Path | str, exchange: str, account: str) -> Path:
    """Where an account's simulated state lives under DATA_DIR."""
    return Path(data_dir) / DIR_NAME / f"{exchange.lower()}-{account.lower()}.sqlite3"


@dataclass(frozen=True)
class Saved:
    """What the file held when it was opened."""

    head: dict[str, Any]
    orders: list[dict[str, Any]]


class PaperState:
    """One account's file. `saved` is what it held when opened (None: a new account)."""

    def __init__(self, path: Path | str, *, fresh: bool = False) -> None:
        self.path = Path(path)
        if fresh:
            for leftover in (self.path, *(Path(f"{self.path}{s}") for s in ("-wal", "-shm"))):
                leftover.unlink(missing_ok=True)
        self._db: sqlite3.Connection | None = None
        try:
            self.saved = self._load()
        except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
            self.close()
            raise self.unreadable(exc) from exc

    def unreadable(self, exc: BaseException) -> PaperStateError:
        """The error that refuses to start on this file."""
        return PaperStateError(
            f"{self.path}: the saved paper account cannot be read ({type(exc).__name__}: {exc}); "
            "not starting it afresh, which would drop every position it holds: restore or "
            f"move the file away, or {_HOW_TO_START_AFRESH}"
        )

    def mismatch(self, saved: object, now: object) -> PaperStateError:
        return PaperStateError(
            f"{self.path}: the saved paper account was made for {saved}, this start is "
            f"configured for {now}: set the settings back, or {_HOW_TO_START_AFRESH}"
        )

    # -- writing -------------------------------------------------------------------------------

    def save(self, head: dict[str, Any], orders: list[dict[str, Any]]) -> None:
        """Write the head and these orders (new or changed), in one transaction."""
        self._write(head, orders, replace=False)

    def replace(self, head: dict[str, Any], orders: list[dict[str, Any]]) -> None:
        """Write the whole account: the head and every order, nothing else."""
        self._write(head, orders, replace=True)

    def paper_clock(self, speed: float, base: Clock | None = None) -> ScaledClock:
        """The demo's clock, running `speed` times faster than `base` (real time). Its time goes
        on from the last start's as if the process had never stopped (at the speed it ran at),
        and never back before the last save: a market that kept moving while the bot was down,
        as a real exchange's does; a resting stop the path reached meanwhile has triggered."""
        base = base or RealClock()
        wall = base.time()
        try:
            starts = [float(self.saved.head["clock_time"])] if self.saved is not None else []
            anchor = self._meta("clock")
            if anchor is not None:
                starts.append(anchor["paper"] + max(0.0, wall - anchor["wall"]) * anchor["speed"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self.unreadable(exc) from exc
        clock = ScaledClock(speed, base, start=max(starts) if starts else None)
        self._set_meta("clock", {"paper": clock.time(), "wall": wall, "speed": speed})
        return clock

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- the file ------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """The connection, opened again after `close` (a venue may be used after closing)."""
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_SECONDS)
            try:
                # FULL: an acknowledged fill survives a power cut, as the bot's own store does.
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _load(self) -> Saved | None:
        db = self._connect()
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if not tables:
            db.executescript(_SCHEMA)  # one transaction: a file has its format or no tables
            return None
        found = self._raw_meta("format")
        if found != FORMAT:
            raise ValueError(f"format {found!r}, this code reads format {FORMAT}")
        head = self._meta("head")
        if head is None:
            return None  # created, then stopped before its first save: nothing was acknowledged
        rows = db.execute("SELECT data FROM orders ORDER BY seq")
        return Saved(head, [json.loads(data) for (data,) in rows])

    def _write(self, head: dict[str, Any], orders: list[dict[str, Any]], *, replace: bool) -> None:
        rows = [(order["id"], data, data) for order in orders for data in [json.dumps(order)]]
        with self._writing() as db:
            if replace:
                db.execute("DELETE FROM orders")
            db.executemany(_UPSERT, rows)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('head', ?)", (json.dumps(head),))

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a failure is a PaperStateError naming the file."""
        try:
            with self._connect() as db:
                yield db
        except sqlite3.Error as exc:
            raise PaperStateError(f"{self.path}: the paper account was not saved: {exc}") from exc

    def _raw_meta(self, key: str) -> str | None:
        row = self._connect().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _meta(self, key: str) -> Any:
        raw = self._raw_meta(key)
        return json.loads(raw) if raw is not None else None

    def _set_meta(self, key: str, value: object) -> None:
        with self._writing() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))


class Keeper:
    """Keeps one paper exchange's account in its file: restores the book and the market when the
    exchange is built, then saves what changed since the last save (the book's changed orders,
    and the head whenever anything changed)."""

    def __init__(
        self,
        state: PaperState,
        *,
        book: PaperBook,
        market: PaperMarket,
        clock: Clock,
        identity: dict[str, Any],
    ) -> None:
        self.state = state
        self._book = book
        self._market = market
        self._clock = clock
        self._identity = identity
        self._dirty = False

    def load(self) -> bool:
        """Restore the saved account; False when there was none (the account as it stands is
        written as the first save)."""
        saved = self.state.saved
        if saved is None:
            self.replace(self._book.snapshot())
            return False
        try:
            self._restore(saved)
        except BaseException:
            self.state.close()  # refused: the file is let go as it was
            raise
        return True

    def changed(self) -> None:
        """Something beside the orders changed: the dead man's deadline, the market's shocks."""
        self._dirty = True

    def save(self) -> None:
        """Write what changed; PaperStateError if the file refused it (kept for the next save)."""
        changed = self._book.unsaved()
        if not (changed or self._dirty):
            return
        self.state.save(self._head(self._book.head()), [order.to_dict() for order in changed])
        self._book.saved()
        self._dirty = False

    def replace(self, book: dict[str, Any]) -> None:
        """Write the whole account as `book` (a PaperBook snapshot) describes it."""
        self.state.replace(self._head(book), book["orders"])
        self._dirty = False

    def _restore(self, saved: Saved) -> None:
        try:
            if saved.head["identity"] != self._identity:
                raise self.state.mismatch(saved.head["identity"], self._identity)
            self._book.restore({**saved.head["book"], "orders": saved.orders})
            self._market.restore(saved.head["market"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self.state.unreadable(exc) from exc

    def _head(self, book: dict[str, Any]) -> dict[str, Any]:
        return {
            "identity": self._identity,
            "book": {key: value for key, value in book.items() if key != "orders"},
            "market": self._market.state(),
            "clock_time": self._clock.time(),
        }
