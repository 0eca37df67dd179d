"""The dispatcher every transport shares: parsing, confirmations and their expiry, audit."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from handlers.context import Context
from handlers.dispatch import Dispatcher
from handlers.reply import Reply
from handlers.table import Command
from sim.clock import FakeClock
from trading.store import Store


@dataclass
class Desk:
    """The smallest desk the dispatcher needs: a store to audit into, no traders."""

    store: Store
    started_at: float
    traders: list = field(default_factory=list)


@pytest.fixture
def setup():
    clock = FakeClock()
    store = Store(":memory:")
    calls: list[list[str]] = []

    async def boom(ctx, args):
        calls.append(args)
        return Reply(text=f"boomed {' '.join(args)}".strip())

    async def broken(ctx, args):
        raise RuntimeError("handler bug")

    commands = (
        Command("boom", boom, "destroy things", confirm=True),
        Command("echo", boom, "say it back"),
        Command("broken", broken, "always fails"),
    )
    ctx = Context(desk=Desk(store, clock.time()), clock=clock)
    yield Dispatcher(ctx, commands), clock, store, calls
    store.close()


async def test_unknown_command_is_refused_and_nothing_runs(setup):
    dispatcher, _, _, calls = setup
    reply = await dispatcher.handle("/nope x", "alice")
    assert not reply.ok and "Unknown command /nope" in reply.text
    assert calls == []


async def test_bot_suffix_and_case_are_accepted(setup):
    dispatcher, _, _, calls = setup
    reply = await dispatcher.handle("/ECHO@my_bot hi", "alice")
    assert reply.text == "boomed hi" and calls == [["hi"]]


async def test_destructive_command_asks_first_and_runs_on_confirm(setup):
    dispatcher, _, store, calls = setup
    ask = await dispatcher.handle("/boom all", "alice")
    assert calls == [] and [b.label for b in ask.buttons] == ["Confirm", "Cancel"]
    done = await dispatcher.press(ask.buttons[0].data, "alice")
    assert done.text == "boomed all" and calls == [["all"]]
    assert store.audit_log()[0].command == "boom"
    # A button works once.
    again = await dispatcher.press(ask.buttons[0].data, "alice")
    assert not again.ok and calls == [["all"]]


async def test_now_skips_the_confirmation(setup):
    dispatcher, _, _, calls = setup
    reply = await dispatcher.handle("/boom now", "alice")
    assert reply.text == "boomed" and calls == [[]]


async def test_cancel_does_nothing_and_is_audited(setup):
    dispatcher, _, store, calls = setup
    ask = await dispatcher.handle("/boom", "alice")
    reply = await dispatcher.press(ask.buttons[1].data, "alice")
    assert "nothing done" in reply.text and calls == []
    assert store.audit_log()[0].result == "cancelled"


async def test_confirmation_expires_after_its_time(setup):
    dispatcher, clock, store, calls = setup
    ask = await dispatcher.handle("/boom", "alice")
    clock.advance(61)
    reply = await dispatcher.press(ask.buttons[0].data, "alice")
    assert not reply.ok and "expired" in reply.text and calls == []
    assert store.audit_log()[0].result == "confirmation expired"


async def test_handler_bug_becomes_a_reply_and_is_audited(setup):
    dispatcher, _, store, _ = setup
    reply = await dispatcher.handle("/broken", "alice")
    assert not reply.ok and "RuntimeError: handler bug" in reply.text
    entry = store.audit_log()[0]
    assert (entry.who, entry.command) == ("alice", "broken")
    assert "handler bug" in entry.result


async def test_every_command_is_audited_with_its_result(setup):
    dispatcher, _, store, _ = setup
    await dispatcher.handle("/echo a b", "bob")
    entry = store.audit_log()[0]
    assert (entry.who, entry.command, entry.args, entry.result) == (
        "bob",
        "echo",
        "a b",
        "boomed a b",
    )
