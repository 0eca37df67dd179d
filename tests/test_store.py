import sqlite3

import pytest

import trading.store_schema as schema_module
from trading.models import Order, OrderStatus, OrderType, Position, Side
from trading.store import (
    AuditEntry,
    Ban,
    ClosedTrade,
    EquityPoint,
    Store,
)
from trading.store_schema import SCHEMA_VERSION, StoreError

ACCOUNT = "paper:main"
T0 = 1_700_000_000.0


def order(oid: str, status: OrderStatus = OrderStatus.OPEN, **kw) -> Order:
    fields = dict(
        id=oid,
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        amount=0.01,
        filled=0.0,
        status=status,
        timestamp=T0,
        client_order_id=f"bot-{oid}",
        price=30_000.0,
    )
    fields.update(kw)
    return Order(**fields)


def position(symbol: str = "BTC/USDT", account: str = ACCOUNT, **kw) -> Position:
    fields = dict(
        account=account,
        symbol=symbol,
        amount=0.01,
        entry_price=30_000.0,
        opened_at=T0,
        stop_loss=29_000.0,
        take_profit=32_000.0,
        entry_order_id="o1",
    )
    fields.update(kw)
    return Position(**fields)


def trade(closed_at: float, account: str = ACCOUNT, pnl: float = 5.0) -> ClosedTrade:
    return ClosedTrade(
        account=account,
        symbol="ETH/USDT",
        amount=0.5,
        entry_price=2_000.0,
        exit_price=2_010.0,
        opened_at=closed_at - 600,
        closed_at=closed_at,
        pnl=pnl,
        fees=2.0,
        reason="take-profit",
    )


@pytest.fixture(name="store")
def store_fixture():
    s = Store()
    yield s
    s.close()


def test_new_store_records_its_schema_version(store):
    assert store.schema_version == SCHEMA_VERSION
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)


def test_save_position_upserts_by_account_and_symbol(store):
    store.save_position(position())
    store.save_position(position(amount=0.02, stop_loss=29_500.0))
    store.save_position(position(account="kraken:master"))
    assert store.positions(ACCOUNT) == [position(amount=0.02, stop_loss=29_500.0)]
    assert len(store.positions("kraken:master")) == 1


def test_position_without_levels_round_trips_as_none(store):
    p = position(stop_loss=None, take_profit=None, entry_order_id=None)
    store.save_position(p)
    assert store.positions(ACCOUNT) == [p]


def test_delete_position_removes_only_that_symbol(store):
    store.save_position(position("BTC/USDT"))
    store.save_position(position("ETH/USDT", opened_at=T0 + 1))
    store.delete_position(ACCOUNT, "BTC/USDT")
    store.delete_position(ACCOUNT, "NOPE/USDT")  # deleting what is not there is harmless
    assert [p.symbol for p in store.positions(ACCOUNT)] == ["ETH/USDT"]


def test_save_order_upserts_and_open_only_filters_by_status(store):
    store.save_order(ACCOUNT, order("o1"), "entry")
    store.save_order(ACCOUNT, order("o2", timestamp=T0 + 1), "stop")
    filled = order("o1", OrderStatus.CLOSED, filled=0.01, average=30_010.0, fee_cost=0.3)
    store.save_order(ACCOUNT, filled, "entry", at=T0 + 5)

    everything = store.orders(ACCOUNT)
    assert [s.order.id for s in everything] == ["o1", "o2"]
    assert everything[0].order == filled
    assert everything[0].updated_at == T0 + 5
    assert everything[0].purpose == "entry"
    open_ = store.orders(ACCOUNT, open_only=True)
    assert [(s.order.id, s.purpose, s.updated_at) for s in open_] == [("o2", "stop", T0 + 1)]
    assert store.orders("other:acct") == []


def test_order_found_again_by_client_order_id(store):
    store.save_order(ACCOUNT, order("o7", client_order_id="bot-abc"), "kill")
    found = store.order_by_client_id(ACCOUNT, "bot-abc")
    assert found is not None and found.order.id == "o7"
    assert store.order_by_client_id(ACCOUNT, "bot-missing") is None


