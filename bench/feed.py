"""What the event feed saves: the same bot, strategy and markets on the loopback Binance (REST
and websockets, the real ccxt and ccxt.pro clients), with EVENT_FEED=auto and with REST only,
side by side, on real time.

Each side runs a trader's cycle every --cycle seconds and its sync job every --sync seconds, as
the scheduler does, for --seconds. Meanwhile a driver buys ETH with a stop resting at the
exchange, moves the price through it (the exchange fills it), waits until the book has closed
the position, puts the price back and does it again: fill-to-book is the time from the
exchange's fill to the close announced (the book has applied it by then); a /buy syncs first
(both sides alike), so the driver trades every --fill-every seconds, not faster. REST
requests and their weight (Binance's documented weights) are counted by the fake, the feed's
own (its sessions' balance snapshots) included; beside them the feed's figures: items pushed,
fills the sync found that the feed missed, reconnections.

    python bench/feed.py [--seconds 60] [--cycle 3] [--sync 120] [--fill-every 15]

Goal (issue 16): REST weight per minute with the feed <= 1/4 of REST only at a 3 s cycle;
fill-to-book p99 <= 1 s with the feed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

# Runnable as `python bench/feed.py` from a checkout: the project is not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.fakes.binance import FakeBinance
from sim.fakes.binance_ws import FakeBinanceWs
from trading.clock import RealClock
from trading.connector import Connector
from trading.engine import Trader
from trading.events import TradeClosed
from trading.risk import Level
from trading.settings import TradingSettings
from trading.store import Store
from trading.strategies import load_strategy
from trading.venues.ccxt_venue import CcxtVenue

# Binance spot's request weights (GET unless said), by path, for the calls the bot makes: open
# orders and the 24 h tickers without a symbol (the fake logs no query, so a ticker read with a
# symbol list, weight 2, is counted as the bulk one: the feed's figure is an upper bound).
WEIGHTS = {
    "/api/v3/openOrders": 80,
    "/api/v3/ticker/24hr": 80,
    "/api/v3/account": 20,
    "/api/v3/klines": 2,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/time": 1,
    "/api/v3/order": 4,  # GET; POST and DELETE weigh 1
}


@dataclass
class Side:
    name: str
    minutes: float
    requests: int = 0
    weight: int = 0
    latencies: list[float] = field(default_factory=list)
    events: int = 0  # items the feed pushed
    missed: int = 0  # what the REST sync found that the feed did not say
    reconnects: int = 0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def weight(method: str, path: str) -> int:
    if path == "/api/v3/order" and method != "GET":
        return 1
    return WEIGHTS.get(path, 1)


async def run_side(feed: bool, args: argparse.Namespace) -> Side:
    async with FakeBinance(balances={"USDT": 100_000.0}) as rest, FakeBinanceWs(rest) as ws:
        settings = replace(
            TradingSettings(),
            scan_interval_seconds=args.cycle,
            sync_interval_seconds=args.sync,
            min_quote_volume=0.0,
            event_feed="auto" if feed else "off",
            loop_guard_round_trips=1_000,  # the driver's round trips are not a loop
        )
        clock = RealClock()
        closed = asyncio.Event()  # set by each TradeClosed the trader announces
        venue = CcxtVenue(
            "binance", "MASTER", api_key=rest.api_key, secret=rest.secret,
            config=ws.ccxt_config(), feed_silence_limit=10.0,
        )  # fmt: skip
        connector = Connector(venue, clock=clock)
        trader = Trader(
            connector,
            store=Store(),
            strategy=load_strategy(settings.strategy),
            settings=settings,
            clock=clock,
            notify=lambda event: announced(event, closed),
        )
        await trader.start()
        if feed:
            for _ in range(500):
                if trader.feed.healthy:
                    break
                await asyncio.sleep(0.01)
        side = Side("event feed" if feed else "REST only", args.seconds / 60.0)
        counted = len(rest.requests)
        tasks = [
            asyncio.create_task(every(args.cycle, trader.run_cycle)),
            asyncio.create_task(every(args.sync, trader.run_sync, first=args.sync / 2)),
            asyncio.create_task(stops_filled(trader, rest, side, closed, args.fill_every)),
        ]
        await asyncio.sleep(args.seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for method, path in rest.requests[counted:]:
            side.requests += 1
            side.weight += weight(method, path)
        fed = trader.status().feed
        side.events, side.missed, side.reconnects = fed.events, fed.missed, fed.reconnects
        await trader.close()
        await connector.close()
        return side


async def every(seconds: float, call, *, first: float = 0.0) -> None:
    await asyncio.sleep(first)
    while True:
        started = time.monotonic()
        await call()
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))


def announced(event: object, closed: asyncio.Event) -> None:
    if isinstance(event, TradeClosed):
        closed.set()


async def stops_filled(
    trader: Trader, rest: FakeBinance, side: Side, closed: asyncio.Event, every: float
) -> None:
    """Buy ETH with a resting stop, trade through it, time the book and the announcement."""
    while True:
        rest.set_price("ETHUSDT", 3_000.0)
        bought = await trader.buy("ETH/USDT", 300.0, stop=Level(2_900.0))
        if not bought.ok or "ETH/USDT" not in trader.book.positions:
            await asyncio.sleep(0.5)
            continue
        await asyncio.sleep(0.5)
        closed.clear()
        rest.set_price("ETHUSDT", 2_800.0)  # the exchange fills the stop now
        filled = time.monotonic()
        await asyncio.wait_for(closed.wait(), 60.0)  # the book closed it and announced it
        side.latencies.append(time.monotonic() - filled)
        await asyncio.sleep(max(0.0, every - (time.monotonic() - filled)))


def report(sides: list[Side], args: argparse.Namespace) -> None:
    print(
        f"{args.seconds:g} s per side, a cycle every {args.cycle:g} s, sync job {args.sync:g} s,"
        f" a stop filled every {args.fill_every:g} s"
    )
    print(
        f"{'':12} {'req/min':>8} {'weight/min':>11} {'fills':>6} {'p50 s':>7} {'p99 s':>7}"
        f" {'events':>7} {'missed':>7} {'reconnects':>10}"
    )
    for s in sides:
        print(
            f"{s.name:12} {s.requests / s.minutes:8.0f} {s.weight / s.minutes:11.0f} "
            f"{len(s.latencies):6d} {s.pct(0.5):7.3f} {s.pct(0.99):7.3f}"
            f" {s.events:7d} {s.missed:7d} {s.reconnects:10d}"
        )
    feed, rest = sides
    ratio = (feed.weight / feed.minutes) / max(1.0, rest.weight / rest.minutes)
    print(f"weight with the feed / REST only: {ratio:.2f} (goal <= 0.25)")
    print(f"fill-to-book p99 with the feed: {feed.pct(0.99):.3f} s (goal <= 1 s)")


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.ERROR)
    sides = [await run_side(True, args), await run_side(False, args)]
    report(sides, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cycle", type=float, default=3.0)
    parser.add_argument("--sync", type=float, default=120.0)
    parser.add_argument("--fill-every", type=float, default=15.0)
    asyncio.run(main(parser.parse_args()))
