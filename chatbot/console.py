"""The console transport: with no Telegram token, commands come from stdin and replies and
notifications go to stdout, through the same dispatcher and command table as Telegram.

stdin is read only when someone can type into it (a terminal, a pipe, a file): on a server
stdin is /dev/null or closed, and the bot just runs. EOF on a read stdin ends the bot cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
import threading
from typing import TextIO

from handlers.dispatch import Dispatcher
from handlers.reply import Reply, plain

WHO = "console"


def stdin_is_readable(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdin
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return os.isatty(fd) or stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


def render(reply: Reply) -> str:
    text = plain(reply.text)
    if reply.buttons:
        text += "\n(type yes to confirm, no to cancel)"
    if reply.photo is not None:
        text += f"\n[picture: {len(reply.photo)} bytes; shown in Telegram]"
    return text


class Console:
    def __init__(
        self, dispatcher: Dispatcher, *, inp: TextIO | None = None, out: TextIO | None = None
    ) -> None:
        self.dispatcher = dispatcher
        self.inp = inp or sys.stdin
        self.out = out or sys.stdout
        self._confirm: str | None = None  # token of the open confirmation

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def run(self) -> None:
        """Answer commands until EOF."""
        lines = self._reader()
        self.say("Console ready: type /help")
        while (line := await lines.get()) is not None:
            if line.strip():
                self.say(render(await self.answer(line)))

    async def answer(self, line: str) -> Reply:
        word = line.strip().lower()
        if self._confirm is not None and word in ("yes", "y", "no", "n"):
            action = "confirm" if word.startswith("y") else "cancel"
            token, self._confirm = self._confirm, None
            return await self.dispatcher.press(f"{action}:{token}", WHO)
        reply = await self.dispatcher.handle(line, WHO)
        self._confirm = None
        for button in reply.buttons:
            if button.data.startswith("confirm:"):
                self._confirm = button.data.partition(":")[2]
        return reply

    def _reader(self) -> asyncio.Queue[str | None]:
        """Blocking reads on a daemon thread, so a waiting readline never holds up shutdown."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def pump() -> None:
            try:
                for line in self.inp:
                    loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
            except (OSError, ValueError):
                pass
            finally:
                with contextlib.suppress(RuntimeError):  # the loop may be closed already
                    loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=pump, name="console-stdin", daemon=True).start()
        return queue
