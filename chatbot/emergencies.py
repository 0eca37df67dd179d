"""Emergencies as the notifier keeps them: one per condition, until it is cleared.

An emergency is coalesced by its key (`emergency_key`): raised again while open, it is counted
and its text updated, but it does not ring again. It goes to Telegram at once and then every
`repeat` seconds, and to every pager through the pager's own worker, until `/ack` (which stops
exactly the emergencies open at that moment) or until an EmergencyCleared for its key. An
acknowledged one raised again after a silence longer than the repeat interval rings again.

Apart from the notifier's lanes because this state outlives any message: it decides when an
alarm is due again and drives the pagers, while the lanes only hold what waits to be sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chatbot.pager_worker import PagerWorker
from chatbot.pagers import Pager
from chatbot.senders import Message, Sender
from handlers.messages import format_alarm
from trading.clock import Clock
from trading.events import EmergencyCleared, Event


@dataclass(frozen=True, slots=True)
class ActiveEmergency:
    """One emergency condition the notifier knows of (until it is cleared)."""

    key: str
    account: str
    count: int  # times raised (coalesced)
    sends: int  # times sent to Telegram
    acked: bool


@dataclass(slots=True, eq=False)
class Alarm:
    """One open emergency: its latest event, and when it is due to Telegram and the pagers."""

    key: str
    event: Event
    raised: float  # monotonic
    last_raised: float
    count: int = 1
    sends: int = 0
    failures: int = 0
    acked: bool = False
    due: float | None = None  # next Telegram send
    page_due: float | None = None  # our next repeat to the pagers (see page_repeats)
    todo: list[Sender] | None = None  # senders still to deliver to, after a flood wait


def emergency_key(event: Event) -> str:
    """What identifies an emergency condition: its key, else its kind and account."""
    key = getattr(event, "key", None)
    if isinstance(key, str) and key:
        return key
    kind = getattr(event, "kind", None) or type(event).__name__
    return f"{kind}:{event.account}"


class Emergencies:
    """The open emergencies and the workers of the pagers that page them (see module doc).
    `text` formats an event as HTML and never raises."""

    def __init__(
        self,
        pagers: Sequence[Pager],
        clock: Clock,
        *,
        repeat: float,
        text: Callable[[Event], str],
        page_attempts: int,
        page_backoff: float,
    ) -> None:
        self._clock = clock
        self._repeat = repeat
        self._text = text
        self._open: dict[str, Alarm] = {}
        self.workers = [
            PagerWorker(p, clock, attempts=page_attempts, backoff=page_backoff) for p in pagers
        ]
        self.raised = 0

    def ring(self, event: Event) -> bool:
        """An emergency event: True when it rings (new, or back after a silence), False when
        it only updates one already open."""
        key = emergency_key(event)
        now = self._clock.monotonic()
        alarm = self._open.get(key)
        if alarm is not None:
            quiet = now - alarm.last_raised
            alarm.count += 1
            alarm.event = event
            alarm.last_raised = now
            # Acknowledged and still being reported: stay quiet. Reported again after a silence
            # longer than the repeat interval: a new occurrence, so it rings again.
            if not alarm.acked or quiet <= self._repeat:
                return False
            alarm.acked, alarm.count, alarm.sends, alarm.raised = False, 1, 0, now
        else:
            alarm = self._open[key] = Alarm(key, event, raised=now, last_raised=now)
        self.raised += 1
        alarm.due = now
        alarm.page_due = now + self._repeat
        message = Message(self._text(event), emergency=True, key=key)
        for worker in self.workers:
            worker.page(key, message)
        return True

    def clear(self, event: EmergencyCleared) -> None:
        """The condition is over: forget it, and tell the pagers unless /ack already did."""
        alarm = self._open.pop(event.key, None)
        if alarm is None or alarm.acked:
            return  # never raised here, or the pagers were already told at /ack
        message = Message(self._text(event), emergency=False, key=event.key)
        for worker in self.workers:
            worker.resolve(event.key, message)

    def ack(self) -> int:
        """Stop every repeat (ours and the pagers') of the emergencies open now; one raised
        later alerts as usual. Returns how many were acknowledged."""
        acked = [a for a in self._open.values() if not a.acked]
        for alarm in acked:
            alarm.acked = True
            alarm.page_due = None
            if alarm.sends:
                alarm.due = None  # one that never reached Telegram is still sent once
        keys = {a.key for a in acked}
        for worker in self.workers:
            worker.ack(keys)
        return len(acked)

    def due(self) -> Alarm | None:
        """The alarm due to Telegram first, if any is due now."""
        now = self._clock.monotonic()
        due = [a for a in self._open.values() if a.due is not None and a.due <= now]
        return min(due, key=lambda a: a.due or 0.0) if due else None

    def message(self, alarm: Alarm) -> Message:
        text = format_alarm(
            self._text(alarm.event),
            count=alarm.count,
            repeat=alarm.sends,
            age_seconds=self._clock.monotonic() - alarm.raised,
        )
        return Message(text, emergency=True, key=alarm.key)

    def sent(self, alarm: Alarm, delivered: bool) -> None:
        """A send of the alarm ended (not deferred): schedule its next one."""
        now = self._clock.monotonic()
        if delivered:
            alarm.sends += 1
            alarm.failures = 0
            alarm.due = None if alarm.acked else now + self._repeat
        else:
            # Undelivered emergencies are never dropped: try again soon, then at the repeat.
            alarm.failures += 1
            alarm.due = now + min(self._repeat, 5.0 * 2 ** (alarm.failures - 1))

    def page_repeats(self) -> None:
        """Page open, unacknowledged emergencies again: at our repeat interval where a pager
        alerts once, and before its own repeats expire where a pager repeats by itself (each
        worker knows when that is, so this runs on every pass, not only at the interval)."""
        now = self._clock.monotonic()
        for alarm in self._open.values():
            if alarm.acked:
                continue
            repeat_due = alarm.page_due is not None and alarm.page_due <= now
            if repeat_due:
                alarm.page_due = now + self._repeat
            wanting = [w for w in self.workers if w.wants_page(alarm.key, repeat_due=repeat_due)]
            if wanting:
                message = self.message(alarm)
                for worker in wanting:
                    worker.page(alarm.key, message)

    async def run_pages(self) -> None:
        """Run every pager's due work now (tests and the notifier's drain)."""
        for worker in self.workers:
            await worker.run_due()

    async def flush_pages(self) -> None:
        """At shutdown: every pager tries what it still has, concurrently."""
        await asyncio.gather(*(w.flush() for w in self.workers))

    def forget_quiet(self) -> None:
        """An acknowledged condition that went quiet would ring again anyway; forget it."""
        now = self._clock.monotonic()
        for key in [
            k for k, a in self._open.items() if a.acked and now - a.last_raised > self._repeat
        ]:
            del self._open[key]

    def backlog(self) -> int:
        return sum(1 for a in self._open.values() if a.due is not None)

    def unacked(self) -> int:
        return sum(1 for a in self._open.values() if not a.acked)

    def active(self) -> tuple[ActiveEmergency, ...]:
        return tuple(
            ActiveEmergency(a.key, a.event.account, a.count, a.sends, a.acked)
            for a in self._open.values()
        )

    @property
    def pages_sent(self) -> int:
        return sum(w.sent for w in self.workers)

    @property
    def page_failures(self) -> int:
        return sum(w.failures for w in self.workers)
