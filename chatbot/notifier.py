"""The notifier: the trading core's `notify(event)` on one side, Telegram and pagers on the other.

`notify()` is synchronous and O(1): it counts the event, asks the policy, and either appends to a
lane or drops and counts. It never awaits, never raises and never grows memory without bound:

    lane        holds                          bound                     order
    alarms      emergencies, one per key       distinct keys (coalesce)  first, repeat until /ack
    urgent      "cleared" announcements        distinct keys (coalesce)  second
    reports     report(): summaries, notices   queue_size, then dropped  third
    normal      everything else worth sending  queue_size, then dropped  last; stale ones skipped

One sender task owns all Telegram/console sending, so ordering and flood limits live in one
place. Each pager has its own small worker, because a siren must not wait behind a Telegram
flood wait, and one failing pager must not delay another; their jobs are coalesced per key too.
The alarms' state (coalescing, repeats, /ack) and the pagers are chatbot/emergencies.py's; the
delivery to the senders, held by Telegram's flood wait, is chatbot/delivery.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chatbot.config import NotifySettings
from chatbot.delivery import Delivery
from chatbot.emergencies import ActiveEmergency, Alarm, Emergencies
from chatbot.pagers import Pager
from chatbot.policy import DayLedger, NotifyPolicy
from chatbot.senders import Message, Sender
from chatbot.tasks import cancel_all, woken
from handlers.messages import format_dropped, format_event
from trading.clock import Clock
from trading.events import EmergencyCleared, Event, answered

log = logging.getLogger("chatbot.notifier")

MAX_STEPS = 100_000  # a safety bound on one drain pass; never reached in practice


@dataclass(frozen=True, slots=True)
class NotifierStats:
    """A snapshot for /debug, /metrics and the daily summary."""

    queue_depth: int
    queue_size: int
    reports_depth: int
    urgent_depth: int
    dropped_total: int
    dropped_since_report: int
    stale_dropped: int
    sent: int
    send_failures: int
    pages_sent: int
    page_failures: int
    emergencies_raised: int
    active_emergencies: tuple[ActiveEmergency, ...]
    day_counts: dict[str, int]
    flood_wait: float  # seconds left of Telegram's RetryAfter
    internal_errors: int


@dataclass(slots=True, eq=False)
class _Item:
    event: Event | None
    text: str | None  # report texts have no event
    silent: bool
    at: float  # clock.monotonic() when queued
    key: str | None = None
    todo: list[Sender] | None = None  # senders still to deliver to, after a flood wait


class Notifier:
    """Bounded, non-blocking notifications with an emergency lane and pagers (see module doc).

    The core gets `notify`; commands use `ack()`, `report(text)` and `stats()`; the daily job
    calls `daily_summary()`; the app calls `start()` and `stop()`; tests call `drain()`.
    """

    def __init__(
        self,
        senders: Sequence[Sender],
        pagers: Sequence[Pager] = (),
        *,
        clock: Clock,
        policy: NotifyPolicy | None = None,
        queue_size: int = 10,
        max_age: float = 300.0,
        emergency_repeat: float = 300.0,
        format_event: Callable[[Event], str] = format_event,
        page_attempts: int = 6,
        page_backoff: float = 2.0,
    ) -> None:
        self._delivery = Delivery(senders, clock)
        self._clock = clock
        self._policy = policy or NotifyPolicy()
        self._queue_size = max(1, queue_size)
        self._max_age = max_age
        self._format = format_event
        self._normal: deque[_Item] = deque()
        self._reports: deque[_Item] = deque()
        self._urgent: deque[_Item] = deque()
        self._emergencies = Emergencies(
            pagers,
            clock,
            repeat=emergency_repeat,
            text=self._text,
            page_attempts=page_attempts,
            page_backoff=page_backoff,
        )
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._dropped = self._unreported_dropped = self._stale = self._unreported_stale = 0
        self._internal_errors = 0
        self.day = DayLedger()

    @classmethod
    def from_settings(
        cls,
        settings: NotifySettings,
        senders: Sequence[Sender],
        pagers: Sequence[Pager] = (),
        *,
        clock: Clock,
    ) -> Notifier:
        return cls(
            senders,
            pagers,
            clock=clock,
            policy=NotifyPolicy(settings),
            queue_size=settings.queue_size,
            max_age=settings.max_age_seconds,
            emergency_repeat=settings.emergency_repeat_seconds,
        )

    # ---- the producer side: synchronous, O(1), never raises -------------------------------

    def notify(self, event: Event) -> None:
        """The trading core's `Notify`. Call it from the event loop's thread (the scheduler's
        jobs and the traders run there); it returns at once whatever happens."""
        try:
            self.day.count(event)
            if isinstance(event, EmergencyCleared):
                self._clear(event)
                return
            decision = self._policy.decide(event)
            if decision is None or (decision != "emergency" and answered(event)):
                return  # nothing for the phone, or the command's own reply says it
            if decision == "emergency":
                if self._emergencies.ring(event):
                    self._wake.set()
                return
            self._enqueue(self._normal, event, None, silent=decision == "silent")
        except Exception:
            # A bug here must never reach the trading core; count it and keep going.
            self._internal_errors += 1
            if self._internal_errors <= 10:
                log.exception("notify() failed; the event was not queued")

    def report(self, text: str, silent: bool = False) -> None:
        """Queue a plain HTML text (daily summary, command announcements); bounded like events."""
        self._enqueue(self._reports, None, text, silent=silent)

    def ack(self) -> int:
        """The user acknowledged: stop every repeat (ours and the pagers') of the emergencies
        open now; one raised later alerts as usual. Returns how many were acknowledged."""
        return self._emergencies.ack()

    def _enqueue(
        self, lane: deque[_Item], event: Event | None, text: str | None, *, silent: bool
    ) -> None:
        """Append to a bounded lane, or drop and count when it is full."""
        if len(lane) >= self._queue_size:
            self._dropped += 1
            self._unreported_dropped += 1
            self.day.dropped += 1
            return
        lane.append(_Item(event, text, silent, self._clock.monotonic()))
        self._wake.set()

    def _clear(self, event: EmergencyCleared) -> None:
        self._emergencies.clear(event)
        pending = next((i for i in self._urgent if i.key == event.key), None)
        if pending is not None:
            pending.event = event
        else:
            self._urgent.append(_Item(event, None, False, self._clock.monotonic(), event.key))
        self._wake.set()

    def _text(self, event: Event) -> str:
        try:
            return self._format(event)
        except Exception:
            log.exception("formatting %s failed", type(event).__name__)
            return html.escape(repr(event), quote=False)

    # ---- the sender side ----------------------------------------------------------------

    async def start(self) -> None:
        """Start the sender task and one worker per pager (on the running loop). The clock must
        match the loop: RealClock in production, LoopClock under run_simulated."""
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._sender_loop(), name="notifier-sender"))
        for worker in self._emergencies.workers:
            name = f"notifier-{worker.pager.name}"
            self._tasks.append(asyncio.create_task(worker.run(), name=name))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the tasks, then spend at most `grace` seconds delivering what is left:
        emergencies and pages first, then the rest."""
        tasks, self._tasks = self._tasks, []
        await cancel_all(tasks)
        try:
            async with asyncio.timeout(grace):
                await asyncio.gather(self._flush_senders(), self._emergencies.flush_pages())
        except TimeoutError:
            log.warning("notifier stopped with %d message(s) undelivered", self._backlog())

    async def drain(self) -> None:
        """Process everything due at the current clock time: pages first, then sends (unless a
        flood wait holds them). Tests drive this with a FakeClock instead of running tasks."""
        self._emergencies.page_repeats()
        await self._emergencies.run_pages()
        async with self._lock:
            await self._deliver_due()
        await self._emergencies.run_pages()  # anything the sends made due (pacing moves the clock)

    async def _sender_loop(self) -> None:
        while True:
            try:
                async with self._lock:
                    await self._deliver_due()
            except Exception:
                log.exception("notifier sender step failed")
                await asyncio.sleep(1.0)
            self._wake.clear()
            if self._has_due():
                continue
            # Wake on new events, and at least every second for repeats and flood waits.
            await woken(self._wake, min(1.0, self._delivery.hold_left()) or 1.0)

    async def _flush_senders(self) -> None:
        async with self._lock:
            for _ in range(MAX_STEPS):
                if self._delivery.held():
                    await self._clock.sleep(self._delivery.hold_left())
                elif self._has_due():
                    await self._deliver_due()
                else:
                    return

    def _now(self) -> float:
        return self._clock.monotonic()

    def _backlog(self) -> int:
        lanes = len(self._urgent) + len(self._reports) + len(self._normal)
        return self._emergencies.backlog() + lanes

    def _has_due(self) -> bool:
        if self._delivery.held():
            return False
        return bool(
            self._emergencies.due()
            or self._urgent
            or self._reports
            or self._normal
            or self._unreported_dropped
            or self._unreported_stale
        )

    async def _deliver_due(self) -> None:
        """Send what is due, most urgent first, until nothing is due or a flood wait holds."""
        for _ in range(MAX_STEPS):
            self._emergencies.page_repeats()
            if self._delivery.held():
                return
            alarm = self._emergencies.due()
            if alarm is not None:
                await self._send_alarm(alarm)
                continue
            lane = next((q for q in (self._urgent, self._reports, self._normal) if q), None)
            if lane is not None:
                await self._send_item(lane, lane[0])
            elif self._unreported_dropped or self._unreported_stale:
                await self._send_notice()
            else:
                return

    async def _send_alarm(self, alarm: Alarm) -> None:
        message = self._emergencies.message(alarm)
        remaining, deferred, delivered = await self._delivery.send(message, alarm.todo)
        alarm.todo = remaining if deferred else None
        if not deferred:
            self._emergencies.sent(alarm, delivered)

    async def _send_item(self, lane: deque[_Item], item: _Item) -> None:
        if lane is self._normal and self._now() - item.at > self._max_age:
            _remove(lane, item)
            self._stale += 1
            self._unreported_stale += 1
            self.day.stale += 1
            return
        dropped, stale = (0, 0) if lane is self._urgent else self._unreported()
        text = item.text if item.text is not None else self._text(item.event)  # type: ignore[arg-type]
        if dropped or stale:
            text = f"{format_dropped(dropped, stale)}\n{text}"
        message = Message(text, silent=item.silent, key=item.key)
        remaining, deferred, _ = await self._delivery.send(message, item.todo)
        if deferred:
            item.todo = remaining
            return
        _remove(lane, item)
        self._reported(dropped, stale)

    async def _send_notice(self) -> None:
        dropped, stale = self._unreported()
        notice = Message(format_dropped(dropped, stale), silent=True)
        _, deferred, _ = await self._delivery.send(notice)
        if not deferred:
            self._reported(dropped, stale)  # even if it failed: a notice must not loop

    def _unreported(self) -> tuple[int, int]:
        return self._unreported_dropped, self._unreported_stale

    def _reported(self, dropped: int, stale: int) -> None:
        self._unreported_dropped -= dropped
        self._unreported_stale -= stale

    # ---- reading ------------------------------------------------------------------------

    def stats(self) -> NotifierStats:
        return NotifierStats(
            queue_depth=len(self._normal),
            queue_size=self._queue_size,
            reports_depth=len(self._reports),
            urgent_depth=len(self._urgent),
            dropped_total=self._dropped,
            dropped_since_report=self._unreported_dropped,
            stale_dropped=self._stale,
            sent=self._delivery.sent,
            send_failures=self._delivery.failures,
            pages_sent=self._emergencies.pages_sent,
            page_failures=self._emergencies.page_failures,
            emergencies_raised=self._emergencies.raised,
            active_emergencies=self._emergencies.active(),
            day_counts=dict(self.day.counts),
            flood_wait=self._delivery.hold_left(),
            internal_errors=self._internal_errors,
        )

    def daily_summary(self) -> str:
        """The daily-summary job (schedule it at DAILY_SUMMARY_TIME, UTC): queue the summary of
        the day's counters and equity, then start a new day. Returns the text."""
        text = self.day.summary(self._clock.time(), open_emergencies=self._emergencies.unacked())
        self.report(text)
        self.reset_day()
        return text

    def reset_day(self) -> None:
        self.day.reset()
        self._emergencies.forget_quiet()


def _remove(queue: deque, item: object) -> None:
    if queue and queue[0] is item:
        queue.popleft()
    else:
        with contextlib.suppress(ValueError):
            queue.remove(item)
