"""Accounts of one exchange share its whole-universe ticker read (trading/shared_tickers.py)."""

from __future__ import annotations

import asyncio

import pytest

from chatbot.app import build
from chatbot.config import load_settings
from sim.clock import FakeClock
from sim.fakes.binance import TICKER_24HR, FakeBinance
from sim.faults import FaultyPaper
from trading.clock import RealClock
from trading.connector import Connector
from trading.errors import Transient
from trading.shared_tickers import SharedTickers
from trading.venues.ccxt_venue import CcxtVenue
from trading.venues.market_sim import SyntheticFeed

MAX_AGE = 5.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def sub_accounts(clock: FakeClock, count: int) -> tuple[list[FaultyPaper], list[Connector]]:
    """`count` paper accounts of one exchange (one market), their connectors sharing its read."""
    feed = SyntheticFeed(seed=1, markets=30, clock=clock)
    shared = SharedTickers(clock=clock, max_age=MAX_AGE)
    papers = [FaultyPaper(clock=clock, account=f"A{i}", feed=feed) for i in range(count)]
    connectors = [Connector(p, clock=clock, shared_tickers=shared) for p in papers]
    for c in connectors:
        await c.load_markets()
    return papers, connectors


def reads(papers: list[FaultyPaper]) -> int:
    return sum(p.calls["fetch_tickers"] for p in papers)


async def test_accounts_of_one_exchange_share_a_recent_whole_universe_read(clock):
    papers, (a, b, c) = await sub_accounts(clock, 3)
    first = await a.tickers()
    clock.advance(MAX_AGE - 1)
    assert await b.tickers() == first
    assert await c.tickers() == first
    assert reads(papers) == 1
    clock.advance(2)  # older than MAX_AGE: the next account reads afresh
    fresh = await c.tickers()
    assert reads(papers) == 2
    assert papers[2].calls["fetch_tickers"] == 1
    assert fresh.keys() == first.keys()


async def test_reads_arriving_together_wait_for_the_one_on_its_way(clock):
    papers, connectors = await sub_accounts(clock, 5)
    answers = await asyncio.gather(*(c.tickers() for c in connectors))
    assert reads(papers) == 1
    assert all(answer == answers[0] for answer in answers)
    answers[0].clear()  # each caller has its own dict
    assert answers[1]


async def test_named_symbols_are_read_from_the_accounts_own_exchange(clock):
    papers, (a, b) = await sub_accounts(clock, 2)
    await a.tickers()
    prices = await b.tickers(["BTC/USDT"])
    assert set(prices) == {"BTC/USDT"}
    assert papers[1].calls["fetch_tickers"] == 1


async def test_a_failed_read_fails_its_waiters_and_the_next_read_tries_again(clock):
    papers, (a, b) = await sub_accounts(clock, 2)
    papers[0].inject("fetch_tickers", Transient, count=-1, latency=0.0)
    results = await asyncio.gather(a.tickers(), b.tickers(), return_exceptions=True)
    assert all(isinstance(r, Transient) for r in results)
    assert papers[1].calls["fetch_tickers"] == 0  # b waited on a's read
    papers[0].clear_faults()
    assert await b.tickers()
    assert papers[1].calls["fetch_tickers"] == 1


async def test_a_cancelled_reader_leaves_the_read_to_the_others(clock):
    papers, (a, b) = await sub_accounts(clock, 2)
    first = asyncio.create_task(a.tickers())
    await asyncio.sleep(0)
    second = asyncio.create_task(b.tickers())
    await asyncio.sleep(0)
    first.cancel()
    assert await second
    assert reads(papers) == 1


async def test_the_bot_shares_one_read_among_the_accounts_of_each_live_exchange(tmp_path):
    settings = load_settings({"DATA_DIR": str(tmp_path), "HEALTH_PORT": "off"})
    async with FakeBinance() as fake:

        def account(name: str) -> CcxtVenue:
            keys = {"api_key": fake.api_key, "secret": fake.secret}
            return CcxtVenue("binance", name, **keys, config=fake.ccxt_config())

        venues = [account("MASTER"), account("SUB"), FaultyPaper(clock=RealClock())]
        bot = build(settings, venues)
        try:
            master, sub, paper = (t.connector for t in bot.traders)
            assert master.shared_tickers is not None
            assert sub.shared_tickers is master.shared_tickers
            assert paper.shared_tickers is None
            for connector in (master, sub):
                await connector.load_markets()
            asked = fake.calls(TICKER_24HR)
            assert (await master.tickers()).keys() == (await sub.tickers()).keys()
            assert fake.calls(TICKER_24HR) == asked + 1
        finally:
            for venue in venues:
                await venue.close()
            await bot.http.aclose()
            bot.store.close()
