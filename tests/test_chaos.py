"""The chaos soak's fast variant: the whole bot (engine, connector, notifier, command handlers)
under random faults, commands, crashes and restarts on simulated time, a few seeds of 150
cycles, and the proof that its referee would notice if the bot broke a rule. `python
bench/chaos.py` is the long run.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import contextmanager

import pytest

import trading.connector
import trading.exits
import trading.failsafe
import trading.manual
import trading.operations
import trading.orders
import trading.reconcile
import trading.store
import trading.venue_calls
from sim.chaos.soak import run_seed
from trading.errors import Fatal, Transient
from trading.models import Side
from trading.modes import Mode
from trading.risk import Allowed
from trading.venues.paper import PaperExchange

CYCLES = 150
SEEDS = range(1, 13)


def caught(*kinds: str, seeds=SEEDS, **options) -> int | None:
    """The first seed whose run shows a violation of every one of `kinds`: the soak is random,
    so a broken bot is caught by some seeds, not all (the long run has many more)."""
    for seed in seeds:
        counts = run_seed(seed, CYCLES, **options).violation_counts
        if all(counts.get(kind) for kind in kinds):
            return seed
    return None


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_a_few_seeds_of_chaos_break_no_invariant(seed):
    report = run_seed(seed, CYCLES)
    assert report.violations == [], "\n".join(report.violations)
    assert report.stats["cycles"] == CYCLES
    assert sum(report.injected.values()) >= 5  # the faults really came
    assert sum(report.commands.values()) >= 5  # and the human did things
    # The book was compared often: most cycles, or every few cycles on the event feed (which
    # syncs every 2 or 5 cycles while healthy); a retired account endpoint: no sync at all.
    often = CYCLES // 6 if report.stats.get("seeds with the event feed") else CYCLES // 2
    if not report.planned.get("endpoint_404_for_good"):
        assert report.stats["exchange checks"] > often


def test_the_balance_endpoint_retired_for_good_escalates_and_breaks_no_invariant():
    report = run_seed(9, CYCLES, retire_at=20)
    assert report.violations == [], "\n".join(report.violations)
    assert report.planned["endpoint_404_for_good"] == 1
    assert report.stats.get("entered failsafe", 0) + report.stats.get("entered halted", 0) >= 1


def test_crashes_kills_and_shutdowns_mid_cycle_restart_the_bot_and_break_no_invariant():
    report = run_seed(10, CYCLES)  # a seed whose bot ends all three ways
    assert report.violations == [], "\n".join(report.violations)
    assert {"crash point", "killed", "shutdown"} <= set(report.endings)
    assert report.endings["restarts"] == sum(
        n for how, n in report.endings.items() if how != "restarts"
    )
    assert report.stats["ledgers checked"] >= 2  # after a restart's sync, and at the end
    assert sum(report.retryable.values()) >= 5  # and retryable answers came at random


def test_commands_through_the_traders_operations_break_no_invariant_either():
    report = run_seed(10, CYCLES, direct=True)
    assert report.violations == [], "\n".join(report.violations)
    assert report.via_table == {}


def test_a_seed_reproduces_its_run():
    first, second = run_seed(7, 60), run_seed(7, 60)
    assert first.digest == second.digest
    assert first.stats == second.stats and first.commands == second.commands
    assert run_seed(8, 60).digest != first.digest


# Seed 6's user places orders between the syncs a healthy feed skips: the dead man's switch
# must not be armed on the older look (it would cancel them too).
@pytest.mark.parametrize("seed", [1, 2, 6])
def test_seeds_on_an_event_feed_that_loses_repeats_and_reorders_events_break_no_invariant(seed):
    report = run_seed(seed, CYCLES, feed=True)
    assert report.violations == [], "\n".join(report.violations)
    assert report.stats["seeds with the event feed"] == 1
    assert report.stats["feed events lost"] > 0
    assert report.stats["fills the feed lost, found by the sync"] > 0


def test_half_the_seeds_run_on_the_event_feed():
    fed = [run_seed(seed, 5).stats.get("seeds with the event feed", 0) for seed in range(1, 21)]
    assert 5 <= sum(fed) <= 15


def test_the_referee_sees_a_sync_that_misses_a_fill_the_feed_lost(monkeypatch):
    """The sync reads the open orders but no longer looks up the book's orders that left them:
    a resting stop's fill whose event the feed lost is never applied."""
    resolve = trading.reconcile.Reconciler._resolve

    async def open_list_only(self, tracked, open_on_exchange, by_client, read):
        if tracked.confirmed and tracked.order.id not in open_on_exchange:
            return None
        return await resolve(self, tracked, open_on_exchange, by_client, read)

    monkeypatch.setattr(trading.reconcile.Reconciler, "_resolve", open_list_only)
    # Seed 6 caught it with a /stop's exit that filled after a /resume; a /resume now turns
    # those back into stops, and seed 16 is the first to catch it otherwise.
    seeds = range(1, 21)
    assert caught("a fill the feed missed was not found by the sync", seeds=seeds, feed=True)


