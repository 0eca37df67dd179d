"""The store's schema and its history: version 1's tables, the migrations after it, and the
upgrade every file gets when it is opened.

MIGRATIONS[n] upgrades a file from version n to n + 1, inside one transaction with the version
bump; a new file is created at version 1 and migrated like any other. A file newer than this
code is refused rather than guessed at: an older release must not half-understand a newer one's
records.

Apart from trading/store.py because the store reads and writes records of the current shape;
this is the one place that knows the shapes a file has had, and runs once, before any record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 2

SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE positions (
    account TEXT NOT NULL, symbol TEXT NOT NULL, amount REAL NOT NULL,
    entry_price REAL NOT NULL, opened_at REAL NOT NULL, stop_loss REAL, take_profit REAL,
    entry_order_id TEXT, PRIMARY KEY (account, symbol));
CREATE TABLE orders (
    account TEXT NOT NULL, id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    type TEXT NOT NULL, amount REAL NOT NULL, filled REAL NOT NULL, status TEXT NOT NULL,
    timestamp REAL NOT NULL, client_order_id TEXT, price REAL, average REAL,
    fee_cost REAL NOT NULL, fee_currency TEXT, purpose TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (account, id));
CREATE INDEX orders_open ON orders (account, status);
CREATE INDEX orders_client ON orders (client_order_id);
CREATE TABLE trades (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, symbol TEXT NOT NULL,
    amount REAL NOT NULL, entry_price REAL NOT NULL, exit_price REAL NOT NULL,
    opened_at REAL NOT NULL, closed_at REAL NOT NULL, pnl REAL NOT NULL, fees REAL NOT NULL,
    reason TEXT NOT NULL);
CREATE INDEX trades_closed ON trades (closed_at);
CREATE TABLE bans (
    account TEXT NOT NULL, symbol TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL,
    auto INTEGER NOT NULL, PRIMARY KEY (account, symbol));
CREATE TABLE modes (account TEXT PRIMARY KEY, mode TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE equity (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, at REAL NOT NULL,
    equity REAL NOT NULL, exposure REAL NOT NULL);
CREATE INDEX equity_at ON equity (account, at);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL,
    command TEXT NOT NULL, args TEXT NOT NULL, result TEXT NOT NULL);
"""

MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    # 2: a resting stop's trigger; who opened a position (a manual one is the owner's to exit)
    1: lambda db: db.executescript(
        "ALTER TABLE orders ADD COLUMN stop_price REAL;"
        "ALTER TABLE positions ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;"
    ),
}


class StoreError(Exception):
    """The file cannot be used (written by a newer version, or not this bot's database), or a
    transaction was rolled back because a part of it failed."""


def schema_version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row is not None else 0


def migrate(db: sqlite3.Connection, path: str) -> None:
    """Bring the file at `path` to SCHEMA_VERSION, one migration at a time, or refuse it."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    if not tables:  # a new file: version 1, then every migration, like any old file
        db.executescript(
            f"BEGIN; {SCHEMA_V1} INSERT INTO meta VALUES ('schema_version', '1'); COMMIT;"
        )
    elif "meta" not in tables:
        raise StoreError(f"{path} is not this bot's database (no meta table)")
    version = schema_version(db)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}; this code knows up to "
            f"{SCHEMA_VERSION}: upgrade the bot instead of downgrading the data"
        )
    while version < SCHEMA_VERSION:
        # An explicit BEGIN: sqlite3 would otherwise autocommit each DDL statement, and a
        # migration half applied under the old version number could not be re-run.
        db.execute("BEGIN")
        try:
            MIGRATIONS[version](db)
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(version + 1),),
            )
        except BaseException:
            db.rollback()
            raise
        db.commit()
        version += 1
