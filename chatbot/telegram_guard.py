"""Two guards of the Telegram transport: Telegram's own clock (so a host clock minutes off
never makes commands look stale) and the count of unauthorized tries (so a flood of them can
flood neither the log nor the store)."""

from __future__ import annotations

import datetime as dtm
import email.utils
import logging
import time
from collections.abc import Callable

from telegram import Update

from handlers.dispatch import Dispatcher
from handlers.reply import esc
from trading.clock import Clock

log = logging.getLogger("chatbot.telegram")

LOG_SENDERS = 1000  # distinct intruders whose first try is logged at once (memory bound)


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

    def __init__(self, dispatcher: Dispatcher, clock: Clock, every: float) -> None:
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
