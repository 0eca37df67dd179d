"""The chaos soak's referee: the Monitor that checks the invariants of issue 7 while the whole
bot runs under random faults, commands, crashes and restarts (`sim/chaos/soak.py` builds that
world: the chaos venue, strategy, notifier, command handlers and the bot's processes; nothing in
the running bot imports this module). ObservedTrader is the real Trader with hooks: after every
successful sync it lets the Monitor compare the book, the store and the exchange, and it tells
the Monitor every mode change and mode command.

The invariants, each checked where it can be seen first:

    every order, when the bot sends it     buys only while RUNNING and never for a banned symbol;
                                           no order at all while PAUSED or HALTED, only manual
                                           sells while STOPPED, only exits while KILLED/FAILSAFE;
                                           each has a reason (sim/chaos/causes.py); a buy
                                           never takes positions above MAX_POSITIONS or exposure
                                           above MAX_EXPOSURE (sim/chaos/books.py)
    every mode change and mode command     has a cause, is answered as the mode table says
                                           (sim/chaos/causes.py)
    after every successful sync            the store mirrors the book, and the book the exchange
                                           (after a restart: every fill and trade recorded once,
                                           sim/chaos/books.py)
    at the end of every cycle              every Fatal fault, dead-switch entry and halt has
                                           produced an emergency event, and every emergency
                                           has reached the sender; every bug has tripped
                                           the dead switch; a KILLED/FAILSAFE trader is flat at
                                           the exchange within FLAT_WITHIN cycles of the
                                           exchange being well again; the user's coins and
                                           orders are untouched; each position is
                                           guarded by a resting stop or a live bot's check,
                                           and no gap outlasts a cycle (sim/chaos/protection.py,
                                           which also looks while the host is dead)
    always                                 no exception escapes an operation, the cycle or a
                                           background task, nothing logs an exception that was
                                           not injected on purpose (a ChaosBug,
                                           sim/chaos/logwatch.py), and every owner command gets
                                           an answer

At the end the Monitor fills in the seed's SeedReport (sim/chaos/report.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence

from sim.chaos.alarms import Alarms
from sim.chaos.books import Books, Outsider, open_exchange_orders, ours_by_id
from sim.chaos.causes import COMMAND, Causes, Errand
from sim.chaos.logwatch import Crash, capturing_logs
from sim.chaos.observed import FaultyVenue, ObservedConnector, ObservedTrader
from sim.chaos.protection import Protection
from sim.chaos.report import SeedReport
from trading.book import client_id_purpose
from trading.clock import Clock
from trading.engine import Trader
from trading.events import Event
from trading.models import OrderRequest, Side, Ticker
from trading.modes import FLATTENING, allows
from trading.reconcile import Difference
from trading.settings import TradingSettings
from trading.venues.paper import PaperExchange

__all__ = [
    "Monitor",
    "ObservedConnector",
    "ObservedTrader",
]

# Cycles of a well exchange after which a kill must be flat there: more than the circuit
# breaker's longest cooldown (300 s) plus the flattening's longest backoff (30 s).
FLAT_WITHIN = 8
MAX_REPORTED = 3  # violations of one kind listed per seed (all are counted)


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
        self.causes = Causes(settings, clock, self.violation, self.stats)
        self.books = Books(settings, paper, self.violation, self.stats)
        self.alarms = Alarms(self.events, self.violation, self.stats)
        self.protection = Protection(paper, clock, settings.scan_interval_seconds, self.violation)
        self.after_fair_sync: list[Callable[[], None]] = []  # more checks (sim/chaos/feeds.py)
        self._quiet = 0
        self._flat_reported = False
        self._faults = 0

    def watch(self, trader: Trader, venue: FaultyVenue, notifier) -> None:
        """Referee this trader (a new one after each restart)."""
        self.trader, self.venue = trader, venue
        self.books.trader = self.alarms.trader = self.protection.trader = trader
        self.books.denied = venue.denied
        self.alarms.notifier = notifier
        self.causes.process_started()

    def outsider(self, user: Outsider) -> None:
        """What the user holds beside the bot, which it must never touch."""
        self.books.outsider = self.protection.outsider = user

    def violation(self, kind: str, detail: str) -> None:
        self.kinds[kind] += 1
        if self.kinds[kind] <= MAX_REPORTED:
            self.violations.append(f"seed {self.seed} cycle {self.cycle}: {kind}: {detail}")

    # -- the process never dies but of a crash

    async def guard(self, what: str, step: Awaitable):
        """Await a step of the bot; an exception escaping it is a violation, not the end. A
        Crash is the process dying there, as the soak meant it to."""
        try:
            return await step
        except Crash:
            self.stats["steps ended by a crash"] += 1
            return None
        except Exception as exc:
            where = traceback.format_exc(limit=-3).strip().splitlines()
            self.violation("exception escaped", f"{what}: {type(exc).__name__}: {exc}: {where}")
            return None

    def capturing_logs(self) -> contextlib.AbstractContextManager[None]:
        """Each exception the bot logs while the soak runs is inspected (sim/chaos/logwatch.py)."""
        return capturing_logs(self.violation)

    # -- restarts

    def shutdown_began(self) -> None:
        assert self.trader is not None
        self.causes.shutdown_began(self.trader.mode)

    def restarting(self, how: str) -> None:
        """The process ended (`how`: crashed, killed, shut down); a new one starts from the
        store. What the old one still owed (a page, a dead switch) died with it."""
        self.alarms.forget(how)
        if how != "shutdown":
            self.causes.shutdown_abandoned()
        self.books.ledger_due = True
        self._quiet = 0

    def restarted(self) -> None:
        """The new process restored its mode: that is the mode found, nothing new owed."""
        self.alarms.restarted()

    # -- what the venue and the strategy report

    def alarm_expected(self, why: str, call: str = "") -> None:
        """A Fatal answer: owed an emergency, unless it answered a command (the reply tells
        the owner) or the exchange-side dead man (an extra, switched off, never paged)."""
        if call == "cancel_all_after":
            self.stats["fatal dead man, switched off"] += 1
            return
        self.causes.fault()
        if self.trader is not None and self.trader.mode in FLATTENING:
            # Getting out: the flattening retries; "not flat" pages if it cannot get out.
            self.stats["fatal while flattening"] += 1
            return
        errand = COMMAND.get()
        if errand is not None:
            errand.fatal.append(why)
            return
        self.alarms.fatal(why)

    @contextlib.contextmanager
    def command(self, name: str) -> Iterator[list[str]]:
        """Marks what runs inside as the owner command `name` (tasks it starts inherit the
        mark); yields the Fatal answers it meets."""
        errand = Errand(name)
        token = COMMAND.set(errand)
        try:
            yield errand.fatal
        finally:
            COMMAND.reset(token)

    def answered(self, fatal: list[str], reply: str) -> None:
        self.alarms.answered(fatal, reply)

    def bug_raised(self, what: str) -> None:
        self.stats["bugs"] += 1
        self.causes.fault()
        self.alarms.bug(what)

    def quoted(self, tickers: Sequence[Ticker]) -> None:
        self.causes.quoted(tickers)

    def exit_signalled(self, symbol: str) -> None:
        self.causes.signalled(symbol)

    def order_sent(self, request: OrderRequest) -> None:
        """An order leaves the bot: is it allowed in the trader's mode, right now, and has it a
        reason?"""
        trader = self.trader
        assert trader is not None
        mode, symbol = trader.mode, request.symbol
        purpose = client_id_purpose(request.client_order_id)
        self.stats[f"sent {purpose or '?'}"] += 1
        side = request.side
        if purpose is None or not allows(mode, side, purpose):
            self.violation("order in a mode that forbids it", f"{purpose} {side} {symbol} {mode}")
        errand = COMMAND.get()
        position = trader.book.positions.get(symbol)
        self.causes.order_sent(request, mode, position, errand.name if errand else None)
        if side is Side.BUY:
            if symbol in trader.store.bans(trader.label):
                self.violation("order for a banned symbol", f"{purpose} buy {symbol}")
            self.books.check_caps(request)

    def cancel_sent(self, order_id: str) -> None:
        self.books.cancel_sent(order_id)

    def dead_man_armed(self) -> None:
        self.books.dead_man_armed()

    def dead_man_disarming(self) -> None:
        self.books.dead_man_disarming()

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
        self.books.against_exchange(now)
        for check in self.after_fair_sync:
            check()

    # -- at the end of every cycle (and after commands)

    def command_issued(self, name: str) -> None:
        self.observe()

    def unanswered(self, name: str, seconds: float) -> None:
        self.violation("command not answered", f"/{name}: nothing after {seconds:.0f} s")

    def command_done(self, name: str, result: object) -> None:
        """Every owner command is answered: a reply or a result, accepted or refused."""
        ok = getattr(result, "ok", None)
        if ok is None:
            self.violation("command not answered", f"/{name}: {result!r}")
        self.stats[f"/{name} {'done' if ok else 'refused'}"] += 1
        self.observe()

    def observe(self) -> None:
        self.alarms.observe()

    def end_of_cycle(self) -> None:
        trader = self.trader
        assert trader is not None
        self.alarms.settle()
        if len(trader.book.positions) > self.settings.max_positions:
            self.violation("positions above MAX_POSITIONS", f"book {sorted(trader.book.positions)}")
        task = trader.failsafe.flattening  # the background flattening must not die of an exception
        if task is not None and task.done() and not task.cancelled() and task.exception():
            self.violation("flattening task died", repr(task.exception()))
        self._check_flat()
        self.books.outsider_untouched()
        self.protection.observe(alive=True)
        self.stats["cycles"] += 1
        self.stats[f"cycles {trader.mode}"] += 1

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
        held, _ = self.books.holdings()
        resting = [
            o.symbol for o in open_exchange_orders(self.paper) if ours_by_id(o.client_order_id)
        ]
        if held or resting:
            self._flat_reported = True
            self.violation(
                "not flat after a kill",
                f"{trader.mode} for {self._quiet} cycles of a well exchange; holding "
                f"{sorted(held)}, open orders {resting}, book {sorted(trader.book.positions)}",
            )

    # -- the end

    def finish(self, notifier) -> None:
        """After the last cycle, with nothing running: the ledger once more, the notifier."""
        if self.trader is not None:
            self.books.ledger()
        self.protection.finish()
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
            protection=self.protection.figures(),
            longest_gap=(self.protection.longest.seconds, self.protection.longest.cause),
            digest=self.digest(),
            **{k: dict(v) if isinstance(v, Counter) else v for k, v in parts.items()},
        )
