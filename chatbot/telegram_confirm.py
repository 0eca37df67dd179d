"""Confirmation buttons: the messages that ask "Confirm / Cancel" and what becomes of them.

A destructive command's reply carries the buttons; its message is remembered here until a tap
settles it (edited to "running…", then to the outcome) or its time runs out (edited to
"expired"). The Dispatcher decides what a tap means; this module only keeps the messages true.
Apart from the transport (chatbot/telegram.py) because it is state that outlives an update:
the message of one command is edited by a later one, or by the periodic check.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import CallbackQuery, MaybeInaccessibleMessage, Message

from chatbot.command_port import CommandPort
from chatbot.senders import html_to_text
from chatbot.telegram_replies import TelegramReplies
from handlers.dispatch import confirmation_tokens
from handlers.reply import Reply, esc
from trading.clock import Clock


@dataclass
class _Open:
    """A confirmation message waiting for its button."""

    chat_id: int
    message_id: int
    line: str
    expires_at: float


class Confirmations:
    """The confirmation messages still showing their buttons, by the Dispatcher's token."""

    def __init__(self, dispatcher: CommandPort, replies: TelegramReplies, clock: Clock) -> None:
        self.dispatcher = dispatcher
        self.replies = replies
        self.clock = clock
        self._open: dict[str, _Open] = {}

    def track(self, reply: Reply, sent: Message | None, line: str) -> None:
        """Remember the message that carries a reply's Confirm button, to edit it later."""
        if sent is None:
            return
        for token in confirmation_tokens(reply):
            # The Dispatcher's deadline, set when it asked; gone already: due now.
            expires = self.dispatcher.expires_at(token) or self.clock.time()
            self._open[token] = _Open(sent.chat_id, sent.message_id, line, expires)

    async def press(self, query: CallbackQuery, who: str) -> None:
        """An authorized tap on Confirm or Cancel."""
        where = _where(query.message)
        if where is None:
            return  # a button in inline mode: none of ours
        data = query.data or ""
        # Both claims before anything else runs here (a local take does not suspend; a remote
        # one is answered in arrival order): of two taps on one message, whichever comes second
        # (Cancel after Confirm, or Confirm twice) only gets a note while the first one runs.
        opened = self._open.pop(data.partition(":")[2], None)
        claim = await self.dispatcher.take(data, who)
        replies = self.replies
        if isinstance(claim, Reply):
            note = html_to_text(claim.text)[:190]
            await replies.call("answerCallbackQuery", lambda plain, chat: query.answer(note))
            if opened is not None:  # its buttons still show: it expired a moment ago
                await replies.edit(*where, claim.text)
            return
        await replies.call("answerCallbackQuery", lambda plain, chat: query.answer())
        if claim.action == "confirm":
            # The buttons go at once: the owner sees the press was taken while it runs.
            await replies.edit(*where, f"⏳ {esc(claim.line)}: running…")
        reply = await self.dispatcher.settle(claim, who)
        await replies.edit(*where, reply.text)

    async def expire(self) -> None:
        """Edit confirmations left unpressed past their time to "expired"."""
        self.dispatcher.expire()
        now = self.clock.time()
        for token, opened in list(self._open.items()):
            if now <= opened.expires_at:
                continue
            del self._open[token]
            await self.replies.edit(
                opened.chat_id,
                opened.message_id,
                f"⌛ <b>Expired</b>: {esc(opened.line)} was not confirmed within "
                f"{self.dispatcher.confirm_ttl:.0f} s. Nothing done.",
            )


def _where(message: object) -> tuple[int, int] | None:
    """(chat id, message id) of a pressed button's message, even one too old to be sent
    whole (an InaccessibleMessage)."""
    if isinstance(message, MaybeInaccessibleMessage):
        return message.chat.id, message.message_id
    return None