# A seed holding positions when its bot is killed in cycle 60 and its host stays dead ten minutes.
DEAD_SEED, DEAD_HOST = 5, (60, 600.0)


def test_resting_stops_protect_the_positions_while_the_host_is_dead_for_ten_minutes():
    report = run_seed(DEAD_SEED, CYCLES, dead_host=DEAD_HOST)
    assert report.violations == [], "\n".join(report.violations)
    assert report.endings["dead host"] == 1
    assert report.protection["guarded"] > 0.5 * report.protection["all"]
    assert report.protection.get("unprotected", 0.0) == 0.0


def test_the_referee_sees_positions_unprotected_while_the_host_is_dead_without_resting_stops(
    monkeypatch,
):
    monkeypatch.setattr(PaperExchange, "stop_types", ())
    report = run_seed(DEAD_SEED, CYCLES, dead_host=DEAD_HOST)
    assert report.violation_counts.get("position unprotected longer than a cycle")
    seconds, cause = report.longest_gap
    assert seconds >= DEAD_HOST[1] and cause == "no stop and trader dead"


def test_dead_hosts_and_refused_stops_at_random_measure_protection_and_break_no_invariant():
    report = run_seed(2, CYCLES, dead_hosts=True)  # a seed whose venue refuses some stops
    assert report.violations == [], "\n".join(report.violations)
    assert report.endings["dead host"] >= 1
    assert report.stats["stops refused by the venue"] >= 1
    assert report.protection["all"] > 0


def test_the_referee_sees_a_gate_that_lets_buys_through_in_any_mode(monkeypatch):
    gate = trading.orders.check

    def lax(intent, snap, limits):
        decision = gate(intent, snap, limits)
        return Allowed(intent.amount) if intent.side is Side.BUY else decision

    monkeypatch.setattr(trading.orders, "check", lax)
    monkeypatch.setattr(trading.orders, "mode_refusal", lambda *args: None)
    monkeypatch.setattr(trading.manual, "allows", lambda *args: True)  # /buy's own look
    kinds: Counter[str] = Counter()
    for seed in SEEDS:
        report = run_seed(seed, CYCLES)
        kinds.update(report.violation_counts)
        assert all(v.startswith(f"seed {seed} cycle ") for v in report.violations)
        capped = kinds["positions above MAX_POSITIONS"] + kinds["exposure above MAX_EXPOSURE"]
        if kinds["order in a mode that forbids it"] and capped:
            break
    else:
        pytest.fail(f"a gate that lets every buy through went unseen: {dict(kinds)}")


def test_the_referee_sees_a_kill_that_never_gets_out(monkeypatch):
    async def stuck(self, purpose):
        return trading.exits.FlattenRound(0, (), tuple(self.book.positions), False)

    monkeypatch.setattr(trading.exits.Exits, "flatten_round", stuck)
    # Not every seed kills with positions open and then lets the exchange recover; some of the
    # first dozen do, and the referee must catch the kill that never sells in them.
    caught = [
        seed
        for seed in range(1, 13)
        if run_seed(seed, CYCLES).violation_counts.get("not flat after a kill", 0) > 0
    ]
    assert caught


