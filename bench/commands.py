"""How fast /ping answers through Telegram while the trading core is busy.

    python bench/commands.py [--pings 200] [--accounts 10] [--markets 50] [--interval 1.0]
                             [--gap 0.05]

The real python-telegram-bot Application polls a loopback fake Bot API (sim/fakes) and every
command goes through the real Dispatcher. Each round trip is timed from the moment the fake
queues `/ping` to the moment it receives the bot's sendMessage: getUpdates, PTB's dispatch, the
handler and the reply. It is measured twice on real time: with no account, and with N paper
accounts scanning (each trader runs its real cycle, sync -> whole-universe scan -> decide ->
execute with the trend strategy, every `interval` seconds, staggered). It prints p50, p99 and
max of both and their ratio; the ratio is what the core's work costs a command. Pings are
spaced by a random pause (mean `gap`) so that they land at every phase of the cycles.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import statistics
import sys
from pathlib import Path

# Runnable as `python bench/commands.py` from a checkout: the project is not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatbot.config import Secret, TelegramSettings
from chatbot.telegram import TelegramTransport
from handlers.context import Context
from handlers.dispatch import Dispatcher
from sim.fakes.telegram_api import FakeTelegramAPI
from trading.clock import RealClock
from trading.connector import Connector
from trading.desk import Desk
from trading.engine import Trader
from trading.events import discard
from trading.settings import TradingSettings
from trading.store import Store
from trading.strategies import load_strategy
from trading.venues.paper import PaperExchange

CHAT, OWNER = 4242, 7
SETTINGS = TradingSettings(min_quote_volume=0.0)


def _traders(n: int, markets: int, clock: RealClock, store: Store) -> list[Trader]:
    strategy = load_strategy("trend")
    return [
        Trader(
            Connector(
                PaperExchange(clock=clock, account=f"A{i}", markets=markets, seed=i + 1),
                clock=clock,
            ),
            store=store,
            strategy=strategy,
            settings=SETTINGS,
            clock=clock,
            notify=discard,
        )
        for i in range(n)
    ]


async def _scan_forever(trader: Trader, interval: float, offset: float, cycles: list[float]):
    loop = asyncio.get_running_loop()
    await asyncio.sleep(offset)
    while True:
        started = loop.time()
        await trader.run_cycle()
        cycles.append(loop.time() - started)
        await asyncio.sleep(max(0.0, interval - (loop.time() - started)))


async def _pings(api: FakeTelegramAPI, count: int, gap: float, rng: random.Random) -> list[float]:
    loop = asyncio.get_running_loop()
    seconds = []
    for _ in range(count):
        await asyncio.sleep(rng.uniform(0.0, 2 * gap))
        since = len(api.calls)
        asked = loop.time()
        api.queue_command(CHAT, OWNER, "/ping")
        reply = await api.wait_for_message(CHAT, "pong", within=10.0, since=since)
        seconds.append(reply.at - asked)
    return seconds


async def measure(accounts: int, pings: int, markets: int, interval: float, gap: float) -> dict:
    """Ping round trips (seconds) with `accounts` paper traders scanning."""
    clock = RealClock()
    store = Store(":memory:")
    traders = _traders(accounts, markets, clock, store)
    desk = Desk(traders, store=store, clock=clock)
    dispatcher = Dispatcher(Context(desk=desk, clock=clock))
    cycles: list[float] = []
    tasks: list[asyncio.Task] = []
    async with FakeTelegramAPI() as api:
        settings = TelegramSettings(Secret(api.token), CHAT, frozenset(), api.base_url)
        transport = TelegramTransport(settings, dispatcher, clock=clock, poll_timeout=1.0)
        await transport.start()
        try:
            await asyncio.gather(*(t.start() for t in traders))
            # Warm-up: markets loaded and one full scan done on every account.
            await asyncio.gather(*(t.run_cycle() for t in traders))
            tasks = [
                asyncio.create_task(_scan_forever(t, interval, i * interval / accounts, cycles))
                for i, t in enumerate(traders)
            ]
            rng = random.Random(1)
            await _pings(api, 5, 0.0, rng)  # warm-up: connections
            seconds = await _pings(api, pings, gap, rng)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await transport.stop()
            for trader in traders:
                await trader.close()
            store.close()
    return {"seconds": seconds, "cycles": cycles}


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _row(name: str, seconds: list[float]) -> tuple[float, float]:
    p50, p99 = _quantile(seconds, 0.5), _quantile(seconds, 0.99)
    print(f"{name:<24} {p50 * 1000:>8.1f} {p99 * 1000:>8.1f} {max(seconds) * 1000:>8.1f}")
    return p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--markets", type=int, default=50, help="paper markets per account")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between cycles")
    parser.add_argument("--gap", type=float, default=0.05, help="mean seconds between pings")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    idle = asyncio.run(measure(0, args.pings, args.markets, args.interval, args.gap))
    busy = asyncio.run(measure(args.accounts, args.pings, args.markets, args.interval, args.gap))
    print(f"/ping round trip through PTB and the loopback Bot API, {args.pings} pings each")
    print(f"{'':<24} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    idle50, idle99 = _row("no accounts", idle["seconds"])
    busy50, busy99 = _row(f"{args.accounts} accounts scanning", busy["seconds"])
    cycles = busy["cycles"]
    if cycles:
        print(
            f"cycles during the busy run: {len(cycles)}, "
            f"mean {statistics.mean(cycles) * 1000:.1f} ms, max {max(cycles) * 1000:.1f} ms"
        )
    print(f"ratio busy/idle: p50 {busy50 / idle50:.2f}x, p99 {busy99 / idle99:.2f}x")


if __name__ == "__main__":
    main()
