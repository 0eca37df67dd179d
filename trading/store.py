"""What a restart needs, in one SQLite file: positions, orders, bans, trader modes, equity
snapshots, closed trades and the audit log of every command.

The exchange stays the source of truth; the store is what the bot remembers of it, so that a
restart reconciles instead of starting blind (a pause or a kill survives, an order placed just
before a crash is found again by its client order id). One explicit connection, no globals:
tests pass ":memory:" or a temporary file. Timestamps are epoch seconds given by the caller, so
simulated time reaches the store exactly as it reaches the rest of the core.

Equity snapshots are kept at most one per account and clock minute: a paper account cycles every
second, and a week of one row a second (604,800) made /chart slow and the file grow for nothing.
The newest snapshot of a minute replaces the previous one of the same minute, so the latest row
is always current; a file written before this rule is thinned the same way once, when opened.
`equity_curve` thins a window further, in SQL, to the few hundred points a picture can show.

A write commits on its own, unless a `transaction()` is open: then it joins it, and the whole
logical change (an order placed, a fill, a close) commits at once or not at all. A process killed
in the middle leaves the file as it was before the change began, never half of it.

The tables and their migrations are trading/store_schema.py's; a file is upgraded when opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from trading.models import Order, OrderStatus, Position
from trading.records import (
    AuditEntry,
    Ban,
    ClosedTrade,
    EquityCurve,
    EquityPoint,
    StoredOrder,
    stored_order,
)
from trading.store_schema import StoreError, migrate, schema_version

FILE_NAME = "bot.sqlite3"
EQUITY_STEP = 60.0  # seconds: one equity snapshot per account and clock minute (the latest)

# The thinned equity curve: for each bucket boundary b_k = t0 + k * w (k = 0 .. n, the last one
# exactly t1), the newest snapshot at or before it, found by one seek in the (account, at) index;
# an empty bucket finds its predecessor's row again, and DISTINCT drops the repeat. k = 0 yields
# the first snapshot and k = n the newest, so both ends of the curve are exact.
_CURVE_SQL = """
WITH RECURSIVE b(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM b WHERE k < :n)
SELECT DISTINCT e.account, e.at, e.equity, e.exposure FROM b JOIN equity e ON e.seq = (
    SELECT seq FROM equity WHERE account = :account AND at >= :t0
    AND at <= CASE WHEN b.k = :n THEN :t1 ELSE :t0 + b.k * :w END
    ORDER BY at DESC, seq DESC LIMIT 1)
