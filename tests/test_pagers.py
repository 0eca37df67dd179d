"""Pagers (ntfy, Pushover) and their retrying worker, against a loopback fake of both."""

from __future__ import annotations

import asyncio
import logging
import socket
import traceback

import httpx
import pytest

from chatbot.config import NotifySettings, Secret
from chatbot.pager_worker import PagerWorker
from chatbot.pagers import (
    NtfyPager,
    PagerError,
    PushoverPager,
    describe,
    pagers_from_settings,
)
from chatbot.senders import Message
from sim.clock import FakeClock
from sim.fakes.pager import FakePagers

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


async def test_pushover_claim_takes_only_the_given_conditions_receipts_and_cancel_stops_them(
    fake, client
):
    pager = pushover(fake, client)
    await pager.page(ALERT)
    await pager.page(Message("🚨 other", emergency=True, key="failsafe:kraken:main"))
    handles = pager.claim({ALERT.key})
    assert handles == [fake.pushover[0].receipt]
    for handle in handles:
        await pager.cancel(handle)
    assert fake.cancelled == [fake.pushover[0].receipt]
    assert pager.receipts == {"failsafe:kraken:main": [fake.pushover[1].receipt]}
    assert fake.active_receipts == {fake.pushover[1].receipt}


async def test_pushover_cleared_notice_is_ordinary_and_cancels_nothing_by_itself(fake, client):
    pager = pushover(fake, client)
    await pager.page(ALERT)
    await pager.page(CLEARED)  # cancelling is the worker's job, from a claim made at clear time
    assert [m.priority for m in fake.pushover] == [2, 0]
    assert fake.cancelled == []
    assert list(pager.receipts) == [ALERT.key]


async def test_worker_resolve_cancels_that_condition_only_then_sends_the_notice(fake, client):
    worker = PagerWorker(pushover(fake, client), FakeClock())
    worker.page(ALERT.key, ALERT)
    worker.page("other", Message("🚨 other", emergency=True, key="other"))
    await worker.run_due()
    worker.resolve(ALERT.key, CLEARED)
    await worker.run_due()
    assert fake.cancelled == [fake.pushover[0].receipt]
    assert [m.priority for m in fake.pushover] == [2, 2, 0]
    assert list(worker.pager.receipts) == ["other"]  # type: ignore[attr-defined]


async def test_pushover_cancel_of_a_receipt_already_acknowledged_in_the_app_is_done(fake, client):
    pager = pushover(fake, client)
    await pager.page(ALERT)
    fake.active_receipts.clear()  # acknowledged on the phone: the API answers 404 now
    for handle in pager.claim({ALERT.key}):
        await pager.cancel(handle)  # no error: nothing left to stop
    assert pager.receipts == {}
    assert fake.cancelled == []


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


async def test_unreachable_pager_is_logged_with_its_host_only_never_its_url_or_token(
    client, caplog
):
    url = f"http://127.0.0.1:{closed_port()}/secret-topic-name"
    clock = FakeClock()
    worker = PagerWorker(NtfyPager(Secret(url), Secret("tk_very_secret"), client), clock)
    worker.page("k", ALERT)
    with caplog.at_level(logging.WARNING):
        await worker.run_due()
    assert worker.failures == 1
    assert worker.pending == 1  # a network error is worth a retry
    assert "ntfy (127.0.0.1) unreachable: ConnectError" in caplog.text
    assert "secret-topic-name" not in caplog.text
    assert "tk_very_secret" not in caplog.text


async def test_ntfy_errors_and_repr_name_the_host_not_the_topic(fake, client):
    pager = NtfyPager(Secret(fake.ntfy_url), None, client)
    fake.fail_next("ntfy", status=403)
    with pytest.raises(PagerError) as refused:
        await pager.page(ALERT)
    fake.drop_next("ntfy")
    with pytest.raises(PagerError) as dropped:
        await pager.page(ALERT)
    for err in (refused.value, dropped.value):
        assert "127.0.0.1" in str(err)
        # Nor in a logged traceback: the httpx error (which holds the request) is not chained.
        assert fake.topic not in "".join(traceback.format_exception(err))
    assert refused.value.retryable is False
    assert dropped.value.retryable is True
    assert fake.topic not in repr(pager)
    assert fake.topic not in repr(vars(pager))
    assert describe([pager]) == "ntfy (127.0.0.1)"


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
    assert "topic" not in repr(both)
    assert describe(both) == "ntfy (ntfy.example), pushover"


async def test_a_cleared_condition_whose_cancel_fails_is_cancelled_at_the_retry(fake, client):
    clock = FakeClock()
    worker = PagerWorker(pushover(fake, client), clock, backoff=1.0)
    worker.page(ALERT.key, ALERT)
    await worker.run_due()
    fake.fail_next("cancel", status=503)
    worker.resolve(ALERT.key, CLEARED)
    await worker.run_due()
    assert fake.cancelled == []  # failed: the phone would keep ringing, so it is retried
    assert [m.priority for m in fake.pushover] == [2, 0]
    clock.advance(1)
    await worker.run_due()
    assert fake.cancelled == [fake.pushover[0].receipt]
    assert worker.pending == 0


# ---- acknowledgement: exactly what was ringing at /ack time -------------------------------


