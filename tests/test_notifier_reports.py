"""The notifier's reports, daily summary and formatting, on the loopback fakes."""

from __future__ import annotations

import io
from html import escape

import pytest

from chatbot.config import NotifySettings
from chatbot.notifier import Notifier
from chatbot.senders import ConsoleSender
from handlers.messages import format_event
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
    EmergencyCleared,
    FaultRaised,
    OrderRejected,
    StateChanged,
    SymbolBanned,
)

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
