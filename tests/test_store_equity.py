"""The store's equity snapshots: one a clock minute per account, and the thinned curve /chart
reads (real snapshots, the last of each bucket)."""

import random
import sqlite3
import time

import pytest

from tests.test_store import ACCOUNT, T0, store_fixture  # noqa: F401 (fixture)
from trading.store import EquityCurve, EquityPoint, Store

MINUTE0 = T0 - T0 % 60  # the start of a clock minute


def test_equity_filters_by_account_and_since(store):
    store.add_equity(ACCOUNT, T0, 10_000.0, 0.0)
    store.add_equity(ACCOUNT, T0 + 60, 10_050.0, 0.25)
    store.add_equity("kraken:master", T0 + 30, 500.0, 0.5)
    assert store.equity(ACCOUNT, since=T0 + 1) == [EquityPoint(ACCOUNT, T0 + 60, 10_050.0, 0.25)]
    assert [p.at for p in store.equity()] == [T0, T0 + 30, T0 + 60]


def test_add_equity_twice_within_a_minute_keeps_one_row_with_the_latest_value(store):
    store.add_equity(ACCOUNT, MINUTE0 + 5, 10_000.0, 0.1)
    store.add_equity(ACCOUNT, MINUTE0 + 50, 10_020.0, 0.2)
    store.add_equity("kraken:master", MINUTE0 + 30, 500.0, 0.5)  # another account's own row
    assert store.equity(ACCOUNT) == [EquityPoint(ACCOUNT, MINUTE0 + 50, 10_020.0, 0.2)]
    assert len(store.equity("kraken:master")) == 1


def test_add_equity_every_second_keeps_the_last_snapshot_of_each_minute(store):
    # Replacing whatever is younger than 60 s would slide one row forward for ever; the clock
    # minute settles each row, and the newest one is always current.
    for i in range(150):
        store.add_equity(ACCOUNT, MINUTE0 + i, 10_000.0 + i, 0.0)
    assert [(p.at, p.equity) for p in store.equity(ACCOUNT)] == [
        (MINUTE0 + 59, 10_059.0),
        (MINUTE0 + 119, 10_119.0),
        (MINUTE0 + 149, 10_149.0),
    ]
    store.add_equity(ACCOUNT, MINUTE0 + 100, 1.0, 0.0)  # older than the latest: added, not merged
    assert len(store.equity(ACCOUNT)) == 4 and store.equity(ACCOUNT)[-1].equity == 10_149.0


def fill_raw(path, rows) -> None:
    """Rows written straight into the file, as the release before the one-a-minute rule did."""
    db = sqlite3.connect(path)
    try:
        with db:
            db.executemany(
                "INSERT INTO equity (account, at, equity, exposure) VALUES (?, ?, ?, ?)", rows
            )
    finally:
        db.close()


def test_equity_curve_of_100_000_snapshots_returns_at_most_600_quickly(tmp_path):
    path = tmp_path / "bot.sqlite3"
    Store(path).close()
    rng = random.Random(7)
    equity, rows = 10_000.0, []
    for i in range(100_000):  # one a second, as a paper account cycled before the fix
        equity *= 1 + rng.uniform(-1e-3, 1e-3)
        rows.append((ACCOUNT, T0 + i, equity, 0.1))
    fill_raw(path, [*rows, ("kraken:master", T0 + 5, 1.0, 0.0)])
    with Store(path) as store:
        started = time.perf_counter()
        curve = store.equity_curve(ACCOUNT, since=0.0, max_points=600)
        elapsed = time.perf_counter() - started
        full = store.equity(ACCOUNT)
    assert elapsed < 1.0  # about 0.05 s on one core; the unthinned read took 0.27 s
    assert len(curve.points) == 600  # no bucket is empty here
    assert curve.points[0] == full[0] and curve.points[-1] == full[-1]  # both ends exact
    assert [p.at for p in curve.points] == sorted({p.at for p in curve.points})
    assert set(curve.points) <= set(full)  # real snapshots, never averages
    assert curve.count == 100_000
    assert curve.low == min(p.equity for p in full) and curve.high == max(p.equity for p in full)
    assert all(p.account == ACCOUNT for p in curve.points)


def test_equity_curve_keeps_the_last_snapshot_of_each_bucket(store):
    ats = sorted(random.Random(3).sample(range(10_000), 700))  # uneven gaps, empty buckets
    for i, at in enumerate(ats):
        store.add_equity(ACCOUNT, MINUTE0 + 60 * at, float(i), 0.0)
    curve = store.equity_curve(ACCOUNT, max_points=50)
    t0, t1 = MINUTE0 + 60 * ats[0], MINUTE0 + 60 * ats[-1]
    width = (t1 - t0) / 49
    expected = {}
    for p in store.equity(ACCOUNT):
        k = min(49, -int(-(p.at - t0) // width))  # bucket (b_k-1, b_k]; b_0 is t0 alone
        expected[k] = p  # the last one of each bucket wins
    assert list(curve.points) == sorted(expected.values(), key=lambda p: p.at)
    assert len(curve.points) <= 50 and curve.count == 700


def test_equity_curve_of_a_short_window_returns_every_snapshot(store):
    for i in range(3):
        store.add_equity(ACCOUNT, MINUTE0 + 60 * i, 100.0 + i, 0.0)
    curve = store.equity_curve(ACCOUNT, since=MINUTE0 + 60)
    assert curve == EquityCurve(
        ACCOUNT,
        (
            EquityPoint(ACCOUNT, MINUTE0 + 60, 101.0, 0.0),
            EquityPoint(ACCOUNT, MINUTE0 + 120, 102.0, 0.0),
        ),
        count=2,
        low=101.0,
        high=102.0,
    )
    assert store.equity_curve("nobody") == EquityCurve("nobody", (), 0, None, None)
    with pytest.raises(ValueError, match="at least 2"):
        store.equity_curve(ACCOUNT, max_points=1)


def test_an_older_file_with_a_snapshot_a_second_is_thinned_once_when_opened(tmp_path):
    path = tmp_path / "bot.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    with db:
        db.execute("DELETE FROM meta WHERE key = 'equity_step'")  # as the older release left it
    db.close()
    rows = [(a, MINUTE0 + i, float(i), 0.0) for a in (ACCOUNT, "kraken:master") for i in range(130)]
    fill_raw(path, rows)
    with Store(path) as store:
        for account in (ACCOUNT, "kraken:master"):
            assert [p.equity for p in store.equity(account)] == [59.0, 119.0, 129.0]
        assert store.get_meta("equity_step") == "60.0"
    fill_raw(path, rows[:2])  # the marker stays: a later open does not scan again
    with Store(path) as again:
        assert len(again.equity(ACCOUNT)) == 5
