"""Where notifications go: one small `Sender` interface, with Telegram and console behind it.

The notifier owns ordering, lanes and counting; a sender only delivers one `Message` and raises
when it could not. `SendDeferred` is the one exception that is not a failure: the transport asked
us to come back later (Telegram's 429 RetryAfter), so the notifier keeps the message, waits, and
then picks the most urgent message first, which need not be the one that was refused.
"""

from __future__ import annotations

import datetime as dtm
import html
import logging
import os
import re
import sys
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Protocol, TextIO

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, NetworkError, RetryAfter
from telegram.warnings import PTBDeprecationWarning

from trading.clock import Clock

log = logging.getLogger("chatbot.senders")

# PTB 22 warns (PTBDeprecationWarning) inside RetryAfter's constructor unless time periods are
# opted in as timedeltas; with warnings as errors that warning would replace the RetryAfter
# itself. Opt in, as PTB advises; retry_after_seconds() reads both forms.
os.environ.setdefault("PTB_TIMEDELTA", "true")

TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Message:
    """One notification as the transports see it: HTML text (Telegram's subset), already
    escaped, plus how loud it should be."""

    text: str
    silent: bool = False
    emergency: bool = False
    key: str | None = None  # the emergency condition, so pagers can cancel or resolve it
    photo: bytes | None = None


class Sender(Protocol):
    """Delivers a message or raises. Raising `SendDeferred` means "not now, not failed"."""

    async def send(self, message: Message) -> None: ...


