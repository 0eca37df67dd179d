"""The bot on the fake Kraken paced as ccxt paces the real one (rateLimit 1000 ms, a private
read costing three), on simulated time: a kill sells within a second while a scan's candle reads
are queued, and a cycle does not hold the owner's /buy."""

from __future__ import annotations

import asyncio

from sim.clock import run_simulated
from sim.fakes.kraken import ADD_ORDER, BALANCE_EX, OHLC, QUERY_ORDERS, FakeKraken
from tests.engine_support import SETTINGS, ScriptedStrategy
from trading.connector import Connector
from trading.engine import Trader
from trading.modes import Mode
from trading.store import Store
from trading.venues.ccxt_venue import CcxtVenue

KRAKEN_PACE_MS = 1000  # ccxt's rateLimit for kraken


class SlowScan(ScriptedStrategy):
    """Ranks BTC/USDT first and reads six candle series for it; never enters."""

    timeframes = ("1m", "5m", "15m", "30m", "1h", "4h")

    def entry(self, symbol, candles):
        return None


def _fake(clock) -> FakeKraken:
    return FakeKraken(clock=clock, counter_limit=1000.0, balances={"USDT": 10_000.0})


async def _kraken_bot(clock, fake: FakeKraken) -> Trader:
    venue = CcxtVenue(
        "kraken", "MASTER", api_key=fake.api_key, secret=fake.secret,
        config=fake.ccxt_config(rate_limit_ms=KRAKEN_PACE_MS), clock=clock,
    )  # fmt: skip
    trader = Trader(
        Connector(venue, clock=clock),
        store=Store(),
        strategy=SlowScan(["BTC/USDT"]),
        settings=SETTINGS,
        clock=clock,
        notify=lambda event: None,
    )
    await trader.start()
    return trader


async def _scanning(trader: Trader, fake: FakeKraken, reads: int) -> asyncio.Future:
    """A cycle whose scan has made `reads` candle reads, the rest queued at the pace."""
    cycle = asyncio.ensure_future(trader.run_cycle())
    for _ in range(200):
        if fake.calls(OHLC) >= reads:
            return cycle
        await asyncio.sleep(0.1)
    raise AssertionError("the scan never read candles")


def test_a_kill_on_kraken_sells_within_a_second_while_the_scan_reads_and_never_reads_first():
    async def main(clock):
        async with _fake(clock) as fake:
            trader = await _kraken_bot(clock, fake)
            for symbol in ("ETH/USDT", "DOGE/USDT"):
                assert (await trader.buy(symbol, 300.0)).ok
            await clock.sleep(10.0)  # the buys' read-backs paid off
            cycle = await _scanning(trader, fake, reads=2)
            killed_at = clock.monotonic()
            kill = await trader.kill()
            returned = clock.monotonic() - killed_at
            await cycle
            after = [(t - killed_at, path) for t, path in fake.arrivals if t >= killed_at]
            await trader.connector.close()
            return trader, fake, kill, returned, after

    trader, fake, kill, returned, after = run_simulated(main)
    sells = [t for t, path in after if path == ADD_ORDER]
    assert len(sells) == 2
    assert sells[0] <= 1.0  # the first exit within a second of /kill
    assert sells[-1] <= 1.0 + 1.0 * 2  # and the last within one order pace per position
    assert after[0][1] == ADD_ORDER  # no read before it: the book knew the positions
    assert OHLC not in [path for _, path in after]  # the scan gave way, queued reads dropped
    assert kill.flat and trader.mode is Mode.KILLED and trader.book.positions == {}
    assert fake.balances["XETH"] == 0.0 and fake.balances["XXDG"] == 0.0
    # Then it confirms with two private reads, not a read-back per sell and a whole sync: the
    # balance, then every sell's fill in one QueryOrders (both at Kraken's private pace).
    confirm = [path for _, path in after if path != ADD_ORDER]
    assert confirm == [BALANCE_EX, QUERY_ORDERS]
    assert returned <= 1.0 + 1.0 * 2 + 3.0  # a second, an order pace a position, a private read


def test_a_kill_on_kraken_whose_sells_cannot_be_read_back_claims_flat_only_once_read():
    """The kill's sells are not read back one by one; when the confirming read cannot say what
    they filled, the round is not flat (the book still holds the positions), and the next round
    cancels each unsettled sell first, which finds it filled: nothing is sold twice."""

    async def main(clock):
        async with _fake(clock) as fake:
            trader = await _kraken_bot(clock, fake)
            for symbol in ("ETH/USDT", "DOGE/USDT"):
                assert (await trader.buy(symbol, 300.0)).ok
            await clock.sleep(10.0)
            # The batched read, then each sell's own: refused, so the fills stay unknown.
            fake.fail_error(QUERY_ORDERS, "EOrder:Invalid order", times=3)
            killed_at = clock.monotonic()
            kill = await trader.kill()
            after = [path for t, path in fake.arrivals if t >= killed_at]
            await trader.connector.close()
            return trader, fake, kill, after

    trader, fake, kill, after = run_simulated(main)
    assert after.count(ADD_ORDER) == 2  # one sell a position, never a second
    assert kill.flat and kill.rounds == 2 and trader.book.positions == {}
    assert sorted(t.reason for t in kill.closed) == ["kill", "kill"]
    assert fake.balances["XETH"] == 0.0 and fake.balances["XXDG"] == 0.0


def test_a_buy_on_kraken_preempts_the_scan_instead_of_being_refused():
    async def main(clock):
        async with _fake(clock) as fake:
            trader = await _kraken_bot(clock, fake)
            cycle = await _scanning(trader, fake, reads=1)
            asked = clock.monotonic()
            bought = await trader.buy("ETH/USDT", 300.0)
            waited = clock.monotonic() - asked
            await cycle
            await trader.connector.close()
            return trader, bought, waited

    trader, bought, waited = run_simulated(main)
    assert bought.ok, bought.reason
    assert list(trader.book.positions) == ["ETH/USDT"]
    assert waited < 12.0  # its own sync, ticker, order and read-back at Kraken's pace
