"""The referee's measure of protection in the dead-hosts soak (issue 18): what it forgives (the
venue refusing a stop, the one request after the owner's hands-off pause ends) and what it
still sees (positions left bare after that pause), and a page it must not ask twice for.
Seeds of the long run, cut short."""

from __future__ import annotations

import trading.operations
from sim.chaos.soak import run_seed

GAP = "position unprotected longer than a cycle"


def test_a_stop_the_venue_refused_for_any_reason_is_counted_as_the_venues_refusal():
    """Seed 185: an injected "exit refused" met the stop put back after a refused exit; the
    host died before the bot's retry. Only the venue's own refusal draw counted before."""
    report = run_seed(185, 8, dead_hosts=True)
    assert report.violations == [], "\n".join(report.violations)
    assert report.protection["venue refused"] > 0


def test_a_kill_out_of_hands_off_may_go_one_request_before_its_positions_count_as_bare():
    """Seed 398: /kill from the hands-off pause, and the host died inside the one request a
    position may go without its stop (seed 132 was this case until a sell of unknown outcome got
    its stop back at once and its path changed)."""
    report = run_seed(398, 72, dead_hosts=True)
    assert report.violations == [], "\n".join(report.violations)
    assert report.protection["hands-off"] > 0
    assert report.protection["died inside one request"] > 0


async def _no_stops_back(self, old, new):
    return None


def test_the_referee_sees_positions_left_bare_after_the_hands_off_pause_ends(monkeypatch):
    """Seed 152: /resume out of hands-off, a crash, and the host dead for twenty minutes."""
    assert run_seed(152, 8, dead_hosts=True).violations == []
    monkeypatch.setattr(trading.operations.ModeCommands, "_guard_again", _no_stops_back)
    report = run_seed(152, 8, dead_hosts=True)
    assert report.violation_counts.get(GAP)


def test_a_fatal_met_while_its_emergency_is_raised_is_not_owed_a_second_page():
    """Seed 6 (its path since stops go back on after hands-off): halted with the emergency
    raised, a Fatal on sync_time, then a /resume in the same cycle cleared the emergency
    before the referee looked."""
    report = run_seed(6, 207, dead_hosts=True)
    assert report.violations == [], "\n".join(report.violations)


def test_a_sell_answered_too_many_requests_gets_its_stop_back_before_the_host_dies():
    """Seed 54: an exit met a 429, which the bot took for an unknown outcome, so the stop it
    had lifted stayed off until reconciliation settled the sell (two cycles), then the stop
    put back met a 429 too; the host died meanwhile."""
    report = run_seed(54, 179, dead_hosts=True)
    assert report.violations == [], "\n".join(report.violations)


def test_stops_put_back_one_by_one_as_hands_off_ends_may_each_take_their_request():
    """Seed 7: /resume out of hands-off puts two positions' stops back, one request each, and
    the host dies between them. Each may go until its own request (or the command's answer),
    not only the first; a build that answers without putting them back is still caught (the
    seed 152 test above)."""
    report = run_seed(7, 486, dead_hosts=True)
    assert report.violations == [], "\n".join(report.violations)
