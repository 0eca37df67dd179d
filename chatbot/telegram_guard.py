"""The Telegram transport's guards: which updates it obeys, and which it only counts.

    OwnerChat       the owner chat and allowed users; follows the group's upgrade to a supergroup
    StaleCommands   what waited while the bot was down is not run as sent
    TelegramTime    Telegram's clock, so a host clock minutes off never makes commands look stale
    Intruders       unauthorized tries, counted so a flood of them floods neither log nor store

Apart from the transport (chatbot/telegram.py) because none of them needs the Application:
each is a small state the transport consults for every update.
"""

from __future__ import annotations

import datetime as dtm
import email.utils
import logging
import time
from collections.abc import Callable
from typing import Any

from telegram import Message, Update
from telegram.ext import filters

from chatbot.command_port import CommandPort
from handlers.dispatch import command_name
from handlers.reply import Reply, esc, refuse
from trading.clock import Clock

log = logging.getLogger("chatbot.telegram")

# Commands that waited this long for the bot (it was down) are not run as sent: a /buy typed an
# hour ago is not what the owner wants now. They are told to send it again; the safety ones
# (a confirm command of the table, /pause, /ack) ask for a tap instead, as /kill may still be due.
STALE_AFTER_SECONDS = 300.0
ASK_WHEN_STALE = frozenset({"pause", "ack"})
LOG_SENDERS = 1000  # distinct intruders whose first try is logged at once (memory bound)


def who(update: Update) -> str:
    """The sender as the audit log names it."""
    user = update.effective_user
    if user is None:
        return "telegram:?"
    return f"telegram:{user.id}" + (f" @{user.username}" if user.username else "")


class OwnerChat:
    """Who may command the bot, and where: the owner chat (TELEGRAM_CHAT_ID) and, when
    TELEGRAM_ALLOWED_USER_IDS is set, only those users in it. A group that becomes a supergroup
    gets a new id; the owner's is followed, or /kill would stop working the day someone changes
    a group setting, and replies to a chat that moved go to where it moved."""

    def __init__(self, chat_id: int | None, allowed: frozenset[int]) -> None:
        self.id = chat_id
        self.allowed = allowed
        self._chat = filters.Chat(chat_id=chat_id, allow_empty=False)
        self._moves: dict[int, int] = {}  # old chat id -> its supergroup's

    def new_messages(self) -> filters.BaseFilter:
        """The command handlers' filter: new messages in the owner chat (wherever it moves) from
        an allowed user. Only new ones: an edited "/kill now" must not run a second time."""
        new = self._chat & filters.UpdateType.MESSAGE
        if self.allowed:
            new = new & filters.User(user_id=self.allowed)
        return new

    def authorized(self, update: Update) -> bool:
        """The owner chat, and an allowed user when TELEGRAM_ALLOWED_USER_IDS is set."""
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None or self.id is None:
            return False
        if chat.id != self.id:
            return False
        return not self.allowed or user.id in self.allowed

    def migration(self, update: Update) -> bool:
        """Telegram's service message that a group became a supergroup. The owner group's is
        followed whoever changed the setting: Telegram writes these messages, no user can."""
        message = update.message
        if message is None:
            return False
        if message.migrate_to_chat_id:
            self.moved(message.chat_id, message.migrate_to_chat_id)
        elif message.migrate_from_chat_id:
            self.moved(message.migrate_from_chat_id, message.chat_id)
        else:
            return False
        return True

    def moved(self, old: int | None, new: int) -> None:
        """A group has a new id. The owner's is obeyed and answered there from now on."""
        if old is None or old == new:
            return
        self._moves[old] = new
        if old == self.id:
            log.warning("telegram: the owner chat moved to %s; obeying it there", new)
            self.id = new
            self._chat.chat_ids = {new}

    def route(self, chat_id: Any) -> Any:
        """Where a message for this chat goes now."""
        return self._moves.get(chat_id, chat_id)

    def left(self, chat_id: int) -> bool:
        """Whether this chat became a supergroup (its messages can no longer be edited)."""
        return chat_id in self._moves


