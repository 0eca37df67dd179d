"""How much a cycle may ask of its exchange: the scan's request budget from the exchange's pace
and the scan interval, so a cycle fits its interval on every exchange, or the interval
stretches (said once, at start).

A cycle is a sync (two private reads: open orders, then the balance) and a scan (one ticker
read, then candle reads). At ccxt's Kraken pace (rateLimit 1000 ms; a private read costs 3,
candles 1.2) a sync alone holds the pace for 6 s, so a fixed budget of 20 scan requests took
13-16 s against a 3 s interval, every cycle ran into the next, and the owner's commands were
refused meanwhile. The cycle may use `SHARE` of its interval; the rest is left to the owner's
commands, exits and the scheduled syncs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SHARE = 0.8
SYNC_READS = 2


@dataclass(frozen=True)
class Pace:
    """Seconds one request holds an account's pace: a public read (candles), a private one."""

    read: float
    private_read: float


@dataclass(frozen=True)
class CyclePlan:
    budget: int  # scan requests per cycle
    interval: float  # seconds between cycle starts
    stretched: bool  # the configured interval could not hold the smallest useful scan

    def describe(self, configured: float, pace: Pace | None) -> str:
        if pace is None:
            return f"cycles every {self.interval:g} s, scanning up to {self.budget} requests"
        paced = f"{pace.read:g} s a read, {pace.private_read:g} s a private read"
        if self.stretched:
            return (
                f"the exchange's pace ({paced}) does not fit a cycle in {configured:g} s: "
                f"cycles every {self.interval:g} s instead, scanning {self.budget} requests"
            )
        return f"cycles every {self.interval:g} s at {paced}: up to {self.budget} scan requests"


def plan(pace: Pace | None, interval: float, *, max_budget: int, per_candidate: int) -> CyclePlan:
    """The budget a cycle of `interval` seconds can spend at `pace`, at most `max_budget`; at
    least one ticker read and one candidate's candles (`per_candidate`), the interval
    stretched to hold them when it cannot."""
    smallest = 1 + max(1, per_candidate)
    if pace is None or pace.read <= 0:
        return CyclePlan(max_budget, interval, stretched=False)
    sync = SYNC_READS * pace.private_read
    fits = math.floor((interval * SHARE - sync) / pace.read + 1e-9)
    if fits >= smallest:
        return CyclePlan(min(max_budget, fits), interval, stretched=False)
    needed = math.ceil((sync + smallest * pace.read) / SHARE)
    return CyclePlan(min(max_budget, smallest), float(needed), stretched=True)
