"""The watchdog's /ack listener: its own bot's updates, read by long polling.

Telegram allows ONE process to poll getUpdates per bot token (a second poller gets 409 Conflict
and steals updates), so the watchdog listens only with a token of its own,
WATCHDOG_TELEGRAM_BOT_TOKEN. Apart from the poller and the process wiring because it is the
watchdog's only inbound channel: what it obeys, from whom, and how it survives Telegram's errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from telegram import Bot
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError

from chatbot.pagers import brief
from trading.clock import Clock

log = logging.getLogger("chatbot.watchdog")


class AckListener:
    """Reads the watchdog's own bot's updates: /ack stops the repeats, /ping says what the
    watchdog sees. Obeys only the configured chat (and users, when set); ignores the rest."""

    def __init__(
        self,
        bot: Bot,
        *,
        chat_id: int,
        allowed_user_ids: frozenset[int] = frozenset(),
        ack: Callable[[], int],
        status: Callable[[], str],
        clock: Clock,
    ) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.allowed = allowed_user_ids
        self._ack = ack
        self._status = status
        self.clock = clock
        self._offset: int | None = None
        self.acks = 0

    async def poll_once(self, long_poll: float = 0) -> int:
        """One getUpdates; returns how many commands were obeyed."""
        updates = await self.bot.get_updates(
            offset=self._offset, timeout=int(long_poll), allowed_updates=["message"]
        )
        obeyed = 0
        for update in updates:
            self._offset = update.update_id + 1
            message = update.message
            if message is None or not message.text:
                continue
            user = message.from_user.id if message.from_user else None
            if message.chat_id != self.chat_id or (self.allowed and user not in self.allowed):
                log.warning("ignored a message from user %s in chat %s", user, message.chat_id)
                continue
            command = message.text.split(maxsplit=1)[0].split("@", 1)[0].lower()
            if command == "/ack":
                count = self._ack()
                self.acks += 1
                reply = f"Acknowledged {count} watchdog alarm(s): no more repeats."
            elif command in ("/ping", "/status", "/start", "/help"):
                reply = f"{self._status()}\nSend /ack to stop the repeats of an alarm."
            else:
                continue
            obeyed += 1
            await self.bot.send_message(self.chat_id, reply)
        return obeyed

    async def run(self, poll_timeout: float = 30.0) -> None:
        """Long-poll until cancelled; trouble is logged and retried, never raised."""
        failures = 0
        while True:
            try:
                await self.poll_once(poll_timeout)
                failures = 0
                continue
            except InvalidToken:
                log.error("WATCHDOG_TELEGRAM_BOT_TOKEN was rejected; /ack is not available")
                return
            except Conflict:
                log.warning(
                    "another process polls WATCHDOG_TELEGRAM_BOT_TOKEN (409 Conflict): it must "
                    "be a bot of its own, not the trading bot's"
                )
                failures += 1
            except (NetworkError, TelegramError) as exc:
                log.warning("reading /ack failed: %s", brief(exc))
                failures += 1
            await self.clock.sleep(min(60.0, 2.0**failures))
