"""Escalation by persistence: the connector over the real ccxt binance client and the loopback
fake. One answer, whatever it is, never stops a trader; an unrecognized one that persists does."""

from __future__ import annotations

import pytest

from sim.clock import FakeClock
from sim.fakes.binance import ACCOUNT, DISCONNECTED, ORDER, SERVER_BUSY, TICKER_24HR, FakeBinance
from tests.connector_support import Recorder
from trading.connector import Connector
from trading.errors import Closed, Fatal, Fault, Transient, Unrecognized
from trading.models import OrderRequest, OrderType, Side
from trading.venues.ccxt_venue import CcxtVenue

LIMIT = 300.0


@pytest.fixture
async def fake():
    async with FakeBinance() as server:
        yield server


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def notes():
    return Recorder()


@pytest.fixture
async def connector(fake, clock, notes):
    venue = CcxtVenue(
        "binance", "MASTER", api_key=fake.api_key, secret=fake.secret, config=fake.ccxt_config()
    )
    conn = Connector(venue, clock=clock, notify=notes, unrecognized_limit=LIMIT)
    await conn.load_markets()
    try:
        yield conn
    finally:
        await conn.close()


def kinds(notes: Recorder) -> list[str]:
    return [f.kind for f in notes.faults]


async def test_one_busy_ticker_and_one_internal_error_on_the_account_are_retried_away(
    connector, fake, notes
):
    fake.fail_code(TICKER_24HR, **SERVER_BUSY)
    fake.fail_code(ACCOUNT, **DISCONNECTED)

    assert "BTC/USDT" in await connector.tickers()
    state = await connector.sync()

    assert state.balance.free_of("USDT") == 10_000.0
    assert fake.calls(TICKER_24HR) == 2 and fake.calls(ACCOUNT) == 2
    assert connector.health.faults_by_kind == {"transient": 2}
    assert "fatal" not in kinds(notes) and connector.unrecognized() is None


async def test_an_unknown_code_once_is_unrecognized_and_never_retried(connector, fake, clock):
    fake.fail_code(TICKER_24HR, code=-9999, msg="Something new.")

    with pytest.raises(Unrecognized, match="-9999"):
        await connector.tickers()

    assert fake.calls(TICKER_24HR) == 1
    call, since, message = connector.unrecognized()
    assert (call, since) == ("fetch_tickers", clock.time()) and "Something new." in message
    assert connector.health.unrecognized == connector.unrecognized()


async def test_an_unknown_code_that_persists_past_the_limit_is_fatal_reported_once(
    connector, fake, clock, notes
):
    fake.fail_code(TICKER_24HR, code=-9999, times=-1)
    start = clock.monotonic()
    outcomes = []
    for at in (0.0, 200.0, 350.0, 410.0):
        clock.advance(start + at - clock.monotonic())
        with pytest.raises(Fault) as caught:
            await connector.tickers()
        outcomes.append(type(caught.value))

    assert outcomes == [Unrecognized, Unrecognized, Fatal, Fatal]
    assert caught.value.message.startswith("fetch_tickers answering unrecognized errors for 410 s")
    assert "-9999" in caught.value.message
    assert kinds(notes) == ["unrecognized", "fatal"]  # each reported once per streak
    assert fake.calls(TICKER_24HR) == 4  # never retried


async def test_a_success_in_between_ends_the_streak(connector, fake, clock):
    fake.fail_code(TICKER_24HR, code=-9999)
    with pytest.raises(Unrecognized):
        await connector.tickers()
    clock.advance(200.0)
    await connector.tickers()
    assert connector.unrecognized() is None

    clock.advance(200.0)
    fake.fail_code(TICKER_24HR, code=-9999)
    with pytest.raises(Unrecognized):  # 400 s after the first, but a new streak
        await connector.tickers()
    assert connector.unrecognized()[1] == clock.time()


async def test_each_call_keeps_its_own_streak(connector, fake, clock):
    fake.fail_code(TICKER_24HR, code=-9999, times=-1)
    with pytest.raises(Unrecognized):
        await connector.tickers()
    clock.advance(LIMIT + 1)
    await connector.candles("BTC/USDT", "1h", 3)  # another call's success ends nothing here
    with pytest.raises(Fatal, match="fetch_tickers"):
        await connector.tickers()


async def test_an_unrecognized_answer_to_an_order_is_looked_up_never_sent_again(
    connector, fake
):
    fake.fail_code(ORDER, code=-9999)  # the create's answer
    request = OrderRequest("BTC/USDT", Side.BUY, OrderType.LIMIT, 0.01, "cid-u", price=40_000.0)

    with pytest.raises(Unrecognized):
        await connector.place(request)

    assert fake.calls(ORDER, "POST") == 1  # sent once
    assert fake.calls(ORDER, "GET") == 1  # then looked up by its client order id


async def test_a_closed_client_ends_calls_as_cancelled_without_any_fault(connector, fake, notes):
    await connector.close()
    before = len(fake.requests)

    with pytest.raises(Closed):
        await connector.tickers()
    with pytest.raises(Closed):
        await connector.sync()

    assert len(fake.requests) == before
    health = connector.health
    assert health.faults_by_kind == {} and health.last_fault is None
    assert notes.faults == [] and health.sync_failing_since is None


async def test_a_sync_that_keeps_answering_try_again_still_escalates(connector, fake, clock):
    fake.fail_code(ACCOUNT, **SERVER_BUSY, times=-1)
    with pytest.raises(Transient):
        await connector.sync()
    clock.advance(LIMIT + 1)
    with pytest.raises(Fatal, match=r"sync failing for 30\d s"):
        await connector.sync()