class SendDeferred(Exception):
    """The transport refused for `wait` seconds (flood control); nothing was delivered."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"deferred for {wait:g} s")
        self.wait = wait


_TAG = re.compile(r"<[^>]*>")


def html_to_text(text: str) -> str:
    """Telegram HTML to plain text, for the console, pagers and the parse-error fallback."""
    return html.unescape(_TAG.sub("", text))


class ConsoleSender:
    """Prints one line per message (the console transport, and the default with no token)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out

    async def send(self, message: Message) -> None:
        out = self._out or sys.stdout
        marker = "ALERT" if message.emergency else ("quiet" if message.silent else "note")
        lines = [line.strip() for line in html_to_text(message.text).splitlines()]
        text = " | ".join(line for line in lines if line)
        if message.photo is not None:
            text += f" [photo, {len(message.photo)} bytes]"
        out.write(f"[{marker}] {text}\n")
        out.flush()


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units (an emoji counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Split on line boundaries into parts Telegram accepts. Our HTML keeps every tag inside one
    line, so a line boundary is always a safe cut; a single overlong line is cut hard, never
    inside a tag or an entity."""
    if utf16_len(text) <= limit:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in _hard_wrap(text.split("\n"), limit):
        cost = utf16_len(line) + (1 if current else 0)
        if current and size + cost > limit:
            parts.append("\n".join(current))
            current, size = [], 0
            cost = utf16_len(line)
        current.append(line)
        size += cost
    if current:
        parts.append("\n".join(current))
    return [p for p in parts if p.strip()] or [text[:limit]]


def _hard_wrap(lines: list[str], limit: int) -> list[str]:
    out: list[str] = []
    for line in lines:
        while utf16_len(line) > limit:
            cut = _safe_cut(line, limit)
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    return out


def _safe_cut(line: str, limit: int) -> int:
    cut = limit
    while utf16_len(line[:cut]) > limit:  # astral characters take two units
        cut -= 1
    head = line[:cut]
    # Do not end inside "<b ...>" or "&amp;": cut before the unfinished markup instead.
    for opener, closer in (("<", ">"), ("&", ";")):
        at = head.rfind(opener)
        if at > 0 and closer not in head[at:]:
            cut = min(cut, at)
    return max(cut, 1)


def retry_after_seconds(exc: RetryAfter) -> float:
    """The wait Telegram asked for, in seconds. PTB 22 warns when `retry_after` is read as an
    int (and warnings are errors in our tests), so read the timedelta it keeps."""
    value = getattr(exc, "_retry_after", None)
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


class MessagePacer:
    """Telegram's flood limits as waits: at most one message per `interval` to a chat, and for
    groups at most `per_window` messages in any `window` seconds."""

    def __init__(
        self, clock: Clock, *, interval: float = 1.0, per_window: int | None, window: float = 60.0
    ) -> None:
        self._clock = clock
        self._interval = interval
        self._per_window = per_window
        self._window = window
        self._sent: deque[float] = deque(maxlen=per_window or 1)
        self.blocked_until = 0.0  # monotonic; set by a RetryAfter

    def delay(self) -> float:
        now = self._clock.monotonic()
        wait = self.blocked_until - now
        if self._sent:
            wait = max(wait, self._sent[-1] + self._interval - now)
        if self._per_window and len(self._sent) >= self._per_window:
            wait = max(wait, self._sent[0] + self._window - now)
        return max(0.0, wait)

    async def wait(self) -> None:
        delay = self.delay()
        if delay > 0:
            await self._clock.sleep(delay)

    def record(self) -> None:
        self._sent.append(self._clock.monotonic())


class TelegramSender:
    """Sends to one chat through python-telegram-bot's Bot: HTML, sound unless silent, paced
    to Telegram's limits, RetryAfter honoured exactly, network errors retried a bounded number
    of times, texts over 4,096 characters split on lines."""

    def __init__(
        self,
        bot: Bot,
        chat_id: int | str,
        clock: Clock,
        *,
        network_attempts: int = 3,
        network_backoff: float = 1.0,
        flood_attempts: int = 5,
        interval: float = 1.0,
    ) -> None:
        self._bot = bot
        self.chat_id = chat_id
        self._clock = clock
        self._network_attempts = max(1, network_attempts)
        self._network_backoff = network_backoff
        self._flood_attempts = max(1, flood_attempts)
        group = isinstance(chat_id, int) and chat_id < 0
        self._pacer = MessagePacer(clock, interval=interval, per_window=20 if group else None)

    @property
    def blocked_until(self) -> float:
        return self._pacer.blocked_until

    async def send(self, message: Message) -> None:
        text = message.text
        delivered = False
        if message.photo is not None:
            caption, text = split_caption(text)
            await self._call(message, caption, photo=message.photo, delivered=False)
            delivered = True
        for part in split_text(text) if text.strip() else []:
            await self._call(message, part, delivered=delivered)
            delivered = True

    async def _call(
        self, message: Message, text: str, *, delivered: bool, photo: bytes | None = None
    ) -> None:
        """One API call with its retries. A flood wait before anything of this message went out
        is handed back to the notifier (SendDeferred) so a more urgent message can go first;
        once part of a message is out, the rest waits here so the parts stay together."""
        network_failures = flood_waits = 0
        plain = migrated = False
        while True:
            await self._pacer.wait()
            try:
                await self._request(text, message.silent, photo=photo, plain=plain)
                self._pacer.record()
                return
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                self._pacer.blocked_until = self._clock.monotonic() + wait
                flood_waits += 1
                if not delivered:
                    raise SendDeferred(wait) from exc
                if flood_waits >= self._flood_attempts:
                    raise
            except ChatMigrated as exc:
                if migrated:
                    raise
                log.warning("telegram chat migrated to a supergroup; sending there from now on")
                self.chat_id = exc.new_chat_id
                migrated = True
            except BadRequest as exc:
                if plain or "parse" not in exc.message.lower():
                    raise
                # Broken markup must not cost an alert: say it again without formatting.
                log.warning("telegram rejected the HTML of a notification; resending as text")
                plain = True
            except NetworkError:  # after BadRequest: BadRequest is a NetworkError in PTB
                self._pacer.record()
                network_failures += 1
                if network_failures >= self._network_attempts:
                    raise
                await self._clock.sleep(self._network_backoff * 2 ** (network_failures - 1))

    async def _request(self, text: str, silent: bool, *, photo: bytes | None, plain: bool) -> None:
        parse_mode = None if plain else ParseMode.HTML
        if plain:
            text = html_to_text(text)
        if photo is not None:
            await self._bot.send_photo(
                self.chat_id,
                photo=photo,
                caption=text or None,
                parse_mode=parse_mode,
                disable_notification=silent,
            )
            return
        await self._bot.send_message(
            self.chat_id,
            text,
            parse_mode=parse_mode,
            disable_notification=silent,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )


def split_caption(text: str) -> tuple[str, str]:
    """A photo caption is limited to 1,024 characters: the first lines that fit go with the
    photo, the rest follows as text."""
    parts = split_text(text, TELEGRAM_CAPTION_LIMIT)
    caption = parts[0] if parts else ""
    if not text.startswith(caption):
        return "", text
    return caption, text[len(caption) :].lstrip("\n")
