"""The chaos referee's reasons: every change of mode and every order the bot sends must have one,
and every mode command is answered as the mode table says. The Monitor (sim/chaos/referee.py) holds
one `Causes` and feeds it what it sees.

    a mode entered       FAILSAFE or HALTED: an injected Fatal or bug moments before, or no
                         sync for SYNC_FAILURE_LIMIT_SECONDS (never a single retryable answer,
                         never a shutdown); STOPPED: the stop it ends; any other mode: an owner
                         command that leads there. A restart restores only a mode entered so.
    an order, when sent  KILL: a /kill running, or KILLED; FAILSAFE and STOP: their modes (whose
                         entries are checked above); MANUAL: a /buy or /sell running; PROTECT: a
                         bid the exchange quoted, at or beyond the position's stop-loss or
                         take-profit; EXIT: the strategy's exit signal moments before
    a mode command       /pause (hands-off or not) and /stop accepted in every mode, /resume in
                         every mode but RUNNING, /unpause only when paused, /kill unless killed
    a clean shutdown     leaves the stored mode as it was (a drained cycle is not a fault)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field

from trading.book import client_id_purpose
from trading.clock import Clock
from trading.models import OrderRequest, Position, Side, Ticker
from trading.modes import FLATTENING, PAUSES, Mode, Purpose
from trading.settings import TradingSettings

# Seconds between an injected Fatal or bug (or the strategy's exit signal) and what it explains:
# the bot acts on either at once, but an exit first lifts the position's resting stop, and on a
# slow exchange (injected latency, retried reads) that can take more than a cycle.
FAULT_WINDOW = 300.0
# The latest bids quoted per symbol, any of which a PROTECT exit may be priced at: a feed
# pushes one a second, so a cycle's price may be dozens of pushes old.
BIDS_KEPT = 64

# The modes each owner command may lead to (an /unpause: back to whatever a pause interrupted).
LEADS_TO: dict[str, frozenset[Mode]] = {
    "pause": PAUSES,
    "unpause": frozenset(Mode),
    "stop": frozenset({Mode.STOPPING, Mode.STOPPED}),
    "kill": frozenset({Mode.KILLED}),
    "resume": frozenset({Mode.RUNNING}),
}
MODE_COMMANDS = ("pause", "pause hands-off", "unpause", "resume", "stop", "kill")
UNEXPLAINED = "unexplained"

Violation = Callable[[str, str], None]


@dataclass
class Errand:
    """One owner command running: its name, and the Fatal answers it met."""

    name: str
    fatal: list[str] = field(default_factory=list)


# The owner command running in this context (None: no command; tasks it starts inherit it).
COMMAND: ContextVar[Errand | None] = ContextVar("chaos_command", default=None)


def expected_answer(command: str, mode: Mode) -> bool | None:
    """Whether the mode table accepts `command` in `mode` (None: either answer is right)."""
    if command == "unpause":
        return mode in PAUSES
    if command == "resume":
        return mode is not Mode.RUNNING
    if command == "kill" and mode is Mode.KILLED:
        return None  # refused once flat ("already killed"), else the flattening goes on
    return True


class Causes:
    """Why each mode was entered and each order sent, for one seed, across its restarts."""

    def __init__(
        self, settings: TradingSettings, clock: Clock, violation: Violation, stats: Counter
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.violation = violation
        self.stats = stats
        self.coverage: Counter[str] = Counter()  # "pause@failsafe": mode commands answered
        self._entered: dict[Mode, str] = {}  # why each mode was last entered
        self._fault_at = -math.inf  # clock time of the latest injected Fatal or bug
        self._seen_since = clock.monotonic()  # last successful sync began (or process start)
        self._signals: dict[str, float] = {}  # symbol -> clock time of the last exit signal
        self._bids: dict[str, list[float]] = {}
        self._changes = 0  # mode changes so far
        self._shutdown: tuple[Mode, int] | None = None  # mode and changes when a drain began

    # -- what the world tells

    def fault(self) -> None:
        """An injected Fatal or bug was raised: a FAILSAFE or HALTED may follow."""
        self._fault_at = self.clock.time()

    def synced(self, began: float) -> None:
        """A sync that began at monotonic `began` succeeded."""
        self._seen_since = max(self._seen_since, began)

    def process_started(self) -> None:
        self._seen_since = self.clock.monotonic()  # a new connector's escalation starts afresh

    def quoted(self, tickers: Iterable[Ticker]) -> None:
        for ticker in tickers:
            bids = self._bids.setdefault(ticker.symbol, [])
            bids.append(ticker.bid)
            del bids[:-BIDS_KEPT]

    def signalled(self, symbol: str) -> None:
        self._signals[symbol] = self.clock.time()

    # -- modes

    def mode_set(self, old: Mode, new: Mode, reason: str, command: str | None) -> None:
        """The trader is about to enter `new` (before the store records it: a crash at that
        write leaves the old mode, whose reason is still known)."""
        if new is old:
            return
        self._changes += 1
        why = self._why(new, command)
        if why is None:
            where = f" during /{command}" if command else ""
            self.violation("mode changed without a cause", f"{old} -> {new}{where}: {reason}")
        self._entered[new] = why or UNEXPLAINED

    def _why(self, new: Mode, command: str | None) -> str | None:
        if new in (Mode.FAILSAFE, Mode.HALTED):
            if self.clock.time() - self._fault_at <= FAULT_WINDOW:
                return "fault"
            blind = self.clock.monotonic() - self._seen_since
            if blind > self.settings.sync_failure_limit_seconds:
                return "sync failing"
            if command == "unpause":
                return self._entered.get(new)  # back to it, for its first reason
            return None
        if new is Mode.STOPPED and Mode.STOPPING in self._entered:
            return self._entered[Mode.STOPPING]
        if command is not None and new in LEADS_TO.get(command.split()[0], ()):
            return f"/{command}"
        return None

    def restored(self, mode: Mode) -> None:
        """A new process restored `mode` from the store: one entered for a reason before."""
        self.stats["restored " + str(mode)] += 1
        if mode is not Mode.RUNNING and mode not in self._entered:
            self.violation("restored a mode never entered", str(mode))
        shutdown, self._shutdown = self._shutdown, None
        if shutdown is not None:
            before, changes = shutdown
            if mode is not before and changes == self._changes:
                self.violation("a clean shutdown changed the mode", f"{before} -> {mode}")

    def shutdown_began(self, mode: Mode) -> None:
        self._shutdown = (mode, self._changes)

    def shutdown_abandoned(self) -> None:
        """The process died another way before it restarted: no shutdown to judge."""
        self._shutdown = None

    def mode_command(self, command: str, mode: Mode, ok: bool) -> None:
        """A mode command met `mode` and was answered `ok` (accepted) or not."""
        self.coverage[f"{command}@{mode}"] += 1
        expected = expected_answer(command, mode)
        if expected is not None and ok is not expected:
            answer = "refused" if expected else "accepted"
            self.violation(
                "mode command answered against the mode table", f"/{command} {answer} in {mode}"
            )

    # -- orders

    def order_sent(
        self,
        request: OrderRequest,
        mode: Mode,
        position: Position | None,
        command: str | None,
    ) -> None:
        """Whoever sends an order must have a reason the referee can see."""
        purpose = client_id_purpose(request.client_order_id)
        if purpose is None or self._explained(request, purpose, mode, position, command):
            return
        self.violation(
            "an order nobody asked for",
            f"{purpose} {request.side} {request.symbol} while {mode}"
            + (f" during /{command}" if command else ""),
        )

    def _explained(
        self,
        request: OrderRequest,
        purpose: Purpose,
        mode: Mode,
        position: Position | None,
        command: str | None,
    ) -> bool:
        name = command.split()[0] if command else None
        if purpose is Purpose.MANUAL:
            return name == ("buy" if request.side is Side.BUY else "sell")
        if purpose is Purpose.KILL:
            return mode is Mode.KILLED or name == "kill"
        if purpose is Purpose.FAILSAFE:
            return mode in FLATTENING and self._entered.get(Mode.FAILSAFE, UNEXPLAINED) != (
                UNEXPLAINED
            )
        if purpose is Purpose.STOP:
            return mode is Mode.STOPPING or name == "stop"
        if purpose is Purpose.PROTECT:
            return self._triggered(request, position)
        if purpose is Purpose.EXIT:
            return self.clock.time() - self._signals.get(request.symbol, -math.inf) <= (
                FAULT_WINDOW
            )
        return True  # entries: the mode table's business (checked beside this)

    def _triggered(self, request: OrderRequest, position: Position | None) -> bool:
        """A stop-loss or take-profit exit: priced at a bid the exchange really quoted, at or
        beyond the position's stop or target."""
        price = request.reference_price
        if position is None or price is None:
            return False
        if price not in self._bids.get(request.symbol, ()):
            return False
        stop, target = position.stop_loss, position.take_profit
        return (stop is not None and price <= stop) or (target is not None and price >= target)
