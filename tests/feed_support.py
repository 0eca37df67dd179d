"""The bot on the loopback fakes of Binance's REST API and websockets, with its event feed: the
real ccxt.pro client, a real Connector and Trader, on real time kept short."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sim.fakes.binance import FakeBinance
from sim.fakes.binance_ws import FakeBinanceWs
from tests.engine_support import SETTINGS, ScriptedStrategy
from trading.clock import RealClock
from trading.connector import Connector
from trading.engine import Trader
from trading.events import TradeClosed
from trading.risk import Level
from trading.store import Store
from trading.venues.ccxt_venue import CcxtVenue


@pytest.fixture(name="rest")
async def rest_fixture():
    async with FakeBinance() as server:  # ETH at 3,000
        yield server


@pytest.fixture(name="ws")
async def ws_fixture(rest):
    async with FakeBinanceWs(rest) as server:
        yield server


FEED = replace(SETTINGS, event_feed="auto", sync_interval_seconds=120.0)


class Bot:
    """The bot on the fake Binance, with its event feed unless the settings say off."""

    def __init__(self, rest: FakeBinance, ws: FakeBinanceWs, settings=FEED) -> None:
        self.events: list = []
        venue = CcxtVenue(
            "binance",
            "MASTER",
            api_key=rest.api_key,
            secret=rest.secret,
            config=ws.ccxt_config(),
            feed_silence_limit=0.5,
        )
        self.connector = Connector(venue, clock=RealClock(), notify=self.events.append)
        self.trader = Trader(
            self.connector,
            store=Store(),
            strategy=ScriptedStrategy([]),
            settings=settings,
            clock=RealClock(),
            notify=self.events.append,
        )

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def closed(self) -> list[TradeClosed]:
        return self.of(TradeClosed)

    async def buy_protected(self) -> None:
        """/buy ETH with its stop resting at the exchange at 2,900."""
        bought = await self.trader.buy("ETH/USDT", 300.0, stop=Level(2_900.0))
        assert bought.ok and bought.guard == "exchange"

    async def close(self) -> None:
        await self.trader.close()
        await self.connector.close()
