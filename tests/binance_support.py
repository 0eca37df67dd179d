"""Fixtures shared by the tests of the ccxt venue against the loopback fake Binance: the fake
(BTC at 50,000, 0.5 BTC held) and a CcxtVenue on it with its markets loaded."""

from __future__ import annotations

import pytest

from sim.fakes.binance import FakeBinance
from trading.venues.ccxt_venue import CcxtVenue


@pytest.fixture(name="fake")
async def fake_fixture():
    async with FakeBinance() as server:
        yield server


@pytest.fixture(name="venue")
async def venue_fixture(fake):
    v = CcxtVenue(
        "binance", "MASTER", api_key=fake.api_key, secret=fake.secret, config=fake.ccxt_config()
    )
    await v.load_markets()
    try:
        yield v
    finally:
        await v.close()
