"""How fast /kill gets flat: the trader's concurrent kill against a sequential exit loop.

    python bench/kill.py [--positions 50] [--rates 5,10,20] [--latency 0.25] [--burst 5]

On the paper exchange, in simulated time (run_simulated: concurrent waits overlap as in real
time, nothing really sleeps), a trader holds N positions; the exchange allows R requests per
second (a token bucket with a small burst) and every order takes `latency` seconds to answer.
Every position's stop rests at the exchange, so getting out costs two requests each: the
stop's cancel, then the sell. The floor is 2N/R seconds: 2N requests cannot go out faster than
the exchange accepts them. For each R it prints the time from kill() to its first sell (a cancel
and a sell at the pace: 2/R), to a confirmed flat book (cancels, exits, confirming read) and the
same for a sequential loop (one cancel and one market sell at a time, then a sync), each against
the floor; "sent" counts the orders each sent.

The paced case: the real ccxt kraken client against the loopback Kraken (sim/fakes/kraken.py),
paced as ccxt paces Kraken (one request a second; a private read costs 3, candles 1.2, an order
0), the trader holding two positions while a cycle's scan has candle reads queued. It prints
the time from kill() to the first sell reaching the exchange and to the last one (the exchange
flat), against the goal (1 s, and 1 s + one pace per position), and to the kill's own answer,
which waits for the confirming read (the balance, then every sell's fill in one QueryOrders) at
Kraken's private pace, against 1 s + one pace per position + one private read.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.clock import run_simulated
from sim.fakes.kraken import ADD_ORDER, OHLC, FakeKraken
from sim.faults import FaultyPaper
from trading.connector import Connector
from trading.engine import Trader
from trading.errors import Fault
from trading.events import discard
from trading.models import OrderRequest, OrderType, Side
from trading.modes import Purpose
from trading.settings import TradingSettings
from trading.store import Store
from trading.strategies import load_strategy
from trading.venues.ccxt_venue import CcxtVenue

SETTINGS = TradingSettings(min_quote_volume=0.0, max_positions=1000, max_exposure=1.0)


async def _holding(clock, positions: int, rate: float, burst: int, latency: float):
    """A trader holding `positions` positions, the bucket full again, orders slow."""
    paper = FaultyPaper(
        clock=clock,
        markets=positions + 20,
        rate_limit=rate,
        burst=burst,
        balances={"USDT": 1_000_000.0},
    )
    connector = Connector(paper, clock=clock)
    trader = Trader(
        connector,
        store=Store(),
        strategy=load_strategy("trend"),
        settings=SETTINGS,
        clock=clock,
        notify=discard,
        order_rate=rate,
    )
    await trader.start()
    markets = await paper.load_markets()
    symbols = sorted(s for s, m in markets.items() if m.active)[:positions]
    for symbol in symbols:  # setup, paced by hand: a manual buy costs about five requests
        await clock.sleep(6.0 / rate)
        result = await trader.buy(symbol, 20.0)
        if not result.ok:
            raise SystemExit(f"setup failed on {symbol}: {result.reason}")
    await clock.sleep(2 * burst / rate + 1.0)
    paper.inject_latency("create_order", latency, count=-1)
    trader.sent_before = paper.calls["create_order"]  # the entries and their resting stops
    return trader, paper, symbols


async def _concurrent(clock, positions: int, rate: float, burst: int, latency: float):
    trader, paper, symbols = await _holding(clock, positions, rate, burst, latency)
    started, stamped = clock.monotonic(), clock.time()
    result = await trader.kill()
    seconds = clock.monotonic() - started
    await trader.close()
    flat = result.flat and all(
        paper.peek_balance().total.get(s.split("/")[0], 0) == 0 for s in symbols
    )
    sells = [o.timestamp for o in paper.order_log if o.side is Side.SELL and not o.type.is_stop]
    first = min(t for t in sells if t >= stamped) - stamped
    return seconds, flat, paper.calls["create_order"] - trader.sent_before, first


async def _sequential(clock, positions: int, rate: float, burst: int, latency: float):
    """The baseline: one stop cancelled and one market sell at a time, retried after the
    exchange's Retry-After."""
    trader, paper, symbols = await _holding(clock, positions, rate, burst, latency)
    connector = trader.connector
    started = clock.monotonic()
    for position in list(trader.book.positions.values()):
        for stop in trader.book.open_orders(symbol=position.symbol):
            for _ in range(100):
                try:
                    await connector.cancel(stop.order.id, position.symbol)
                    break
                except Fault as fault:
                    await clock.sleep(getattr(fault, "retry_after", None) or 1.0 / rate)
        request = OrderRequest(
            position.symbol,
            Side.SELL,
            OrderType.MARKET,
            position.amount,
            trader.book.new_client_id(Purpose.KILL),
        )
        for _ in range(100):
            try:
                await connector.place(request)
                break
            except Fault as fault:  # a baseline loop: wait as told, try again
                await clock.sleep(getattr(fault, "retry_after", None) or 1.0 / rate)
    for _ in range(100):
        if (await trader.sync()).ok:
            break
        await clock.sleep(1.0)
    seconds = clock.monotonic() - started
    flat = all(paper.peek_balance().total.get(s.split("/")[0], 0) == 0 for s in symbols)
    await trader.close()
    return seconds, flat, paper.calls["create_order"] - trader.sent_before


