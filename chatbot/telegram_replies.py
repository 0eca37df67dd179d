"""The transport's way out: replies and edits to the owner chat through the Bot API.

Every request goes through `call`, which retries a bounded number of times: a flood wait up to
`max_flood_wait` is waited out, a network error is retried with backoff, HTML Telegram could not
parse is sent again as plain text, and a chat that became a supergroup is followed (the owner's
move is the OwnerChat's to record). Anything else is logged and the request given up: a reply
that cannot be sent must never break the command that produced it.

Apart from the transport (chatbot/telegram.py) because sending is the same whoever asks: a
command's reply, a confirmation's edit, the hourly intruder report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from chatbot.senders import html_to_text, retry_after_seconds, split_caption, split_text
from chatbot.telegram_guard import OwnerChat
from handlers.reply import Reply

log = logging.getLogger("chatbot.telegram")
T = TypeVar("T")
Request = Callable[[bool, Any], Awaitable[T]]  # (plain, chat_id) -> the Bot API call


class TelegramReplies:
    """Sends and edits in HTML, with the bounded retries of `call` (see module doc)."""

    def __init__(
        self,
        bot: Bot,
        owner: OwnerChat,
        *,
        attempts: int = 3,
        retry_backoff: float = 1.0,
        max_flood_wait: float = 60.0,
    ) -> None:
        self.bot = bot
        self.owner = owner
        self.attempts = max(1, attempts)
        self.retry_backoff = retry_backoff
        self.max_flood_wait = max_flood_wait

    async def deliver(self, chat_id: int, reply: Reply) -> Message | None:
        """Send a reply: a photo with its caption, texts split at 4,096 characters, buttons on
        the last part. Returns the last message sent (None: nothing could be sent)."""
        markup = None
        if reply.buttons:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(b.label, callback_data=b.data) for b in reply.buttons]]
            )
        text = reply.text
        sent: Message | None = None
        if reply.photo is not None:
            photo = reply.photo
            caption, text = split_caption(text)
            sent = await self.call(
                "sendPhoto",
                lambda plain, chat: self.bot.send_photo(
                    chat, photo=photo, caption=_as(caption, plain), parse_mode=_mode(plain)
                ),
                chat_id,
            )
        parts = split_text(text) if text.strip() else []
        for i, part in enumerate(parts):
            keys = markup if i == len(parts) - 1 else None
            sent = await self.send_text(chat_id, part, keys)
        return sent

    async def send_text(
        self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> Message | None:
        return await self.call(
            "sendMessage",
            lambda plain, chat: self.bot.send_message(
                chat,
                _as(text, plain),
                parse_mode=_mode(plain),
                reply_markup=markup,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            ),
            chat_id,
        )

    async def edit(self, chat_id: int, message_id: int, text: str) -> None:
        """Replace a confirmation's text (and drop its buttons); overflow goes as new messages.
        A message left behind in a group that became a supergroup cannot be edited: the text
        goes to the supergroup as a new message."""
        parts = split_text(text) or ["(no text)"]
        if not self.owner.left(chat_id):
            await self.call(
                "editMessageText",
                lambda plain, chat: self.bot.edit_message_text(
                    _as(parts[0], plain),
                    chat_id=chat,
                    message_id=message_id,
                    parse_mode=_mode(plain),
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                ),
                chat_id,
                movable=False,
            )
            if not self.owner.left(chat_id):
                parts = parts[1:]
        for part in parts:
            await self.send_text(chat_id, part)

    async def call(
        self, what: str, request: Request[T], chat_id: Any = None, *, movable: bool = True
    ) -> T | None:
        """One Bot API request with bounded retries; `request(plain, chat)` sends without HTML
        when Telegram could not parse ours, and to the supergroup a group became (`movable`).
        Returns None when it could not be done (logged)."""
        plain = False
        chat = self.owner.route(chat_id)
        for attempt in range(1, self.attempts + 1):
            try:
                return await request(plain, chat)
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                if wait > self.max_flood_wait or attempt == self.attempts:
                    log.warning("telegram: %s dropped: flood control for %.0f s", what, wait)
                    return None
                await asyncio.sleep(wait)
            except ChatMigrated as exc:
                self.owner.moved(chat, exc.new_chat_id)
                if not movable or chat == exc.new_chat_id:
                    return None
                chat = exc.new_chat_id
            except BadRequest as exc:
                if plain or not _unparsed(what, exc):
                    return None
                plain = True
            except (Forbidden, InvalidToken) as exc:
                log.error("telegram: %s refused: %s", what, exc.message)
                return None
            except NetworkError as exc:  # after BadRequest, which is a NetworkError in PTB
                if attempt == self.attempts:
                    log.warning("telegram: %s failed %d times: %s", what, attempt, exc.message)
                    return None
                await asyncio.sleep(self.retry_backoff * 2 ** (attempt - 1))
            except TelegramError as exc:  # EndPointNotFound, Conflict, ...
                log.warning("telegram: %s failed: %s: %s", what, type(exc).__name__, exc.message)
                return None
        return None


def _unparsed(what: str, exc: BadRequest) -> bool:
    """Whether Telegram refused our HTML (send it again as text); other refusals are logged."""
    text = exc.message.lower()
    if "parse" in text:
        log.warning("telegram: %s: HTML rejected (%s); sending as text", what, text)
        return True
    if "not modified" not in text:
        log.warning("telegram: %s refused: %s", what, exc.message)
    return False


def _mode(plain: bool) -> str | None:
    return None if plain else ParseMode.HTML


def _as(text: str, plain: bool) -> str:
    return html_to_text(text) if plain else text
