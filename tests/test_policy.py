"""What deserves the phone: NotifyPolicy's decisions per event kind and setting."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from chatbot.config import NotifySettings
from chatbot.policy import NotifyPolicy
from trading.events import (
    Emergency,
    EmergencyCleared,
    EquityReport,
    Event,
    FaultRaised,
    OrderRejected,
    StateChanged,
    SymbolBanned,
    TradeClosed,
    TradeOpened,
)

ACC = "binance:master"


def opened(at: float = 0.0) -> TradeOpened:
    return TradeOpened(
        account=ACC, at=at, symbol="BTC/USDT", amount=0.001, price=50_000, cost=50, reason="x"
    )


def closed(at: float = 0.0) -> TradeClosed:
    return TradeClosed(
        account=ACC,
        at=at,
        symbol="BTC/USDT",
        amount=0.001,
        price=51_000,
        pnl=1.0,
        pnl_pct=2.0,
        reason="take profit",
    )


def fault(kind: str) -> FaultRaised:
    return FaultRaised(account=ACC, at=0.0, kind=kind, call="fetch_balance", message="boom")


def equity(value: float, exposure: float = 0.0, account: str = ACC) -> EquityReport:
    return EquityReport(
        account=account, at=0.0, equity=value, exposure=exposure, quote="USDT", positions=1
    )


def test_defaults_ring_for_exits_states_bans_and_stay_silent_for_entries_and_refusals():
    policy = NotifyPolicy()
    refused = OrderRejected(account=ACC, at=0, symbol="X/USDT", side="buy", reason="min")
    state = StateChanged(account=ACC, at=0, old="running", new="paused", reason="")
    ban = SymbolBanned(account=ACC, at=0, symbol="X/USDT", reason="loop")
    cleared = EmergencyCleared(account=ACC, at=0, key="k", message="flat")
    assert policy.decide(opened()) == "silent"
    assert policy.decide(closed()) == "normal"
    assert policy.decide(refused) == "silent"
    assert policy.decide(state) == "normal"
    assert policy.decide(ban) == "normal"
    assert policy.decide(cleared) == "normal"


def test_emergencies_page_and_faults_are_only_counted_even_fatal_ones():
    policy = NotifyPolicy()
    assert policy.decide(fault("fatal")) is None  # the trader's one Emergency pages for it
    assert policy.decide(Emergency(account=ACC, at=0, key="kill", message="not flat")) == (
        "emergency"
    )
    for kind in ("transient", "rate_limited", "rejected", "clock_rejected"):
        assert policy.decide(fault(kind)) is None


@pytest.mark.parametrize(
    ("entries", "exits", "want_entry", "want_exit"),
    [
        ("on", "off", "normal", None),
        ("off", "silent", None, "silent"),
        ("silent", "on", "silent", "normal"),
    ],
)
def test_entries_and_exits_follow_their_on_silent_off_setting(
    entries, exits, want_entry, want_exit
):
    policy = NotifyPolicy(NotifySettings(entries=entries, exits=exits))
    assert policy.decide(opened()) == want_entry
    assert policy.decide(closed()) == want_exit


def test_unknown_level_is_refused_at_construction():
    with pytest.raises(ValueError, match="entries"):
        NotifyPolicy(NotifySettings(entries="loud"))


def test_equity_is_reported_only_after_moving_more_than_the_threshold_since_the_last_report():
    policy = NotifyPolicy(NotifySettings(equity_change_pct=5.0))
    assert policy.decide(equity(10_000)) is None  # the baseline
    assert policy.decide(equity(10_400)) is None  # +4 %
    assert policy.decide(equity(10_501)) == "silent"  # +5.01 % since the baseline
    assert policy.last_reported(ACC) == (10_501, 0.0)
    # Small steps that add up past the threshold are reported: measured from the last report.
    assert policy.decide(equity(10_200)) is None
    assert policy.decide(equity(9_970)) == "silent"  # -5.06 % since 10,501


def test_exposure_moving_more_than_its_points_is_reported():
    policy = NotifyPolicy(NotifySettings(exposure_change_pct=25.0))
    assert policy.decide(equity(10_000, exposure=0.10)) is None
    assert policy.decide(equity(10_000, exposure=0.30)) is None  # 20 points
    assert policy.decide(equity(10_000, exposure=0.36)) == "silent"  # 26 points


def test_each_account_has_its_own_equity_baseline():
    policy = NotifyPolicy()
    assert policy.decide(equity(10_000, account="a")) is None
    assert policy.decide(equity(20_000, account="b")) is None  # b's baseline, not a move of a
    assert policy.decide(equity(20_000, account="a")) == "silent"


def test_an_event_kind_the_policy_does_not_know_is_sent():
    @dataclass(frozen=True, slots=True, kw_only=True)
    class NewKind(Event):
        detail: str

    assert NotifyPolicy().decide(NewKind(account=ACC, at=0, detail="x")) == "normal"


def test_a_quiet_day_with_default_settings_is_a_handful_of_messages():
    """A day: a cycle a minute with equity wobbling ±1 %, 3 round trips, 30 transient faults,
    2 refused orders. Only exits ring; the rest is silent or only counted."""
    policy = NotifyPolicy()
    rng = random.Random(7)
    events: list[Event] = [equity(10_000 * (1 + rng.uniform(-0.01, 0.01))) for _ in range(1440)]
    events += [opened(), closed()] * 3
    events += [fault("transient")] * 30
    events += [OrderRejected(account=ACC, at=0, symbol="X/USDT", side="buy", reason="min")] * 2
    decisions = [policy.decide(ev) for ev in events]
    ringing = decisions.count("normal")
    silent = decisions.count("silent")
    assert ringing == 3  # the exits
    assert silent == 5  # the entries and the refusals; no equity report
