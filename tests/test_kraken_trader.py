"""What the trader does with Kraken's refusals, through the real ccxt kraken client and the
fake Kraken: a rate limit that outlasts the sync limit pages and halts (nothing sold), a wrong
signature is an authentication fault that says so."""

from __future__ import annotations

import time

import pytest

from sim.clock import FakeClock
from sim.fakes.kraken import ADD_ORDER, BALANCE_EX, OPEN_ORDERS, FakeKraken
from tests.engine_support import SETTINGS, ScriptedStrategy
from trading.connector import Connector
from trading.engine import Trader
from trading.events import Emergency
from trading.modes import Mode
from trading.store import Store
from trading.venues.ccxt_venue import CcxtVenue


@pytest.fixture
def clock():
    return FakeClock(time.time())


def kraken_trader(fake: FakeKraken, clock, events: list, *, secret: str | None = None) -> Trader:
    venue = CcxtVenue(
        "kraken", "MASTER", api_key=fake.api_key, secret=secret or fake.secret,
        config=fake.ccxt_config(),
    )  # fmt: skip
    return Trader(
        Connector(venue, clock=clock, notify=events.append),
        store=Store(),
        strategy=ScriptedStrategy(["BTC/USDT"]),
        settings=SETTINGS,
        clock=clock,
        notify=events.append,
    )


async def test_kraken_rate_limiting_the_sync_past_the_limit_pages_halts_and_sells_nothing(clock):
    events: list = []
    async with FakeKraken(clock=clock, balances={"USDT": 10_000.0}) as fake:
        trader = kraken_trader(fake, clock, events)
        try:
            await trader.start()
            assert (await trader.buy("ETH/USDT", 300.0)).ok
            orders = fake.calls(ADD_ORDER)
            for path in (OPEN_ORDERS, BALANCE_EX):
                fake.fail_error(path, "EAPI:Rate limit exceeded", times=-1)

            for _ in range(7):  # 420 s of SYNC_FAILURE_LIMIT_SECONDS' 300
                clock.advance(60)
                await trader.run_cycle()
        finally:
            await trader.connector.close()

    assert trader.mode is Mode.HALTED
    assert fake.calls(ADD_ORDER) == orders  # nothing sold, nothing bought
    assert fake.balances["XETH"] > 0 and list(trader.book.positions) == ["ETH/USDT"]
    [page] = [e for e in events if isinstance(e, Emergency)]
    assert "EAPI:Rate limit exceeded" in page.message and "rate-limiting" in page.message
    assert "/kill" in page.message


async def test_a_wrong_kraken_secret_stops_the_trader_with_an_authentication_message(clock):
    events: list = []
    async with FakeKraken(clock=clock) as fake:
        trader = kraken_trader(fake, clock, events, secret="d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==")
        try:
            await trader.start()
        finally:
            await trader.connector.close()

    assert not trader.started and fake.calls(ADD_ORDER) == 0
    [page] = [e for e in events if isinstance(e, Emergency) and e.key.startswith("fatal")]
    assert "EAPI:Invalid signature" in page.message
    assert "the API key or its secret is wrong" in page.message
    assert fake.secret not in page.message
