"""The exchange-side dead man's switch (cancel-all-after): if the bot goes silent, the exchange
cancels its open orders itself.

It cancels every open order of the account, so it is armed only to guard the bot's own working
orders, and disarmed as soon as something else rests there that it would cancel too (the user's
orders, protective stops). It is an extra: a failure to arm is a warning and a fault in the
metrics, never fatal, and an exchange that refuses the call outright is not asked again.

Apart from trading/connector.py because it is state of its own (armed until when, broken or not)
that only this one call changes.
"""

from __future__ import annotations

import functools
import logging

from trading.clock import Clock
from trading.errors import Fatal, Fault, Recoverable
from trading.models import Venue
from trading.venue_calls import VenueCalls


def _always(fault: Fault) -> bool:
    return True


class DeadManSwitch:
    """One venue's cancel-all-after, refreshed for `seconds` at a time."""

    def __init__(
        self,
        venue: Venue,
        calls: VenueCalls,
        *,
        clock: Clock,
        log: logging.Logger,
        seconds: float,
    ) -> None:
        self._venue = venue
        self._calls = calls
        self._clock = clock
        self._log = log
        self._seconds = seconds
        self._until: float | None = None  # epoch
        # An earlier process may have armed it: until this one has set it, it is disarmed
        # rather than left to fire on orders that are not the bot's.
        self._unknown = True
        self._broken = False

    async def guard(self, *, working: bool, others: bool) -> bool:
        """Refreshed while the bot has working orders (`working`) and nothing else rests on the
        account (`others`), disarmed (0) as soon as that no longer holds. Whether it is armed
        now."""
        if not self._venue.has_cancel_all_after or self._seconds <= 0:
            return False
        if self._broken:
            return False
        armed = self._until is not None or self._unknown
        if working and not others:
            await self._arm(self._seconds)
        elif armed:
            await self._arm(0.0)
        return self._until is not None and self._clock.time() < self._until

    def armed_until(self, now: float) -> float | None:
        """When the exchange cancels everything unless refreshed (epoch), if armed at `now`."""
        return self._until if self._until and now < self._until else None

    async def _arm(self, seconds: float) -> None:
        armed_at = self._clock.time()
        try:
            arm = functools.partial(self._venue.cancel_all_after, seconds)
            await self._calls.call("cancel_all_after", arm, signed=True, gated=False, quiet=_always)
        except Fatal as fault:
            self._broken = True
            self._log.warning("dead man's switch unavailable here (%s); not asked again", fault)
        except Recoverable as fault:
            what = "armed" if seconds else "disarmed"
            self._log.warning("dead man's switch not %s: %s", what, fault)
        else:
            self._until = armed_at + seconds if seconds > 0 else None
            self._unknown = False
