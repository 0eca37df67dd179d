"""A whole-market ticker read of a large exchange: the same tickers as ccxt's plain read, and the
event loop free while the answer is decoded and parsed (trading/venues/ccxt_bulk.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import threading
import time
from collections.abc import AsyncIterator

import pytest

from sim.fakes.binance import SERVER_BUSY, TICKER_24HR, FakeBinance, FakeMarket
from tests.waiting import eventually
from trading.errors import Transient
from trading.venues import json_pieces
from trading.venues.ccxt_exchanges import build
from trading.venues.ccxt_parse import to_tickers
from trading.venues.ccxt_venue import CcxtVenue


def universe(markets: int) -> list[FakeMarket]:
    return [
        FakeMarket(f"C{i:05d}", price=0.5 + (i * 7919) % 10_007 / 10.0, quote_volume=1e5 + i)
        for i in range(markets)
    ] + [FakeMarket("OLD", status="BREAK", quote_volume=0.0)]


class FrozenBinance(FakeBinance):
    """The fake Binance with its clock stopped, so two reads get the same answer."""

    def server_ms(self) -> int:
        return 1_700_000_000_000


@contextlib.asynccontextmanager
async def served_apart(fake: FakeBinance) -> AsyncIterator[FakeBinance]:
    """`fake` serving from a thread and event loop of its own, as an exchange is elsewhere:
    building its answer takes none of the loop under test's time."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fake.start(), loop))
    try:
        yield fake
    finally:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fake.stop(), loop))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def test_a_whole_market_read_gives_the_tickers_of_ccxts_plain_read():
    async with FrozenBinance(markets=universe(300)) as fake:
        venue = CcxtVenue("binance", "MASTER", config=fake.ccxt_config())
        plain = build("binance", {}, 10_000, fake.ccxt_config())
        try:
            markets = await venue.load_markets()
            await plain.load_markets()
            expected = to_tickers((await plain.fetch_tickers()).values(), markets)
            tickers = await venue.fetch_tickers()
        finally:
            await plain.close()
            await venue.close()
    assert len(tickers) == 301
    assert tickers == expected


async def test_a_whole_market_read_never_holds_the_event_loop_for_its_parse():
    loop = asyncio.get_running_loop()
    busiest = 0.0  # the loop thread's CPU between two wake-ups of a task asking every 2 ms
    reading = True

    async def probe() -> None:
        nonlocal busiest
        while reading:
            cpu = time.thread_time()
            await asyncio.sleep(0.002)
            busiest = max(busiest, time.thread_time() - cpu)

    async with served_apart(FakeBinance(markets=universe(5_000))) as fake:
        venue = CcxtVenue("binance", "MASTER", config=fake.ccxt_config())
        try:
            await venue.load_markets()
            watch = loop.create_task(probe())
            await asyncio.sleep(0.01)
            tickers = await venue.fetch_tickers()
            reading = False
            await watch
        finally:
            await venue.close()
    assert len(tickers) == 5_001
    # ccxt's parse of 5,000 tickers on the loop took 100-250 ms of it in one stretch.
    assert busiest < 0.05


async def test_the_collector_and_thread_switching_are_restored_after_a_read_good_or_failed():
    interval = sys.getswitchinterval()
    async with FakeBinance() as fake:
        venue = CcxtVenue("binance", "MASTER", config=fake.ccxt_config())
        try:
            await venue.load_markets()
            assert "BTC/USDT" in await venue.fetch_tickers()
            assert gc.isenabled() and sys.getswitchinterval() == interval
            fake.fail_server_error(TICKER_24HR)
            with pytest.raises(Transient):
                await venue.fetch_tickers()
            assert gc.isenabled() and sys.getswitchinterval() == interval
            fake.fail_code(TICKER_24HR, **SERVER_BUSY)  # a JSON answer, decoded, then refused
            with pytest.raises(Transient):
                await venue.fetch_tickers()
            assert gc.isenabled() and sys.getswitchinterval() == interval
        finally:
            await venue.close()


async def test_the_collector_runs_and_switching_is_default_while_a_read_waits_for_its_answer():
    interval = sys.getswitchinterval()
    async with FakeBinance() as fake:
        venue = CcxtVenue("binance", "MASTER", config=fake.ccxt_config())
        try:
            await venue.load_markets()
            fake.stall(TICKER_24HR)  # the exchange takes the read and does not answer
            read = asyncio.create_task(venue.fetch_tickers())
            try:
                await eventually(
                    lambda: fake.parked.get(TICKER_24HR), 5, "the read held by the fake"
                )
                waiting = (gc.isenabled(), sys.getswitchinterval())
            finally:
                fake.release(TICKER_24HR)
            assert "BTC/USDT" in await read
            assert waiting == (True, interval)
            assert gc.isenabled() and sys.getswitchinterval() == interval
        finally:
            await venue.close()


async def test_the_collector_and_thread_switching_are_restored_after_a_read_is_cancelled():
    interval = sys.getswitchinterval()
    async with FakeBinance() as fake:
        venue = CcxtVenue("binance", "MASTER", config=fake.ccxt_config())
        try:
            await venue.load_markets()
            fake.stall(TICKER_24HR)
            read = asyncio.create_task(venue.fetch_tickers())
            await eventually(lambda: fake.parked.get(TICKER_24HR), 5, "the read held by the fake")
            read.cancel()
            with pytest.raises(asyncio.CancelledError):
                await read
            fake.release(TICKER_24HR)
            assert "BTC/USDT" in await venue.fetch_tickers()
            assert gc.isenabled() and sys.getswitchinterval() == interval
        finally:
            await venue.close()


JSON_TEXTS = [
    '[{"symbol":"BTCUSDT","lastPrice":"50000.00","count":1000},{"symbol":"ETH\\u00e9"}]',
    ' { "error" : [ ] , "result" : { "XXBTZUSD" : { "a" : [ "1.5" , 2 ] } , "n" : null } } ',
    '{"products":[{"id":"BTC-USD","price":"1e-7","big":123456789012345678901234}],"num":1}',
    '{"a":{"b":{"c":[1,2,{"d":true}]}},"a":false}',  # a repeated key: the last one wins
    "[]",
    "{}",
    '"just a string"',
    "-12.5e3",
    "[1.0, -0, 3.14159265358979323846, 1E400]",
]


@pytest.mark.parametrize("text", JSON_TEXTS)
def test_json_decoded_in_pieces_is_the_same_value(text):
    assert json_pieces.loads(text) == json.loads(text)


@pytest.mark.parametrize(
    "text", ["[1,2", '{"a":1,}', '{"a" 1}', "[1 2]", "{1:2}", "[1]x", "", '{"a":[1,]}']
)
def test_json_that_is_not_json_is_refused_as_json_loads_refuses_it(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        json_pieces.loads(text)
