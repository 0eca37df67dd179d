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
from chatbot.pagers import Pager, PagerWorker, brief
from chatbot.policy import DayLedger, NotifyPolicy
from chatbot.senders import Message, SendDeferred, Sender
from handlers.events import format_alarm, format_dropped, format_event
from trading.clock import Clock
from trading.events import EmergencyCleared, Event

log = logging.getLogger("chatbot.notifier")

MAX_STEPS = 100_000  # a safety bound on one drain pass; never reached in practice


@dataclass(frozen=True, slots=True)
class ActiveEmergency:
    """One emergency condition the notifier knows of (until it is cleared)."""

    key: str
    account: str
    count: int  # times raised (coalesced)
    sends: int  # times sent to Telegram
    acked: bool


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


@dataclass(slots=True, eq=False)
class _Alarm:
    key: str
    event: Event
    raised: float  # monotonic
    last_raised: float
    count: int = 1
    sends: int = 0
    failures: int = 0
    acked: bool = False
    due: float | None = None  # next Telegram send
    page_due: float | None = None  # our next repeat to the pagers (see _schedule_pager_repeats)
    todo: list[Sender] | None = None


def emergency_key(event: Event) -> str:
    """What identifies an emergency condition: its key, else its kind and account."""
    key = getattr(event, "key", None)
    if isinstance(key, str) and key:
        return key
    kind = getattr(event, "kind", None) or type(event).__name__
    return f"{kind}:{event.account}"


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
        self._senders = list(senders)
        self._clock = clock
        self._policy = policy or NotifyPolicy()
        self._queue_size = max(1, queue_size)
        self._max_age = max_age
        self._repeat = emergency_repeat
        self._format = format_event
        self._normal: deque[_Item] = deque()
        self._reports: deque[_Item] = deque()
        self._urgent: deque[_Item] = deque()
        self._alarms: dict[str, _Alarm] = {}
        self._pagers = [
            PagerWorker(p, clock, attempts=page_attempts, backoff=page_backoff) for p in pagers
        ]
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._hold_until = 0.0
        self._dropped = self._unreported_dropped = self._stale = self._unreported_stale = 0
        self._sent = self._send_failures = self._raised = self._internal_errors = 0
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
            if decision is None:
                return
            if decision == "emergency":
                self._raise(event)
                return
            if len(self._normal) >= self._queue_size:
                self._drop()
                return
            self._normal.append(_Item(event, None, decision == "silent", self._clock.monotonic()))
            self._wake.set()
        except Exception:
            # A bug here must never reach the trading core; count it and keep going.
            self._internal_errors += 1
            if self._internal_errors <= 10:
                log.exception("notify() failed; the event was not queued")

    def report(self, text: str, silent: bool = False) -> None:
        """Queue a plain HTML text (daily summary, command announcements); bounded like events."""
        if len(self._reports) >= self._queue_size:
            self._drop()
            return
        self._reports.append(_Item(None, text, silent, self._clock.monotonic()))
        self._wake.set()

    def ack(self) -> int:
        """The user acknowledged: stop every repeat (ours and the pagers') of the emergencies
        open now; one raised later alerts as usual. Returns how many were acknowledged."""
        acked = [a for a in self._alarms.values() if not a.acked]
        for alarm in acked:
            alarm.acked = True
            alarm.page_due = None
            if alarm.sends:
                alarm.due = None  # one that never reached Telegram is still sent once
        keys = {a.key for a in acked}
        for worker in self._pagers:
            worker.ack(keys)
        return len(acked)

    def _drop(self) -> None:
        self._dropped += 1
        self._unreported_dropped += 1
        self.day.dropped += 1

    def _raise(self, event: Event) -> None:
        key = emergency_key(event)
        now = self._clock.monotonic()
        alarm = self._alarms.get(key)
        if alarm is not None:
            quiet = now - alarm.last_raised
            alarm.count += 1
            alarm.event = event
            alarm.last_raised = now
            # Acknowledged and still being reported: stay quiet. Reported again after a silence
            # longer than the repeat interval: a new occurrence, so it rings again.
            if not alarm.acked or quiet <= self._repeat:
                return
            alarm.acked, alarm.count, alarm.sends, alarm.raised = False, 1, 0, now
        else:
            alarm = self._alarms[key] = _Alarm(key, event, raised=now, last_raised=now)
        self._raised += 1
        alarm.due = now
        alarm.page_due = now + self._repeat
        message = Message(self._text(event), emergency=True, key=key)
        for worker in self._pagers:
            worker.page(key, message)
        self._wake.set()

    def _clear(self, event: EmergencyCleared) -> None:
        alarm = self._alarms.pop(event.key, None)
        pending = next((i for i in self._urgent if i.key == event.key), None)
        if pending is not None:
            pending.event = event
        else:
            self._urgent.append(_Item(event, None, False, self._clock.monotonic(), event.key))
        self._wake.set()
        if alarm is None or alarm.acked:
            return  # never raised here, or the pagers were already told at /ack
        message = Message(self._text(event), emergency=False, key=event.key)
        for worker in self._pagers:
            worker.resolve(event.key, message)

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
        for worker in self._pagers:
            name = f"notifier-{worker.pager.name}"
            self._tasks.append(asyncio.create_task(worker.run(), name=name))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the tasks, then spend at most `grace` seconds delivering what is left:
        emergencies and pages first, then the rest."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            async with asyncio.timeout(grace):
                await asyncio.gather(self._flush_senders(), *(w.flush() for w in self._pagers))
        except TimeoutError:
            log.warning("notifier stopped with %d message(s) undelivered", self._backlog())

    async def drain(self) -> None:
        """Process everything due at the current clock time: pages first, then sends (unless a
        flood wait holds them). Tests drive this with a FakeClock instead of running tasks."""
        self._schedule_pager_repeats()
        for worker in self._pagers:
            await worker.run_due()
        async with self._lock:
            await self._deliver_due()
        for worker in self._pagers:  # anything the sends made due (pacing moves the clock)
            await worker.run_due()

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
            await _wait(self._wake, min(1.0, max(0.0, self._hold_until - self._now())) or 1.0)

    async def _flush_senders(self) -> None:
        async with self._lock:
            for _ in range(MAX_STEPS):
                if self._held():
                    await self._clock.sleep(self._hold_until - self._now())
                elif self._has_due():
                    await self._deliver_due()
                else:
                    return

    def _now(self) -> float:
        return self._clock.monotonic()

    def _held(self) -> bool:
        return self._now() < self._hold_until

    def _backlog(self) -> int:
        alarms = sum(1 for a in self._alarms.values() if a.due is not None)
        return alarms + len(self._urgent) + len(self._reports) + len(self._normal)

    def _has_due(self) -> bool:
        if self._held():
            return False
        return bool(
            self._due_alarm()
            or self._urgent
            or self._reports
            or self._normal
            or self._unreported_dropped
            or self._unreported_stale
        )

    def _due_alarm(self) -> _Alarm | None:
        now = self._now()
        due = [a for a in self._alarms.values() if a.due is not None and a.due <= now]
        return min(due, key=lambda a: a.due or 0.0) if due else None

    async def _deliver_due(self) -> None:
        """Send what is due, most urgent first, until nothing is due or a flood wait holds."""
        for _ in range(MAX_STEPS):
            self._schedule_pager_repeats()
            if self._held():
                return
            alarm = self._due_alarm()
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

    def _schedule_pager_repeats(self) -> None:
        """Page open, unacknowledged emergencies again: at our repeat interval where a pager
        alerts once, and before its own repeats expire where a pager repeats by itself (each
        worker knows when that is, so this runs on every pass, not only at the interval)."""
        now = self._now()
        for alarm in self._alarms.values():
            if alarm.acked:
                continue
            repeat_due = alarm.page_due is not None and alarm.page_due <= now
            if repeat_due:
                alarm.page_due = now + self._repeat
            wanting = [w for w in self._pagers if w.wants_page(alarm.key, repeat_due=repeat_due)]
            if wanting:
                message = self._alarm_message(alarm)
                for worker in wanting:
                    worker.page(alarm.key, message)

    def _alarm_message(self, alarm: _Alarm) -> Message:
        text = format_alarm(
            self._text(alarm.event),
            count=alarm.count,
            repeat=alarm.sends,
            age_seconds=self._now() - alarm.raised,
        )
        return Message(text, emergency=True, key=alarm.key)

    async def _send_alarm(self, alarm: _Alarm) -> None:
        remaining, deferred, delivered = await self._send_to(
            alarm.todo or self._senders, self._alarm_message(alarm)
        )
        alarm.todo = remaining if deferred else None
        if deferred:
            return
        now = self._now()
        if delivered:
            alarm.sends += 1
            alarm.failures = 0
            alarm.due = None if alarm.acked else now + self._repeat
        else:
            # Undelivered emergencies are never dropped: try again soon, then at the repeat.
            alarm.failures += 1
            alarm.due = now + min(self._repeat, 5.0 * 2 ** (alarm.failures - 1))

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
        remaining, deferred, _ = await self._send_to(item.todo or self._senders, message)
        if deferred:
            item.todo = remaining
            return
        _remove(lane, item)
        self._reported(dropped, stale)

    async def _send_notice(self) -> None:
        dropped, stale = self._unreported()
        _, deferred, _ = await self._send_to(
            self._senders, Message(format_dropped(dropped, stale), silent=True)
        )
        if not deferred:
            self._reported(dropped, stale)  # even if it failed: a notice must not loop

    def _unreported(self) -> tuple[int, int]:
        return self._unreported_dropped, self._unreported_stale

    def _reported(self, dropped: int, stale: int) -> None:
        self._unreported_dropped -= dropped
        self._unreported_stale -= stale

    async def _send_to(
        self, senders: Sequence[Sender], message: Message
    ) -> tuple[list[Sender], bool, bool]:
        """Deliver to each sender in turn. Returns (senders left, deferred, delivered to any)."""
        remaining = list(senders)
        delivered = False
        while remaining:
            sender = remaining[0]
            try:
                await sender.send(message)
            except SendDeferred as exc:
                self._hold_until = max(self._hold_until, self._now() + exc.wait)
                return remaining, True, delivered
            except Exception as exc:
                self._send_failures += 1
                log.warning("%s could not deliver a notification: %s", _name(sender), brief(exc))
            else:
                delivered = True
            remaining.pop(0)
        if delivered:
            self._sent += 1
        return [], False, delivered

    # ---- reading ------------------------------------------------------------------------

    def stats(self) -> NotifierStats:
        active = tuple(
            ActiveEmergency(a.key, a.event.account, a.count, a.sends, a.acked)
            for a in self._alarms.values()
        )
        return NotifierStats(
            queue_depth=len(self._normal),
            queue_size=self._queue_size,
            reports_depth=len(self._reports),
            urgent_depth=len(self._urgent),
            dropped_total=self._dropped,
            dropped_since_report=self._unreported_dropped,
            stale_dropped=self._stale,
            sent=self._sent,
            send_failures=self._send_failures,
            pages_sent=sum(w.sent for w in self._pagers),
            page_failures=sum(w.failures for w in self._pagers),
            emergencies_raised=self._raised,
            active_emergencies=active,
            day_counts=dict(self.day.counts),
            flood_wait=max(0.0, self._hold_until - self._now()),
            internal_errors=self._internal_errors,
        )

    def daily_summary(self) -> str:
        """The daily-summary job (schedule it at DAILY_SUMMARY_TIME, UTC): queue the summary of
        the day's counters and equity, then start a new day. Returns the text."""
        open_emergencies = sum(1 for a in self._alarms.values() if not a.acked)
        text = self.day.summary(self._clock.time(), open_emergencies=open_emergencies)
        self.report(text)
        self.reset_day()
        return text

    def reset_day(self) -> None:
        self.day.reset()
        # An acknowledged condition that went quiet would ring again anyway; forget it.
        now = self._now()
        for key in [
            k for k, a in self._alarms.items() if a.acked and now - a.last_raised > self._repeat
        ]:
            del self._alarms[key]


def _remove(queue: deque, item: object) -> None:
    if queue and queue[0] is item:
        queue.popleft()
    else:
        with contextlib.suppress(ValueError):
            queue.remove(item)


async def _wait(event: asyncio.Event, seconds: float | None) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def _name(sender: object) -> str:
    return type(sender).__name__
