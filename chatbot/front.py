"""The command front: the Telegram transport in a process of its own (`python -m chatbot.front`,
started by the trading process, chatbot/front_host.py, never by hand).

Why a process: the trading loop of a hundred accounts is busy a tenth of the time in stretches
of several milliseconds, and a command that waits behind them answers two to four times slower
than on an idle bot; a thread would wait for the same interpreter lock. Here the poller, the
owner-chat gate, confirmations and replies run on a loop nothing else uses, and every command
is answered by the trading process's Dispatcher over a socket pair (chatbot/front_wire.py),
except /ping: its text is rendered on the trading loop a few times a second and pushed here, so
/ping answers at once and says so when the trading side has gone quiet.

The process ends when the trading process says so (after letting the commands in flight
finish) or is gone (end of file on the socket): it never outlives the bot, which would steal
the next instance's updates (Telegram allows one poller per token). Ctrl-C and SIGTERM are the
trading process's to handle: the front waits to be told.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from chatbot.config_channels import TelegramSettings
from chatbot.config_reader import Secret
from chatbot.front_wire import Wire, reply_from_wire
from chatbot.logsetup import setup_logging
from chatbot.telegram import TelegramTransport
from handlers.dispatch import command_name
from handlers.reply import Reply, plain
from handlers.table import COMMANDS
from trading.clock import RealClock

log = logging.getLogger("chatbot.front")

FD_VARIABLE = "CHATBOT_FRONT_FD"
# Pulses come every PULSE_SECONDS (chatbot/front_host.py); a /ping past this says the trading
# side is quiet rather than repeat an old picture as if it were now.
QUIET_AFTER_SECONDS = 5.0
REMEMBER_DEADLINES = 256
# The front says it is alive this often; the trading process ends a front silent for a minute
# (wedged: its loop stuck, or the process stopped) and starts another.
BEAT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class RemoteClaim:
    """A confirmation the trading side's Dispatcher handed to this press."""

    id: int
    action: str
    line: str


class RemotePort:
    """The Dispatcher of the trading process, as the transport asks it (chatbot/command_port.py).
    Requests are answered in the order they arrive there, so of two taps on one confirmation
    exactly one is handed the claim, as in one process."""

    def __init__(self, wire: Wire, confirm_ttl: float, monotonic=time.monotonic) -> None:
        self.wire = wire
        self.confirm_ttl = confirm_ttl
        self.commands = {c.name: c for c in COMMANDS}
        self._monotonic = monotonic
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._deadlines: dict[str, float] = {}
        self._posts: set[asyncio.Task] = set()
        self._pulse: tuple[str, float] | None = None  # the /ping text, when it came

    # ---- what the transport asks ----------------------------------------------------------

    async def handle(self, text: str, who: str) -> Reply:
        words = text.split(maxsplit=1)
        if words and command_name(words[0]) == "ping":
            reply = self.ping()
            self.note(who, text, plain(reply.text))
            return reply
        return self._reply(await self._call("handle", text=text, who=who))

    async def ask(self, text: str, who: str, why: str = "") -> Reply:
        return self._reply(await self._call("ask", text=text, who=who, why=why))

    async def take(self, data: str, who: str) -> RemoteClaim | Reply:
        answer = await self._call("take", data=data, who=who)
        if "reply" in answer:
            return self._reply(answer)
        self._deadlines.pop(data.partition(":")[2], None)
        return RemoteClaim(answer["claim"], answer["action"], answer["line"])

    async def settle(self, claim: RemoteClaim, who: str) -> Reply:
        return self._reply(await self._call("settle", claim=claim.id, who=who))

    def note(self, who: str, text: str, result: str) -> None:
        self._post({"op": "note", "who": who, "text": text, "result": result})

    def expire(self) -> None:
        self._post({"op": "expire"})

    def expires_at(self, token: str) -> float | None:
        return self._deadlines.get(token)

    def ping(self) -> Reply:
        if self._pulse is None:
            return Reply("<b>pong</b> - the trading side has not reported yet (starting)")
        text, at = self._pulse
        quiet = self._monotonic() - at
        if quiet > QUIET_AFTER_SECONDS:
            text += (
                f"\n⚠ the trading side has not answered for {quiet:.0f} s: the lines above are "
                "from then, and commands wait for it"
            )
        return Reply(text)

    # ---- what the trading side says ------------------------------------------------------

    def received(self, message: dict[str, Any]) -> None:
        """An answer to a request, or a pulse."""
        if message.get("op") == "pulse":
            self._pulse = (message["text"], self._monotonic())
            return
        future = self._waiting.pop(message["id"], None)
        if future is not None and not future.done():
            future.set_result(message)

    def gone(self) -> None:
        """The trading side closed the socket: every question still open fails."""
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("the trading process is gone"))
        self._waiting.clear()

    # ---- plumbing -------------------------------------------------------------------------

    async def _call(self, op: str, **fields: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        try:
            await self.wire.send({"id": ident, "op": op, **fields})
            return await future
        finally:
            self._waiting.pop(ident, None)

    def _reply(self, answer: dict[str, Any]) -> Reply:
        self._deadlines.update(answer.get("deadlines") or {})
        while len(self._deadlines) > REMEMBER_DEADLINES:
            del self._deadlines[next(iter(self._deadlines))]
        return reply_from_wire(answer["reply"])

    def _post(self, message: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self.wire.send(message))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)


async def serve(sock: socket.socket) -> int:
    """Poll until the trading side says stop or is gone; 1 if polling could not start."""
    wire = await Wire.over(sock)
    hello = await wire.receive()
    if hello is None or hello.get("op") != "hello":
        return 1
    tg = hello["telegram"]
    setup_logging(hello.get("log_level", "INFO"), [tg["token"]])
    settings = TelegramSettings(
        Secret(tg["token"]), tg["chat_id"], frozenset(tg["allowed"]), tg["api_base_url"]
    )
    port = RemotePort(wire, hello["confirm_ttl"])
    transport = TelegramTransport(settings, port, clock=RealClock(), **hello.get("options", {}))
    listening = asyncio.create_task(_listen(wire, port, transport))
    try:
        await transport.start()
    except Exception as exc:
        await wire.send({"op": "failed", "error": f"{type(exc).__name__}: {exc}"})
        listening.cancel()
        return 1
    await wire.send({"op": "ready", "username": transport.bot.username})
    beating = asyncio.create_task(_beat(wire, hello.get("beat", BEAT_SECONDS)))
    await listening
    beating.cancel()
    port.gone()
    await transport.shutdown()
    await wire.close()
    return 0


async def _listen(wire: Wire, port: RemotePort, transport: TelegramTransport) -> None:
    """Answers and pulses as they come; a `stop` lets the commands in flight finish (their
    answers keep coming here meanwhile) and says `stopped`."""
    stopping: asyncio.Task | None = None

    async def stop() -> None:
        await transport.stop_polling()
        await wire.send({"op": "stopped"})

    while (message := await wire.receive()) is not None:
        if message.get("op") == "stop":
            stopping = stopping or asyncio.create_task(stop())
        else:
            port.received(message)
    port.gone()
    if stopping is not None:
        with contextlib.suppress(Exception):
            await stopping


async def _beat(wire: Wire, every: float) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while True:
            await asyncio.sleep(every)
            await wire.send({"op": "alive"})


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    sock = socket.socket(fileno=int(os.environ[FD_VARIABLE]))
    return asyncio.run(serve(sock))


if __name__ == "__main__":
    sys.exit(main())
