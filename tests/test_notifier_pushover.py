"""A self-repeating pager (Pushover) stays alerting until /ack, and /ack is exact."""

from __future__ import annotations

import asyncio
import io
import itertools

import httpx

from chatbot.notifier import Notifier
from chatbot.pagers import PushoverPager
from chatbot.senders import ConsoleSender
from sim.clock import LoopClock, run_simulated
from sim.fakes.pager import FakePagers
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
