"""How far one process goes: N paper accounts x M markets on one event loop, and whether /ping
and /kill stay instant while they all cycle.

    python bench/scale.py [--accounts 1,10,50,100] [--markets 500] [--speed 10] [--cycles 2]
                          [--pings 300] [--stagger SECONDS] [--no-settle] [--own-tickers]
                          [--transport process|loop]

Every account is a real Trader on its own paper exchange account; the accounts share one
synthetic market (sub-accounts of one exchange see the same prices), which runs `speed` times
faster than real time as in the paper demo. The real scheduler (chatbot/scheduling.py) runs each
account's cycle and sync, a cycle every 60/speed real seconds (60 s of market time), staggered
as the bot staggers them (`--stagger` overrides the spacing), and the heap is settled as the
bot settles it (chatbot/heap.py; `--no-settle`: the collector's defaults). Like the accounts of
one live exchange, they share one whole-universe ticker read up to 5 s of market time old
(trading/shared_tickers.py; `--own-tickers`: each account reads its own). The real
python-telegram-bot Application polls a loopback fake Bot API (sim/fakes) that runs in a process
of its own (bench/scale_phone.py: the owner's phone and Telegram, which are elsewhere), and every
command goes through the real Dispatcher. The transport runs as the bot runs it, in the command
front's own process (chatbot/front.py); `--transport loop`: on the trading loop, as before.
For each N, in a fresh process, over `cycles` cycle intervals (the rss excludes the front's
57 MB, the same at every N):

    cpu/cycle   CPU per account-cycle (the process's CPU beyond the idle run's rate, over
                `cycles` intervals without pings); loop %: what N accounts take of one core at
                the real 60 s cadence
    stall       the longest the event loop was away, over the next `cycles` intervals with
                pings: a probe task asks to wake every 2 ms and records how late it wakes
    busy        the most CPU the loop's thread spent between asking to wake and waking: the
                stall (plus the 2 ms asked) without the time the OS gave other processes; on a
                loaded machine, the part that is ours
    /ping       round trip from the fake queueing /ping to the bot's reply, p50 p99 max, against
                the same with no accounts (x idle)
    /kill       from the fake queueing `/kill paper:a0 now` to account A0's first exit request at
                its exchange (the cancel of a resting stop), and to its first sell; A0 holds
                three positions while every account cycles
    rss/acct    resident memory beyond the idle run's, per account
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

# Runnable as `python bench/scale.py` from a checkout: the project is not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loop_probe import watch
from chatbot.app import SHARED_TICKERS_MAX_AGE
from chatbot.config import Secret, TelegramSettings
from chatbot.front_host import CommandFront
from chatbot.heap import settle, settle_later
from chatbot.scheduling import new_scheduler, schedule_traders
from chatbot.telegram import TelegramTransport
from handlers.context import Context
from handlers.dispatch import Dispatcher
from trading.clock import RealClock, ScaledClock
from trading.connector import Connector
from trading.desk import Desk
from trading.engine import Trader
from trading.events import discard
from trading.models import OrderRequest
from trading.settings import TradingSettings
from trading.shared_tickers import SharedTickers
from trading.store import Store
from trading.strategies import load_strategy
from trading.venues.market_sim import SyntheticFeed
from trading.venues.paper import PaperExchange

CHAT, OWNER = 4242, 7
PHONE = Path(__file__).with_name("scale_phone.py")
MARKET_INTERVAL = 60.0  # seconds of market time between an account's cycles
KILLED = "A0"
KILL_POSITIONS = 3


class _Watched(PaperExchange):
    """The paper exchange, noting when each cancel and each order went out once `watching`
    (time.monotonic(), the clock the phone process times the command on)."""

    watching = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[tuple[float, bool]] = []  # (when, an order rather than a cancel)

    async def cancel_order(self, order_id: str, symbol: str):
        self._seen(order=False)
        return await super().cancel_order(order_id, symbol)

    async def create_order(self, request: OrderRequest):
        self._seen(order=True)
        return await super().create_order(request)

    def _seen(self, *, order: bool) -> None:
        if self.watching:
            self.requests.append((time.monotonic(), order))

    def first_after(self, asked: float, *, order: bool) -> float | None:
        return next((t for t, o in self.requests if t >= asked and (o or not order)), None)


class _Counted:
    """A trader as the scheduler sees it, counting its cycles."""

    def __init__(self, trader: Trader, cycles: list[int], first: asyncio.Event) -> None:
        self.trader, self.cycles, self.first = trader, cycles, first
        self.label = trader.label
        self.cycled = False

    async def start(self) -> None:
        await self.trader.start()

    async def run_cycle(self) -> None:
        await self.trader.run_cycle()
        self.cycles[0] += 1
        if not self.cycled:
            self.cycled = True
            self.cycles[1] += 1
            if self.cycles[1] == self.cycles[2]:
                self.first.set()

    async def run_sync(self) -> None:
        await self.trader.run_sync()


class _Phone:
    """The owner's phone: bench/scale_phone.py, the fake Bot API in a process of its own."""

    def __init__(self, process: asyncio.subprocess.Process, hello: dict) -> None:
        self.process, self.base_url, self.token = process, hello["base_url"], hello["token"]

    @classmethod
    async def start(cls) -> _Phone:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(PHONE), stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert process.stdout is not None
        return cls(process, json.loads(await process.stdout.readline()))

    async def ask(self, **question) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(question).encode() + b"\n")
        await self.process.stdin.drain()
        return json.loads(await self.process.stdout.readline())

    async def pings(self, count: int, seconds: float, seed: int) -> list[float]:
        return (await self.ask(op="pings", count=count, seconds=seconds, seed=seed))["seconds"]

    async def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        await self.process.wait()