def test_trades_filter_by_account_and_since_oldest_first(store):
    store.add_trade(trade(T0 + 200))
    store.add_trade(trade(T0 + 100))
    store.add_trade(trade(T0 + 300, account="kraken:master", pnl=-1.0))
    assert [t.closed_at for t in store.trades(ACCOUNT)] == [T0 + 100, T0 + 200]
    assert [t.closed_at for t in store.trades(since=T0 + 150)] == [T0 + 200, T0 + 300]
    assert store.trades("kraken:master")[0] == trade(T0 + 300, "kraken:master", -1.0)


def test_ban_replaces_and_unban_reports_whether_it_was_banned(store):
    store.ban(ACCOUNT, "DOGE/USDT", "manual", T0)
    store.ban(ACCOUNT, "DOGE/USDT", "loop guard: 4 round trips in 1 h", T0 + 9, auto=True)
    store.ban("kraken:master", "XRP/USDT", "manual", T0)
    assert store.bans(ACCOUNT) == {
        "DOGE/USDT": Ban("DOGE/USDT", "loop guard: 4 round trips in 1 h", T0 + 9, True)
    }
    assert store.unban(ACCOUNT, "DOGE/USDT") is True
    assert store.unban(ACCOUNT, "DOGE/USDT") is False
    assert store.bans(ACCOUNT) == {}
    assert list(store.bans("kraken:master")) == ["XRP/USDT"]


def test_mode_is_none_until_set_then_latest_wins(store):
    assert store.mode(ACCOUNT) is None
    store.set_mode(ACCOUNT, "paused", T0)
    store.set_mode(ACCOUNT, "killed", T0 + 1)
    assert store.mode(ACCOUNT) == "killed"
    assert store.mode("kraken:master") is None


def test_audit_log_returns_latest_first_up_to_limit(store):
    for i in range(5):
        store.audit(T0 + i, "user:42", "/ban", f"SYM{i}/USDT", "banned")
    log = store.audit_log(limit=2)
    assert log == [
        AuditEntry(T0 + 4, "user:42", "/ban", "SYM4/USDT", "banned"),
        AuditEntry(T0 + 3, "user:42", "/ban", "SYM3/USDT", "banned"),
    ]
    assert len(store.audit_log()) == 5


def test_meta_set_and_get(store):
    assert store.get_meta("started") is None
    store.set_meta("started", "1")
    store.set_meta("started", "2")
    assert store.get_meta("started") == "2"


def test_everything_a_restart_needs_survives_reopening_the_file(tmp_path):
    data_dir = tmp_path / "nested" / "data"  # parent directories are created
    store = Store.in_dir(data_dir)
    store.save_position(position())
    store.save_order(ACCOUNT, order("o1", client_order_id="bot-1"), "entry")
    store.save_order(ACCOUNT, order("o2", OrderStatus.CANCELED), "exit")
    store.ban(ACCOUNT, "DOGE/USDT", "manual", T0)
    store.set_mode(ACCOUNT, "paused", T0)
    store.add_equity(ACCOUNT, T0, 10_000.0, 0.1)
    store.add_trade(trade(T0))
    store.audit(T0, "user:42", "/pause", "", "paused")
    store.close()

    with Store.in_dir(data_dir) as again:
        assert again.positions(ACCOUNT) == [position()]
        [open_order] = again.orders(ACCOUNT, open_only=True)
        assert open_order.order.client_order_id == "bot-1"
        assert len(again.orders(ACCOUNT)) == 2
        assert "DOGE/USDT" in again.bans(ACCOUNT)
        assert again.mode(ACCOUNT) == "paused"
        assert again.equity(ACCOUNT) == [EquityPoint(ACCOUNT, T0, 10_000.0, 0.1)]
        assert again.trades(ACCOUNT) == [trade(T0)]
        assert again.audit_log()[0].command == "/pause"
        assert again.schema_version == SCHEMA_VERSION


# -- transactions


