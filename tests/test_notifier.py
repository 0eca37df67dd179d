"""The notifier end to end: python-telegram-bot's real Bot against a loopback fake Bot API, the
real ntfy and Pushover pagers against a loopback fake of both.

Most tests drive the notifier with `drain()` on a FakeClock (pacing and flood waits advance
simulated time); the production tasks (`start()`/`stop()`) run on real time only where nothing
has to wait, and on a VirtualTimeLoop (`run_simulated`) where a flood wait must pass.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from dataclasses import fields
from html import escape

import httpx
import pytest

from chatbot.config import NotifySettings
from chatbot.notifier import Notifier
from chatbot.pagers import NtfyPager, PushoverPager
from chatbot.policy import NotifyPolicy
from chatbot.senders import ConsoleSender, TelegramSender
from handlers.events import format_event
from tests.fakes.pager import FakePagers
from tests.fakes.telegram_api import FakeTelegramAPI
from trading.clock import FakeClock, LoopClock, RealClock, run_simulated
from trading.events import (
    Emergency,
    EmergencyCleared,
    EquityReport,
    Event,
    FaultRaised,
    OrderRejected,
    StateChanged,
    SymbolBanned,
    TradeClosed,
    TradeOpened,
)

CHAT = 4242
ACC = "binance:master"
KEY = "kill:binance:master"


def closed(i: int = 0) -> TradeClosed:
    return TradeClosed(
        account=ACC,
        at=0.0,
        symbol=f"C{i}/USDT",
        amount=1.0,
        price=2.0,
        pnl=0.5,
        pnl_pct=1.0,
        reason="take profit",
    )


def opened(i: int = 0) -> TradeOpened:
    return TradeOpened(
        account=ACC, at=0.0, symbol=f"O{i}/USDT", amount=1.0, price=2.0, cost=2.0, reason="trend"
    )


def emergency(key: str = KEY, message: str = "kill not flat: 1 position left") -> Emergency:
    return Emergency(account=ACC, at=0.0, key=key, message=message)


def equity(value: float) -> EquityReport:
    return EquityReport(account=ACC, at=0.0, equity=value, exposure=0.2, quote="USDT", positions=2)


@pytest.fixture
async def api():
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
async def fake_pagers():
    async with FakePagers() as fake:
        yield fake


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=5.0) as c:
        yield c


@pytest.fixture
async def bot(api):
    async with api.bot() as b:
        yield b


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make(bot, fake_pagers, client, clock):
    """Build a notifier on the fakes: Telegram to CHAT, ntfy and Pushover pagers."""

    def build(*, interval: float = 1.0, real: bool = False, pagers: bool = True, **kwargs):
        use = RealClock() if real else clock
        sender = TelegramSender(bot, CHAT, use, interval=interval)
        pager_list = (
            [
                NtfyPager(fake_pagers.ntfy_url, "tk_test", client),
                PushoverPager(
                    fake_pagers.pushover_token,
                    fake_pagers.pushover_user,
                    client,
                    base_url=fake_pagers.pushover_base,
                ),
            ]
            if pagers
            else []
        )
        return Notifier([sender], pager_list, clock=use, **kwargs)

    return build


def vars_of(event: Event) -> dict[str, object]:
    return {f.name: getattr(event, f.name) for f in fields(event)}


def texts(api: FakeTelegramAPI) -> list[str]:
    return api.sent_texts(CHAT)


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


async def test_a_fatal_fault_is_an_emergency_keyed_by_account(make, api, fake_pagers):
    notifier = make()
    fatal = FaultRaised(account=ACC, at=0, kind="fatal", call="fetch_balance", message="bad key")
    notifier.notify(fatal)
    notifier.notify(fatal)
    await notifier.drain()
    assert [(a.key, a.count) for a in notifier.stats().active_emergencies] == [(f"fatal:{ACC}", 2)]
    assert "Fatal fault" in texts(api)[0]
    assert fake_pagers.pushover[0].priority == 2


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


# ---- reports, daily summary, formatting -------------------------------------------------------


async def test_daily_summary_reports_the_day_and_starts_a_new_one(make, api):
    notifier = make()
    notifier.notify(equity(10_000))
    notifier.notify(opened())
    notifier.notify(closed())
    notifier.notify(FaultRaised(account=ACC, at=0, kind="transient", call="x", message="5xx"))
    notifier.notify(equity(10_500))
    text = notifier.daily_summary()
    assert "Daily summary" in text
    assert "binance:master: 10,500.00 USDT (+5.00% today, PnL +500.00, realized +0.50)" in text
    assert "1 entries, 1 exits, 1 faults" in text
    assert notifier.stats().day_counts == {}
    await notifier.drain()
    assert any("Daily summary" in t for t in texts(api))
    notifier.notify(equity(10_500))
    # The new day starts from the close, with nothing realized yet.
    assert "(+0.00% today, PnL +0.00, realized +0.00)" in notifier.daily_summary()


async def test_reports_are_bounded_like_events(make, api):
    notifier = make(queue_size=2)
    for i in range(5):
        notifier.report(f"report {i}")
    assert notifier.stats().dropped_total == 3
    await notifier.drain()
    assert [t.rsplit("\n", 1)[-1] for t in texts(api)] == ["report 0", "report 1"]


@pytest.mark.parametrize(
    "event",
    [
        opened(),
        closed(),
        OrderRejected(account=ACC, at=0, symbol="X/USDT", side="buy", reason="<min> & more"),
        FaultRaised(account=ACC, at=0, kind="fatal", call="create_order", message="<html> 404"),
        StateChanged(account=ACC, at=0, old="running", new="killed", reason="/kill by <u>"),
        SymbolBanned(account=ACC, at=0, symbol="<b>X</b>/USDT", reason="loop & guard"),
        equity(1234.5),
        emergency(message="exit <failed> & retrying"),
        EmergencyCleared(account=ACC, at=0, key="k<1>", message="flat & done"),
    ],
    ids=lambda ev: type(ev).__name__,
)
def test_every_event_reads_as_html_with_values_escaped_and_tags_closed_per_line(event):
    text = format_event(event)
    for line in text.splitlines():
        for tag in ("b", "i", "code"):
            assert line.count(f"<{tag}>") == line.count(f"</{tag}>")
    for raw in ("<min>", "<html>", "<u>", "<b>X</b>", "<failed>", "k<1>"):
        assert raw not in text
    shown = [v for k, v in vars_of(event).items() if isinstance(v, str) and k != "kind"]
    for value in shown:  # every text field is in the message, escaped
        assert escape(value, quote=False) in text


async def test_a_pager_that_failed_for_good_is_paged_again_at_the_next_repeat(
    make, api, fake_pagers, clock
):
    notifier = make(emergency_repeat=120, page_attempts=2, page_backoff=1.0)
    fake_pagers.fail_next("pushover", 2, status=503)
    notifier.notify(emergency())
    await notifier.drain()
    clock.advance(1)
    await notifier.drain()
    assert fake_pagers.pushover == []  # gave up after two attempts
    clock.advance(120)
    await notifier.drain()
    assert [m.priority for m in fake_pagers.pushover] == [2]  # the repeat reached it
    clock.advance(120)
    await notifier.drain()
    assert len(fake_pagers.pushover) == 1  # and from now on Pushover repeats by itself


async def test_console_transport_prints_what_the_settings_let_through(clock):
    out = io.StringIO()
    settings = NotifySettings(queue_size=3, entries="off")
    notifier = Notifier.from_settings(settings, [ConsoleSender(out)], clock=clock)
    notifier.notify(opened())  # entries are off
    for i in range(5):
        notifier.notify(closed(i))
    notifier.notify(emergency())
    await notifier.drain()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[ALERT] 🚨 EMERGENCY · binance:master | kill not flat")
    assert [line.split(" @ ")[0][-14:] for line in lines[1:]] == [
        "Sold 1 C0/USDT",
        "Sold 1 C1/USDT",
        "Sold 1 C2/USDT",
    ]
    assert lines[1].startswith("[note] ⚠️ 2 notifications dropped (queue full)")
    assert notifier.stats().day_counts["TradeOpened"] == 1


async def test_a_clear_for_a_condition_never_raised_is_announced_without_paging(
    make, api, fake_pagers
):
    notifier = make()
    notifier.notify(EmergencyCleared(account=ACC, at=0, key="sync:kraken:main", message="synced"))
    await notifier.drain()
    assert "Cleared" in texts(api)[0]
    assert fake_pagers.requests == 0


# ---- a self-repeating pager (Pushover) stays alerting until /ack; /ack is exact ----------

PUSHOVER_EXPIRE = 3600  # PushoverPager's default, as built by `make`


def assert_always_alerting(fake: FakePagers, start: float, end: float) -> None:
    gaps = [t for t in range(int(start), int(end), 30) if not fake.alerting_at(t)]
    assert gaps == [], f"Pushover silent at {gaps[:3]} s"


async def test_an_emergency_unacknowledged_for_five_hours_keeps_pushover_alerting_throughout(
    make, api, fake_pagers, clock
):
    fake_pagers.now = clock.monotonic
    notifier = make()  # our repeat every 300 s
    notifier.notify(emergency())
    for _ in range(60):  # five simulated hours
        await notifier.drain()
        clock.advance(300)
    pages = [m.at for m in fake_pagers.pushover]
    assert all(m.priority == 2 for m in fake_pagers.pushover)
    assert 5 <= len(pages) <= 7  # about one per expiry, not one per repeat
    for earlier, later in itertools.pairwise(pages):
        assert earlier + PUSHOVER_EXPIRE - 600 < later < earlier + PUSHOVER_EXPIRE
    assert_always_alerting(fake_pagers, pages[0], clock.monotonic())
    assert fake_pagers.cancelled == []
    assert len(texts(api)) == 60  # Telegram repeats on our interval meanwhile
    assert len(fake_pagers.ntfy) == 60


async def test_pushover_is_paged_again_before_expiry_even_when_our_repeat_is_longer(
    make, api, fake_pagers, clock
):
    fake_pagers.now = clock.monotonic
    notifier = make(emergency_repeat=7200)
    notifier.notify(emergency())
    for _ in range(180):  # three hours, drained every minute as the sender loop would
        await notifier.drain()
        clock.advance(60)
    assert [m.at for m in fake_pagers.pushover] == [0, 3300, 6600, 9900]  # 300 s before expiry
    assert_always_alerting(fake_pagers, fake_pagers.pushover[0].at, clock.monotonic())
    assert len(fake_pagers.ntfy) == 2  # ntfy follows our repeat: at 0 and at 2 h


async def test_after_ack_pushover_is_neither_refreshed_nor_left_ringing(
    make, api, fake_pagers, clock
):
    fake_pagers.now = clock.monotonic
    notifier = make()
    notifier.notify(emergency())
    for _ in range(12):  # one hour: one refresh so far
        await notifier.drain()
        clock.advance(300)
    assert len(fake_pagers.pushover) == 2
    assert notifier.ack() == 1
    acked_at = clock.monotonic()
    for _ in range(24):
        await notifier.drain()
        clock.advance(300)
    assert len(fake_pagers.pushover) == 2
    assert sorted(fake_pagers.cancelled) == sorted(m.receipt for m in fake_pagers.pushover)
    assert fake_pagers.alerting_at(acked_at + 1) == []


async def test_a_retried_ack_never_cancels_an_emergency_raised_after_it(
    make, api, fake_pagers, clock
):
    notifier = make()
    notifier.notify(emergency())
    await notifier.drain()
    fake_pagers.fail_next("cancel", status=503)
    assert notifier.ack() == 1
    await notifier.drain()  # the cancel fails; its retry is due in 2 s
    assert fake_pagers.cancelled == []
    notifier.notify(emergency(key="failsafe:binance:master", message="failsafe: exits failing"))
    await notifier.drain()
    clock.advance(5)
    await notifier.drain()
    first, second = fake_pagers.pushover
    assert fake_pagers.cancelled == [first.receipt]
    assert fake_pagers.active_receipts == {second.receipt}
    assert [(a.key, a.acked) for a in notifier.stats().active_emergencies] == [
        (KEY, True),
        ("failsafe:binance:master", False),
    ]


def test_production_tasks_refresh_pushover_before_expiry_until_ack():
    async def main(clock: LoopClock) -> tuple[list[float], list[str], float, FakePagers]:
        async with FakePagers() as fake, httpx.AsyncClient() as client:
            fake.now = clock.monotonic
            pager = PushoverPager(
                fake.pushover_token,
                fake.pushover_user,
                client,
                base_url=fake.pushover_base,
                expire=900,
            )
            out = io.StringIO()
            notifier = Notifier([ConsoleSender(out)], [pager], clock=clock)
            await notifier.start()
            notifier.notify(emergency())
            await asyncio.sleep(3600)
            notifier.ack()
            acked_at = clock.monotonic()
            await asyncio.sleep(1800)
            await notifier.stop()
            return [m.at for m in fake.pushover], fake.cancelled, acked_at, fake

    pages, cancelled, acked_at, fake = run_simulated(main)
    assert pages == [0, 600, 1200, 1800, 2400, 3000]  # 300 s before each 900 s expiry
    assert_always_alerting(fake, pages[0], acked_at)
    assert fake.alerting_at(acked_at + 1) == []  # the /ack cancelled the one still alerting
    assert cancelled[-1] == fake.pushover[-1].receipt
