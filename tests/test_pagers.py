"""Pagers (ntfy, Pushover) and their retrying worker, against a loopback fake of both."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest

from chatbot.config import NotifySettings, Secret
from chatbot.pagers import (
    NtfyPager,
    PagerError,
    PagerWorker,
    PushoverPager,
    pagers_from_settings,
)
from chatbot.senders import Message
from tests.fakes.pager import FakePagers
from trading.clock import FakeClock

ALERT = Message(
    "🚨 <b>EMERGENCY</b> · binance:master\nkill not flat: 2 positions &amp; 1 order",
    emergency=True,
    key="kill:binance:master",
)
CLEARED = Message("✅ <b>Cleared</b> · binance:master\nflat", key="kill:binance:master")


@pytest.fixture
async def fake():
    async with FakePagers() as server:
        yield server


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=5.0) as c:
        yield c


def pushover(fake: FakePagers, client: httpx.AsyncClient, **kwargs) -> PushoverPager:
    return PushoverPager(
        Secret(fake.pushover_token),
        Secret(fake.pushover_user),
        client,
        base_url=fake.pushover_base,
        **kwargs,
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_ntfy_emergency_is_urgent_with_a_title_tags_and_the_bearer_token(fake, client):
    await NtfyPager(fake.ntfy_url, Secret("tk_secret"), client).page(ALERT)
    (sent,) = fake.ntfy
    assert sent.topic == fake.topic
    assert sent.priority == "urgent"
    assert sent.tags == "rotating_light"
    assert sent.title == "EMERGENCY binance:master"  # header-safe: emoji and dot dropped
    assert sent.authorization == "Bearer tk_secret"
    assert sent.body == "kill not flat: 2 positions & 1 order"


async def test_ntfy_cleared_notice_rings_at_default_priority_without_a_token(fake, client):
    await NtfyPager(fake.ntfy_url, None, client).page(CLEARED)
    (sent,) = fake.ntfy
    assert (sent.priority, sent.tags, sent.authorization) == ("default", "white_check_mark", None)
    assert sent.body == "flat"


async def test_pushover_emergency_is_priority_2_with_retry_and_expire_and_keeps_the_receipt(
    fake, client
):
    pager = pushover(fake, client, retry=45, expire=1800)
    await pager.page(ALERT)
    (sent,) = fake.pushover
    assert sent.priority == 2
    assert (sent.form["retry"], sent.form["expire"]) == ("45", "1800")
    assert sent.form["title"] == "🚨 EMERGENCY · binance:master"
    assert pager.receipts == {"kill:binance:master": [sent.receipt]}


async def test_pushover_limits_are_clamped_to_what_the_api_accepts(fake, client):
    pager = pushover(fake, client, retry=5, expire=86_400)
    await pager.page(ALERT)
    assert (fake.pushover[0].form["retry"], fake.pushover[0].form["expire"]) == ("30", "10800")


async def test_pushover_ack_cancels_every_receipt(fake, client):
    pager = pushover(fake, client)
    await pager.page(ALERT)
    await pager.page(Message("🚨 other", emergency=True, key="failsafe:kraken:main"))
    await pager.ack()
    assert sorted(fake.cancelled) == sorted(m.receipt for m in fake.pushover)
    assert pager.receipts == {}
    assert not fake.active_receipts


async def test_pushover_cleared_cancels_that_condition_and_sends_an_ordinary_notice(fake, client):
    pager = pushover(fake, client)
    await pager.page(ALERT)
    await pager.page(Message("🚨 other", emergency=True, key="other"))
    await pager.page(CLEARED)
    assert fake.cancelled == [fake.pushover[0].receipt]
    assert fake.pushover[-1].priority == 0
    assert list(pager.receipts) == ["other"]


async def test_pushover_ack_of_a_receipt_already_acknowledged_in_the_app_is_done(fake, client):
    pager = pushover(fake, client)
    await pager.page(ALERT)
    fake.active_receipts.clear()  # acknowledged on the phone: the API answers 404 now
    await pager.ack()
    assert pager.receipts == {}


async def test_pushover_bad_credentials_fail_without_retry(fake, client):
    pager = PushoverPager("wrong", fake.pushover_user, client, base_url=fake.pushover_base)
    with pytest.raises(PagerError) as err:
        await pager.page(ALERT)
    assert err.value.status == 400
    assert err.value.retryable is False


async def test_worker_retries_a_failed_page_with_backoff_until_delivered(fake, client):
    clock = FakeClock()
    worker = PagerWorker(NtfyPager(fake.ntfy_url, None, client), clock, backoff=2.0)
    fake.fail_next("ntfy", 2, status=503)
    worker.page("k", ALERT)
    await worker.run_due()
    assert (fake.requests, worker.pending) == (1, 1)
    clock.advance(1.9)
    await worker.run_due()
    assert fake.requests == 1  # not yet: the first backoff is 2 s
    clock.advance(0.1)
    await worker.run_due()
    assert fake.requests == 2
    clock.advance(4.0)  # the second backoff doubles
    await worker.run_due()
    assert len(fake.ntfy) == 1
    assert (worker.sent, worker.failures, worker.pending) == (1, 2, 0)


async def test_worker_gives_up_after_its_attempts_logs_it_and_never_raises(fake, client, caplog):
    clock = FakeClock()
    worker = PagerWorker(NtfyPager(fake.ntfy_url, None, client), clock, attempts=3, backoff=1.0)
    fake.fail_next("ntfy", 10, status=500)
    worker.page("k", ALERT)
    for _ in range(5):
        await worker.run_due()
        clock.advance(60)
    assert fake.requests == 3
    assert worker.pending == 0
    assert "failed for good after 3 attempt(s)" in caplog.text


async def test_worker_keeps_one_pending_page_per_condition_with_the_newest_text(fake, client):
    clock = FakeClock()
    worker = PagerWorker(NtfyPager(fake.ntfy_url, None, client), clock)
    for i in range(50):
        worker.page("same", Message(f"alert\nattempt {i}", emergency=True, key="same"))
    worker.page("another", ALERT)
    await worker.run_due()
    assert [p.body for p in fake.ntfy] == ["attempt 49", "kill not flat: 2 positions & 1 order"]


async def test_worker_ack_drops_pages_not_yet_delivered_and_cancels_receipts(fake, client):
    clock = FakeClock()
    worker = PagerWorker(pushover(fake, client), clock)
    worker.page(ALERT.key, ALERT)
    await worker.run_due()
    fake.fail_next("pushover", status=503)
    worker.page("late", Message("late", emergency=True, key="late"))
    await worker.run_due()  # fails, waits for a retry
    worker.ack({"late", ALERT.key})
    clock.advance(60)
    await worker.run_due()
    assert len(fake.pushover) == 1  # the late page was dropped, not retried after the ack
    assert fake.cancelled == [fake.pushover[0].receipt]


async def test_unreachable_pager_is_logged_without_its_url_or_token(client, caplog):
    url = f"http://127.0.0.1:{closed_port()}/secret-topic-name"
    clock = FakeClock()
    worker = PagerWorker(NtfyPager(url, Secret("tk_very_secret"), client), clock)
    worker.page("k", ALERT)
    with caplog.at_level(logging.WARNING):
        await worker.run_due()
    assert worker.failures == 1
    assert "ConnectError" in caplog.text
    assert "secret-topic-name" not in caplog.text
    assert "tk_very_secret" not in caplog.text


async def test_pagers_are_built_from_the_settings_that_configure_them(client):
    none = pagers_from_settings(NotifySettings(), client)
    both = pagers_from_settings(
        NotifySettings(
            ntfy_url=Secret("https://ntfy.example/topic"),
            pushover_token=Secret("t" * 30),
            pushover_user=Secret("u" * 30),
        ),
        client,
    )
    assert none == []
    assert [p.name for p in both] == ["ntfy", "pushover"]
    assert "t" * 30 not in repr(both)


async def test_pushover_cleared_notice_retries_until_the_siren_is_cancelled(fake, client):
    clock = FakeClock()
    worker = PagerWorker(pushover(fake, client), clock, backoff=1.0)
    worker.page(ALERT.key, ALERT)
    await worker.run_due()
    fake.fail_next("cancel", status=503)
    worker.resolve(ALERT.key, CLEARED)
    await worker.run_due()
    assert fake.cancelled == []  # failed: the phone would keep ringing, so it is retried
    assert [m.priority for m in fake.pushover] == [2]
    clock.advance(1)
    await worker.run_due()
    assert fake.cancelled == [fake.pushover[0].receipt]
    assert [m.priority for m in fake.pushover] == [2, 0]
