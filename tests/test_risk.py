"""The risk gate as a pure function: every refusal has a reason, exits are clamped."""

from __future__ import annotations

from dataclasses import replace

import pytest

from trading.models import Market, Position, Side
from trading.modes import Mode, Purpose
from trading.risk import (
    Allowed,
    OrderIntent,
    Refused,
    RiskSnapshot,
    check,
    entry_amount,
    loop_guard_trips,
    round_down,
)
from trading.settings import TradingSettings

LIMITS = TradingSettings(
    max_positions=2,
    max_exposure=0.5,
    min_balance=50.0,
    reentry_cooldown_seconds=600.0,
    loop_guard_round_trips=3,
    loop_guard_window_seconds=3600.0,
)
NOW = 1_700_000_000.0
MARKETS = {
    "ETH/USDT": Market(
        "ETH/USDT", "ETH", "USDT", min_amount=0.001, min_cost=10.0, amount_step=0.001
    ),
    "SOL/USDT": Market("SOL/USDT", "SOL", "USDT", min_amount=0.01, min_cost=5.0, amount_step=0.01),
    "BTC/USDT": Market("BTC/USDT", "BTC", "USDT", min_amount=0.00001, min_cost=5.0),
    "OLD/USDT": Market("OLD/USDT", "OLD", "USDT", active=False),
    "ETH/BTC": Market("ETH/BTC", "ETH", "BTC"),
}
SOL = Position("paper:main", "SOL/USDT", 2.0, 50.0, NOW - 100)
SNAP = RiskSnapshot(
    mode=Mode.RUNNING,
    now=NOW,
    quote="USDT",
    free_quote=1_000.0,
    equity=1_100.0,
    exposure=100.0,
    positions={"SOL/USDT": SOL},
    free_base={"USDT": 1_000.0, "SOL": 2.0},
    markets=MARKETS,
)


def buy(symbol="ETH/USDT", amount=0.05, price=2000.0, purpose=Purpose.ENTRY) -> OrderIntent:
    return OrderIntent(symbol, Side.BUY, amount, price, purpose)


def sell(symbol="SOL/USDT", amount=2.0, price=50.0, purpose=Purpose.EXIT) -> OrderIntent:
    return OrderIntent(symbol, Side.SELL, amount, price, purpose)


def test_an_entry_within_every_limit_is_allowed():
    assert check(buy(), SNAP, LIMITS) == Allowed(0.05)


@pytest.mark.parametrize(
    ("intent", "snap", "reason"),
    [
        (buy(), replace(SNAP, mode=Mode.PAUSED), "trader is paused: no entry now"),
        (buy(), replace(SNAP, mode=Mode.STOPPING), "trader is stopping: no entry now"),
        (buy(), replace(SNAP, mode=Mode.KILLED), "trader is killed: no entry now"),
        (buy(), replace(SNAP, bans=frozenset({"ETH/USDT"})), "ETH/USDT is banned"),
        (buy("NOPE/USDT"), SNAP, "NOPE/USDT: unknown market"),
        (buy("OLD/USDT"), SNAP, "OLD/USDT: market is not an active spot market"),
        (buy("ETH/BTC"), SNAP, "ETH/BTC: not quoted in USDT"),
        (buy("SOL/USDT", 1.0, 50.0), SNAP, "SOL/USDT: already held"),
        (buy(), replace(SNAP, pending_entries=frozenset({"ETH/USDT"})), "ETH/USDT: already held"),
        (
            buy(),
            replace(SNAP, held_outside=frozenset({"ETH/USDT"})),
            "ETH/USDT: the account already holds ETH outside the bot",
        ),
        (
            buy(),
            replace(SNAP, pending_entries=frozenset({"BTC/USDT"})),
            "MAX_POSITIONS reached (2/2)",
        ),
        (
            buy(),
            replace(SNAP, last_exit_at={"ETH/USDT": NOW - 100}),
            "ETH/USDT: re-entry cooldown, 500 s left (/unlock ETH/USDT clears it)",
        ),
        (
            buy(),
            replace(SNAP, free_quote=40.0),
            "free balance 40.00 USDT is below the minimum 50 USDT",
        ),
        (
            buy(amount=0.6),
            SNAP,
            "ETH/USDT: stake 1200.00 USDT is above the free balance 1000.00 USDT",
        ),
        (buy(amount=0.004), SNAP, "ETH/USDT: order value 8.00 is below the market minimum 10"),
        (
            buy("SOL/USDT", 0.005, 5000.0),
            replace(SNAP, positions={}),
            "SOL/USDT: amount 0.005 is below the market minimum 0.01",
        ),
        (
            buy(amount=0.25),
            SNAP,
            "ETH/USDT: exposure would be 55% of equity, above the limit 50%",
        ),
        (buy(amount=0.0), SNAP, "ETH/USDT: nothing to order (amount 0)"),
    ],
)
def test_every_entry_refusal_has_its_reason(intent, snap, reason):
    assert check(intent, snap, LIMITS) == Refused(reason)


