"""The Telegram transport: python-telegram-bot's Application in front of the Dispatcher.

    updates --(gate: owner chat, allowed users)--> CommandHandler per table command --> Dispatcher
                                                   CallbackQueryHandler (Confirm / Cancel)
    anything else: no reply; the first try of each sender logged, the rest counted and reported
    to the owner (and logged, audited) once an hour

This module (with chatbot/senders.py) is the only one that knows python-telegram-bot. It runs on
the bot's one event loop: `start()` is initialize + setMyCommands + start + start_polling, never
run_polling (which would own and close the loop). Updates are processed concurrently, so /ping
and /kill answer while another command waits on a slow exchange.

Waits towards Telegram (flood control, network retries, the polling cadence of the expiry check)
use real time: Telegram's clock is real whatever clock the traders run on. Deadlines (a
confirmation's 60 s, the hourly report) use the injected clock, like the Dispatcher. Whether a
command is stale is judged on Telegram's own clock (TelegramTime), never on the host's alone.
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

import httpx
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    MaybeInaccessibleMessage,
    Message,
    Update,
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
from telegram.request import HTTPXRequest

from chatbot.config import TelegramSettings
from chatbot.senders import (
    TELEGRAM_CAPTION_LIMIT,
    html_to_text,
    retry_after_seconds,
    split_text,
)
from chatbot.telegram_guard import Intruders, TelegramTime
from handlers.dispatch import Dispatcher
from handlers.reply import Reply, esc, refuse
from trading.clock import Clock

log = logging.getLogger("chatbot.telegram")
T = TypeVar("T")
Request = Callable[[bool, Any], Awaitable[T]]  # (plain, chat_id) -> the Bot API call

# Commands that waited this long for the bot (it was down) are not run as sent: a /buy typed an
# hour ago is not what the owner wants now. They are told to send it again; the safety ones
# (a confirm command of the table, /pause, /ack) ask for a tap instead, as /kill may still be due.
STALE_AFTER_SECONDS = 300.0
ASK_WHEN_STALE = frozenset({"pause", "ack"})
REPORT_EVERY_SECONDS = 3600.0
ALLOWED_UPDATES = (Update.MESSAGE, Update.CALLBACK_QUERY)
PEEK_LIMIT = 100  # getUpdates' page; a longer backlog is judged update by update


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
        wall: Callable[[], float] = time.time,
    ) -> None:
        if settings.token is None:
            raise ValueError("the Telegram transport needs TELEGRAM_BOT_TOKEN")
        self.settings = settings
        self.dispatcher = dispatcher
        self.clock = clock
        self.poll_timeout = poll_timeout
        self.tick = tick  # seconds between checks for expired confirmations
        self.stale_after = stale_after
        self.attempts = max(1, attempts)
        self.retry_backoff = retry_backoff
        self.max_flood_wait = max_flood_wait
        self.stop_timeout = stop_timeout
        self.telegram_time = TelegramTime(wall)  # `wall`: the host's clock, may be off
        hooks = {"event_hooks": {"response": [self._on_response]}}
        builder = (
            Application.builder()
            .token(settings.token.get())
            .concurrent_updates(True)
            # The trading jobs have their own scheduler; PTB's JobQueue would be a second one.
            .job_queue(None)
            # PTB's own defaults (256 connections, 1 for polling), plus the Date-header hook.
            .request(HTTPXRequest(connection_pool_size=256, httpx_kwargs=hooks))
            .get_updates_request(HTTPXRequest(connection_pool_size=1, httpx_kwargs=hooks))
        )
        if settings.api_base_url:
            builder = builder.base_url(settings.api_base_url).base_file_url(
                file_url(settings.api_base_url)
            )
        self.app: Application = builder.build()
        self.bot = self.app.bot  # the notifier's TelegramSender sends through the same Bot
        self.owner_chat = settings.chat_id  # follows a group's upgrade to a supergroup
        self._chat_filter = filters.Chat(chat_id=settings.chat_id, allow_empty=False)
        self._moves: dict[int, int] = {}  # old chat id -> its supergroup's
        self._open: dict[str, _Open] = {}
        self._backlog_until: int | None = 0  # last update id waiting at start; None: unknown
        self._ticker: asyncio.Task | None = None
        self.intruders = Intruders(dispatcher, clock, report_every)
        self._register()

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """getMe, setMyCommands from the table, note the backlog, then poll. Raises if Telegram
        refuses the token (InvalidToken) or cannot be reached at all (NetworkError)."""
        try:
            await self.app.initialize()
        except Exception:
            # The HTTP clients were opened before getMe failed; the Application's shutdown
            # skips an application that never initialized, the Bot's does not.
            with contextlib.suppress(Exception):
                await self.bot.shutdown()
            raise
        await self._publish_commands()
        self._backlog_until = await self._peek_backlog()
        await self.app.start()
        await self.app.updater.start_polling(
            poll_interval=0.0,
            timeout=dtm.timedelta(seconds=self.poll_timeout),
            bootstrap_retries=2,
            allowed_updates=list(ALLOWED_UPDATES),
        )
        self._ticker = asyncio.create_task(self._tick_forever(), name="telegram-confirmations")
        log.info("telegram: polling as @%s", self.bot.username)

    async def stop_polling(self) -> None:
        """No new command from now on: stop fetching updates and let the commands already
        running finish and send their replies (at most `stop_timeout` s each step). The Bot
        stays open, so the notifier can still flush through it. Never raises."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ticker
            self._ticker = None
        await self._step("stop polling", self.app.updater.stop, self.app.updater.running)
        await self._step("stop", self.app.stop, self.app.running)

    async def shutdown(self) -> None:
        """Close the Application and the Bot the notifier shares: after the notifier's last
        flush. Stops polling first if that was not done. Never raises."""
        await self.stop_polling()
        await self._step("shut down", self.app.shutdown, True)

    async def stop(self) -> None:
        """stop_polling() then shutdown(), for a caller with nothing to flush in between."""
        await self.shutdown()

    async def _step(self, what: str, step: Callable[[], Awaitable[Any]], due: bool) -> None:
        if not due:
            return
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

    async def _peek_backlog(self) -> int | None:
        """The id of the last update already waiting for the bot (0: none; None: unknown).
        Without an offset getUpdates confirms nothing: polling receives the same updates."""
        try:
            waiting = await self.bot.get_updates(
                limit=PEEK_LIMIT, timeout=dtm.timedelta(0), allowed_updates=ALLOWED_UPDATES
            )
        except TelegramError as exc:
            log.warning("telegram: the waiting updates could not be seen (%s)", exc)
            return None
        if len(waiting) >= PEEK_LIMIT:
            return None
        return max((u.update_id for u in waiting), default=0)

    async def _on_response(self, response: httpx.Response) -> None:
        self.telegram_time.observe(response.headers.get("date"))

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
        if self._migration(update):
            raise ApplicationHandlerStop  # a service message: nothing to run or answer
        if self.authorized(update):
            return
        if update.effective_message is not None or update.callback_query is not None:
            self.intruders.record(update)
            await self._report_intruders()
        raise ApplicationHandlerStop  # no handler sees it, nothing is answered

    def _migration(self, update: Update) -> bool:
        """Telegram's service message that a group became a supergroup. The owner group's is
        followed whoever changed the setting: Telegram writes these messages, no user can."""
        message = update.message
        if message is None:
            return False
        if message.migrate_to_chat_id:
            self._moved(message.chat_id, message.migrate_to_chat_id)
        elif message.migrate_from_chat_id:
            self._moved(message.migrate_from_chat_id, message.chat_id)
        else:
            return False
        return True

    def _moved(self, old: int | None, new: int) -> None:
        """A group has a new id. The owner's is obeyed and answered there from now on, or /kill
        would stop working the day someone changes a group setting."""
        if old is None or old == new:
            return
        self._moves[old] = new
        if old == self.owner_chat:
            log.warning("telegram: the owner chat moved to %s; obeying it there", new)
            self.owner_chat = new
            self._chat_filter.chat_ids = {new}

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
        age = self._stale_age(update, message)
        if age is None:
            reply = await self.dispatcher.handle(message.text, self.who(update))
        else:
            reply = self._late(message.text, self.who(update), age)
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

    def _stale_age(self, update: Update, message: Message) -> float | None:
        """How long ago a stale command was sent (None: not stale). Only what already waited
        when polling started can be: anything received since is run, whatever the dates say.
        Ages are on Telegram's clock, which also dates the messages."""
        if self.stale_after is None or message.date is None:
            return None
        if self._backlog_until is not None and update.update_id > self._backlog_until:
            return None
        age = self.telegram_time.now() - message.date.timestamp()
        return age if age > self.stale_after else None

    def _late(self, text: str, who: str, age: float) -> Reply:
        when = f"{esc(text)} was sent {age / 60:.0f} min ago, while the bot was not listening."
        name = text.split(maxsplit=1)[0].lstrip("/").split("@", 1)[0].lower()
        command = self.dispatcher.commands.get(name)
        if command is not None and (command.confirm or name in ASK_WHEN_STALE):
            reply = self.dispatcher.ask(text, who, f"⏳ {when}")
            if reply.buttons:  # else refused (a bad argument) and audited as such
                self.dispatcher.note(who, text, "stale: asked to confirm")
            return reply
        self.dispatcher.note(who, text, "ignored: stale")
        return refuse(f"Not run: {when} Send it again if you still mean it.")

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
                lambda plain, chat: self.bot.send_photo(
                    chat, photo=photo, caption=_as(caption, plain), parse_mode=_mode(plain)
                ),
                chat_id,
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
                    self._open[token] = _Open(sent.chat_id, sent.message_id, line, expires)
        return sent

    async def _send_text(
        self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> Message | None:
        return await self._call(
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

    async def _edit(self, chat_id: int, message_id: int, text: str) -> None:
        """Replace a confirmation's text (and drop its buttons); overflow goes as new messages.
        A message left behind in a group that became a supergroup cannot be edited: the text
        goes to the supergroup as a new message."""
        parts = split_text(text) or ["(no text)"]
        if chat_id not in self._moves:
            await self._call(
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
            if chat_id not in self._moves:
                parts = parts[1:]
        for part in parts:
            await self._send_text(chat_id, part)

    # ---- confirmations --------------------------------------------------------------------

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or not self.authorized(update):
            return
        where = _where(query.message)
        if where is None:
            return  # a button in inline mode: none of ours
        data, who = query.data or "", self.who(update)
        # Both claims before any await: of two taps on one message, whichever comes second
        # (Cancel after Confirm, or Confirm twice) only gets a note while the first one runs.
        opened = self._open.pop(data.partition(":")[2], None)
        claim = self.dispatcher.take(data, who)
        if isinstance(claim, Reply):
            note = html_to_text(claim.text)[:190]
            await self._call("answerCallbackQuery", lambda plain, chat: query.answer(note))
            if opened is not None:  # its buttons still show: it expired a moment ago
                await self._edit(*where, claim.text)
            return
        await self._call("answerCallbackQuery", lambda plain, chat: query.answer())
        if claim.action == "confirm":
            # The buttons go at once: the owner sees the press was taken while it runs.
            await self._edit(*where, f"⏳ {esc(claim.line)}: running…")
        reply = await self.dispatcher.settle(claim, who)
        await self._edit(*where, reply.text)

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

    async def _report_intruders(self) -> None:
        text = self.intruders.report()
        if text is not None and self.owner_chat is not None:
            await self._send_text(self.owner_chat, text)

    # ---- Telegram calls -------------------------------------------------------------------

    async def _call(
        self, what: str, request: Request[T], chat_id: Any = None, *, movable: bool = True
    ) -> T | None:
        """One Bot API request with bounded retries; `request(plain, chat)` sends without HTML
        when Telegram could not parse ours, and to the supergroup a group became (`movable`).
        Returns None when it could not be done (logged)."""
        plain = False
        chat = self._moves.get(chat_id, chat_id)
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
                self._moved(chat, exc.new_chat_id)
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

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: handling an update failed", exc_info=context.error)


def _where(message: object) -> tuple[int, int] | None:
    """(chat id, message id) of a pressed button's message, even one too old to be sent
    whole (an InaccessibleMessage)."""
    if isinstance(message, MaybeInaccessibleMessage):
        return message.chat.id, message.message_id
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


def _caption(text: str) -> tuple[str, str]:
    """The first lines that fit a photo caption (1,024), and the rest to follow as text."""
    parts = split_text(text, TELEGRAM_CAPTION_LIMIT)
    caption = parts[0] if parts else ""
    if not text.startswith(caption):
        return "", text
    return caption, text[len(caption) :].lstrip("\n")
