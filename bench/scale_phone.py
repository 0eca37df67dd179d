"""The owner's phone for bench/scale.py: the fake Bot API in a process of its own, as Telegram
is, so what the bench times is the bot and not the fake waiting behind the bot's work.

bench/scale.py starts it (`python bench/scale_phone.py`); it prints one JSON line with the fake's
`base_url` and `token`, then answers JSON lines on standard input, one JSON line each:

    {"op": "pings", "count": N, "seconds": S, "seed": K}  -> {"seconds": [round trips]}
    {"op": "kill", "text": "/kill ..."}                   -> {"asked": monotonic time sent}

Round trips are from the fake queueing /ping to the bot's reply reaching it; times are
time.monotonic(), the system-wide clock, so the bench compares them with its own.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.fakes.telegram_api import FakeTelegramAPI

CHAT, OWNER = 4242, 7


async def ping(api: FakeTelegramAPI) -> float:
    """The round trip in seconds; infinite when no answer came within a minute."""
    loop = asyncio.get_running_loop()
    since = len(api.calls)
    asked = loop.time()
    api.queue_command(CHAT, OWNER, "/ping")
    try:
        reply = await api.wait_for_message(CHAT, "pong", within=60.0, since=since)
    except AssertionError:  # the fake's "timed out"
        return float("inf")
    return reply.at - asked


async def pings(api: FakeTelegramAPI, count: int, seconds: float, rng: random.Random) -> list:
    """At least `count` pings, spread at random over `seconds`."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    times: list[float] = []
    while len(times) < count or loop.time() < until:
        left = max(0.0, until - loop.time())
        await asyncio.sleep(rng.uniform(0.0, 2 * left / max(1, count - len(times))))
        times.append(await ping(api))
    return times


async def kill(api: FakeTelegramAPI, text: str) -> float:
    since = len(api.calls)
    asked = asyncio.get_running_loop().time()
    api.queue_command(CHAT, OWNER, text)
    await api.wait_for_message(CHAT, "killed", within=60.0, since=since)
    return asked


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with FakeTelegramAPI() as api:
        print(json.dumps({"base_url": api.base_url, "token": api.token}), flush=True)
        while line := await reader.readline():
            ask = json.loads(line)
            if ask["op"] == "pings":
                rng = random.Random(ask["seed"])
                answer = {"seconds": await pings(api, ask["count"], ask["seconds"], rng)}
            else:
                answer = {"asked": await kill(api, ask["text"])}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