def test_a_refusal_is_a_falsy_value_not_an_exception():
    decision = check(buy(), replace(SNAP, mode=Mode.PAUSED), LIMITS)
    assert not decision and isinstance(decision, Refused)
    assert check(buy(), SNAP, LIMITS)


def test_cooldown_is_over_once_the_window_has_passed():
    snap = replace(SNAP, last_exit_at={"ETH/USDT": NOW - 601})
    assert isinstance(check(buy(), snap, LIMITS), Allowed)


def test_an_exit_is_clamped_to_the_position_and_the_free_base_balance():
    assert check(sell(amount=5.0), SNAP, LIMITS) == Allowed(2.0)
    less_free = replace(SNAP, free_base={"SOL": 1.234})
    assert check(sell(), less_free, LIMITS) == Allowed(1.23)  # and down to the lot size


@pytest.mark.parametrize(
    ("intent", "snap", "reason"),
    [
        (sell("ETH/USDT"), SNAP, "ETH/USDT: no position opened by the bot"),
        (
            sell(),
            replace(SNAP, free_base={"SOL": 0.0}),
            "SOL/USDT: no free SOL to sell (it may be held by an order)",
        ),
        (
            sell(),
            replace(SNAP, exiting=frozenset({"SOL/USDT"})),
            "SOL/USDT: an exit is already on its way",
        ),
        (
            sell(amount=0.05),
            SNAP,
            "SOL/USDT: order value 2.50 is below the market minimum 5",
        ),
        (sell(), replace(SNAP, mode=Mode.PAUSED), "trader is paused: no strategy exit now"),
        (
            sell(purpose=Purpose.STOP),
            replace(SNAP, mode=Mode.HALTED),
            "trader is halted: no stop exit now",
        ),
        (
            sell(purpose=Purpose.PROTECT),
            replace(SNAP, mode=Mode.HANDS_OFF),
            "trader is hands-off: no stop-loss or take-profit exit now",
        ),
        (
            sell(purpose=Purpose.FAILSAFE),
            replace(SNAP, mode=Mode.PAUSED),
            "trader is paused: no failsafe exit now",
        ),
    ],
)
def test_every_exit_refusal_has_its_reason(intent, snap, reason):
    assert check(intent, snap, LIMITS) == Refused(reason)


@pytest.mark.parametrize(
    ("mode", "purpose"),
    [
        (Mode.RUNNING, Purpose.EXIT),
        (Mode.PAUSED, Purpose.PROTECT),  # a pause never disarms a stop-loss
        (Mode.HALTED, Purpose.PROTECT),
        (Mode.STOPPED, Purpose.PROTECT),
        (Mode.PAUSED, Purpose.MANUAL),  # /sell is the owner's own exit
        (Mode.FAILSAFE, Purpose.MANUAL),
        (Mode.HANDS_OFF, Purpose.MANUAL),
        (Mode.STOPPING, Purpose.STOP),
        (Mode.KILLED, Purpose.KILL),
        (Mode.PAUSED, Purpose.KILL),  # a kill goes through a pause
        (Mode.HALTED, Purpose.KILL),
        (Mode.FAILSAFE, Purpose.FAILSAFE),
        (Mode.STOPPED, Purpose.MANUAL),
    ],
)
def test_exits_are_allowed_where_the_mode_table_lets_their_purpose_out(mode, purpose):
    assert check(sell(purpose=purpose), replace(SNAP, mode=mode), LIMITS) == Allowed(2.0)


def test_an_unrecognised_answer_holds_entries_but_not_exits():
    held = replace(SNAP, caution="fetch_tickers gave an unrecognised answer")
    assert check(buy(), held, LIMITS) == Refused(
        "entries held: fetch_tickers gave an unrecognised answer"
    )
    assert check(sell(purpose=Purpose.PROTECT), held, LIMITS) == Allowed(2.0)


def test_loop_guard_bans_only_more_than_n_round_trips_inside_the_window():
    three = [NOW - 3000, NOW - 2000, NOW - 1000]
    assert loop_guard_trips(three, NOW, LIMITS) is None
    assert loop_guard_trips([*three, NOW], NOW, LIMITS) == 4
    assert loop_guard_trips([NOW - 4000, *three], NOW, LIMITS) is None  # one is outside


def test_amounts_are_rounded_down_to_the_lot_size():
    assert round_down(1.23999, 0.01) == 1.23
    assert round_down(0.3, 0.1) == 0.3
    assert round_down(5.5, None) == 5.5
    assert entry_amount(100.0, 2000.0, MARKETS["ETH/USDT"]) == 0.05
    assert entry_amount(100.0, 0.0, MARKETS["ETH/USDT"]) == 0.0