class Killed(BaseException):
    """The process died here (a SIGKILL): no handler survives it."""


def test_writes_in_a_transaction_are_committed_together_when_the_outermost_block_exits(tmp_path):
    path = tmp_path / "bot.sqlite3"
    with Store(path) as store, Store(path) as other_process:
        with store.transaction():
            store.save_position(position())
            with store.transaction():  # a nested block joins the open transaction
                store.set_meta("k", "v")
            assert store.get_meta("k") == "v"  # seen inside ...
            assert other_process.get_meta("k") is None  # ... not committed yet
        assert other_process.positions(ACCOUNT) == [position()]
        assert other_process.get_meta("k") == "v"


def test_a_process_killed_inside_a_transaction_leaves_the_file_as_it_was_before(tmp_path):
    path = tmp_path / "bot.sqlite3"
    with Store(path) as store:
        store.set_meta("k", "before")
        with pytest.raises(Killed), store.transaction():
            store.set_meta("k", "after")
            store.save_position(position())
            raise Killed
        assert store.get_meta("k") == "before" and store.positions(ACCOUNT) == []
        store.set_meta("later", "1")  # the next write commits on its own again
    with Store(path) as again:
        assert again.get_meta("k") == "before" and again.positions(ACCOUNT) == []
        assert again.get_meta("later") == "1"


def test_a_part_of_a_transaction_that_failed_fails_the_whole_even_when_caught(store):
    with pytest.raises(StoreError, match="rolled back"), store.transaction():
        store.set_meta("outer", "1")
        try:
            with store.transaction():
                store.set_meta("part", "1")
                raise ValueError("a bug in one part of the change")
        except ValueError:
            pass  # a caller that swallows it must not commit half a change
    assert store.get_meta("outer") is None and store.get_meta("part") is None
    store.set_meta("next", "1")
    assert store.get_meta("next") == "1"


def test_delete_position_says_whether_there_was_one_and_an_order_is_found_by_id(store):
    store.save_position(position())
    assert store.delete_position(ACCOUNT, "BTC/USDT") is True
    assert store.delete_position(ACCOUNT, "BTC/USDT") is False
    store.save_order(ACCOUNT, order("o1", filled=0.004), "entry")
    assert store.order(ACCOUNT, "o1").order.filled == 0.004
    assert store.order(ACCOUNT, "o2") is None and store.order("kraken:master", "o1") is None


def test_file_store_uses_write_ahead_logging(tmp_path):
    with Store(tmp_path / "bot.sqlite3") as store:
        store.set_meta("k", "v")
    db = sqlite3.connect(tmp_path / "bot.sqlite3")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_file_from_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "bot.sqlite3"
    with Store(path) as store:
        store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match="schema version"):
        Store(path)


def test_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE something (x)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="not this bot's database"):
        Store(path)


def test_older_file_is_migrated_in_order_and_keeps_its_records(tmp_path, monkeypatch):
    path = tmp_path / "bot.sqlite3"
    with Store(path) as old:
        old.ban(ACCOUNT, "DOGE/USDT", "manual", T0)

    def add_note_column(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE bans ADD COLUMN note TEXT")

    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(schema_module.MIGRATIONS, SCHEMA_VERSION, add_note_column)
    with Store(path) as new:
        assert new.schema_version == SCHEMA_VERSION + 1
        assert "DOGE/USDT" in new.bans(ACCOUNT)
        columns = [row[1] for row in new._db.execute("PRAGMA table_info(bans)")]
        assert "note" in columns


def test_failed_migration_leaves_the_file_at_its_old_version(tmp_path, monkeypatch):
    path = tmp_path / "bot.sqlite3"
    Store(path).close()

    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(schema_module.MIGRATIONS, SCHEMA_VERSION, broken)
    with pytest.raises(RuntimeError, match="migration bug"):
        Store(path)
    monkeypatch.undo()
    with Store(path) as again:
        assert again.schema_version == SCHEMA_VERSION
        tables = {r[0] for r in again._db.execute("SELECT name FROM sqlite_master")}
        assert "half_done" not in tables
