"""Delivering one notification to each sender in turn, under Telegram's flood wait.

A sender that defers (`SendDeferred`: Telegram's RetryAfter) holds all sending until its wait
is over, and the senders not reached yet keep the message for then; one that fails is logged,
counted and passed over, never retried.

Apart from the notifier (chatbot/notifier.py), which decides what is sent when (lanes, order,
stale and dropped messages, emergencies): this is where a message meets the transports, and
the flood wait is the transports' answer that the notifier's timing then follows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from chatbot.pagers import brief
from chatbot.senders import Message, SendDeferred, Sender
from trading.clock import Clock

log = logging.getLogger("chatbot.notifier")


class Delivery:
    """The notifier's sending: the flood wait, and how many messages went out or failed."""

    def __init__(self, senders: Sequence[Sender], clock: Clock) -> None:
        self._senders = list(senders)
        self._clock = clock
        self._hold_until = 0.0  # monotonic: nothing is sent before (Telegram's flood wait)
        self.sent = 0  # messages delivered to at least one sender
        self.failures = 0  # sends that failed

    def held(self) -> bool:
        return self._clock.monotonic() < self._hold_until

    def hold_left(self) -> float:
        """Seconds of flood wait left (0: none)."""
        return max(0.0, self._hold_until - self._clock.monotonic())

    async def send(
        self, message: Message, todo: Sequence[Sender] | None = None
    ) -> tuple[list[Sender], bool, bool]:
        """Deliver to each sender of `todo` (none left over: all of them) in turn. Returns
        (senders left, deferred, delivered to any)."""
        remaining = list(todo or self._senders)
        delivered = False
        while remaining:
            sender = remaining[0]
            try:
                await sender.send(message)
            except SendDeferred as exc:
                now = self._clock.monotonic()
                self._hold_until = max(self._hold_until, now + exc.wait)
                return remaining, True, delivered
            except Exception as exc:
                self.failures += 1
                name = type(sender).__name__
                log.warning("%s could not deliver a notification: %s", name, brief(exc))
            else:
                delivered = True
            remaining.pop(0)
        if delivered:
            self.sent += 1
        return [], False, delivered
