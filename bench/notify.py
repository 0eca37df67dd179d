"""What notify() costs the trading core, what a stalled Telegram costs in memory, and how fast an
emergency reaches the pager while the normal lane is saturated.

    python bench/notify.py [--calls 200000] [--memory-calls 1000000] [--pages 200]

1. Cost of one notify() call, p50/p99 of per-call timings, against a plain
   asyncio.Queue(maxsize=10).put_nowait in the same run (both pay the same timer overhead):
   an event accepted into the queue, and the steady state of a stalled sender (queue full,
   every event dropped and counted).
2. Resident memory (VmRSS) before and after 1,000,000 notifications with the sender stalled:
   python-telegram-bot's Bot against a loopback fake Bot API that holds every sendMessage.
3. Time from raising an emergency to the ntfy pager's server (loopback fake) receiving it, while
   the normal lane is kept full and Telegram sits in a 429 flood wait, against the floor of one
   direct POST to the same server.

Everything runs on real time in one process; the fake servers share the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from chatbot.notifier import Notifier
from chatbot.pagers import NtfyPager
from chatbot.senders import TelegramSender
from sim.fakes.pager import FakePagers
from sim.fakes.telegram_api import FakeTelegramAPI
from trading.clock import RealClock
from trading.events import Emergency, TradeClosed

CHAT = 4242


def closed(i: int) -> TradeClosed:
    return TradeClosed(
        account="paper:main",
        at=0.0,
        symbol="BTC/USDT",
        amount=0.01,
        price=50_000.0 + i,
        pnl=1.0,
        pnl_pct=0.2,
        reason="take profit",
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_calls(call, args: list, reset=None, reset_every: int = 0) -> list[float]:
    """Per-call nanoseconds of call(arg) for each arg; `reset` runs untimed every N calls."""
    clock = time.perf_counter_ns
    out = []
    for i, arg in enumerate(args):
        if reset is not None and reset_every and i % reset_every == 0:
            reset()
        t0 = clock()
        call(arg)
        out.append(clock() - t0)
    return out


def report(name: str, ns: list[float], base: list[float]) -> None:
    p50, p99, b50, b99 = pct(ns, 0.5), pct(ns, 0.99), pct(base, 0.5), pct(base, 0.99)
    print(
        f"  {name:<34} p50 {p50:7.0f} ns  p99 {p99:7.0f} ns   "
        f"baseline p50 {b50:5.0f} ns p99 {b99:5.0f} ns   ratio p50 {p50 / b50:4.1f}x "
        f"p99 {p99 / b99:4.1f}x"
    )


async def bench_call_cost(calls: int) -> None:
    print(f"1. cost of one call ({calls:,} timed calls each, same run)")
    events = [closed(i) for i in range(calls)]
    gc.collect()
    gc.disable()  # a collection inside a timed call is noise for both sides alike
    try:
        # Stalled sender: nothing drains, so after 10 events every call is a counted drop.
        notifier = Notifier([], [], clock=RealClock(), queue_size=10)
        queue: asyncio.Queue = asyncio.Queue(maxsize=10)

        def put_or_drop(ev):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(ev)

        # Accepting: empty both queues every 10 calls (untimed) so each call enqueues.
        def clear():
            notifier._normal.clear()
            while not queue.empty():
                queue.get_nowait()

        # Interleaved in rounds, so machine noise falls on both sides alike.
        accept, accept_base, drop, drop_base = [], [], [], []
        rounds = 20
        for r in range(rounds):
            chunk = events[r * calls // rounds : (r + 1) * calls // rounds]
            accept += timed_calls(notifier.notify, chunk, clear, 10)
            accept_base += timed_calls(put_or_drop, chunk, clear, 10)
            for _ in range(10):  # fill both to their bound: from here on every call drops
                notifier.notify(chunk[0])
                put_or_drop(chunk[0])
            drop += timed_calls(notifier.notify, chunk)
            drop_base += timed_calls(put_or_drop, chunk)
        report("notify() accepted into the queue", accept, accept_base)
        report("notify() queue full, dropped", drop, drop_base)
        assert notifier.stats().dropped_total >= calls - 10
    finally:
        gc.enable()


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def bench_memory(calls: int) -> None:
    print(f"2. resident memory around {calls:,} notifications, Telegram stalled")
    async with FakeTelegramAPI() as api, api.bot() as bot:
        notifier = Notifier([TelegramSender(bot, CHAT, RealClock())], [], clock=RealClock())
        api.stall("sendMessage")
        await notifier.start()
        notifier.notify(closed(-1))
        await api.wait_until(lambda: api.parked["sendMessage"] == 1, what="a stalled send")
        gc.collect()
        before = rss_kib()
        started = time.perf_counter()
        for i in range(calls):
            notifier.notify(closed(i))
            if i % 10_000 == 0:
                await asyncio.sleep(0)  # let the (stalled) sender task run now and then
        elapsed = time.perf_counter() - started
        gc.collect()
        after = rss_kib()
        stats = notifier.stats()
        print(
            f"  VmRSS before {before / 1024:.1f} MiB, after {after / 1024:.1f} MiB, "
            f"delta {after - before:+,} KiB"
        )
        print(
            f"  queue depth {stats.queue_depth}/{stats.queue_size}, dropped {stats.dropped_total:,}"
            f" (exact: {stats.dropped_total == calls - stats.queue_depth + 1}), "
            f"{elapsed / calls * 1e9:.0f} ns per call including event construction"
        )
        api.release("sendMessage")
        await notifier.stop(grace=0.5)


async def bench_page_latency(pages: int) -> None:
    print(f"3. emergency -> pager server, normal lane full and Telegram in a 429 wait ({pages})")
    async with (
        FakeTelegramAPI() as api,
        FakePagers() as fake,
        api.bot() as bot,
        httpx.AsyncClient() as client,
    ):
        floor = []
        for i in range(pages):
            t0 = time.perf_counter()
            await client.post(fake.ntfy_url, content=f"direct {i}".encode())
            floor.append((time.perf_counter() - t0) * 1e6)
        fake.ntfy.clear()

        clock = RealClock()
        pager = NtfyPager(fake.ntfy_url, None, client)
        notifier = Notifier([TelegramSender(bot, CHAT, clock)], [pager], clock=clock)
        api.fail_next("sendMessage", status=429, json=api.flood(3600))
        await notifier.start()
        notifier.notify(closed(0))
        await api.wait_until(lambda: api.calls_to("sendMessage", ok=False), what="the 429")
        latencies = []
        for i in range(pages):
            for j in range(50):  # keep the normal lane saturated: every one of these drops
                notifier.notify(closed(j))
            seen = len(fake.ntfy)
            t0 = time.perf_counter()
            notifier.notify(Emergency(account="paper:main", at=0.0, key=f"k{i}", message="x"))
            await fake.wait_until(lambda n=seen: len(fake.ntfy) > n, what="the page")
            latencies.append((time.perf_counter() - t0) * 1e6)
        stats = notifier.stats()
        await notifier.stop(grace=0.1)
    p50, p99, f50, f99 = (
        pct(latencies, 0.5),
        pct(latencies, 0.99),
        pct(floor, 0.5),
        pct(floor, 0.99),
    )
    print(
        f"  raise -> received  p50 {p50 / 1000:6.2f} ms  p99 {p99 / 1000:6.2f} ms   "
        f"direct POST p50 {f50 / 1000:5.2f} ms p99 {f99 / 1000:5.2f} ms   "
        f"ratio p50 {p50 / f50:4.2f}x p99 {p99 / f99:4.2f}x"
    )
    print(
        f"  normal lane {stats.queue_depth}/{stats.queue_size}, dropped {stats.dropped_total:,}, "
        f"Telegram flood wait left {stats.flood_wait:.0f} s, "
        f"mean {statistics.mean(latencies) / 1000:.2f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    # The stalled sender leaves messages undelivered at stop() on purpose; that warning is noise.
    logging.getLogger("chatbot").setLevel(logging.ERROR)
    await bench_call_cost(args.calls)
    await bench_memory(args.memory_calls)
    await bench_page_latency(args.pages)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--memory-calls", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
