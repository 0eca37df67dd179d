"""The ledger's arithmetic over hand-made trades, curves and balances (no I/O anywhere)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from trading import ledger
from trading.ledger import Unit
from trading.records import ClosedTrade


def at(text: str) -> float:
    """ "2024-03-04 23:59:59" (UTC) -> epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def trade(
    pnl: float,
    closed: str = "2024-03-04 12:00:00",
    *,
    symbol: str = "BTC/USDT",
    fees: float = 0.1,
    cost: float = 100.0,
) -> ClosedTrade:
    closed_at = at(closed)
    return ClosedTrade(
        account="paper:main",
        symbol=symbol,
        amount=1.0,
        entry_price=cost,
        exit_price=cost + pnl + fees,
        opened_at=closed_at - 3600,
        closed_at=closed_at,
        pnl=pnl,
        fees=fees,
        reason="test",
    )


# ---- trades and their statistics ---------------------------------------------------------


def test_stats_sum_pnl_and_fees_and_count_a_zero_trade_as_neither_won_nor_lost():
    trades = [trade(10.0), trade(-4.0), trade(0.0), trade(6.0, fees=0.25)]
    s = ledger.stats(trades)
    assert (s.count, s.wins, s.losses) == (4, 2, 1)
    assert s.realized == pytest.approx(12.0) and s.fees == pytest.approx(0.55)
    assert s.gross_profit == pytest.approx(16.0) and s.gross_loss == pytest.approx(4.0)
    assert s.win_rate == pytest.approx(0.5) and s.profit_factor == pytest.approx(4.0)
    assert s.best is trades[0] and s.worst is trades[1]


def test_profit_factor_is_infinite_without_losses_and_undefined_without_moves():
    assert ledger.stats([trade(5.0)]).profit_factor == math.inf
    assert ledger.stats([trade(0.0)]).profit_factor is None
    empty = ledger.stats([])
    assert empty.count == 0 and empty.win_rate is None and empty.best is None


def test_trade_return_is_pnl_over_entry_cost():
    assert ledger.trade_return(trade(5.0, cost=200.0)) == pytest.approx(0.025)


def test_latest_gives_the_last_closed_newest_first():
    old, mid, new = trade(1, "2024-03-01 00:00:00"), trade(2, "2024-03-02"), trade(3, "2024-03-03")
    assert ledger.latest([mid, new, old], 2) == [new, mid]


def test_profit_adds_open_positions_to_the_realized():
    p = ledger.profit("a", "USDT", [trade(10.0)], [(0.0, 100.0)], [2.5, -1.0])
    assert p.trades.realized == 10.0 and p.unrealized == 1.5 and p.open_positions == 2
    assert p.pnl == pytest.approx(11.5)


# ---- drawdown ----------------------------------------------------------------------------


def test_max_drawdown_is_the_deepest_fall_from_a_running_peak():
    d = ledger.max_drawdown([(0, 100.0), (1, 120.0), (2, 90.0), (3, 130.0), (4, 104.0)])
    assert d is not None
    assert (d.amount, d.fraction, d.peak_at, d.trough_at) == (30.0, 0.25, 1, 2)


def test_max_drawdown_is_measured_relative_to_the_peak():
    # 50 of 100 is deeper than 400 of 1000
    d = ledger.max_drawdown([(0, 100.0), (1, 50.0), (2, 1000.0), (3, 600.0)])
    assert d is not None and (d.amount, d.fraction) == (50.0, 0.5)


def test_max_drawdown_of_a_rising_curve_is_zero_and_of_no_curve_none():
    d = ledger.max_drawdown([(0, 100.0), (1, 101.0), (2, 150.0)])
    assert d is not None and d.amount == 0.0 and d.fraction == 0.0
    assert ledger.max_drawdown([]) is None


def test_combined_curve_sums_each_accounts_latest_and_backfills_a_late_start():
    a = [(0.0, 100.0), (60.0, 110.0)]
    b = [(30.0, 50.0), (60.0, 45.0), (90.0, 40.0)]
    assert ledger.combined([a, b, []]) == [(0.0, 150.0), (30.0, 150.0), (60.0, 155.0),
                                           (90.0, 150.0)]  # fmt: skip


# ---- periods -----------------------------------------------------------------------------


def test_daily_periods_split_at_utc_midnight_and_include_empty_days():
    now = at("2024-03-05 08:00:00")
    trades = [
        trade(1.0, "2024-03-04 23:59:59"),
        trade(2.0, "2024-03-05 00:00:00"),
        trade(4.0, "2024-03-02 10:00:00"),
        trade(8.0, "2024-03-01 23:00:00"),  # before the window
    ]
    days = ledger.periods(trades, Unit.DAY, 4, now)
    assert [d.start for d in days] == [at("2024-03-05"), at("2024-03-04"), at("2024-03-03"),
                                       at("2024-03-02")]  # fmt: skip
    assert [(d.pnl, d.trades) for d in days] == [(2.0, 1), (1.0, 1), (0.0, 0), (4.0, 1)]
    assert days[0].end == at("2024-03-06") and days[1].end == at("2024-03-05")


