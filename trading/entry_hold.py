"""Entries held on an answer nobody recognises: at once, and said once to the owner; allowed
again, and said so, when that call works again. The connector escalates it to Fatal if it
persists past its limit (trading/escalation.py); until then positions keep their protection."""

from __future__ import annotations

import logging

from trading.clock import Clock
from trading.connector import Connector
from trading.events import EntriesHeld, Notify


class EntryHold:
    def __init__(
        self,
        connector: Connector,
        *,
        label: str,
        clock: Clock,
        notify: Notify,
        log: logging.Logger,
    ) -> None:
        self.connector = connector
        self.label = label
        self.clock = clock
        self.notify = notify
        self.log = log
        self._announced: str | None = None

    def caution(self) -> str | None:
        """Why entries are held now (None: they are not)."""
        doubt = self.connector.unrecognized()
        if doubt is None:
            return None
        call, _since, message = doubt
        return f"{call} gave an unrecognised answer ({message[:120]})"

    def announce(self) -> None:
        """Tell the owner once when entries are held, and once when they are no longer."""
        reason = self.caution()
        if (reason is None) == (self._announced is None):
            return
        self._announced = reason
        self.log.warning("entries %s", f"held: {reason}" if reason else "allowed again")
        now = self.clock.time()
        self.notify(EntriesHeld(account=self.label, at=now, reason=reason or "", held=bool(reason)))
