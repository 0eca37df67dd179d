"""A trader's mode and its open emergencies: what the owner must know, remembered in the store
and announced on every change.

The mode is persisted so a pause, a stop or a kill survives a restart; the mode a pause
interrupted is persisted beside it, so /unpause goes back to the stop (or kill, or failsafe) it
paused. Emergencies are keyed per account ("fatal", "kill-not-flat"): raised once, cleared when
the condition ends, all cleared by /resume.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from trading.clock import Clock
from trading.events import Emergency, EmergencyCleared, Notify, StateChanged
from trading.modes import PAUSES, Mode
from trading.store import Store


class TraderState:
    """One trader's mode, emergencies and last error."""

    def __init__(
        self, label: str, *, store: Store, clock: Clock, notify: Notify, log: logging.Logger
    ) -> None:
        self.label = label
        self.store = store
        self.clock = clock
        self.notify = notify
        self.log = log
        self.mode = Mode.RUNNING
        self.emergencies: set[str] = set()
        self.last_error: str | None = None
        self.aborted = False  # /abort was obeyed: the process ends, the trader does nothing more
        # Told of every mode change before it is made (old, new, reason): the chaos referee
        # checks each has a cause.
        self.on_mode: Callable[[Mode, Mode, str], None] = lambda old, new, reason: None

    def restore(self) -> None:
        """The mode as the store remembers it (announced: the owner sees the trader come back
        paused, stopped or killed)."""
        saved = self.store.mode(self.label)
        if not saved or saved == self.mode:
            return
        try:
            self.mode = Mode(saved)
        except ValueError:
            self.log.warning("unknown saved mode %r; starting as running", saved)
            return
        self.notify(
            StateChanged(
                account=self.label,
                at=self.clock.time(),
                old="",
                new=str(self.mode),
                reason="restored after a restart",
            )
        )

    def set_mode(self, new: Mode, reason: str) -> None:
        old = self.mode
        if new is old:
            return
        self.on_mode(old, new, reason)
        now = self.clock.time()
        with self.store.transaction():  # the mode and what goes with it, or neither
            self.store.set_mode(self.label, str(new), now)
            if new is Mode.STOPPING:
                self.store.set_meta(f"stop_started:{self.label}", repr(now))
            if new in PAUSES and old not in PAUSES:
                self.store.set_meta(f"paused_from:{self.label}", str(old))
        self.mode = new
        self.log.warning("%s -> %s: %s", old, new, reason)
        self.notify(
            StateChanged(account=self.label, at=now, old=str(old), new=str(new), reason=reason)
        )

    def paused_from(self) -> Mode | None:
        """The mode the current pause interrupted (None: not known)."""
        saved = self.store.get_meta(f"paused_from:{self.label}")
        try:
            return Mode(saved) if saved else None
        except ValueError:
            return None

    def stop_started(self) -> float:
        raw = self.store.get_meta(f"stop_started:{self.label}")
        return float(raw) if raw else self.clock.time()

    def emergency(self, key: str, message: str) -> None:
        self.emergencies.add(key)
        self.notify(
            Emergency(
                account=self.label, at=self.clock.time(), key=f"{key}:{self.label}", message=message
            )
        )

    def clear_emergency(self, key: str, message: str) -> None:
        """Close a condition raised earlier (a key never raised is not cleared)."""
        if key not in self.emergencies:
            return
        self.emergencies.discard(key)
        self.notify(
            EmergencyCleared(
                account=self.label, at=self.clock.time(), key=f"{key}:{self.label}", message=message
            )
        )

    def clear_all(self, message: str) -> None:
        for key in sorted(self.emergencies):
            self.clear_emergency(key, message)
