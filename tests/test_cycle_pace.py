"""The scan's budget follows the exchange's pace and the scan interval (trading/cycle_pace.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pytest

from chatbot.scheduling import cycle_job_id, new_scheduler, schedule_traders
from sim.clock import FakeClock
from sim.fakes.kraken import FakeKraken
from tests.engine_support import SETTINGS, ScriptedStrategy, make_rig
from trading.connector import Connector
from trading.cycle_pace import Pace, plan
from trading.engine import Trader
from trading.settings import TradingSettings
from trading.store import Store
from trading.venues.ccxt_venue import CcxtVenue

KRAKEN = Pace(read=1.2, private_read=3.0)  # ccxt's kraken: rateLimit 1000 ms, OHLC 1.2, 3


def test_a_kraken_cycle_in_a_minute_scans_within_its_share_of_the_minute():
    sized = plan(KRAKEN, 60.0, max_budget=50, per_candidate=1)
    assert not sized.stretched and sized.interval == 60.0
    # 6 s of sync, then 1.2 s a read within 80 % of the minute
    assert sized.budget == 35
    assert 2 * 3.0 + sized.budget * 1.2 <= 60.0


def test_a_kraken_cycle_cannot_fit_three_seconds_so_the_interval_stretches():
    """The issue: a fixed 20 requests at Kraken's pace took 13-16 s against a 3 s interval."""
    sized = plan(KRAKEN, 3.0, max_budget=20, per_candidate=1)
    assert sized.stretched and sized.budget == 2  # the ticker read and one candle read
    assert sized.interval == 11.0  # (6 + 2 * 1.2) / 0.8, rounded up
    assert 2 * 3.0 + sized.budget * 1.2 <= sized.interval


def test_a_fast_exchange_keeps_the_largest_budget():
    binance = Pace(read=0.05, private_read=0.05)
    assert plan(binance, 60.0, max_budget=20, per_candidate=2).budget == 20


def test_the_paper_exchanges_token_bucket_sizes_its_cycles():
    rig = make_rig(FakeClock(), rate_limit=1.0, settings=TradingSettings(scan_interval_seconds=10))
    assert rig.connector.pace() == Pace(1.0, 1.0)
    assert rig.trader.cycle_plan.budget == 6  # 8 s of the 10, less the sync's 2
    assert rig.connector.budget() == 6


async def test_a_trader_on_kraken_says_once_at_start_that_its_interval_stretches(caplog):
    clock = FakeClock(time.time())
    async with FakeKraken(clock=clock) as fake:
        venue = CcxtVenue(
            "kraken", "MASTER", api_key=fake.api_key, secret=fake.secret,
            config=fake.ccxt_config(rate_limit_ms=1000),
        )  # fmt: skip
        trader = Trader(
            Connector(venue, clock=clock),
            store=Store(),
            strategy=ScriptedStrategy([]),
            settings=replace(SETTINGS, scan_interval_seconds=3.0),
            clock=clock,
            notify=lambda event: None,
        )
        try:
            with caplog.at_level(logging.INFO):
                plan_ = trader.cycle_plan
                assert plan_.stretched and plan_.interval == pytest.approx(11.0)
                await trader.start()
        finally:
            await trader.connector.close()
    said = [r.getMessage() for r in caplog.records if "does not fit a cycle" in r.getMessage()]
    assert said == [
        "the exchange's pace (1.2 s a read, 3 s a private read) does not fit a cycle in 3 s: "
        "cycles every 11 s instead, scanning 2 requests"
    ]


def test_the_scheduler_runs_a_stretched_traders_cycle_at_its_stretched_interval():
    class Slow:
        label = "kraken:master"
        settings = replace(SETTINGS, scan_interval_seconds=3.0)
        cycle_plan = plan(KRAKEN, 3.0, max_budget=20, per_candidate=1)

        async def start(self): ...
        async def run_cycle(self): ...
        async def run_sync(self): ...

    scheduler = new_scheduler()
    schedule_traders(scheduler, [Slow()], replace(SETTINGS, scan_interval_seconds=3.0))
    trigger = scheduler.get_job(cycle_job_id("kraken:master")).trigger
    assert trigger.interval.total_seconds() == 11.0


def test_a_paper_trader_whose_cycle_fits_runs_at_the_compressed_paper_cadence():
    """The offline paper account plans in paper seconds (60 s) while the scheduler runs its
    cadence compressed by PAPER_SPEED (1 s): a plan that fits must not stretch it back to 60."""

    class Paper:
        label = "paper:main"
        settings = replace(SETTINGS, scan_interval_seconds=60.0)
        cycle_plan = plan(None, 60.0, max_budget=20, per_candidate=2)

        async def start(self): ...
        async def run_cycle(self): ...
        async def run_sync(self): ...

    scheduler = new_scheduler()
    schedule_traders(scheduler, [Paper()], replace(SETTINGS, scan_interval_seconds=1.0))
    trigger = scheduler.get_job(cycle_job_id("paper:main")).trigger
    assert trigger.interval.total_seconds() == 1.0