def test_the_referee_sees_a_retryable_answer_that_flattens_the_account(monkeypatch):
    """Binance's -1008 "server busy" taken for a Fatal: the failsafe sells for no reason."""
    counted = trading.venue_calls.VenueCalls._counted

    async def server_busy_is_fatal(self, call, fn, quiet):
        try:
            return await counted(self, call, fn, quiet)
        except Transient as fault:
            if "-1008" not in fault.message:
                raise
            raise Fatal(fault.message, venue=fault.venue, call=call) from fault

    monkeypatch.setattr(trading.venue_calls.VenueCalls, "_counted", server_busy_is_fatal)
    assert caught("mode changed without a cause", "an order nobody asked for")


def test_the_referee_sees_a_shutdown_mid_cycle_that_sells_after_the_restart(monkeypatch):
    """The drain's cancellation taken for a bug: the failsafe is stored, and the restarted bot
    flattens the account nobody asked it to."""
    guarded = trading.failsafe.Failsafe.guarded

    async def cancellation_is_a_bug(self, step, *, exclusive=False):
        try:
            await guarded(self, step, exclusive=exclusive)
        except asyncio.CancelledError:
            await self.safely(self.dead_switch(RuntimeError("cancelled by the shutdown")))
            raise

    monkeypatch.setattr(trading.failsafe.Failsafe, "guarded", cancellation_is_a_bug)
    assert caught("mode changed without a cause", "an order nobody asked for")


def test_the_referee_sees_pause_and_resume_refused_in_failsafe(monkeypatch):
    for name in ("pause", "resume"):
        operation = getattr(trading.operations.ModeCommands, name)

        def refusing(operation):
            async def refused_in_failsafe(self, **options):
                if self.parts.state.mode is Mode.FAILSAFE:
                    return self._refuse("trader is in failsafe")
                return await operation(self, **options)

            return refused_in_failsafe

        monkeypatch.setattr(trading.operations.ModeCommands, name, refusing(operation))
    assert caught("mode command answered against the mode table")


def test_the_referee_sees_a_command_that_never_answers(monkeypatch):
    async def hangs(self):
        await asyncio.Event().wait()

    monkeypatch.setattr(trading.manual.ManualCommands, "sync", hangs)
    assert caught("command not answered")


def test_the_referee_sees_a_crash_between_two_writes_of_one_change(monkeypatch):
    """Each store write commits on its own: a crash point in the middle of a fill leaves the
    order's fill recorded and the position not, and the coins are lost to the book."""

    @contextmanager
    def each_write_alone(self):
        try:
            yield
        finally:
            self._db.commit()

    monkeypatch.setattr(trading.store.Store, "transaction", each_write_alone)
    # Crash points fall on other writes in the first dozen seeds; the next ones hit one.
    assert caught("a fill the book never applied", seeds=range(13, 30))


def test_the_referee_sees_the_bot_cancel_the_users_orders(monkeypatch):
    cancel_all = trading.orders.OrderRouter.cancel_all

    async def cancels_everything(self, **options):
        result = await cancel_all(self, **options)
        for order in await self.connector.venue.paper.fetch_open_orders():
            await self.connector.cancel(order.id, order.symbol)
        return result

    monkeypatch.setattr(trading.orders.OrderRouter, "cancel_all", cancels_everything)
    assert caught("the bot cancelled an order not its own", "the user's order was touched")


def test_the_referee_sees_the_dead_man_armed_over_the_users_orders(monkeypatch):
    guard = trading.connector.Connector.guard_dead_man

    async def blind_to_others(self, *, working, others):
        return await guard(self, working=working, others=False)

    monkeypatch.setattr(trading.connector.Connector, "guard_dead_man", blind_to_others)
    # No stops rest: a stop's exits are plain limits, the working orders the switch guards.
    monkeypatch.setattr(PaperExchange, "stop_types", ())
    assert caught("dead man armed over orders not the bot's")