async def _kill(phone: _Phone, exchange: _Watched) -> tuple[float, float]:
    """Seconds from /kill to the exchange's first exit request (a stop's cancel), and to its
    first sell."""
    exchange.watching = True
    asked = (await phone.ask(op="kill", text=f"/kill paper:{KILLED.lower()} now"))["asked"]
    request = exchange.first_after(asked, order=False)
    order = exchange.first_after(asked, order=True)
    if request is None or order is None:
        raise SystemExit("the kill sent no order")
    return request - asked, order - asked


def _rss() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


async def measure(accounts: int, args: argparse.Namespace) -> dict:
    """One configuration, in this process: the figures of the module docstring."""
    interval = MARKET_INTERVAL / args.speed
    clock = RealClock()
    market_clock = ScaledClock(args.speed)
    settings = TradingSettings(
        min_quote_volume=0.0,
        scan_interval_seconds=interval,
        sync_interval_seconds=2 * interval,
    )
    feed = SyntheticFeed(seed=1, markets=args.markets, clock=market_clock)
    store = Store(":memory:")
    strategy = load_strategy("trend")
    exchanges = [
        _Watched(clock=market_clock, account=f"A{i}", feed=feed, balances={"USDT": 100_000.0})
        for i in range(accounts)
    ]
    shared = SharedTickers(clock=clock, max_age=SHARED_TICKERS_MAX_AGE / args.speed)
    traders = [
        Trader(
            Connector(x, clock=clock, shared_tickers=None if args.own_tickers else shared),
            store=store,
            strategy=strategy,
            settings=settings,
            clock=clock,
            notify=discard,
        )
        for x in exchanges
    ]
    desk = Desk(traders, store=store, clock=clock)
    dispatcher = Dispatcher(Context(desk=desk, clock=clock))
    cycles = [0, 0, accounts]  # cycles run, accounts that cycled, accounts
    all_cycled = asyncio.Event()
    lags: list[tuple[float, float]] = []
    loop = asyncio.get_running_loop()
    scheduler = new_scheduler()
    probe = asyncio.create_task(watch(lags))
    phone = await _Phone.start()
    tg = TelegramSettings(Secret(phone.token), CHAT, frozenset(), phone.base_url)
    transport: CommandFront | TelegramTransport
    if args.transport == "process":
        options = {"poll_timeout": 1.0}
        transport = CommandFront(tg, dispatcher, clock=clock, log_level="CRITICAL", options=options)
    else:
        transport = TelegramTransport(tg, dispatcher, clock=clock, poll_timeout=1.0)
    await transport.start()
    try:
        await asyncio.gather(*(t.start() for t in traders))
        if traders:
            await _hold_positions(traders[0])
        stagger = {} if args.stagger is None else {"stagger_seconds": args.stagger}
        counted = [_Counted(t, cycles, all_cycled) for t in traders]
        schedule_traders(scheduler, counted, settings, **stagger)
        if not args.no_settle:
            settle()
            settle_later(scheduler, 2 * interval)
        scheduler.start()
        if traders:  # every account's first (cold) cycle
            await asyncio.wait_for(all_cycled.wait(), timeout=600)
        await phone.pings(5, 0.0, seed=0)  # warm-up: connections
        # CPU without pings (the idle run's rate is PTB polling and the probe)...
        cycles[0] = 0
        cpu, wall = time.process_time(), loop.time()
        await asyncio.sleep(args.cycles * interval)
        cpu, wall, done = time.process_time() - cpu, loop.time() - wall, cycles[0]
        # ...then the stalls and pings of the same stretch of cycles.
        lags.clear()
        seconds = await phone.pings(args.pings, args.cycles * interval, seed=1)
        stall, busy = max(lag for lag, _ in lags), max(cpu for _, cpu in lags)
        kill = await _kill(phone, exchanges[0]) if traders else None
        rss = _rss()
    finally:
        scheduler.shutdown(wait=False)
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
        await transport.stop()
        await phone.close()
        for trader in traders:
            await trader.close()
        store.close()
    return {
        "accounts": accounts,
        "pings": seconds,
        "cpu": cpu,
        "wall": wall,
        "cycles": done,
        "stall": stall,
        "busy": busy,
        "kill": kill,
        "rss": rss,
    }


