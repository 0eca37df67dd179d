"""How long one whole-market ticker read holds the event loop, with a large universe.

    python bench/bigread.py [--markets 12000] [--reads 5]

The real ccxt binance client against the loopback fake Binance (sim/fakes/binance.py) with
`markets` spot markets, the fake served from a process of its own (as an exchange is remote:
building and encoding its answer must not count against the loop measured). Each way to read
every ticker, `reads` times after one read that opens connections (not counted):

    plain        ccxt's fetch_tickers awaited on the loop and read into our tickers there: the
                 venue's bulk read before trading/venues/ccxt_bulk.py
    off-loop     the venue's bulk read through the Connector (the code the engine runs): the
                 request, decode and parse on the worker thread
    paper        the paper exchange's read through the Connector, prices drawn by the
                 SyntheticFeed, which hands the loop back every 16 markets; "paper cold": its
                 first read, which draws every market's hours
    load markets the venue's markets loaded through the Connector, once (at start)
    idle         the probe alone for as long, on a loop with nothing to do: what the machine adds

and for each: the longest the loop was away (a probe task asks to wake every 2 ms and records
how late it wakes), the most CPU the loop's thread spent meanwhile (the part of that stall that
is ours, on a machine shared with other processes), and the read's total time; medians of the
reads for the time, the worst for the stalls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

# Runnable as `python bench/bigread.py` from a checkout: the project is not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loop_probe import PROBE_PERIOD, watch
from chatbot.heap import settle
from sim.clock import FakeClock
from sim.fakes.binance import FakeBinance, FakeMarket, loopback_urls
from trading.clock import RealClock
from trading.connector import Connector
from trading.models import Ticker
from trading.venues.ccxt_exchanges import build
from trading.venues.ccxt_parse import to_tickers
from trading.venues.ccxt_venue import CcxtVenue
from trading.venues.paper import PaperExchange

Read = Callable[[], Awaitable[dict]]


def universe(markets: int) -> list[FakeMarket]:
    """`markets` spot markets of distinct prices and volumes."""
    return [
        FakeMarket(f"C{i:05d}", price=0.5 + (i * 7919) % 10_007 / 10.0, quote_volume=1e5 + i)
        for i in range(markets)
    ]


@contextlib.contextmanager
def served_apart(markets: int) -> Iterator[str]:
    """The URL of a fake Binance of `markets` markets serving from a process of its own, as an
    exchange does: building and encoding its answer takes none of this process's time."""
    argv = [sys.executable, __file__, "--serve", str(markets)]
    server = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield server.stdout.readline().strip()
    finally:
        server.stdin.close()  # the server's cue to stop
        server.wait(timeout=30)


async def serve(markets: int) -> None:
    """Serve until stdin closes, the URL on the first line of stdout."""
    async with FakeBinance(markets=universe(markets)) as fake:
        print(fake.url, flush=True)
        await asyncio.to_thread(sys.stdin.read)


async def measure(read: Read, reads: int) -> dict[str, float]:
    """The worst stall and loop CPU over `reads` reads, and their median time."""
    lags: list[tuple[float, float]] = []
    seconds: list[float] = []
    count = 0
    for _ in range(reads):
        probe = asyncio.create_task(watch(lags))
        await asyncio.sleep(5 * PROBE_PERIOD)  # the probe is waiting before the read starts
        started = time.perf_counter()
        count = len(await read())
        seconds.append(time.perf_counter() - started)
        await asyncio.sleep(2 * PROBE_PERIOD)  # the probe's wake-up after the read's last stretch
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
    return {
        "stall": max(lag for lag, _ in lags),
        "busy": max(cpu for _, cpu in lags),
        "time": statistics.median(seconds),
        "tickers": count,
    }


async def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    results = {}
    with served_apart(args.markets) as url:
        config = {"urls": loopback_urls("binance", url), "rateLimit": 1, "timeout_on_exit": 0}
        plain = build("binance", {}, 10_000, config)
        venue = CcxtVenue("binance", "BENCH", config=config)
        connector = Connector(venue, clock=RealClock())
        try:
            results["load markets"] = await measure(connector.load_markets, 1)
            markets = connector.markets
            await plain.load_markets()

            async def plain_read() -> dict[str, Ticker]:
                return to_tickers((await plain.fetch_tickers()).values(), markets)

            # Connections open, the twin built; the heap settled as the bot settles it.
            await plain_read()
            await connector.tickers()
            settle()
            results["idle"] = await measure(idle_for(results["load markets"]["time"]), 1)
            results["plain"] = await measure(plain_read, args.reads)
            results["off-loop"] = await measure(connector.tickers, args.reads)
        finally:
            await plain.close()
            await connector.close()
    clock = FakeClock()
    paper = PaperExchange(clock=clock, markets=args.markets, rate_limit=1e6, burst=10**6)
    on_paper = Connector(paper, clock=clock)
    await on_paper.load_markets()
    results["paper cold"] = await measure(on_paper.tickers, 1)
    settle(full=False)  # as the bot settles once its accounts had their first cycles
    results["paper"] = await measure(on_paper.tickers, args.reads)
    return results


def idle_for(seconds: float) -> Read:
    """A read of nothing that takes `seconds`: the probe's stalls on a loop with no work."""

    async def nothing() -> dict[str, Ticker]:
        await asyncio.sleep(seconds)
        return {}

    return nothing


def report(args: argparse.Namespace, results: dict[str, dict[str, float]]) -> str:
    plain = results["plain"]
    out = [
        f"whole-market ticker read, {args.markets:,} markets, {args.reads} reads each "
        "(stall and loop CPU: the worst; time: the median)",
        f"{'':13}{'count':>8}{'stall ms':>10}{'x plain':>9}{'loop cpu ms':>12}"
        f"{'x plain':>9}{'time ms':>9}{'x plain':>9}",
    ]
    for name, r in results.items():
        out.append(
            f"{name:13}{r['tickers']:>8,}{r['stall'] * 1e3:>10.1f}"
            f"{r['stall'] / plain['stall']:>8.2f}x{r['busy'] * 1e3:>12.1f}"
            f"{r['busy'] / plain['busy']:>8.2f}x{r['time'] * 1e3:>9.0f}"
            f"{r['time'] / plain['time']:>8.2f}x"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--markets", type=int, default=12_000)
    p.add_argument("--reads", type=int, default=5)
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the fake's process
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.serve is not None:
        asyncio.run(serve(args.serve))
        return
    print(report(args, asyncio.run(run(args))))


if __name__ == "__main__":
    main()