async def test_a_retried_ack_never_cancels_an_emergency_raised_after_it(fake, client):
    clock = FakeClock()
    worker = PagerWorker(pushover(fake, client), clock, backoff=2.0)
    worker.page(ALERT.key, ALERT)
    await worker.run_due()
    fake.fail_next("cancel", status=503)
    worker.ack({ALERT.key})
    await worker.run_due()  # the cancel fails and waits 2 s for its retry
    assert fake.cancelled == []
    newer = Message("🚨 EMERGENCY\nfailsafe", emergency=True, key="failsafe:kraken:main")
    worker.page(newer.key, newer)  # type: ignore[arg-type]
    await worker.run_due()
    clock.advance(2)
    await worker.run_due()
    old, new = (m.receipt for m in fake.pushover)
    assert fake.cancelled == [old]
    assert fake.active_receipts == {new}


async def test_a_retried_ack_spares_the_same_condition_raised_again_after_it(fake, client):
    clock = FakeClock()
    pager = pushover(fake, client)
    worker = PagerWorker(pager, clock, backoff=2.0)
    worker.page(ALERT.key, ALERT)
    await worker.run_due()
    fake.fail_next("cancel", 2, status=503)
    worker.ack({ALERT.key})
    await worker.run_due()
    worker.page(ALERT.key, ALERT)  # the same condition, back after the /ack
    await worker.run_due()
    for _ in range(3):  # bounded: the retries at +2 s and +4 s
        clock.advance(4)
        await worker.run_due()
    first, second = (m.receipt for m in fake.pushover)
    assert fake.cancelled == [first]
    assert pager.receipts == {ALERT.key: [second]}
    assert fake.active_receipts == {second}


async def test_a_page_in_flight_when_acknowledged_is_cancelled_as_soon_as_it_lands(fake, client):
    worker = PagerWorker(pushover(fake, client), FakeClock())
    fake.stall("pushover")
    worker.page(ALERT.key, ALERT)
    running = asyncio.ensure_future(worker.run_due())
    try:
        await fake.wait_until(lambda: fake.parked["pushover"] == 1, what="the page in flight")
        worker.ack({ALERT.key})
        assert fake.cancelled == []  # nothing to claim yet: the receipt is still on its way
    finally:
        fake.release("pushover")
    await asyncio.wait_for(running, 5)
    (sent,) = fake.pushover
    assert fake.cancelled == [sent.receipt]
    assert worker.expires_at(ALERT.key) is None


# ---- a self-repeating service is paged again before its repeats run out -------------------


async def test_worker_asks_for_one_refresh_shortly_before_the_services_repeats_expire(fake, client):
    clock = FakeClock()
    worker = PagerWorker(pushover(fake, client, expire=3600), clock, refresh_lead=300)
    assert worker.wants_page(ALERT.key, repeat_due=False) is False
    assert worker.wants_page(ALERT.key, repeat_due=True) is True  # never paged yet: on repeat
    worker.page(ALERT.key, ALERT)
    assert worker.wants_page(ALERT.key, repeat_due=True) is False  # one is already pending
    await worker.run_due()
    assert worker.expires_at(ALERT.key) == clock.monotonic() + 3600
    assert worker.wants_page(ALERT.key, repeat_due=True) is False  # Pushover repeats it
    clock.advance(3299)
    assert worker.wants_page(ALERT.key, repeat_due=False) is False
    clock.advance(1)
    assert worker.wants_page(ALERT.key, repeat_due=False) is True  # 300 s before expiry
    assert worker.wants_page(ALERT.key, repeat_due=False) is False  # once
    worker.page(ALERT.key, ALERT)
    await worker.run_due()
    assert worker.expires_at(ALERT.key) == clock.monotonic() + 3600
    assert len(fake.pushover) == 2
    worker.ack({ALERT.key})
    clock.advance(3300)
    assert worker.wants_page(ALERT.key, repeat_due=False) is False  # acknowledged: forgotten


async def test_a_refresh_that_fails_for_good_is_tried_again_at_the_repeat_until_expiry(
    fake, client
):
    clock = FakeClock()
    worker = PagerWorker(pushover(fake, client, expire=3600), clock, attempts=1)
    worker.page(ALERT.key, ALERT)
    await worker.run_due()
    clock.advance(3300)
    assert worker.wants_page(ALERT.key, repeat_due=False) is True
    fake.fail_next("pushover", status=503)
    worker.page(ALERT.key, ALERT)
    await worker.run_due()  # given up after its one attempt
    assert (worker.pending, worker.failures) == (0, 1)
    assert worker.wants_page(ALERT.key, repeat_due=False) is False
    assert worker.wants_page(ALERT.key, repeat_due=True) is True


async def test_worker_of_a_service_that_pages_once_follows_the_repeat_interval(fake, client):
    worker = PagerWorker(NtfyPager(fake.ntfy_url, None, client), FakeClock())
    worker.page(ALERT.key, ALERT)
    await worker.run_due()
    assert worker.expires_at(ALERT.key) is None
    assert worker.wants_page(ALERT.key, repeat_due=False) is False
    assert worker.wants_page(ALERT.key, repeat_due=True) is True


async def test_a_refresh_still_missing_when_the_repeats_expire_is_asked_for_at_once(fake, client):
    clock = FakeClock()
    worker = PagerWorker(pushover(fake, client, expire=3600), clock, attempts=1)
    worker.page(ALERT.key, ALERT)
    await worker.run_due()
    clock.advance(3600)  # no pass of the notifier in the refresh window (a stalled loop)
    assert worker.wants_page(ALERT.key, repeat_due=False) is True