ORDER BY e.at, e.seq
"""


class Store:
    """The bot's SQLite repository: one explicit connection, one method per question."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._depth = 0  # transactions open, the outermost included
        self._failed = False  # a part of the open transaction raised
        try:
            if self.path != ":memory:":
                # WAL: readers never block the writer; FULL: a committed order record survives
                # a power cut, which is worth a few milliseconds per write.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            migrate(self._db, self.path)
            self._thin_old_equity()
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def in_dir(cls, data_dir: Path) -> Store:
        """The bot's store under DATA_DIR."""
        return cls(Path(data_dir) / FILE_NAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema

    @property
    def schema_version(self) -> int:
        return schema_version(self._db)

    def _thin_old_equity(self) -> None:
        # A file from before the one-a-minute rule may hold a snapshot a second: keep what
        # add_equity would have kept (each minute's last), once; the meta key marks it done.
        # Not a schema migration: the tables are unchanged, and an older release can still
        # open the file.
        step = str(EQUITY_STEP)
        if self.get_meta("equity_step") == step:
            return
        with self._db:
            self._db.execute(
                "DELETE FROM equity WHERE seq NOT IN (SELECT seq FROM (SELECT seq, MAX(at) "
                "FROM equity GROUP BY account, CAST(at / ? AS INTEGER)))",
                (EQUITY_STEP,),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('equity_step', ?)", (step,)
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction for every write inside: committed when the outermost block exits,
        rolled back if anything raises. A nested block joins the open transaction; if a part
        raises, the whole is rolled back even when the caller catches it in between, so a change
        is never committed half done. Never hold one across an await: another task's writes
        would join it."""
        if self._depth:
            self._depth += 1
            try:
                yield
            except BaseException:
                self._failed = True
                raise
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth, self._failed = 1, False
        try:
            yield
            if self._failed:
                raise StoreError("a part of the transaction failed: all of it rolled back")
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise
        finally:
            self._depth = 0

    def _write(self, sql: str, params: Iterable[object] = ()) -> sqlite3.Cursor:
        with self.transaction():  # its own, or the one open
            return self._db.execute(sql, tuple(params))

    # -- positions

    def positions(self, account: str) -> list[Position]:
        rows = self._db.execute(
            "SELECT account, symbol, amount, entry_price, opened_at, stop_loss, take_profit, "
            "entry_order_id, manual FROM positions WHERE account = ? ORDER BY opened_at, symbol",
            (account,),
        )
        return [Position(*row[:-1], manual=bool(row[-1])) for row in rows]

    def save_position(self, position: Position) -> None:
        p = position
        self._write(
            "INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (p.account, p.symbol, p.amount, p.entry_price, p.opened_at, p.stop_loss,
             p.take_profit, p.entry_order_id, int(p.manual)),
        )  # fmt: skip

    def delete_position(self, account: str, symbol: str) -> bool:
        """Forget a position; False if there was none."""
        cur = self._write(
            "DELETE FROM positions WHERE account = ? AND symbol = ?", (account, symbol)
        )
        return cur.rowcount > 0

    # -- orders

    def save_order(
        self, account: str, order: Order, purpose: str, *, at: float | None = None
    ) -> None:
        """Upsert by (account, order.id). `at` defaults to the order's own timestamp."""
        o = order
        self._write(
            "INSERT OR REPLACE INTO orders VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (account, o.id, o.symbol, o.side.value, o.type.value, o.amount, o.filled,
             o.status.value, o.timestamp, o.client_order_id, o.price, o.average, o.fee_cost,
             o.fee_currency, purpose, o.timestamp if at is None else at, o.stop_price),
        )  # fmt: skip

    def orders(self, account: str, *, open_only: bool = False) -> list[StoredOrder]:
        sql = "SELECT * FROM orders WHERE account = ?"
        params: tuple[object, ...] = (account,)
        if open_only:
            sql += " AND status = ?"
            params += (OrderStatus.OPEN.value,)
        rows = self._db.execute(sql + " ORDER BY timestamp, id", params)
        return [stored_order(row) for row in rows]

    def order(self, account: str, order_id: str) -> StoredOrder | None:
        row = self._db.execute(
            "SELECT * FROM orders WHERE account = ? AND id = ?", (account, order_id)
        ).fetchone()
        return stored_order(row) if row else None

    def order_by_client_id(self, account: str, client_order_id: str) -> StoredOrder | None:
        """The order the bot placed with this client order id, if it recorded one."""
        row = self._db.execute(
            "SELECT * FROM orders WHERE account = ? AND client_order_id = ? "
            "ORDER BY updated_at DESC LIMIT 1",
            (account, client_order_id),
        ).fetchone()
        return stored_order(row) if row else None

    # -- trades

    def add_trade(self, trade: ClosedTrade) -> None:
        t = trade
        self._write(
            "INSERT INTO trades (account, symbol, amount, entry_price, exit_price, opened_at, "
            "closed_at, pnl, fees, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (t.account, t.symbol, t.amount, t.entry_price, t.exit_price, t.opened_at,
             t.closed_at, t.pnl, t.fees, t.reason),
        )  # fmt: skip

    def trades(self, account: str | None = None, since: float = 0.0) -> list[ClosedTrade]:
        """Closed trades, oldest first, closed at or after `since`."""
        sql, params = _where_account("closed_at", account, since)
        rows = self._db.execute(
            "SELECT account, symbol, amount, entry_price, exit_price, opened_at, closed_at, pnl, "
            f"fees, reason FROM trades {sql} ORDER BY closed_at, seq",
            params,
        )
        return [ClosedTrade(*row) for row in rows]

    # -- bans

    def bans(self, account: str) -> dict[str, Ban]:
        rows = self._db.execute(
            "SELECT symbol, reason, at, auto FROM bans WHERE account = ? ORDER BY at, symbol",
            (account,),
        )
        return {s: Ban(s, reason, at, bool(auto)) for s, reason, at, auto in rows}

    def ban(self, account: str, symbol: str, reason: str, at: float, auto: bool = False) -> None:
        self._write(
            "INSERT OR REPLACE INTO bans VALUES (?, ?, ?, ?, ?)",
            (account, symbol, reason, at, int(auto)),
        )

    def unban(self, account: str, symbol: str) -> bool:
        """Lift a ban; False if the symbol was not banned."""
        cur = self._write("DELETE FROM bans WHERE account = ? AND symbol = ?", (account, symbol))
        return cur.rowcount > 0

    # -- trader modes

    def mode(self, account: str) -> str | None:
        row = self._db.execute("SELECT mode FROM modes WHERE account = ?", (account,)).fetchone()
        return row[0] if row else None

    def set_mode(self, account: str, mode: str, at: float) -> None:
        self._write("INSERT OR REPLACE INTO modes VALUES (?, ?, ?)", (account, mode, at))

    # -- equity

    def add_equity(self, account: str, at: float, equity: float, exposure: float) -> None:
        """Record a snapshot, at most one per account and clock minute: when the account's
        latest snapshot is of the same minute (and not newer), this one replaces it. Minutes of
        the clock, not "younger than 60 s": replacing a row that is merely recent would slide it
        forward for ever under one-second cycles, and the curve would keep a single point."""
        with self.transaction():
            latest = self._db.execute(
                "SELECT seq, at FROM equity WHERE account = ? ORDER BY at DESC, seq DESC LIMIT 1",
                (account,),
            ).fetchone()
            if latest is not None and latest[1] <= at and _minute(latest[1]) == _minute(at):
                self._write(
                    "UPDATE equity SET at = ?, equity = ?, exposure = ? WHERE seq = ?",
                    (at, equity, exposure, latest[0]),
                )
            else:
                self._write(
                    "INSERT INTO equity (account, at, equity, exposure) VALUES (?, ?, ?, ?)",
                    (account, at, equity, exposure),
                )

    def equity(self, account: str | None = None, since: float = 0.0) -> list[EquityPoint]:
        """Equity snapshots, oldest first, taken at or after `since`."""
        sql, params = _where_account("at", account, since)
        rows = self._db.execute(
            f"SELECT account, at, equity, exposure FROM equity {sql} ORDER BY at, seq", params
        )
        return [EquityPoint(*row) for row in rows]

    def equity_curve(self, account: str, since: float = 0.0, max_points: int = 600) -> EquityCurve:
        """The account's snapshots taken at or after `since`, thinned in SQL to at most
        `max_points` (see EquityCurve). Python only ever sees `max_points` rows; the database
        makes one pass over the window for count, low and high, and one index seek per bucket."""
        if max_points < 2:
            raise ValueError(f"max_points must be at least 2, not {max_points}")
        count, t0, t1, low, high = self._db.execute(
            "SELECT COUNT(*), MIN(at), MAX(at), MIN(equity), MAX(equity) FROM equity "
            "WHERE account = ? AND at >= ?",
            (account, since),
        ).fetchone()
        if count <= max_points:
            points = self.equity(account, since)
        else:
            buckets = max_points - 1
            rows = self._db.execute(
                _CURVE_SQL,
                {"n": buckets, "account": account, "t0": t0, "t1": t1, "w": (t1 - t0) / buckets},
            )
            points = [EquityPoint(*row) for row in rows]
        return EquityCurve(account, tuple(points), count, low, high)

    # -- audit

    def audit(self, at: float, who: str, command: str, args: str, result: str) -> None:
        self._write(
            "INSERT INTO audit (at, who, command, args, result) VALUES (?, ?, ?, ?, ?)",
            (at, who, command, args, result),
        )

    def audit_log(self, limit: int = 50) -> list[AuditEntry]:
        """The latest `limit` commands, newest first."""
        rows = self._db.execute(
            "SELECT at, who, command, args, result FROM audit ORDER BY seq DESC LIMIT ?",
            (limit,),
        )
        return [AuditEntry(*row) for row in rows]

    # -- meta

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def _minute(at: float) -> int:
    return int(at // EQUITY_STEP)


def _where_account(column: str, account: str | None, since: float) -> tuple[str, tuple]:
    if account is None:
        return f"WHERE {column} >= ?", (since,)
    return f"WHERE account = ? AND {column} >= ?", (account, since)
