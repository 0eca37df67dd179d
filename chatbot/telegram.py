"""The Telegram transport: python-telegram-bot's Application in front of the Dispatcher.

    updates --(gate: owner chat, allowed users)--> CommandHandler per table command --> Dispatcher
                                                   CallbackQueryHandler (Confirm / Cancel)
    anything else: no reply, a log line with the sender's ids, an hourly report to the owner

This module (with chatbot/senders.py) is the only one that knows python-telegram-bot. It runs on
the bot's one event loop: `start()` is initialize + setMyCommands + start + start_polling, never
run_polling (which would own and close the loop). Updates are processed concurrently, so /ping
and /kill answer while another command waits on a slow exchange.

Waits towards Telegram (flood control, network retries, the polling cadence of the expiry check)
use real time: Telegram's clock is real whatever clock the traders run on. Deadlines (a
confirmation's 60 s, the hourly report) use the injected clock, like the Dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from chatbot.config import TelegramSettings
from chatbot.senders import (
    TELEGRAM_CAPTION_LIMIT,
    html_to_text,
    retry_after_seconds,
    split_text,
)
from handlers.dispatch import Dispatcher
from handlers.reply import Reply, esc, refuse
from trading.clock import Clock

log = logging.getLogger("chatbot.telegram")
T = TypeVar("T")

# Commands sent this long before the bot saw them (it was down) are not run: a /buy typed an
# hour ago is not what the owner wants now. They are told to send it again.
STALE_AFTER_SECONDS = 300.0
REPORT_EVERY_SECONDS = 3600.0


@dataclass
class _Open:
    """A confirmation message waiting for its button."""

    chat_id: int
    message_id: int
    line: str
    expires_at: float


def file_url(base_url: str) -> str:
    """A self-hosted Bot API serves files next to the methods: .../bot -> .../file/bot."""
    if base_url.endswith("/bot"):
        return base_url[: -len("bot")] + "file/bot"
    return base_url


class TelegramTransport:
    """Commands from the owner chat through the Dispatcher, replies in HTML; confirmations as
    inline buttons edited to their outcome or to "expired"; intruders ignored and reported."""

    def __init__(
        self,
        settings: TelegramSettings,
        dispatcher: Dispatcher,
        *,
        clock: Clock,
        poll_timeout: float = 10.0,
        tick: float = 5.0,
        report_every: float = REPORT_EVERY_SECONDS,
        stale_after: float | None = STALE_AFTER_SECONDS,
        attempts: int = 3,
        retry_backoff: float = 1.0,
        max_flood_wait: float = 60.0,
        stop_timeout: float = 15.0,
    ) -> None:
        if settings.token is None:
            raise ValueError("the Telegram transport needs TELEGRAM_BOT_TOKEN")
        self.settings = settings
        self.dispatcher = dispatcher
        self.clock = clock
        self.poll_timeout = poll_timeout
        self.tick = tick  # seconds between checks for expired confirmations
        self.report_every = report_every
        self.stale_after = stale_after
        self.attempts = max(1, attempts)
        self.retry_backoff = retry_backoff
        self.max_flood_wait = max_flood_wait
        self.stop_timeout = stop_timeout
        builder = (
            Application.builder()
            .token(settings.token.get())
            .concurrent_updates(True)
            # The trading jobs have their own scheduler; PTB's JobQueue would be a second one.
            .job_queue(None)
        )
        if settings.api_base_url:
            builder = builder.base_url(settings.api_base_url).base_file_url(
                file_url(settings.api_base_url)
            )
        self.app: Application = builder.build()
        self.bot = self.app.bot  # the notifier's TelegramSender sends through the same Bot
        self.owner_chat = settings.chat_id  # follows a group's upgrade to a supergroup
        self._chat_filter = filters.Chat(chat_id=settings.chat_id, allow_empty=False)
        self._open: dict[str, _Open] = {}
        self._ticker: asyncio.Task | None = None
        self._intruders = 0  # unauthorized tries not reported yet
        self._latest_intruder = ""
        self._first_unreported: float | None = None
        self._reported_at: float | None = None
        self._register()

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """getMe, setMyCommands from the table, then poll. Raises if Telegram refuses the
        token (InvalidToken) or cannot be reached at all (NetworkError)."""
        try:
            await self.app.initialize()
        except Exception:
            # The HTTP clients were opened before getMe failed; the Application's shutdown
            # skips an application that never initialized, the Bot's does not.
            with contextlib.suppress(Exception):
                await self.bot.shutdown()
            raise
        await self._publish_commands()
        await self.app.start()
        await self.app.updater.start_polling(
            poll_interval=0.0,
            timeout=dtm.timedelta(seconds=self.poll_timeout),
            bootstrap_retries=2,
            allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
        )
        self._ticker = asyncio.create_task(self._tick_forever(), name="telegram-confirmations")
        log.info("telegram: polling as @%s", self.bot.username)

    async def stop(self) -> None:
        """Stop polling, let running commands send their replies (bounded), shut down.
        Never raises."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ticker
            self._ticker = None
        steps: list[tuple[str, Callable[[], Awaitable[Any]], bool]] = [
            ("stop polling", self.app.updater.stop, self.app.updater.running),
            ("stop", self.app.stop, self.app.running),
            ("shut down", self.app.shutdown, True),
        ]
        for what, step, due in steps:
            if not due:
                continue
            try:
                await asyncio.wait_for(step(), self.stop_timeout)
            except Exception:
                log.warning("telegram: %s failed", what, exc_info=True)

    async def _publish_commands(self) -> None:
        menu = [BotCommand(c.name, c.help) for c in self.dispatcher.commands.values()]
        try:
            await self.bot.set_my_commands(menu)
        except (NetworkError, RetryAfter) as exc:  # the menu is a convenience, not a must
            log.warning("telegram: the command menu was not published: %s", exc)

    # ---- routing --------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.add_handler(TypeHandler(Update, self._gate), group=-1)
        # Only new messages: an edited "/kill now" must not run a second time.
        new = self._chat_filter & filters.UpdateType.MESSAGE
        if self.settings.allowed_user_ids:
            new = new & filters.User(user_id=self.settings.allowed_user_ids)
        for name in self.dispatcher.commands:
            app.add_handler(CommandHandler(name, self._on_command, filters=new))
        app.add_handler(MessageHandler(new & filters.COMMAND, self._on_unknown))
        app.add_handler(CallbackQueryHandler(self._on_button, pattern=r"^(confirm|cancel):"))
        app.add_error_handler(self._on_error)

    def authorized(self, update: Update) -> bool:
        """The owner chat, and an allowed user when TELEGRAM_ALLOWED_USER_IDS is set."""
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None or self.owner_chat is None:
            return False
        if chat.id != self.owner_chat:
            return False
        allowed = self.settings.allowed_user_ids
        return not allowed or user.id in allowed

    async def _gate(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not isinstance(update, Update):
            return
        if self.authorized(update):
            message = update.effective_message
            if message is not None and message.migrate_to_chat_id:
                self._follow(message.migrate_to_chat_id)
            return
        if update.effective_message is not None or update.callback_query is not None:
            self._intruder(update)
            await self._report_intruders()
        raise ApplicationHandlerStop  # no handler sees it, nothing is answered

    def _follow(self, new_chat_id: int) -> None:
        """The owner group became a supergroup (a new chat id): obey and report there now,
        or /kill would stop working the day someone changes a group setting."""
        log.warning("telegram: the owner chat moved to %s; obeying it there", new_chat_id)
        self.owner_chat = new_chat_id
        self._chat_filter.chat_ids = {new_chat_id}

    @staticmethod
    def who(update: Update) -> str:
        user = update.effective_user
        if user is None:
            return "telegram:?"
        return f"telegram:{user.id}" + (f" @{user.username}" if user.username else "")

    # ---- commands -------------------------------------------------------------------------

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or not message.text or not self.authorized(update):
            return
        age = self._age(message)
        if age is not None:
            reply = refuse(
                f"Not run: {esc(message.text)} was sent {age / 60:.0f} min ago, while the bot "
                "was not listening. Send it again if you still mean it."
            )
            self.dispatcher.note(self.who(update), message.text, "ignored: stale")
        else:
            reply = await self.dispatcher.handle(message.text, self.who(update))
        await self.deliver(message.chat_id, reply, line=message.text)

    async def _on_unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command not in the table (the Dispatcher answers with a pointer to /help), unless
        it was addressed to another bot in the same group."""
        message = update.effective_message
        if message is None or not message.text or not self.authorized(update):
            return
        head = message.text.split(maxsplit=1)[0]
        _, at, addressee = head.partition("@")
        if at and addressee.lower() != (self.bot.username or "").lower():
            return
        reply = await self.dispatcher.handle(message.text, self.who(update))
        await self.deliver(message.chat_id, reply, line=message.text)

    def _age(self, message: Message) -> float | None:
        """How old a stale command is (None: fresh). Telegram dates are wall-clock."""
        if self.stale_after is None or message.date is None:
            return None
        age = time.time() - message.date.timestamp()
        return age if age > self.stale_after else None

    async def deliver(self, chat_id: int, reply: Reply, *, line: str = "") -> Message | None:
        """Send a reply: a photo with its caption, texts split at 4,096 characters, buttons on
        the last part. A confirmation's message is remembered to be edited later."""
        markup = None
        if reply.buttons:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(b.label, callback_data=b.data) for b in reply.buttons]]
            )
        text = reply.text
        sent: Message | None = None
        if reply.photo is not None:
            photo = reply.photo
            caption, text = _caption(text)
            sent = await self._call(
                "sendPhoto",
                lambda plain: self.bot.send_photo(
                    chat_id, photo=photo, caption=_as(caption, plain), parse_mode=_mode(plain)
                ),
            )
        parts = split_text(text) if text.strip() else []
        for i, part in enumerate(parts):
            keys = markup if i == len(parts) - 1 else None
            sent = await self._send_text(chat_id, part, keys)
        if markup is not None and sent is not None:
            for button in reply.buttons:
                action, _, token = button.data.partition(":")
                if action == "confirm":
                    # The Dispatcher's deadline, set when it asked; gone already: due now.
                    expires = self.dispatcher.expires_at(token) or self.clock.time()
                    self._open[token] = _Open(chat_id, sent.message_id, line, expires)
        return sent

    async def _send_text(
        self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> Message | None:
        return await self._call(
            "sendMessage",
            lambda plain: self.bot.send_message(
                chat_id,
                _as(text, plain),
                parse_mode=_mode(plain),
                reply_markup=markup,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            ),
        )

    async def _edit(self, chat_id: int, message_id: int, text: str) -> None:
        """Replace a confirmation's text (and drop its buttons); overflow goes as new messages."""
        parts = split_text(text) or ["(no text)"]
        await self._call(
            "editMessageText",
            lambda plain: self.bot.edit_message_text(
                _as(parts[0], plain),
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=_mode(plain),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            ),
        )
        for part in parts[1:]:
            await self._send_text(chat_id, part)

    # ---- confirmations --------------------------------------------------------------------

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or not self.authorized(update):
            return
        data = query.data or ""
        action, _, token = data.partition(":")
        opened = self._open.pop(token, None)
        if opened is None:
            # Pressed twice, or after it expired: a note for the presser; what the message
            # shows (the outcome, or "expired") stays.
            reply = await self.dispatcher.press(data, self.who(update))
            target = self._message_of(query.message)
            if not reply.ok or target is None:
                note = html_to_text(reply.text)[:190]
                await self._call("answerCallbackQuery", lambda plain: query.answer(note))
                return
            await self._call("answerCallbackQuery", lambda plain: query.answer())
            await self._edit(target.chat_id, target.message_id, reply.text)
            return
        await self._call("answerCallbackQuery", lambda plain: query.answer())
        if action == "confirm":
            # Drop the buttons at once: a second press while the command runs does nothing.
            await self._edit(opened.chat_id, opened.message_id, f"⏳ {esc(opened.line)}: running…")
        reply = await self.dispatcher.press(data, self.who(update))
        await self._edit(opened.chat_id, opened.message_id, reply.text)

    @staticmethod
    def _message_of(message: object) -> _Open | None:
        if isinstance(message, Message):
            return _Open(message.chat_id, message.message_id, "", 0.0)
        return None

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                await self.check()
            except Exception:
                log.exception("telegram: the periodic check failed")

    async def check(self) -> None:
        """Edit confirmations left unpressed past their time to "expired"; send the hourly
        report of unauthorized tries when one is due."""
        self.dispatcher.expire()
        now = self.clock.time()
        for token, opened in list(self._open.items()):
            if now <= opened.expires_at:
                continue
            del self._open[token]
            await self._edit(
                opened.chat_id,
                opened.message_id,
                f"⌛ <b>Expired</b>: {esc(opened.line)} was not confirmed within "
                f"{self.dispatcher.confirm_ttl:.0f} s. Nothing done.",
            )
        await self._report_intruders()

    # ---- intruders --------------------------------------------------------------------------

    def _intruder(self, update: Update) -> None:
        user, chat = update.effective_user, update.effective_chat
        uid = user.id if user else None
        cid = chat.id if chat else None
        message = update.effective_message
        if update.callback_query is not None:
            what = "a button press"
        elif message is not None and message.text:
            what = message.text.split(maxsplit=1)[0][:40]
        else:
            what = "a message"
        log.warning("telegram: ignored %s from user %s in chat %s: not authorized", what, uid, cid)
        self._intruders += 1
        if self._first_unreported is None:
            self._first_unreported = self.clock.time()
        name = f" @{user.username}" if user and user.username else ""
        self._latest_intruder = f"{what} from user {uid}{name} in chat {cid}"
        self.dispatcher.note(f"telegram:{uid} chat {cid}", what, "ignored: not authorized")

    async def _report_intruders(self) -> None:
        """At most one report per `report_every` seconds to the owner chat."""
        owner = self.owner_chat
        if not self._intruders or owner is None:
            return
        now = self.clock.time()
        if self._reported_at is not None and now - self._reported_at < self.report_every:
            return
        count, latest, first = self._intruders, self._latest_intruder, self._first_unreported
        self._intruders, self._first_unreported, self._reported_at = 0, None, now
        since = f" in the last {(now - first) / 60:.0f} min" if first and now - first >= 60 else ""
        text = (
            f"⚠️ <b>Unauthorized</b>: {count} tr{'y' if count == 1 else 'ies'} to command the "
            f"bot ignored{since}, none answered. Latest: {esc(latest)}."
        )
        await self._send_text(owner, text)

    # ---- Telegram calls -------------------------------------------------------------------

    async def _call(self, what: str, request: Callable[[bool], Awaitable[T]]) -> T | None:
        """One Bot API request with bounded retries; `request(plain)` sends without HTML when
        Telegram could not parse ours. Returns None when it could not be done (logged)."""
        plain = False
        for attempt in range(1, self.attempts + 1):
            try:
                return await request(plain)
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                if wait > self.max_flood_wait or attempt == self.attempts:
                    log.warning("telegram: %s dropped: flood control for %.0f s", what, wait)
                    return None
                await asyncio.sleep(wait)
            except BadRequest as exc:
                text = exc.message.lower()
                if "not modified" in text:
                    return None
                if "parse" in text and not plain:
                    log.warning("telegram: %s: HTML rejected (%s); sending as text", what, text)
                    plain = True
                    continue
                log.warning("telegram: %s refused: %s", what, exc.message)
                return None
            except (Forbidden, InvalidToken) as exc:
                log.error("telegram: %s refused: %s", what, exc.message)
                return None
            except NetworkError as exc:  # after BadRequest, which is a NetworkError in PTB
                if attempt == self.attempts:
                    log.warning("telegram: %s failed %d times: %s", what, attempt, exc.message)
                    return None
                await asyncio.sleep(self.retry_backoff * 2 ** (attempt - 1))
            except TelegramError as exc:  # ChatMigrated, EndPointNotFound, ...
                log.warning("telegram: %s failed: %s: %s", what, type(exc).__name__, exc.message)
                return None
        return None

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: handling an update failed", exc_info=context.error)


def _mode(plain: bool) -> str | None:
    return None if plain else ParseMode.HTML


def _as(text: str, plain: bool) -> str:
    return html_to_text(text) if plain else text


def _caption(text: str) -> tuple[str, str]:
    """The first lines that fit a photo caption (1,024), and the rest to follow as text."""
    parts = split_text(text, TELEGRAM_CAPTION_LIMIT)
    caption = parts[0] if parts else ""
    if not text.startswith(caption):
        return "", text
    return caption, text[len(caption) :].lstrip("\n")
