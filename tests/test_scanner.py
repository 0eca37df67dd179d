import asyncio
import logging
import math

import pytest

from sim.clock import FakeClock
from sim.faults import FaultyPaper
from trading.connector import Connector
from trading.errors import Fatal, RateLimited, Rejected, Transient
from trading.models import Candle, Position, Ticker
from trading.scanner import Scanner
from trading.strategies import Signal, load_strategy
from trading.venues.market_sim import SyntheticFeed

MIN_VOLUME = 100_000.0


class Everything:
    """A strategy that ranks by 24 h quote volume and signals every market it is shown, with a
    score of its own; it records which markets it was asked about."""

    name = "everything"
    timeframes = ("5m", "1h")
    candle_limit = 5

    def __init__(self) -> None:
        self.asked: list[str] = []

    def prescreen(self, ticker: Ticker) -> float | None:
        return ticker.quote_volume

    def entry(self, symbol: str, candles) -> Signal | None:
        self.asked.append(symbol)
        assert {tf: len(c) for tf, c in candles.items()} == {"5m": 5, "1h": 5}
        price = candles["5m"][-1].close
        return Signal(sum(map(ord, symbol)) % 97, price * 0.9, price * 1.2, "always")

    def exit(self, position: Position, candles, price: float) -> str | None:
        return None


class NoBulkFeed(SyntheticFeed):
    """The synthetic markets of an exchange that cannot return every ticker in one call."""

    has_bulk_tickers = False


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def paper(clock) -> FaultyPaper:
    # No rate limit: these tests are about what the scanner asks for; the circuit test below
    # covers what happens when the exchange pushes back.
    return FaultyPaper(clock=clock, markets=50, seed=1, rate_limit=0)


async def connected(paper: FaultyPaper, clock: FakeClock, **kw) -> Connector:
    connector = Connector(paper, clock=clock, **kw)
    await connector.load_markets()
    paper.calls.clear()
    return connector


async def liquid_universe(paper: FaultyPaper, exclude: set[str] = frozenset()) -> list[str]:
    """Active USDT spot markets over the volume floor, read from the feed (no request)."""
    markets = await paper.feed.load_markets()
    tickers = await paper.feed.fetch_tickers()
    return sorted(
        s
        for s, m in markets.items()
        if m.active and m.quote == "USDT" and s not in exclude
        if tickers[s].quote_volume >= MIN_VOLUME
    )


async def test_bulk_screens_the_whole_universe_with_one_ticker_call(paper, clock):
    connector = await connected(paper, clock)
    scanner = Scanner(connector, Everything(), quote="USDT", min_quote_volume=MIN_VOLUME)
    result = await scanner.scan(exclude=set(), budget=20)
    universe = await liquid_universe(paper)
    assert result.mode == "bulk"
    assert paper.calls["fetch_tickers"] == 1
    assert result.universe == result.screened == len(universe)
    assert 30 < len(universe) < 50  # inactive and thin markets are left out
    assert result.requests == 1 + paper.calls["fetch_ohlcv"] <= 20
    assert set(result.tickers) >= set(universe)


