"""The wire between the trading process and its command front (chatbot/front.py): one JSON
object per line over a socket pair, each way.

Front -> trading: requests the Dispatcher answers ({"id", "op": handle | ask | take | settle},
answered by {"id", ...}), and notes that need no answer (note, expire; `ping` is a note too: the
front answered it and the trading side audits it).
Trading -> front: the answers, `hello` (what the front needs to poll: the Telegram settings),
`pulse` (the /ping text, rendered on the trading loop a few times a second) and `stop`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from typing import Any

from handlers.reply import Button, Reply

# A reply may carry a chart: a PNG of a few hundred kilobytes, base64 in one line.
LINE_LIMIT = 32 * 2**20


def reply_to_wire(reply: Reply) -> dict[str, Any]:
    return {
        "text": reply.text,
        "buttons": [[b.label, b.data] for b in reply.buttons],
        "photo": None if reply.photo is None else base64.b64encode(reply.photo).decode(),
        "ok": reply.ok,
    }


def reply_from_wire(data: dict[str, Any]) -> Reply:
    photo = data.get("photo")
    return Reply(
        text=data["text"],
        buttons=tuple(Button(label, value) for label, value in data.get("buttons", ())),
        photo=None if photo is None else base64.b64decode(photo),
        ok=bool(data.get("ok", True)),
    )


class Wire:
    """One end of the socket pair: send a message, receive the next (None: the other end is
    gone). Sends are serialized, so concurrent senders never interleave their lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._sending = asyncio.Lock()

    @classmethod
    async def over(cls, sock: socket.socket) -> Wire:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=LINE_LIMIT)
        return cls(reader, writer)

    async def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        async with self._sending:
            if self.writer.is_closing():
                raise ConnectionError("the other end of the command front's wire is closed")
            self.writer.write(line)
            await self.writer.drain()

    async def receive(self) -> dict[str, Any] | None:
        try:
            line = await self.reader.readline()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return None
        if not line:
            return None
        return json.loads(line)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