class StaleCommands:
    """Commands that waited for the bot while it was down. Only what already waited when
    polling started can be stale (`backlog_until`, the last update id waiting then): anything
    received since is run, whatever the dates say. Ages are on Telegram's clock, which also
    dates the messages."""

    def __init__(
        self,
        dispatcher: CommandPort,
        stale_after: float | None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.dispatcher = dispatcher
        self.stale_after = stale_after
        self.telegram_time = TelegramTime(wall)  # `wall`: the host's clock, may be off
        self.backlog_until: int | None = 0  # None: unknown, so any command may be stale

    def age(self, update: Update, message: Message) -> float | None:
        """How long ago a stale command was sent (None: not stale)."""
        if self.stale_after is None or message.date is None:
            return None
        if self.backlog_until is not None and update.update_id > self.backlog_until:
            return None
        age = self.telegram_time.now() - message.date.timestamp()
        return age if age > self.stale_after else None

    async def late(self, text: str, who: str, age: float) -> Reply:
        """The answer to a stale command: a confirmation to tap for the safety ones, else a
        refusal; audited either way."""
        when = f"{esc(text)} was sent {age / 60:.0f} min ago, while the bot was not listening."
        name = command_name(text.split(maxsplit=1)[0])
        command = self.dispatcher.commands.get(name)
        if command is not None and (command.confirm or name in ASK_WHEN_STALE):
            reply = await self.dispatcher.ask(text, who, f"⏳ {when}")
            if reply.buttons:  # else refused (a bad argument) and audited as such
                self.dispatcher.note(who, text, "stale: asked to confirm")
            return reply
        self.dispatcher.note(who, text, "ignored: stale")
        return refuse(f"Not run: {when} Send it again if you still mean it.")


class TelegramTime:
    """Telegram's clock, read from the Date header of its answers and carried forward on the
    monotonic clock. Message dates are on this clock, and a host clock minutes off must not
    make every command look stale. Until Telegram has answered once, the host's stands in."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._seen: tuple[float, float] | None = None  # (Telegram's time, monotonic then)

    @property
    def known(self) -> bool:
        return self._seen is not None

    def observe(self, date_header: str | None) -> None:
        """An HTTP Date header from Telegram ("Sun, 22 Nov 2026 07:10:58 GMT")."""
        if not date_header:
            return
        try:
            when = email.utils.parsedate_to_datetime(date_header)
        except (TypeError, ValueError):
            return
        if when.tzinfo is None:  # "-0000": UTC with no zone named
            when = when.replace(tzinfo=dtm.UTC)
        self._seen = (when.timestamp(), self._monotonic())

    def now(self) -> float:
        if self._seen is None:
            return self._wall()
        stamp, at = self._seen
        return stamp + (self._monotonic() - at)


class Intruders:
    """Unauthorized tries. A sender's first is logged and audited at once; the rest are
    counted, so a flood of tries cannot flood the log or the store, and summed up in one
    report per `every` seconds: a message for the owner, one log line, one audit row."""

    def __init__(self, dispatcher: CommandPort, clock: Clock, every: float) -> None:
        self.dispatcher = dispatcher
        self.clock = clock
        self.every = every
        self._count = 0  # tries not reported to the owner yet
        self._unlogged = 0  # of those, the ones neither logged nor audited yet
        self._logged: set[int | None] = set()  # senders whose first try was logged
        self._latest = self._latest_try = ""
        self._first: float | None = None
        self._reported_at: float | None = None

    def record(self, update: Update) -> None:
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
        self._count += 1
        if self._first is None:
            self._first = self.clock.time()
        name = f" @{user.username}" if user and user.username else ""
        self._latest_try, self._latest = what, f"{what} from user {uid}{name} in chat {cid}"
        if uid in self._logged or len(self._logged) >= LOG_SENDERS:
            self._unlogged += 1
            return
        self._logged.add(uid)
        log.warning("telegram: ignored %s from user %s in chat %s: not authorized", what, uid, cid)
        self.dispatcher.note(f"telegram:{uid} chat {cid}", what, "ignored: not authorized")

    def report(self) -> str | None:
        """The owner's message (HTML) when a report is due (None: not yet, or nothing to say);
        the tries not logged one by one are logged and audited here, in one line and row."""
        now = self.clock.time()
        if not self._count or (
            self._reported_at is not None and now - self._reported_at < self.every
        ):
            return None
        count, first, unlogged = self._count, self._first, self._unlogged
        self._count, self._unlogged, self._first, self._reported_at = 0, 0, None, now
        since = f" in the last {(now - first) / 60:.0f} min" if first and now - first >= 60 else ""
        if unlogged:
            summary = f"{unlogged} more unauthorized tries ignored{since}; latest: {self._latest}"
            log.warning("telegram: %s", summary)
            self.dispatcher.note("telegram:intruders", self._latest_try, f"ignored: {summary}")
        return (
            f"⚠️ <b>Unauthorized</b>: {count} tr{'y' if count == 1 else 'ies'} to command the "
            f"bot ignored{since}, none answered. Latest: {esc(self._latest)}."
        )
