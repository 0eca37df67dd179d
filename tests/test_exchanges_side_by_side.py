"""Two exchanges in one process: a Trader on the fake Binance and one on the fake Kraken, each
through the real ccxt client, sharing the store, the clock and the event stream as
chatbot.app.build wires them. Kraken's trouble stays Kraken's: a minute of its rate limiting
neither stops Binance's cycles nor hurts what the Kraken trader holds."""

from __future__ import annotations

import asyncio
import time

from sim.clock import FakeClock
from sim.fakes.binance import FakeBinance
from sim.fakes.kraken import ENDPOINTS, FakeKraken
from tests.engine_support import SETTINGS, ScriptedStrategy
from trading.connector import Connector
from trading.engine import Trader
from trading.events import Emergency, StateChanged, TradeClosed
from trading.modes import Mode
from trading.store import Store
from trading.venues.ccxt_venue import CcxtVenue

RATE_LIMITED = "EAPI:Rate limit exceeded"


def trader(venue: CcxtVenue, store: Store, clock: FakeClock, events: list) -> Trader:
    return Trader(
        Connector(venue, clock=clock, notify=events.append),
        store=store,
        strategy=ScriptedStrategy(["ETH/USDT"], target=0.05),
        settings=SETTINGS,
        clock=clock,
        notify=events.append,
    )


async def both(*traders: Trader) -> None:
    await asyncio.gather(*(t.run_cycle() for t in traders))


async def test_a_minute_of_kraken_rate_limits_leaves_binance_trading_and_kraken_holding(tmp_path):
    clock = FakeClock(time.time())  # the fake Binance stamps tickers with the real time
    events: list = []
    store = Store(tmp_path / "bot.sqlite3")
    async with FakeBinance(balances={"USDT": 10_000.0}) as binance_fake, FakeKraken(
        clock=clock, balances={"USDT": 10_000.0}, counter_limit=20.0, decay_per_second=1.0
    ) as kraken_fake:
        binance = trader(
            CcxtVenue("binance", "MASTER", api_key=binance_fake.api_key,
                      secret=binance_fake.secret, config=binance_fake.ccxt_config()),
            store, clock, events,
        )  # fmt: skip
        kraken = trader(
            CcxtVenue("kraken", "MASTER", api_key=kraken_fake.api_key,
                      secret=kraken_fake.secret, config=kraken_fake.ccxt_config()),
            store, clock, events,
        )  # fmt: skip
        try:
            await asyncio.gather(binance.start(), kraken.start())
            await both(binance, kraken)
            assert list(binance.book.positions) == list(kraken.book.positions) == ["ETH/USDT"]
            for t in (binance, kraken):
                t.strategy.entries = []  # one round trip each
            kraken_orders = len(kraken_fake.orders)

            for path in ENDPOINTS:  # every Kraken endpoint, public and private
                kraken_fake.fail_error(path, RATE_LIMITED, times=-1)
            storm_starts = clock.time()
            storm_ends = storm_starts + 60
            binance_syncs = []
            while clock.time() < storm_ends:
                if len(binance_syncs) == 2:
                    binance_fake.set_price("ETHUSDT", 3_200.0)  # through the take-profit
                clock.advance(10)
                await both(binance, kraken)
                binance_syncs.append(binance.last_sync_at)

            assert len(binance_syncs) >= 5 and binance_syncs == sorted(set(binance_syncs))
            assert binance.book.positions == {}  # sold at its take-profit, mid-storm
            sold = [e for e in events if isinstance(e, TradeClosed)]
            assert [(e.account, e.reason) for e in sold] == [("binance:master", "take-profit")]
            assert kraken.mode is Mode.RUNNING and list(kraken.book.positions) == ["ETH/USDT"]
            assert kraken.last_sync_at is not None and kraken.last_sync_at <= storm_starts
            assert len(kraken_fake.orders) == kraken_orders  # nothing sent blind
            health = kraken.connector.health
            assert health.faults_by_kind.get("rate_limited", 0) > 0
            assert binance.connector.health.faults_by_kind == {}

            kraken_fake.clear_failures()
            kraken_fake.set_price("ETHUSDT", 3_200.0)
            clock.advance(10)
            await both(binance, kraken)
            assert kraken.last_sync_at is not None and kraken.last_sync_at >= storm_ends
            for _ in range(12):  # its prices wait for the circuit the storm opened to close
                if not kraken.book.positions:
                    break
                clock.advance(10)
                await both(binance, kraken)

            assert kraken.book.positions == {}  # back at work: its take-profit sold too
            assert [o.side for o in kraken_fake.orders.values()] == ["buy", "sell"]
            assert not [e for e in events if isinstance(e, Emergency | StateChanged)]
            assert {t.account for t in store.trades()} == {"binance:master", "kraken:master"}
        finally:
            await asyncio.gather(binance.connector.close(), kraken.connector.close())
            store.close()

