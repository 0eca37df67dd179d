"""The real engine over the real ccxt binance client and the loopback fake: a single "try again"
or unknown answer never flattens the account; an unknown answer that persists halts it."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from sim.clock import FakeClock
from sim.fakes.binance import (
    ACCOUNT,
    DISCONNECTED,
    SERVER_BUSY,
    TICKER_24HR,
    FakeBinance,
)
from tests.engine_support import SETTINGS, ScriptedStrategy
from trading.connector import Connector
from trading.engine import Trader
from trading.errors import Closed
from trading.events import Emergency, FaultRaised
from trading.modes import Mode
from trading.store import Store
from trading.venues.ccxt_venue import CcxtVenue

LIMIT = 300.0


class Rig:
    """A trader on the fake Binance that has bought ETH, with every event it sent."""

    def __init__(self, fake: FakeBinance, settings) -> None:
        self.fake = fake
        self.clock = FakeClock(time.time())  # the fake stamps tickers with the real time
        self.events: list = []
        venue = CcxtVenue(
            "binance", "MASTER", api_key=fake.api_key, secret=fake.secret,
            config=fake.ccxt_config(),
        )  # fmt: skip
        self.connector = Connector(
            venue,
            clock=self.clock,
            notify=self.events.append,
            sync_failure_limit=LIMIT,
            unrecognized_limit=LIMIT,
        )
        self.trader = Trader(
            self.connector,
            store=Store(),
            strategy=ScriptedStrategy(["ETH/USDT"]),
            settings=settings,
            clock=self.clock,
            notify=self.events.append,
        )

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def sells(self) -> list[dict]:
        """Sells sent, but for the protective stop resting at the exchange."""
        return [
            o
            for o in self.fake.orders.values()
            if o["side"] == "SELL" and not o["type"].startswith("STOP_LOSS")
        ]


@pytest.fixture
def policy() -> str:
    return "flatten"


@pytest.fixture
async def rig(policy):
    async with FakeBinance() as fake:
        rig = Rig(fake, replace(SETTINGS, failsafe_on_fatal=policy))
        try:
            await rig.trader.start()
            await rig.trader.run_cycle()
            assert set(rig.trader.book.positions) == {"ETH/USDT"}
            yield rig
        finally:
            await rig.trader.close()
            await rig.connector.close()


async def test_one_busy_ticker_and_one_internal_error_on_the_account_change_nothing(rig):
    rig.fake.fail_code(TICKER_24HR, **SERVER_BUSY)
    rig.fake.fail_code(ACCOUNT, **DISCONNECTED)
    rig.clock.advance(60.0)

    await rig.trader.run_cycle()

    assert rig.trader.mode is Mode.RUNNING
    assert rig.sells() == [] and set(rig.trader.book.positions) == {"ETH/USDT"}
    assert rig.of(Emergency) == []
    assert rig.fake.calls(TICKER_24HR) >= 2 and rig.trader.last_error is None


async def test_an_unknown_answer_once_skips_the_cycle_and_changes_nothing(rig):
    rig.fake.fail_code(TICKER_24HR, code=-9999, msg="Something new.")
    rig.clock.advance(60.0)

    await rig.trader.run_cycle()

    assert rig.trader.mode is Mode.RUNNING and rig.sells() == [] and rig.of(Emergency) == []
    assert "-9999" in (rig.trader.last_error or "")
    assert rig.connector.unrecognized()[0] == "fetch_tickers"


@pytest.mark.parametrize("policy", ["stop"])
async def test_an_unknown_answer_that_persists_past_the_limit_is_fatal_with_an_emergency(rig):
    rig.fake.fail_code(TICKER_24HR, code=-9999, msg="Something new.", times=-1)
    modes = []
    for _ in range(4):  # a cycle every 2 minutes, bounded
        rig.clock.advance(120.0)
        await rig.trader.run_cycle()
        modes.append(rig.trader.mode)

    assert modes == [Mode.RUNNING, Mode.RUNNING, Mode.RUNNING, Mode.HALTED]
    [emergency] = rig.of(Emergency)
    assert "fetch_tickers answering unrecognized errors for 360 s" in emergency.message
    assert [f.kind for f in rig.of(FaultRaised) if f.kind == "fatal"] == ["fatal"]
    assert rig.sells() == []  # FAILSAFE_ON_FATAL=stop: positions left as they are


async def test_a_cycle_caught_by_the_shutdown_is_cancelled_not_a_fault(rig):
    await rig.connector.close()
    rig.clock.advance(60.0)

    with pytest.raises(Closed):
        await rig.trader.run_cycle()

    assert rig.trader.mode is Mode.RUNNING and rig.trader.last_error is None
    assert rig.of(Emergency) == [] and rig.of(FaultRaised) == []
    assert rig.sells() == []  # no failsafe sell
