"""The chaos soak's referee: the Monitor that checks the invariants of issue 7 while the whole
bot runs under random faults and commands (`bench/chaos_lib.py` builds that world: the chaos
venue, strategy, notifier and command handlers; nothing in the running bot imports this module).
ObservedTrader is the real Trader with one hook: after every successful sync it lets the Monitor
compare the book, the store and the exchange.

The invariants, each checked where it can be seen first:

    every order, when the bot sends it     buys only while RUNNING and never for a banned symbol;
                                           no order at all while PAUSED or HALTED, only manual
                                           sells while STOPPED, only exits while KILLED/FAILSAFE;
                                           a buy never takes the exchange's positions above
                                           MAX_POSITIONS or its exposure above MAX_EXPOSURE
    after every successful sync            the store mirrors the book, and the book the exchange:
                                           no position larger than the balance, no coins and no
                                           open order of ours the book does not manage
    at the end of every cycle              every Fatal fault, dead-switch entry and halt has
                                           produced an emergency event, and every emergency
                                           has reached the sender; every bug has tripped
                                           the dead switch; a KILLED/FAILSAFE trader is flat at
                                           the exchange within FLAT_WITHIN cycles of the
                                           exchange being well again
    always                                 no exception escapes an operation, the cycle or a
                                           background task, and nothing logs an exception that
                                           was not injected on purpose (a ChaosBug)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import traceback
from collections import Counter
from collections.abc import Awaitable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from trading.book import client_id_purpose, is_dust
from trading.clock import Clock
from trading.connector import Connector
from trading.engine import Trader
from trading.events import Event, StateChanged
from trading.models import AccountState, OrderRequest, Side
from trading.modes import FLATTENING, PAUSES, Mode, allows
from trading.reconcile import Difference
from trading.settings import TradingSettings
from trading.venues.paper import PaperExchange

# Cycles of a well exchange after which a kill must be flat there: more than the circuit
# breaker's longest cooldown (300 s) plus the flattening's longest backoff (30 s).
FLAT_WITHIN = 8
EXPOSURE_TOLERANCE = 0.02  # the gate prices at the bid, the check at the mid
DUST_MARGIN = 1.05  # holdings within 5 % of the market minimum count as dust (price rounding)
MAX_REPORTED = 3  # violations of one kind listed per seed (all are counted)

# The Fatal answers met by the owner command running in this context (None: no command).
COMMAND: ContextVar[list[str] | None] = ContextVar("chaos_command", default=None)


class ChaosBug(RuntimeError):
    """A bug injected on purpose; any other exception the bot logs is a real one."""


class FaultyVenue(Protocol):
    """What the Monitor reads of the chaos venue (bench/chaos_lib.py)."""

    paper: PaperExchange
    created: int  # orders sent so far
    faults: int  # faults raised so far (a retired endpoint's excepted)

    def unsettled(self) -> bool:
        """Whether a fault is pending (a retired endpoint's excepted)."""


class ObservedConnector(Connector):
    """Remembers, per task, what the exchange looked like when each sync began, so the check
    after reconciliation can tell whether anything moved meanwhile."""

    def __init__(self, venue: Any, **kwargs) -> None:
        super().__init__(venue, **kwargs)
        self.chaos: FaultyVenue = venue
        # per task: (orders sent, the exchange's balance) when its latest sync began
        self.states: dict[asyncio.Task | None, tuple[int, dict[str, float]]] = {}

    async def sync(self) -> AccountState:
        before = (self.chaos.created, dict(self.chaos.paper.peek_balance().total))
        state = await super().sync()
        self.states[asyncio.current_task()] = before
        return state


class ObservedTrader(Trader):
    """The real Trader; after every successful sync the Monitor compares book, store and the
    exchange (through the account's public `on_synced` hook)."""

    monitor: Monitor

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account.on_synced = self._synced

    def _synced(self, differences: list[Difference]) -> None:
        connector = self.connector
        if isinstance(connector, ObservedConnector):
            seen = connector.states.pop(asyncio.current_task(), None)
            if seen is not None:
                self.monitor.after_sync(differences, created=seen[0], totals=seen[1])


# ---- the invariants -------------------------------------------------------------------------


@dataclass
class SeedReport:
    """What one seed did and every invariant it broke."""

    seed: int
    cycles: int
    seconds: float
    violations: list[str]
    violation_counts: dict[str, int]
    planned: dict[str, int]  # fault scenarios planned, by name
    injected: dict[str, int]  # faults the chaos venue raised, by class
    natural: dict[str, int]  # faults the paper exchange raised itself (its rate limit...)
    commands: dict[str, int]
    via_table: dict[str, int]  # of those, run through the command table's handlers
    stats: dict[str, int] = field(default_factory=dict)
    digest: str = ""


class _LogWatch(logging.Handler):
    """Every exception the bot logs that was not injected on purpose is a violation, and so is
    any exception at all that reached a command handler."""

    def __init__(self, monitor: Monitor) -> None:
        super().__init__(logging.ERROR)
        self.monitor = monitor

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return
        # An injected bug is the dead switch's business, unless it escaped an operation into
        # a command handler: the trader's operations never raise.
        if isinstance(exc, ChaosBug) and not record.name.startswith("handlers"):
            return
        where = "".join(traceback.format_tb(exc.__traceback__)[-2:]).strip().replace("\n", " | ")
        self.monitor.violation(
            "unexpected exception logged",
            f"{record.name}: {record.getMessage()}: {type(exc).__name__}: {exc} at {where}",
        )


class Monitor:
    """Checks the invariants of one seed's run (see the module docstring)."""

    def __init__(
        self, seed: int, settings: TradingSettings, paper: PaperExchange, clock: Clock
    ) -> None:
        self.seed = seed
        self.settings = settings
        self.paper = paper
        self.clock = clock
        self.events: list[Event] = []
        self.violations: list[str] = []
        self.kinds: Counter[str] = Counter()
        self.stats: Counter[str] = Counter()
        self.cycle = -1
        self.trader: Trader | None = None
        self.venue: FaultyVenue | None = None
        self.notifier = None  # anything with stats().active_emergencies (chatbot's Notifier)
        self._alarms: list[tuple[int, str]] = []  # (event index, why an emergency is due)
        self._bugs: list[tuple[int, str, Mode]] = []
        self._last_mode = Mode.RUNNING
        self._last_index = 0
        self._scanned = 0
        self._quiet = 0
        self._flat_reported = False
        self._faults = 0

    def watch(self, trader: Trader, venue: FaultyVenue, notifier) -> None:
        self.trader, self.venue, self.notifier = trader, venue, notifier

    def violation(self, kind: str, detail: str) -> None:
        self.kinds[kind] += 1
        if self.kinds[kind] <= MAX_REPORTED:
            self.violations.append(f"seed {self.seed} cycle {self.cycle}: {kind}: {detail}")

    # -- the process never dies

    async def guard(self, what: str, step: Awaitable):
        """Await a step of the bot; an exception escaping it is a violation, not the end."""
        try:
            return await step
        except Exception as exc:
            where = traceback.format_exc(limit=-3).strip().splitlines()
            self.violation("exception escaped", f"{what}: {type(exc).__name__}: {exc}: {where}")
            return None

    @contextlib.contextmanager
    def capturing_logs(self) -> Iterator[None]:
        """Only errors are logged while the soak runs (the rest would be noise, and slow); each
        logged exception is inspected."""
        handler = _LogWatch(self)
        names = ("trading", "handlers", "chatbot")
        levels = {n: logging.getLogger(n).level for n in names}
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)
            logging.getLogger(name).addHandler(handler)
        try:
            yield
        finally:
            for name in names:
                logging.getLogger(name).removeHandler(handler)
                logging.getLogger(name).setLevel(levels[name])

    # -- what the venue and the strategy report

    def alarm_expected(self, why: str, call: str = "") -> None:
        """A Fatal answer: owed an emergency, unless it answered a command (the reply tells
        the owner) or the exchange-side dead man (an extra, switched off, never paged)."""
        if call == "cancel_all_after":
            self.stats["fatal dead man, switched off"] += 1
            return
        if self.trader is not None and self.trader.mode in FLATTENING:
            # Getting out: the flattening retries; "not flat" pages if it cannot get out.
            self.stats["fatal while flattening"] += 1
            return
        command = COMMAND.get()
        if command is not None:
            command.append(why)
            return
        self._alarms.append((len(self.events), why))

    @contextlib.contextmanager
    def command(self) -> Iterator[list[str]]:
        """Marks what runs inside as one owner command (tasks it starts inherit the mark)."""
        fatal: list[str] = []
        token = COMMAND.set(fatal)
        try:
            yield fatal
        finally:
            COMMAND.reset(token)

    def answered(self, fatal: list[str], reply: str) -> None:
        """A command that met a Fatal answer must say so in its reply; else it is owed a page."""
        for why in fatal:
            if "fatal" in reply.lower():
                self.stats["fatal told in a reply"] += 1
            else:
                self._alarms.append((len(self.events), why))

    def bug_raised(self, what: str) -> None:
        self.stats["bugs"] += 1
        assert self.trader is not None
        self._bugs.append((len(self.events), what, self.trader.mode))

    def order_sent(self, request: OrderRequest) -> None:
        """An order leaves the bot: is it allowed in the trader's mode, right now?"""
        trader = self.trader
        assert trader is not None
        mode, symbol = trader.mode, request.symbol
        cid = request.client_order_id or ""
        purpose = client_id_purpose(cid)
        self.stats[f"sent {purpose or '?'}"] += 1
        side = request.side
        if purpose is None or not allows(mode, side, purpose):
            self.violation("order in a mode that forbids it", f"{purpose} {side} {symbol} {mode}")
        if side is Side.BUY:
            if symbol in trader.store.bans(trader.label):
                self.violation("order for a banned symbol", f"{purpose} buy {symbol}")
            self._check_caps(request)

    def _check_caps(self, request: OrderRequest) -> None:
        held, equity = self._holdings()
        cost = request.amount * self.paper.price(request.symbol)
        count = len(set(held) | {request.symbol})
        if count > self.settings.max_positions:
            self.violation(
                "positions above MAX_POSITIONS",
                f"buy {request.symbol} makes {count} > {self.settings.max_positions}",
            )
        exposure = (sum(held.values()) + cost) / equity if equity > 0 else float("inf")
        if exposure > self.settings.max_exposure + EXPOSURE_TOLERANCE:
            self.violation(
                "exposure above MAX_EXPOSURE",
                f"buy {request.symbol} for {cost:.2f} makes {exposure:.1%} of equity "
                f"{equity:.2f} > {self.settings.max_exposure:.0%}",
            )

    def _holdings(self, totals: dict[str, float] | None = None) -> tuple[dict[str, float], float]:
        """(value of every non-dust holding by symbol, equity), at mid prices, from the
        exchange's own balance."""
        trader = self.trader
        assert trader is not None
        totals = self.paper.peek_balance().total if totals is None else totals
        quote = self.settings.quote
        held: dict[str, float] = {}
        equity = totals.get(quote, 0.0)
        for symbol, market in (trader.connector.markets or {}).items():
            amount = totals.get(market.base, 0.0)
            if amount <= 0 or market.quote != quote:
                continue
            price = self.paper.price(symbol)
            equity += amount * price
            if not _dust(market, amount, price):
                held[symbol] = amount * price
        return held, equity

    # -- after every successful sync

    def after_sync(
        self, differences: list[Difference], *, created: int, totals: dict[str, float]
    ) -> None:
        trader, venue = self.trader, self.venue
        assert trader is not None and venue is not None
        self.stats["syncs checked"] += 1
        book = trader.book
        stored = {p.symbol: p.amount for p in trader.store.positions(trader.label)}
        mine = {s: p.amount for s, p in book.positions.items()}
        if stored.keys() != mine.keys() or any(
            abs(stored[s] - mine[s]) > 1e-9 * max(1.0, mine[s]) for s in mine
        ):
            self.violation("store and book disagree", f"positions {stored} vs {mine}")
        open_stored = {o.order.id for o in trader.store.orders(trader.label, open_only=True)}
        if open_stored != set(book.orders):
            self.violation("store and book disagree", f"orders {open_stored} vs {set(book.orders)}")
        unresolved = any(d.kind == "unresolved" for d in differences)
        now = self.paper.peek_balance().total
        if unresolved or venue.created != created or now != totals:
            return  # something moved while the sync ran: the comparison would not be fair
        self.stats["exchange checks"] += 1
        self._book_against_exchange(now)

    def _book_against_exchange(self, totals: dict[str, float]) -> None:
        trader = self.trader
        assert trader is not None
        book = trader.book
        buying = {t.order.symbol for t in book.orders.values() if t.side is Side.BUY}
        for symbol, market in trader.connector.markets.items():
            total = totals.get(market.base, 0.0)
            position = book.positions.get(symbol)
            amount = position.amount if position else 0.0
            if position is not None and total < amount * (1 - 0.001) - 1e-12:
                self.violation(
                    "book holds more than the exchange", f"{symbol}: {amount:g} > {total:g}"
                )
            excess = total - amount
            price = self.paper.price(symbol)
            if excess > 0 and not _dust(market, excess, price) and symbol not in buying:
                self.violation(
                    "coins the bot does not manage",
                    f"{symbol}: the exchange holds {total:g}, the book {amount:g}",
                )
        ours = [o for o in self.paper.order_log if o.is_open and _ours(o.client_order_id)]
        unknown = [o for o in ours if o.id not in book.orders]
        if unknown:
            self.violation(
                "open order unknown to the book", ", ".join(f"{o.symbol} {o.id}" for o in unknown)
            )

    # -- at the end of every cycle (and after commands)

    def command_issued(self, name: str) -> None:
        self.observe()

    def command_done(self, name: str, result: object) -> None:
        ok = getattr(result, "ok", None)
        self.stats[f"/{name} {'done' if ok else 'refused'}"] += 1
        self.observe()

    def observe(self) -> None:
        """A trader found in FAILSAFE or HALTED since the last look owes an emergency (this also
        catches a mode set without a StateChanged event)."""
        trader = self.trader
        assert trader is not None
        mode = trader.mode
        if mode is not self._last_mode and mode in (Mode.FAILSAFE, Mode.HALTED):
            self._alarms.append((self._last_index, f"found {mode}"))
        self._last_mode, self._last_index = mode, len(self.events)

    def end_of_cycle(self) -> None:
        trader = self.trader
        assert trader is not None
        self.observe()
        self._scan_events()
        self._settle_alarms()
        self._settle_bugs()
        self._check_delivered()
        if len(trader.book.positions) > self.settings.max_positions:
            self.violation("positions above MAX_POSITIONS", f"book {sorted(trader.book.positions)}")
        task = trader.failsafe.flattening  # the background flattening must not die of an exception
        if task is not None and task.done() and not task.cancelled() and task.exception():
            self.violation("flattening task died", repr(task.exception()))
        self._check_flat()
        self.stats["cycles"] += 1
        self.stats[f"cycles {trader.mode}"] += 1

    def _scan_events(self) -> None:
        for index in range(self._scanned, len(self.events)):
            event = self.events[index]
            if isinstance(event, StateChanged) and event.new in ("failsafe", "halted"):
                self._alarms.append((index, f"entered {event.new}"))
                self.stats[f"entered {event.new}"] += 1
            if event.emergency:
                self.stats["emergency events"] += 1
        self._scanned = len(self.events)

    def _settle_alarms(self) -> None:
        if not self._alarms:
            return
        active = self._alarm_active()
        assert self.trader is not None
        # A Fatal fault pages once per condition (until /resume), not once per cycle.
        raised = "fatal" in self.trader.state.emergencies
        for index, why in self._alarms:
            if active or (raised and why.startswith("Fatal on")):
                continue
            if not any(e.emergency for e in self.events[index:]):
                self.violation("no emergency", why)
        self._alarms.clear()

    def _check_delivered(self) -> None:
        """The notifier was drained just before: every emergency it holds has reached the
        sender at least once (never dropped, never stuck behind normal traffic)."""
        if self.notifier is None:
            return
        for alarm in self.notifier.stats().active_emergencies:
            if alarm.sends < 1 and not alarm.acked:
                self.violation("emergency not delivered", f"{alarm.key} raised {alarm.count}x")

    def _alarm_active(self) -> bool:
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

    def _check_flat(self) -> None:
        """KILLED or FAILSAFE: flat at the exchange within FLAT_WITHIN cycles once it is well
        again (consecutive cycles with no fault pending or raised, but for a retired account
        endpoint: orders still go through, so the kill must still get out)."""
        trader, venue = self.trader, self.venue
        assert trader is not None and venue is not None
        if trader.mode not in FLATTENING:
            self._quiet, self._flat_reported = 0, False
            return
        unwell = venue.unsettled() or venue.faults != self._faults
        self._faults = venue.faults
        self._quiet = 0 if unwell else self._quiet + 1
        if self._quiet < FLAT_WITHIN or self._flat_reported:
            return
        held, _ = self._holdings()
        resting = [o.symbol for o in self.paper.order_log if o.is_open]
        if held or resting:
            self._flat_reported = True
            self.violation(
                "not flat after a kill",
                f"{trader.mode} for {self._quiet} cycles of a well exchange; holding "
                f"{sorted(held)}, open orders {resting}, book {sorted(trader.book.positions)}",
            )

    # -- the end

    def finish(self, notifier) -> None:
        errors = notifier.stats().internal_errors
        if errors:
            self.violation("notifier failed", f"{errors} internal errors")

    def digest(self) -> str:
        """A fingerprint of the run: the same seed must give the same one."""
        trader = self.trader
        assert trader is not None
        h = hashlib.sha256()
        for o in self.paper.order_log:
            h.update(f"{o.symbol}|{o.side}|{o.amount:.10g}|{o.filled:.10g}|{o.status}|".encode())
            h.update(f"{o.timestamp:.3f}\n".encode())
        balance = sorted(self.paper.peek_balance().total.items())
        h.update(f"{trader.mode}|{balance}|{len(self.events)}".encode())
        return h.hexdigest()[:16]

    def report(self, **parts) -> SeedReport:
        return SeedReport(
            seed=self.seed,
            violations=list(self.violations),
            violation_counts=dict(self.kinds),
            stats=dict(self.stats),
            digest=self.digest(),
            **{k: dict(v) if isinstance(v, Counter) else v for k, v in parts.items()},
        )


def _dust(market, amount: float, price: float) -> bool:
    if is_dust(market, amount, price):
        return True
    return amount * price < market.min_cost * DUST_MARGIN


def _ours(client_order_id: str | None) -> bool:
    return client_id_purpose(client_order_id) is not None
