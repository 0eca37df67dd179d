"""Wiring decisions that are not visible from a single module."""

from __future__ import annotations

from types import SimpleNamespace

from chatbot.app import _cadences
from chatbot.config import load_settings


def trader(exchange: str):
    return SimpleNamespace(connector=SimpleNamespace(venue=SimpleNamespace(name=exchange)))


def test_paper_accounts_cycle_in_paper_time_and_live_ones_in_real_time():
    settings = load_settings(
        {"SCAN_INTERVAL_SECONDS": "600", "SYNC_FAILURE_LIMIT_SECONDS": "1800", "PAPER_SPEED": "60"}
    )
    paper, live = trader("paper"), trader("binance")
    [(paper_group, paper_cadence), (live_group, live_cadence)] = _cadences([paper, live], settings)
    assert paper_group == [paper] and live_group == [live]
    assert paper_cadence.scan_interval_seconds == 10  # 600 s of paper time
    assert live_cadence is settings.trading


def test_paper_cycles_are_at_least_a_second_apart():
    settings = load_settings({"SCAN_INTERVAL_SECONDS": "60", "PAPER_SPEED": "1000"})
    [(_, cadence)] = _cadences([trader("paper")], settings)
    assert cadence.scan_interval_seconds == 1.0 and cadence.sync_interval_seconds == 1.0