async def _hold_positions(trader: Trader) -> None:
    """Positions for the kill to exit: the first markets the account may trade."""
    markets = await trader.connector.load_markets()
    symbols = sorted(s for s, m in markets.items() if m.active)[:KILL_POSITIONS]
    for symbol in symbols:
        result = await trader.buy(symbol, 50.0)
        if not result.ok:
            raise SystemExit(f"setup failed on {symbol}: {result.reason}")


# -- the table: each configuration in a fresh process, so CPU and memory are its own ----------


def _run(accounts: int, args: argparse.Namespace) -> dict:
    argv = [sys.executable, __file__, "--one", str(accounts), *_shared_flags(args)]
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _shared_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--markets", str(args.markets), "--speed", str(args.speed)]
    flags += ["--cycles", str(args.cycles), "--pings", str(args.pings)]
    flags += ["--no-settle"] if args.no_settle else []
    flags += ["--own-tickers"] if args.own_tickers else []
    flags += ["--transport", args.transport]
    return flags + ([] if args.stagger is None else ["--stagger", str(args.stagger)])


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _table(idle: dict, rows: list[dict], args: argparse.Namespace) -> None:
    idle50, idle99 = _quantile(idle["pings"], 0.5), _quantile(idle["pings"], 0.99)
    idle_cpu = idle["cpu"] / idle["wall"]
    print(
        f"{args.markets} paper markets per account, a cycle every {MARKET_INTERVAL:g} s of market "
        f"time = {MARKET_INTERVAL / args.speed:g} s real (speed {args.speed:g}), "
        f"{args.cycles} cycle intervals per row"
    )
    print(
        f"{'accounts':>8} {'cpu/cycle ms':>12} {'loop %':>6} {'stall ms':>8} {'busy':>5} | "
        f"{'/ping p50':>9} {'p99':>6} {'x idle':>6} {'max':>6} {'x idle':>6} | "
        f"{'/kill ms':>8} {'sell':>6} | {'rss/acct MB':>11}"
    )
    idle_max = max(idle["pings"])
    print(
        f"{'idle':>8} {'':>12} {'':>6} {idle['stall'] * 1e3:>8.1f} {idle['busy'] * 1e3:>5.1f} | "
        f"{idle50 * 1e3:>9.1f} "
        f"{idle99 * 1e3:>6.1f} {'':>6} {idle_max * 1e3:>6.1f} {'':>6} | {'':>8} {'':>6} | {'':>11}"
    )
    for row in rows:
        n, pings = row["accounts"], row["pings"]
        cpu = (row["cpu"] - idle_cpu * row["wall"]) / max(1, row["cycles"])
        # The share of the loop N accounts take at the real 60 s cadence.
        load = n * cpu / MARKET_INTERVAL * 100
        p99, top = _quantile(pings, 0.99), max(pings)
        rss = (row["rss"] - idle["rss"]) / n / 1e6
        request, sell = row["kill"]
        print(
            f"{n:>8} {cpu * 1e3:>12.1f} {load:>6.1f} {row['stall'] * 1e3:>8.1f} "
            f"{row['busy'] * 1e3:>5.1f} | "
            f"{_quantile(pings, 0.5) * 1e3:>9.1f} {p99 * 1e3:>6.1f} {p99 / idle99:>5.2f}x "
            f"{top * 1e3:>6.1f} {top / idle_max:>5.2f}x | "
            f"{request * 1e3:>8.1f} {sell * 1e3:>6.1f} | {rss:>11.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", default="1,10,50,100", help="comma-separated")
    parser.add_argument("--markets", type=int, default=500, help="paper markets per account")
    parser.add_argument("--speed", type=float, default=10.0, help="market seconds per second")
    parser.add_argument("--cycles", type=int, default=2, help="cycle intervals measured")
    parser.add_argument("--pings", type=int, default=300, help="pings per row, at least")
    parser.add_argument("--stagger", type=float, help="seconds between accounts' first cycles")
    parser.add_argument("--no-settle", action="store_true", help="leave the collector as it is")
    parser.add_argument("--own-tickers", action="store_true", help="no shared ticker read")
    parser.add_argument(
        "--transport",
        choices=("process", "loop"),
        default="process",
        help="Telegram in its own process (the bot's default) or on the trading loop",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one row, as JSON
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # rate limits and kills are the point, not news
    if args.one is not None:
        print(json.dumps(asyncio.run(measure(args.one, args))))
        return
    idle = _run(0, args)
    rows = [_run(int(n), args) for n in args.accounts.split(",")]
    _table(idle, rows, args)


if __name__ == "__main__":
    main()
