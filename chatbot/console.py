"""The console transport: with no Telegram token, commands come from stdin and replies and
notifications go to stdout, through the same dispatcher and command table as Telegram.

stdin is read only when someone can type into it (a terminal, a pipe, a file): on a server
stdin is /dev/null or closed, and the bot just runs. EOF on a read stdin ends the bot cleanly.

A picture (/chart) cannot be shown in a terminal: it is saved as a PNG file in the console's
picture folder (DATA_DIR/charts/, the newest KEEP_PICTURES kept) and its path printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from handlers.dispatch import Dispatcher
from handlers.reply import Reply, plain

WHO = "console"
KEEP_PICTURES = 50


def stdin_is_readable(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdin
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return os.isatty(fd) or stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


def render(reply: Reply, pictures: Path | None = None) -> str:
    """The reply as terminal text; its picture saved in `pictures` (when given) and named."""
    text = plain(reply.text)
    if reply.buttons:
        text += "\n(type yes to confirm, no to cancel)"
    if reply.photo is not None:
        if pictures is None:
            text += f"\n[picture: {len(reply.photo)} bytes; shown in Telegram]"
        else:
            text += f"\n[picture saved: {save_picture(pictures, reply.photo)}]"
    return text


def save_picture(folder: Path, png: bytes) -> Path:
    """Write `png` under a new name in `folder` and drop the oldest past KEEP_PICTURES."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    taken = {p.name for p in folder.glob(f"chart-{stamp}*.png")}
    name = next(
        n for k in range(len(taken) + 1) if (n := f"chart-{stamp}-{k:03d}.png") not in taken
    )
    path = folder / name
    path.write_bytes(png)
    for old in sorted(folder.glob("chart-*.png"))[:-KEEP_PICTURES]:
        old.unlink(missing_ok=True)
    return path.resolve()


class Console:
    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        inp: TextIO | None = None,
        out: TextIO | None = None,
        pictures: Path | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.inp = inp or sys.stdin
        self.out = out or sys.stdout
        self.pictures = pictures  # where a reply's picture is saved; None: only its size said
        self._confirm: str | None = None  # token of the open confirmation

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def run(self) -> None:
        """Answer commands until EOF."""
        lines = self._reader()
        self.say("Console ready: type /help")
        while (line := await lines.get()) is not None:
            if line.strip():
                self.say(render(await self.answer(line), self.pictures))

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