class _SlowScan:
    """Ranks BTC/USDT first and reads six candle series for it; never enters."""

    name = "slow-scan"
    timeframes = ("1m", "5m", "15m", "30m", "1h", "4h")
    candle_limit = 3

    def prescreen(self, ticker):
        return 1.0 if ticker.symbol == "BTC/USDT" else None

    def entry(self, symbol, candles):
        return None

    def exit(self, position, candles, price):
        return None


async def _paced(clock):
    """(first sell, last sell, kill answered) in seconds after kill(), and whether flat."""
    async with FakeKraken(clock=clock, counter_limit=1000.0, balances={"USDT": 10_000.0}) as fake:
        venue = CcxtVenue(
            "kraken", "BENCH", api_key=fake.api_key, secret=fake.secret,
            config=fake.ccxt_config(rate_limit_ms=1000), clock=clock,
        )  # fmt: skip
        trader = Trader(
            Connector(venue, clock=clock),
            store=Store(),
            strategy=_SlowScan(),
            settings=SETTINGS,
            clock=clock,
            notify=discard,
        )
        try:
            await trader.start()
            for symbol in ("ETH/USDT", "DOGE/USDT"):
                if not (await trader.buy(symbol, 300.0)).ok:
                    raise SystemExit(f"setup failed on {symbol}")
            await clock.sleep(10.0)
            cycle = asyncio.ensure_future(trader.run_cycle())
            while fake.calls(OHLC) < 2:  # the scan is reading, the rest of its reads queued
                await clock.sleep(0.1)
            started = clock.monotonic()
            result = await trader.kill()
            answered = clock.monotonic() - started
            await cycle
            sells = [t - started for t, path in fake.arrivals if path == ADD_ORDER and t >= started]
            flat = result.flat and fake.balances["XETH"] == 0 and fake.balances["XXDG"] == 0
            return sells[0], sells[-1], answered, flat, len(sells)
        finally:
            await trader.close()
            await trader.connector.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=50)
    parser.add_argument("--rates", default="5,10,20", help="requests/s, comma-separated")
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per order answer")
    parser.add_argument("--burst", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the rate-limit warnings are the point, not news
    n = args.positions
    print(f"{n} positions, order latency {args.latency:g} s, burst {args.burst}, simulated time")
    print(
        f"{'R/s':>5} {'floor s':>8} | {'1st sell':>8} {'kill s':>7} {'ratio':>6} {'flat':>5} "
        f"{'sent':>5} | "
        f"{'seq s':>7} {'ratio':>6} {'flat':>5} {'sent':>5} | {'speed-up':>8}"
    )
    for rate in (float(r) for r in args.rates.split(",")):
        floor = 2 * n / rate
        kill = run_simulated(lambda c, r=rate: _concurrent(c, n, r, args.burst, args.latency))
        seq = run_simulated(lambda c, r=rate: _sequential(c, n, r, args.burst, args.latency))
        print(
            f"{rate:>5g} {floor:>8.2f} | {kill[3]:>8.2f} {kill[0]:>7.2f} {kill[0] / floor:>6.2f} "
            f"{kill[1]!s:>5} "
            f"{kill[2]:>5} | {seq[0]:>7.2f} {seq[0] / floor:>6.2f} {seq[1]!s:>5} {seq[2]:>5} | "
            f"{seq[0] / kill[0]:>7.1f}x"
        )
    first, last, answered, flat, sold = run_simulated(_paced)
    print(
        "\npaced: kraken via ccxt at 1 request/s, 2 positions, a scan's candle reads queued\n"
        f"  kill to first sell {first:.2f} s (goal 1.00)   kill to flat {last:.2f} s "
        f"(goal {1.0 + 1.0 * sold:.2f})   kill answered flat={flat} after {answered:.2f} s "
        f"(goal {1.0 + 1.0 * sold + 3.0:.2f}: and one private read at 3 s)"
    )


if __name__ == "__main__":
    main()
