"""The notifier end to end: python-telegram-bot's real Bot against a loopback fake Bot API, the
real ntfy and Pushover pagers against a loopback fake of both.

Most tests drive the notifier with `drain()` on a FakeClock (pacing and flood waits advance
simulated time); the production tasks (`start()`/`stop()`) run on real time only where nothing
has to wait, and on a VirtualTimeLoop (`run_simulated`) where a flood wait must pass.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from chatbot.notifier import Notifier
from chatbot.pagers import NtfyPager
from chatbot.policy import NotifyPolicy
from chatbot.senders import TelegramSender
from handlers.messages import format_event
from sim.clock import LoopClock, run_simulated
from sim.fakes.pager import FakePagers
from sim.fakes.telegram_api import FakeTelegramAPI
from tests.notifier_support import (  # noqa: F401 (fixtures by name)
    ACC,
    CHAT,
    KEY,
    api_fixture,
    bot_fixture,
    client_fixture,
    clock_fixture,
    closed,
    emergency,
    equity,
    fake_pagers_fixture,
    make_fixture,
    opened,
    texts,
    vars_of,
)
from trading.events import (
    Emergency,
    EmergencyCleared,
    Event,
    FaultRaised,
)

# ---- bounded, non-blocking ---------------------------------------------------------------


async def test_100k_notify_calls_with_the_sender_idle_stay_bounded_and_drop_counts_are_exact(
    make, api
):
    notifier = make(queue_size=10)
    events = [closed(i) for i in range(100_000)]
    slowest = deepest = 0.0
    started = time.perf_counter()
    for event in events:
        t0 = time.perf_counter()
        notifier.notify(event)
        slowest = max(slowest, time.perf_counter() - t0)
        deepest = max(deepest, len(notifier._normal))
    elapsed = time.perf_counter() - started
    stats = notifier.stats()
    assert deepest == stats.queue_depth == 10  # checked after every single call
    assert stats.dropped_total == 99_990
    assert stats.dropped_since_report == 99_990
    # ~1 µs a call; the bounds are generous for a loaded CI machine.
    assert elapsed < 2.0
    assert slowest < 0.05
    await notifier.drain()
    sent = texts(api)
    assert len(sent) == 10
    assert sent[0].startswith("⚠️ 99,990 notifications dropped (queue full)")
    assert "C0/USDT" in sent[0]  # the line rides on the next message, no extra message
    assert notifier.stats().dropped_since_report == 0
    assert notifier.stats().dropped_total == 99_990


async def test_with_telegram_stalled_notify_returns_at_once_and_the_drop_line_follows(make, api):
    notifier = make(queue_size=10, real=True, interval=0.0)
    api.stall("sendMessage")
    await notifier.start()
    try:
        notifier.notify(closed(-1))
        await api.wait_until(lambda: api.parked["sendMessage"] == 1, what="a stalled send")
        started = time.perf_counter()
        for i in range(100_000):
            notifier.notify(closed(i))
        elapsed = time.perf_counter() - started
        stats = notifier.stats()
        # The message in flight keeps its place in the queue until delivered: 9 more fit.
        assert (stats.queue_depth, stats.dropped_total) == (10, 99_991)
        assert elapsed < 2.0
        api.release("sendMessage")
        line = await api.wait_for_message(CHAT, "99,991 notifications dropped")
        assert "C0/USDT" in line.text
        await api.wait_until(lambda: len(texts(api)) == 10, what="the queued messages")
    finally:
        await notifier.stop(grace=2.0)
    assert notifier.stats().sent == 10


async def test_stale_events_are_dropped_and_counted_rather_than_sent_late(make, api, clock):
    notifier = make(max_age=60)
    for i in range(3):
        notifier.notify(closed(i))
    clock.advance(61)
    notifier.notify(closed(99))
    await notifier.drain()
    assert texts(api) == ["⚠️ 3 skipped as stale since the last report\n" + format_event(closed(99))]
    assert notifier.stats().stale_dropped == 3


async def test_silent_events_arrive_without_sound_and_exits_with_it(make, api):
    notifier = make()
    notifier.notify(opened())
    notifier.notify(closed())
    await notifier.drain()
    entry, exit_ = api.calls_to("sendMessage", CHAT)
    assert entry.params["disable_notification"] is True
    assert exit_.params["disable_notification"] is False


async def test_events_the_policy_skips_are_counted_for_the_day_but_not_sent(make, api):
    notifier = make()
    fault = FaultRaised(account=ACC, at=0, kind="transient", call="fetch_tickers", message="5xx")
    for _ in range(5):
        notifier.notify(fault)
    await notifier.drain()
    assert texts(api) == []
    assert notifier.stats().day_counts == {"FaultRaised": 5}


async def test_notify_never_raises_even_when_the_policy_breaks(make):
    class Broken(NotifyPolicy):
        def decide(self, event: Event):
            raise RuntimeError("bug in policy")

    notifier = make(policy=Broken())
    notifier.notify(closed())  # must not raise into the trading core
    assert notifier.stats().internal_errors == 1


# ---- the emergency lane ---------------------------------------------------------------


async def test_emergency_in_a_full_queue_during_a_flood_wait_pages_at_once_and_goes_first(
    make, api, fake_pagers, clock
):
    notifier = make(queue_size=10)
    for i in range(15):
        notifier.notify(closed(i))
    api.fail_next("sendMessage", status=429, json=api.flood(30))
    await notifier.drain()
    assert notifier.stats().flood_wait == pytest.approx(30)
    before = len(api.calls)

    notifier.notify(emergency())
    await notifier.drain()
    assert [p.priority for p in fake_pagers.ntfy] == ["urgent"]
    assert [p.priority for p in fake_pagers.pushover] == [2]
    assert len(api.calls) == before  # Telegram is still in its flood wait

    clock.advance(29.5)
    await notifier.drain()
    assert len(api.calls) == before
    clock.advance(0.5)
    await notifier.drain()
    sent = api.calls_to("sendMessage", CHAT)
    assert "EMERGENCY" in sent[0].text
    assert sent[0].params["disable_notification"] is False
    assert len(sent) == 11  # then the ten queued events
    assert sent[1].text.startswith("⚠️ 5 notifications dropped")


def test_production_loop_sends_the_emergency_the_moment_the_flood_wait_ends():
    async def main(clock: LoopClock) -> tuple[float, float, float, list[str]]:
        async with (
            FakeTelegramAPI() as api,
            FakePagers() as pagers,
            api.bot() as bot,
            httpx.AsyncClient() as client,
        ):
            ntfy = NtfyPager(pagers.ntfy_url, None, client)
            notifier = Notifier([TelegramSender(bot, CHAT, clock)], [ntfy], clock=clock)
            await notifier.start()
            for i in range(12):
                notifier.notify(closed(i))
            api.fail_next("sendMessage", status=429, json=api.flood(30))
            flood = await api.wait_until(lambda: api.calls_to("sendMessage", ok=False))
            notifier.notify(emergency())
            await pagers.wait_until(lambda: pagers.ntfy, what="the page")
            paged = asyncio.get_running_loop().time()
            first = await api.wait_for_call("sendMessage", within=120)
            await api.wait_until(lambda: len(api.sent_texts(CHAT)) == 11, within=120)
            await notifier.stop()
            return flood[0].at, paged, first.at, api.sent_texts(CHAT)

    flooded_at, paged_at, first_at, sent = run_simulated(main)
    assert paged_at - flooded_at < 0.1  # the pager did not wait for Telegram
    assert first_at - flooded_at == pytest.approx(30, abs=0.01)
    assert "EMERGENCY" in sent[0]


async def test_ack_stops_the_repeats_on_telegram_and_the_pagers(make, api, fake_pagers, clock):
    notifier = make(emergency_repeat=60)
    notifier.notify(emergency())
    await notifier.drain()
    clock.advance(60)
    await notifier.drain()
    assert len(texts(api)) == 2
    assert "repeat #1" in texts(api)[1]
    assert len(fake_pagers.ntfy) == 2  # ntfy does not repeat by itself: we do
    assert len(fake_pagers.pushover) == 1  # Pushover repeats on its own until cancelled

    assert notifier.ack() == 1
    await notifier.drain()
    assert fake_pagers.cancelled == [fake_pagers.pushover[0].receipt]
    for _ in range(5):
        clock.advance(60)
        await notifier.drain()
    assert len(texts(api)) == 2
    assert len(fake_pagers.ntfy) == 2
    (active,) = notifier.stats().active_emergencies
    assert active.acked
    assert notifier.ack() == 0


async def test_clearing_the_condition_ends_the_repeats_and_is_announced_everywhere(
    make, api, fake_pagers, clock
):
    notifier = make(emergency_repeat=60)
    notifier.notify(emergency())
    await notifier.drain()
    notifier.notify(EmergencyCleared(account=ACC, at=0, key=KEY, message="flat again"))
    await notifier.drain()
    for _ in range(3):
        clock.advance(60)
        await notifier.drain()
    sent = texts(api)
    assert len(sent) == 2
    assert "Cleared" in sent[1]
    assert "flat again" in sent[1]
    assert fake_pagers.cancelled == [fake_pagers.pushover[0].receipt]
    assert [m.priority for m in fake_pagers.pushover] == [2, 0]
    assert [p.priority for p in fake_pagers.ntfy] == ["urgent", "default"]
    assert notifier.stats().active_emergencies == ()


async def test_identical_emergencies_coalesce_into_one_alert_with_a_count(
    make, api, fake_pagers, clock
):
    notifier = make(emergency_repeat=60)
    for _ in range(1000):
        notifier.notify(emergency())
    await notifier.drain()
    assert len(texts(api)) == 1
    assert (len(fake_pagers.ntfy), len(fake_pagers.pushover)) == (1, 1)
    stats = notifier.stats()
    assert stats.emergencies_raised == 1
    assert [(a.key, a.count) for a in stats.active_emergencies] == [(KEY, 1000)]
    clock.advance(60)
    await notifier.drain()
    assert "raised 1000×" in texts(api)[1]


async def test_a_fatal_fault_pages_once_through_the_traders_emergency(make, api, fake_pagers):
    notifier = make()
    fatal = FaultRaised(account=ACC, at=0, kind="fatal", call="fetch_balance", message="bad key")
    alarm = Emergency(account=ACC, at=0, key=f"fatal:{ACC}", message="fatal: bad key; halted")
    for event in (fatal, alarm, alarm):
        notifier.notify(event)
    await notifier.drain()
    assert [(a.key, a.count) for a in notifier.stats().active_emergencies] == [(f"fatal:{ACC}", 2)]
    assert len(texts(api)) == 1 and "EMERGENCY" in texts(api)[0]
    assert len(fake_pagers.pushover) == 1 and fake_pagers.pushover[0].priority == 2


async def test_an_acknowledged_condition_that_returns_after_a_quiet_gap_rings_again(
    make, api, fake_pagers, clock
):
    notifier = make(emergency_repeat=60)
    notifier.notify(emergency())
    await notifier.drain()
    notifier.ack()
    clock.advance(30)
    notifier.notify(emergency())  # still being reported: the human already knows
    await notifier.drain()
    assert len(texts(api)) == 1
    clock.advance(61)
    notifier.notify(emergency())  # after a silence longer than the repeat: a new occurrence
    await notifier.drain()
    assert len(texts(api)) == 2
    assert len(fake_pagers.pushover) == 2
    assert notifier.stats().emergencies_raised == 2


async def test_an_undelivered_emergency_is_never_dropped_but_retried(make, api, clock):
    notifier = make(emergency_repeat=300)
    api.fail_next("sendMessage", 3, status=500, json=api.error(500, "Internal Server Error"))
    notifier.notify(emergency())
    await notifier.drain()
    assert texts(api) == []
    assert notifier.stats().send_failures == 1
    clock.advance(5)  # the first retry of an emergency comes quickly, not at the repeat
    await notifier.drain()
    assert len(texts(api)) == 1
    assert "EMERGENCY" in texts(api)[0]


# ---- failures stay inside -----------------------------------------------------------------


async def test_a_failing_pager_disturbs_neither_telegram_nor_the_other_pager(
    make, api, fake_pagers
):
    notifier = make(real=True, interval=0.0)
    fake_pagers.stall("ntfy")  # ntfy hangs on every request
    await notifier.start()
    try:
        notifier.notify(emergency())
        notifier.notify(closed())
        await fake_pagers.wait_until(lambda: fake_pagers.pushover, what="the Pushover page")
        await api.wait_for_message(CHAT, "EMERGENCY")
        await api.wait_for_message(CHAT, "C0/USDT")
        assert fake_pagers.parked["ntfy"] == 1
    finally:
        fake_pagers.release("ntfy")
        await notifier.stop(grace=2.0)


async def test_a_pager_answering_errors_is_retried_with_backoff_and_nothing_else_waits(
    make, api, fake_pagers, clock
):
    notifier = make()
    fake_pagers.fail_next("ntfy", 2, status=503)
    notifier.notify(emergency())
    notifier.notify(closed())
    await notifier.drain()
    assert len(texts(api)) == 2
    assert len(fake_pagers.pushover) == 1
    assert fake_pagers.ntfy == []
    clock.advance(2)  # ntfy's first backoff (texts above advanced the clock 1 s already)
    await notifier.drain()
    clock.advance(4)
    await notifier.drain()
    assert len(fake_pagers.ntfy) == 1
    assert notifier.stats().page_failures == 2


async def test_send_errors_never_escape_the_sender_task(make, api):
    notifier = make(real=True, interval=0.0)
    api.fail_next("sendMessage", status=403, json=api.error(403, "Forbidden: bot was blocked"))
    await notifier.start()
    try:
        notifier.notify(closed(1))
        notifier.notify(closed(2))
        await api.wait_for_message(CHAT, "C2/USDT")
        assert notifier.stats().send_failures == 1
        assert all(not t.done() for t in notifier._tasks)
    finally:
        await notifier.stop(grace=2.0)


async def test_stop_delivers_emergencies_first_within_its_bound(make, api, fake_pagers):
    notifier = make()
    notifier.notify(closed(1))
    notifier.notify(closed(2))
    notifier.notify(emergency())
    await notifier.stop(grace=5.0)
    sent = texts(api)
    assert "EMERGENCY" in sent[0]
    assert len(sent) == 3
    assert len(fake_pagers.ntfy) == len(fake_pagers.pushover) == 1
