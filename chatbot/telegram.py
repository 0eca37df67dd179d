"""The Telegram transport: python-telegram-bot's Application in front of the Dispatcher.

    updates --(gate: owner chat, allowed users)--> CommandHandler per table command --> Dispatcher
                                                   CallbackQueryHandler (Confirm / Cancel)
    anything else: no reply; the first try of each sender logged, the rest counted and reported
    to the owner (and logged, audited) once an hour

This module holds the Application: its lifecycle, the handlers' registration, and the routing of
each update. What it consults or delegates to lives beside it: the guards (chatbot/
telegram_guard.py: the owner chat, stale commands, Telegram's clock, intruders), the replies
(chatbot/telegram_replies.py: Bot API requests with their retries) and the confirmation buttons
(chatbot/telegram_confirm.py). These modules, chatbot/senders.py and the watchdog are the only
ones that know python-telegram-bot. It runs on the bot's one event loop: `start()` is
initialize + setMyCommands + start + start_polling, never run_polling (which would own and close
the loop). Updates are processed concurrently, so /ping and /kill answer while another command
waits on a slow exchange.

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
from typing import Any

import httpx
from telegram import BotCommand, Message, Update
from telegram.error import NetworkError, RetryAfter, TelegramError
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

from chatbot.command_port import CommandPort, port_of
from chatbot.config_channels import TelegramSettings
from chatbot.telegram_confirm import Confirmations
from chatbot.telegram_guard import (
    STALE_AFTER_SECONDS,
    Intruders,
    OwnerChat,
    StaleCommands,
    who,
)
from chatbot.telegram_replies import TelegramReplies
from handlers.dispatch import Dispatcher
from handlers.reply import Reply
from trading.clock import Clock

log = logging.getLogger("chatbot.telegram")

REPORT_EVERY_SECONDS = 3600.0
ALLOWED_UPDATES = (Update.MESSAGE, Update.CALLBACK_QUERY)
PEEK_LIMIT = 100  # getUpdates' page; a longer backlog is judged update by update


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
        dispatcher: Dispatcher | CommandPort,
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
        self.dispatcher = port_of(dispatcher)
        self.clock = clock
        self.poll_timeout = poll_timeout
        self.tick = tick  # seconds between checks for expired confirmations
        self.stop_timeout = stop_timeout
        self.stale = StaleCommands(self.dispatcher, stale_after, wall)
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
        self.owner = OwnerChat(settings.chat_id, settings.allowed_user_ids)
        self.replies = TelegramReplies(
            self.bot,
            self.owner,
            attempts=attempts,
            retry_backoff=retry_backoff,
            max_flood_wait=max_flood_wait,
        )
        self.confirmations = Confirmations(self.dispatcher, self.replies, clock)
        self._ticker: asyncio.Task | None = None
        self.intruders = Intruders(self.dispatcher, clock, report_every)
        self._register()

    @property
    def owner_chat(self) -> int | None:
        """The owner chat's id, which follows a group's upgrade to a supergroup."""
        return self.owner.id

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
        self.stale.backlog_until = await self._peek_backlog()
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
        self.stale.telegram_time.observe(response.headers.get("date"))

    # ---- routing --------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.add_handler(TypeHandler(Update, self._gate), group=-1)
        new = self.owner.new_messages()
        for name in self.dispatcher.commands:
            app.add_handler(CommandHandler(name, self._on_command, filters=new))
        app.add_handler(MessageHandler(new & filters.COMMAND, self._on_unknown))
        app.add_handler(CallbackQueryHandler(self._on_button, pattern=r"^(confirm|cancel):"))
        app.add_error_handler(self._on_error)

    async def _gate(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not isinstance(update, Update):
            return
        if self.owner.migration(update):
            raise ApplicationHandlerStop  # a service message: nothing to run or answer
        if self.owner.authorized(update):
            return
        if update.effective_message is not None or update.callback_query is not None:
            self.intruders.record(update)
            await self._report_intruders()
        raise ApplicationHandlerStop  # no handler sees it, nothing is answered

    # ---- commands -------------------------------------------------------------------------

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or not message.text or not self.owner.authorized(update):
            return
        age = self.stale.age(update, message)
        if age is None:
            reply = await self.dispatcher.handle(message.text, who(update))
        else:
            reply = await self.stale.late(message.text, who(update), age)
        await self.deliver(message.chat_id, reply, line=message.text)

    async def _on_unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command not in the table (the Dispatcher answers with a pointer to /help), unless
        it was addressed to another bot in the same group."""
        message = update.effective_message
        if message is None or not message.text or not self.owner.authorized(update):
            return
        head = message.text.split(maxsplit=1)[0]
        _, at, addressee = head.partition("@")
        if at and addressee.lower() != (self.bot.username or "").lower():
            return
        reply = await self.dispatcher.handle(message.text, who(update))
        await self.deliver(message.chat_id, reply, line=message.text)

    async def deliver(self, chat_id: int, reply: Reply, *, line: str = "") -> Message | None:
        """Send a reply (see TelegramReplies.deliver); a confirmation's message is remembered
        to be edited later."""
        sent = await self.replies.deliver(chat_id, reply)
        self.confirmations.track(reply, sent, line)
        return sent

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or not self.owner.authorized(update):
            return
        await self.confirmations.press(query, who(update))

    # ---- the periodic check ---------------------------------------------------------------

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
        await self.confirmations.expire()
        await self._report_intruders()

    async def _report_intruders(self) -> None:
        text = self.intruders.report()
        if text is not None and self.owner.id is not None:
            await self.replies.send_text(self.owner.id, text)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: handling an update failed", exc_info=context.error)