async def test_candles_only_for_the_best_ranked_markets_the_budget_allows(paper, clock):
    connector = await connected(paper, clock)
    strategy = Everything()
    scanner = Scanner(connector, strategy, quote="USDT", min_quote_volume=MIN_VOLUME)
    result = await scanner.scan(exclude=set(), budget=7)
    tickers = await paper.feed.fetch_tickers()
    by_volume = sorted(await liquid_universe(paper), key=lambda s: -tickers[s].quote_volume)
    assert strategy.asked == by_volume[:3]  # 1 ticker call + 3 markets x 2 timeframes
    assert paper.calls["fetch_ohlcv"] == 6
    assert result.requests == 7
    scores = [c.signal.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    assert {c.symbol for c in result.candidates} == set(by_volume[:3])


async def test_excluded_thin_and_inactive_markets_are_never_candidates(paper, clock):
    connector = await connected(paper, clock)
    strategy = Everything()
    scanner = Scanner(connector, strategy, quote="USDT", min_quote_volume=MIN_VOLUME)
    held = {"BTC/USDT", "ETH/USDT"}
    result = await scanner.scan(exclude=held, budget=200)
    allowed = await liquid_universe(paper, exclude=held)
    assert sorted(strategy.asked) == allowed
    assert result.universe == len(allowed)
    assert held <= set(result.tickers)  # the engine still gets prices for what it holds


@pytest.mark.parametrize("fault", [Rejected("bad symbol"), Transient("timeout"), RateLimited()])
async def test_candle_fault_skips_that_candidate_and_the_scan_goes_on(paper, clock, fault):
    connector = await connected(paper, clock, read_attempts=3)
    strategy = Everything()
    scanner = Scanner(connector, strategy, quote="USDT", min_quote_volume=MIN_VOLUME)
    count = 1 if isinstance(fault, Rejected) else 3  # enough to exhaust the connector's retries
    paper.inject("fetch_ohlcv", fault, count=count)
    result = await scanner.scan(exclude=set(), budget=9)
    assert result.skipped == 1
    assert len(result.candidates) == 3
    assert len(strategy.asked) == 3


async def test_fatal_candle_fault_propagates(paper, clock):
    connector = await connected(paper, clock)
    scanner = Scanner(connector, Everything(), quote="USDT", min_quote_volume=MIN_VOLUME)
    paper.inject("fetch_ohlcv", Fatal("permission denied"))
    with pytest.raises(Fatal):
        await scanner.scan(exclude=set(), budget=20)


async def test_ticker_fault_propagates_to_the_engine(paper, clock):
    connector = await connected(paper, clock, read_attempts=2)
    scanner = Scanner(connector, Everything(), quote="USDT", min_quote_volume=MIN_VOLUME)
    paper.inject("fetch_tickers", Transient("exchange not available"), count=2)
    with pytest.raises(Transient):
        await scanner.scan(exclude=set(), budget=20)


async def test_scan_stops_spending_when_the_circuit_opens(paper, clock):
    connector = await connected(paper, clock, read_attempts=3, breaker_threshold=5)
    strategy = Everything()
    scanner = Scanner(connector, strategy, quote="USDT", min_quote_volume=MIN_VOLUME)
    paper.inject("fetch_ohlcv", Transient("timeout"), count=-1)
    result = await scanner.scan(exclude=set(), budget=20)
    # 3 faults skip the first candidate, 2 more open the circuit and skip the second; then stop.
    assert paper.calls["fetch_ohlcv"] == 5
    assert connector.budget() == 0
    assert result.candidates == [] and result.skipped == 2
    assert strategy.asked == []


async def test_no_budget_spends_nothing(paper, clock):
    connector = await connected(paper, clock)
    scanner = Scanner(connector, Everything(), quote="USDT", min_quote_volume=MIN_VOLUME)
    result = await scanner.scan(exclude=set(), budget=0)
    assert sum(paper.calls.values()) == 0
    assert result.requests == 0 and result.candidates == []


async def test_markets_are_loaded_when_the_connector_has_none_yet(paper, clock):
    connector = Connector(paper, clock=clock)
    scanner = Scanner(connector, Everything(), quote="USDT", min_quote_volume=MIN_VOLUME)
    result = await scanner.scan(exclude=set(), budget=5)
    assert paper.calls["load_markets"] == 1
    assert result.universe > 0


async def rotation_setup(clock: FakeClock) -> tuple[FaultyPaper, Connector, list[str]]:
    feed = NoBulkFeed(seed=1, markets=50, quote="USDT", clock=clock)
    paper = FaultyPaper(clock=clock, feed=feed, rate_limit=0)
    connector = await connected(paper, clock)
    tradable = sorted(s for s, m in connector.markets.items() if m.active)
    return paper, connector, tradable


async def test_rotation_covers_the_universe_in_budget_sized_batches_across_cycles(clock):
    paper, connector, tradable = await rotation_setup(clock)
    scanner = Scanner(connector, Everything(), quote="USDT", min_quote_volume=MIN_VOLUME)
    covered: list[str] = []
    cycles = math.ceil(len(tradable) / 3)
    for _ in range(cycles):  # budget 9: 3 markets, each 1 ticker + 2 candle series
        result = await scanner.scan(exclude=set(), budget=9)
        assert result.mode == "rotation"
        assert result.universe == len(tradable)
        assert result.requests <= 9
        covered += sorted(result.tickers)
        clock.advance(60)
    assert sorted(set(covered)) == tradable  # every market once...
    assert len(covered) == len(tradable) + (-len(tradable) % 3)  # ...then the batch wraps around
    assert paper.calls["fetch_tickers"] == cycles


async def test_rotation_resumes_after_the_last_market_even_when_the_universe_changes(clock):
    _, connector, tradable = await rotation_setup(clock)
    scanner = Scanner(connector, Everything(), quote="USDT", min_quote_volume=MIN_VOLUME)
    first = await scanner.scan(exclude=set(), budget=6)  # batches of 2
    assert sorted(first.tickers) == tradable[:2]
    second = await scanner.scan(exclude={tradable[2]}, budget=6)
    assert sorted(second.tickers) == [tradable[3], tradable[4]]


async def test_rotation_also_reads_the_tickers_of_watched_positions(clock):
    _, connector, tradable = await rotation_setup(clock)
    scanner = Scanner(connector, Everything(), quote="USDT", min_quote_volume=MIN_VOLUME)
    held = tradable[-1]
    result = await scanner.scan(exclude={held}, budget=10, watch={held})
    assert held in result.tickers
    assert held not in {c.symbol for c in result.candidates}
    assert result.screened == 3  # (10 - 1 watched) // 3 per market
    assert result.requests <= 10


async def test_each_scan_logs_its_coverage_under_the_account_logger(paper, clock, caplog):
    connector = await connected(paper, clock)
    scanner = Scanner(connector, Everything(), quote="USDT", min_quote_volume=MIN_VOLUME)
    with caplog.at_level(logging.DEBUG, logger="trading.paper.main"):
        result = await scanner.scan(exclude=set(), budget=11)
    n = result.universe
    expected = f"scanned {n}/{n} markets, 11 requests"
    assert any(
        r.name == "trading.paper.main" and r.getMessage().startswith(expected)
        for r in caplog.records
    )


async def test_candles_for_returns_every_series_the_strategy_needs(paper, clock):
    connector = await connected(paper, clock)
    strategy = load_strategy("trend")
    scanner = Scanner(connector, strategy, quote="USDT", min_quote_volume=MIN_VOLUME)
    candles = await scanner.candles_for("BTC/USDT")
    assert set(candles) == {"5m", "1h"}
    assert all(len(series) == strategy.candle_limit for series in candles.values())
    assert all(isinstance(c, Candle) for c in candles["1h"])
    assert candles["1h"][-1].ts - candles["1h"][-2].ts == 3600


class LoopWatcher(Everything):
    """Everything, noting how often the event loop had turned when each ticker was ranked."""

    def __init__(self, turns: list[int]) -> None:
        super().__init__()
        self.turns = turns
        self.seen: list[int] = []

    def prescreen(self, ticker: Ticker) -> float | None:
        self.seen.append(self.turns[0])
        return super().prescreen(ticker)


async def test_ranking_hands_the_loop_back_between_chunks_and_ranks_the_same(paper, clock):
    turns = [0]

    async def turn() -> None:
        for _ in range(100_000):  # bounded; cancelled long before
            turns[0] += 1
            await asyncio.sleep(0)

    connector = await connected(paper, clock)
    chunked = LoopWatcher(turns)
    whole = Everything()
    kw = {"quote": "USDT", "min_quote_volume": MIN_VOLUME}
    turning = asyncio.create_task(turn())
    try:
        result = await Scanner(connector, chunked, rank_chunk=10, **kw).scan(
            exclude=set(), budget=200
        )
    finally:
        turning.cancel()
    reference = await Scanner(connector, whole, **kw).scan(exclude=set(), budget=200)
    ranked = len(chunked.seen)
    assert ranked > 30
    # The loop turned between every chunk of 10 and never within one.
    assert [len(set(chunked.seen[i : i + 10])) for i in range(0, ranked, 10)] == [1] * math.ceil(
        ranked / 10
    )
    assert len(set(chunked.seen)) == math.ceil(ranked / 10)
    assert chunked.asked == whole.asked
    assert [c.symbol for c in result.candidates] == [c.symbol for c in reference.candidates]
