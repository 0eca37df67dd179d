"""The chaos referee's pages: every Fatal fault, dead-switch entry and halt produces an emergency
event, every emergency reaches the sender, and every bug trips the dead switch. The Monitor
(sim/chaos/referee.py) holds one `Alarms`, feeds it what it sees and settles it after each cycle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from trading.engine import Trader
from trading.events import Event, StateChanged
from trading.modes import FLATTENING, PAUSES, Mode

Violation = Callable[[str, str], None]


class Alarms:
    """What one seed's bot owes the owner's phone, settled at the end of every cycle."""

    def __init__(self, events: list[Event], violation: Violation, stats: Counter) -> None:
        self.events = events
        self.violation = violation
        self.stats = stats
        self.trader: Trader | None = None
        self.notifier = None  # anything with stats().active_emergencies (chatbot's Notifier)
        self._due: list[tuple[int, str]] = []  # (event index, why an emergency is due)
        self._bugs: list[tuple[int, str, Mode]] = []
        self._last_mode = Mode.RUNNING
        self._last_index = 0
        self._scanned = 0

    def fatal(self, why: str) -> None:
        """A Fatal answer nobody else tells the owner of: an emergency is due, unless one is
        raised for a Fatal already (it pages once per condition, until /resume: a /resume later
        in the cycle must not make this one look unpaged)."""
        if self.trader is not None and "fatal" in self.trader.state.emergencies:
            return
        self._due.append((len(self.events), why))

    def answered(self, fatal: list[str], reply: str) -> None:
        """A command that met a Fatal answer must say so in its reply; else it is owed a page."""
        for why in fatal:
            if "fatal" in reply.lower():
                self.stats["fatal told in a reply"] += 1
            else:
                self.fatal(why)

    def bug(self, what: str) -> None:
        assert self.trader is not None
        self._bugs.append((len(self.events), what, self.trader.mode))

    def observe(self) -> None:
        """A trader found in FAILSAFE or HALTED since the last look owes an emergency (this also
        catches a mode set without a StateChanged event)."""
        trader = self.trader
        assert trader is not None
        mode = trader.mode
        if mode is not self._last_mode and mode in (Mode.FAILSAFE, Mode.HALTED):
            self._due.append((self._last_index, f"found {mode}"))
        self._last_mode, self._last_index = mode, len(self.events)

    def forget(self, how: str) -> None:
        """The process ended: what it still owed died with it. The new one restores its mode:
        that is the mode found, nothing new owed."""
        if self._due or self._bugs:
            self.stats[f"alarms lost to a restart ({how})"] += len(self._due) + len(self._bugs)
        self._due.clear()
        self._bugs.clear()

    def restarted(self) -> None:
        assert self.trader is not None
        self._last_mode, self._last_index = self.trader.mode, len(self.events)

    def settle(self) -> None:
        """At the end of a cycle, with the notifier drained."""
        self.observe()
        self._scan_events()
        self._settle_due()
        self._settle_bugs()
        self._check_delivered()

    def _scan_events(self) -> None:
        for index in range(self._scanned, len(self.events)):
            event = self.events[index]
            if (
                isinstance(event, StateChanged)
                and event.new in ("failsafe", "halted")
                and not event.reason.startswith("restored")  # paged when it was entered
            ):
                self._due.append((index, f"entered {event.new}"))
                self.stats[f"entered {event.new}"] += 1
            if event.emergency:
                self.stats["emergency events"] += 1
        self._scanned = len(self.events)

    def _settle_due(self) -> None:
        if not self._due:
            return
        active = self._active()
        assert self.trader is not None
        # A Fatal fault pages once per condition (until /resume), not once per cycle.
        raised = "fatal" in self.trader.state.emergencies
        for index, why in self._due:
            if active or (raised and why.startswith("Fatal on")):
                continue
            if not any(e.emergency for e in self.events[index:]):
                self.violation("no emergency", why)
        self._due.clear()

    def _check_delivered(self) -> None:
        """The notifier was drained just before: every emergency it holds has reached the
        sender at least once (never dropped, never stuck behind normal traffic)."""
        if self.notifier is None:
            return
        for alarm in self.notifier.stats().active_emergencies:
            if alarm.sends < 1 and not alarm.acked:
                self.violation("emergency not delivered", f"{alarm.key} raised {alarm.count}x")

    def _active(self) -> bool:
        trader = self.trader
        if self.notifier is None or trader is None:
            return False
        active = self.notifier.stats().active_emergencies
        return any(a.account == trader.label and not a.acked for a in active)

    def _settle_bugs(self) -> None:
        for index, what, mode in self._bugs:
            if mode in FLATTENING or mode in PAUSES:
                # Caught while getting out (reported as a problem, flattening goes on), or
                # while the owner has taken over (an emergency, nothing sold).
                continue
            tripped = any(
                isinstance(e, StateChanged) and e.new in ("failsafe", "killed")
                for e in self.events[index:]
            )
            if not tripped:
                self.violation("a bug did not trip the dead switch", f"{what} while {mode}")
        self._bugs.clear()