def test_weekly_periods_are_iso_weeks_from_monday():
    now = at("2024-03-10 23:00:00")  # a Sunday: still the week of Monday the 4th
    trades = [trade(1.0, "2024-03-04 00:00:00"), trade(2.0, "2024-03-03 23:59:59")]
    weeks = ledger.periods(trades, Unit.WEEK, 2, now)
    assert [w.start for w in weeks] == [at("2024-03-04"), at("2024-02-26")]
    assert [w.pnl for w in weeks] == [1.0, 2.0]
    assert all(datetime.fromtimestamp(w.start, UTC).weekday() == 0 for w in weeks)


def test_monthly_periods_are_calendar_months_across_a_year_and_a_leap_february():
    now = at("2024-03-01 00:00:00")
    trades = [trade(1.0, "2024-02-29 23:59:59"), trade(2.0, "2023-12-31 12:00:00")]
    months = ledger.periods(trades, Unit.MONTH, 4, now)
    assert [m.start for m in months] == [at("2024-03-01"), at("2024-02-01"), at("2024-01-01"),
                                         at("2023-12-01")]  # fmt: skip
    assert [m.pnl for m in months] == [0.0, 1.0, 0.0, 2.0]
    assert months[0].end == at("2024-04-01")


def test_period_counts_wins_and_fees():
    now = at("2024-03-04 20:00:00")
    (day,) = ledger.periods([trade(3.0, fees=0.2), trade(-1.0, fees=0.3)], Unit.DAY, 1, now)
    assert (day.trades, day.wins) == (2, 1)
    assert day.pnl == pytest.approx(2.0) and day.fees == pytest.approx(0.5)


# ---- per symbol --------------------------------------------------------------------------


def test_performance_ranks_symbols_by_profit_with_their_return_on_cost():
    trades = [
        trade(5.0, symbol="ETH/USDT"),
        trade(-2.0, symbol="SOL/USDT"),
        trade(3.0, symbol="ETH/USDT", cost=300.0),
        trade(1.0, symbol="BTC/USDT"),
    ]
    rows = ledger.performance(trades)
    assert [r.symbol for r in rows] == ["ETH/USDT", "BTC/USDT", "SOL/USDT"]
    eth = rows[0]
    assert (eth.trades, eth.wins, eth.pnl, eth.cost) == (2, 2, 8.0, 400.0)
    assert eth.ret == pytest.approx(0.02)


# ---- holdings ----------------------------------------------------------------------------


def test_holdings_value_each_coin_and_keep_the_bots_part_apart_from_the_owners():
    h = ledger.holdings(
        "paper:main",
        "USDT",
        {"USDT": 500.0, "BTC": 0.5, "ETH": 2.0, "XYZ": 7.0, "DUST": 0.0},
        {"BTC": 0.2, "ETH": 3.0},  # more ETH in the book than in the balance: capped
        {"BTC": 40_000.0, "ETH": 2_000.0},
    )
    coins = {c.currency: c for c in h.coins}
    assert [c.currency for c in h.coins] == ["BTC", "ETH", "USDT", "XYZ"]
    assert (coins["BTC"].bot, coins["BTC"].own, coins["BTC"].value) == (0.2, 0.3, 20_000.0)
    assert (coins["ETH"].bot, coins["ETH"].own) == (2.0, 0.0)
    assert coins["USDT"].bot == 0.0 and coins["USDT"].value == 500.0
    assert coins["XYZ"].value is None and h.unpriced == ("XYZ",)
    assert h.value == 24_500.0 and h.cash == 500.0
    assert h.bot_value == pytest.approx(8_000.0 + 4_000.0)
    assert h.own_value == pytest.approx(12_000.0)


def test_merged_holdings_sum_per_quote_and_an_unpriced_part_leaves_no_partial_value():
    a = ledger.holdings("a", "USDT", {"USDT": 10.0, "BTC": 1.0, "XYZ": 1.0}, {"BTC": 1.0},
                        {"BTC": 100.0, "XYZ": 5.0})  # fmt: skip
    b = ledger.holdings("b", "USDT", {"USDT": 5.0, "BTC": 1.0, "XYZ": 2.0}, {}, {"BTC": 110.0})
    c = ledger.holdings("c", "EUR", {"EUR": 3.0}, {}, {})
    eur, usdt = ledger.merged("total", [a, b, c])
    assert (eur.quote, eur.value) == ("EUR", 3.0)
    coins = {h.currency: h for h in usdt.coins}
    assert (coins["BTC"].amount, coins["BTC"].bot, coins["BTC"].value) == (2.0, 1.0, 210.0)
    assert coins["XYZ"].amount == 3.0 and coins["XYZ"].value is None
    assert usdt.value == 225.0 and usdt.unpriced == ("XYZ",)
