"""The chaos soak's machinery: the whole bot on the paper exchange in simulated time, with faults
and commands thrown at it at random and the invariants of issue 7 checked after every cycle.
`bench/chaos.py` runs it over many seeds; `tests/test_chaos.py` runs a fast variant.

    PaperExchange <- ChaosVenue          faults at the connector interface, every order audited
                  <- ObservedConnector   remembers each sync's account state
                  <- ObservedTrader      the real Trader; every sync is checked
    ChaosStrategy                        random signals, a bug on demand
    Notifier (capturing sender)          every event is teed into the Monitor on its way there
    Dispatcher                           commands from the command table, else trader operations
    FaultPlanner, Commander              what goes wrong, and what the human does, cycle by cycle

A seed fixes everything (market, settings, faults, commands and their timing). On a
VirtualTimeLoop nothing really sleeps and concurrent waits overlap as in real time, so a seed
reproduces its run: `python bench/chaos.py --seed N`. The invariants, and the Monitor that
checks them, are in trading/chaos.py.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from chatbot.notifier import Notifier
from chatbot.senders import Message
from handlers.context import Context
from handlers.dispatch import Dispatcher
from trading.chaos import ChaosBug, Monitor, ObservedConnector, ObservedTrader, SeedReport
from trading.clock import Clock, LoopClock, run_simulated
from trading.desk import Desk
from trading.engine import Trader
from trading.errors import (
    ClockRejected,
    Fatal,
    Fault,
    OrderNotFound,
    RateLimited,
    Rejected,
    Transient,
)
from trading.models import OrderRequest, Position, Ticker
from trading.paper import PaperExchange
from trading.settings import TradingSettings
from trading.store import Store
from trading.strategies.base import Signal

READ_CALLS = (
    "fetch_tickers",
    "fetch_ohlcv",
    "fetch_balance",
    "fetch_open_orders",
    "fetch_order",
    "find_order",
    "cancel_all_after",
    "sync_time",
)
SIGNED_CALLS = ("fetch_balance", "fetch_open_orders", "fetch_order", "find_order", "create_order")
SCAN_INTERVAL = 60.0
RETIRE_RATE = 0.0003  # per cycle: about one seed in seven loses its balance endpoint for good
MARKETS = 12

FaultMaker = Callable[[str], BaseException]


# ---- the venue: faults injected at the connector interface --------------------------------


@dataclass
class _Injection:
    call: str  # a venue call, or "*"
    make: FaultMaker | None  # None: latency only
    remaining: int  # -1: for ever
    latency: float
    after: bool  # the call takes effect, then the answer is lost
    until: int  # the cycle after which it expires (a fault on a call never made must not linger)


class ChaosVenue:
    """The Venue the connector sees: the paper exchange behind scripted faults, with every
    order the bot sends shown to the Monitor at the moment it is sent."""

    has_cancel_all_after = True

    def __init__(
        self, paper: PaperExchange, monitor: Monitor, clock: Clock, rng: random.Random
    ) -> None:
        self.paper = paper
        self.monitor = monitor
        self.clock = clock
        self.rng = rng
        # Every call takes a little time, as on a real exchange, so that commands and the
        # scheduler's sync job really do overlap with cycles.
        self.latency = rng.choice((0.0, 0.05, 0.2, 0.5))
        self.name = paper.name
        self.account = paper.account
        self.cycle = 0
        self._injections: list[_Injection] = []
        self.injected: Counter[str] = Counter()  # faults we raised, by class
        self.natural: Counter[str] = Counter()  # faults the paper exchange raised itself
        self.faults = 0  # raised so far, but for a retired endpoint's: "is the exchange well?"
        self.created = 0
        self.markets: list[str] = []

    @property
    def has_bulk_tickers(self) -> bool:
        return self.paper.has_bulk_tickers

    @property
    def rate_limit(self) -> float:
        return self.paper.rate_limit

    @property
    def clock_offset_ms(self) -> float:
        return self.paper.clock_offset_ms

    def inject(
        self,
        call: str,
        make: FaultMaker | None,
        *,
        count: int = 1,
        latency: float = 0.0,
        after: bool = False,
        lasts: int = 3,
    ) -> None:
        until = 10**9 if count < 0 else self.cycle + lasts
        self._injections.append(_Injection(call, make, count, latency, after, until))

    def expire(self) -> None:
        self._injections = [i for i in self._injections if i.until >= self.cycle]

    def unsettled(self) -> bool:
        """Whether a fault is still pending (a retired endpoint's is the new normal)."""
        return any(i.remaining >= 0 for i in self._injections)

    def _due(self, call: str) -> _Injection | None:
        for injection in self._injections:
            if injection.call in (call, "*"):
                if injection.remaining > 0:
                    injection.remaining -= 1
                    if injection.remaining == 0:
                        self._injections.remove(injection)
                return injection
        return None

    async def _run(self, call: str, fn: Callable[[], Awaitable]):
        injection = self._due(call)
        delay = self.latency * self.rng.uniform(0.5, 1.5) if self.latency else 0.0
        if injection is not None:
            delay += injection.latency
        if delay > 0:
            await self.clock.sleep(delay)
        if injection is not None and injection.make is not None and not injection.after:
            raise self._injected(call, injection)
        try:
            result = await fn()
        except Fault as fault:
            self.natural[type(fault).__name__] += 1
            self.faults += 1
            self._seen(call, fault)
            raise
        if injection is not None and injection.make is not None:
            raise self._injected(call, injection)
        return result

    def _injected(self, call: str, injection: _Injection) -> BaseException:
        assert injection.make is not None
        exc = injection.make(call)
        self.injected[type(exc).__name__] += 1
        self.faults += injection.remaining >= 0
        self._seen(call, exc)
        return exc

    def _seen(self, call: str, exc: BaseException) -> None:
        if isinstance(exc, Fatal):
            self.monitor.alarm_expected(f"Fatal on {call}")
        elif not isinstance(exc, Fault):
            self.monitor.bug_raised(f"{type(exc).__name__} from the venue's {call}")

    # -- the Venue interface

    async def load_markets(self):
        markets = await self._run("load_markets", self.paper.load_markets)
        self.markets = sorted(s for s, m in markets.items() if m.active)
        return markets

    async def fetch_tickers(self, symbols: Sequence[str] | None = None):
        return await self._run("fetch_tickers", lambda: self.paper.fetch_tickers(symbols))

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int):
        return await self._run(
            "fetch_ohlcv", lambda: self.paper.fetch_ohlcv(symbol, timeframe, limit)
        )

    async def fetch_balance(self):
        return await self._run("fetch_balance", self.paper.fetch_balance)

    async def fetch_open_orders(self):
        return await self._run("fetch_open_orders", self.paper.fetch_open_orders)

    async def fetch_order(self, order_id: str, symbol: str):
        return await self._run("fetch_order", lambda: self.paper.fetch_order(order_id, symbol))

    async def find_order(self, client_order_id: str, symbol: str):
        return await self._run("find_order", lambda: self.paper.find_order(client_order_id, symbol))

    async def create_order(self, request: OrderRequest):
        self.created += 1
        self.monitor.order_sent(request)
        return await self._run("create_order", lambda: self.paper.create_order(request))

    async def cancel_order(self, order_id: str, symbol: str):
        return await self._run("cancel_order", lambda: self.paper.cancel_order(order_id, symbol))

    async def cancel_all_after(self, timeout_seconds: float):
        return await self._run(
            "cancel_all_after", lambda: self.paper.cancel_all_after(timeout_seconds)
        )

    async def sync_time(self):
        return await self._run("sync_time", self.paper.sync_time)

    async def close(self):
        await self.paper.close()


# ---- the strategy ---------------------------------------------------------------------------


class ChaosStrategy:
    """Random entries and exits (cheap: one short candle series), and a bug when armed."""

    name = "chaos"
    timeframes = ("1h",)
    candle_limit = 2

    def __init__(self, rng: random.Random, monitor: Monitor) -> None:
        self.rng = rng
        self.monitor = monitor
        self.bugs = 0  # calls left to fail

    def _maybe_bug(self, where: str) -> None:
        if self.bugs > 0:
            self.bugs -= 1
            self.monitor.bug_raised(f"strategy bug in {where}")
            raise ChaosBug(f"chaos: the strategy raised in {where}")

    def prescreen(self, ticker: Ticker) -> float | None:
        return self.rng.random() if self.rng.random() < 0.3 else None

    def entry(self, symbol: str, candles) -> Signal | None:
        self._maybe_bug("entry")
        if self.rng.random() > 0.4:
            return None
        price = candles["1h"][-1].close
        return Signal(
            score=self.rng.random(),
            stop_loss=price * (1 - self.rng.uniform(0.005, 0.05)),
            take_profit=price * (1 + self.rng.uniform(0.005, 0.06)),
            reason="chaos",
        )

    def exit(self, position: Position, candles, price: float) -> str | None:
        self._maybe_bug("exit")
        return "chaos exit" if self.rng.random() < 0.04 else None


# ---- faults ---------------------------------------------------------------------------------


def _fault(cls: type[Fault], text: str, **kwargs) -> FaultMaker:
    return lambda call: cls(f"chaos: {text}", venue="paper", call=call, **kwargs)


def _bug(call: str) -> BaseException:
    return ChaosBug(f"chaos: the venue's {call} raised")


class FaultPlanner:
    """Before each cycle, maybe one fault scenario; per seed, maybe an endpoint retired for good
    (fetch_balance answering HTTP 404 forever, which ccxt calls "exchange not available")."""

    SCENARIOS = (
        ("transient", 6.0),
        ("rate_limited", 3.0),
        ("burst_429", 2.0),
        ("rejected", 2.0),
        ("order_not_found", 2.0),
        ("clock_rejected", 1.5),
        ("fatal", 1.0),
        ("latency", 3.0),
        ("clock_skew", 1.0),
        ("exit_fails", 2.0),
        ("answer_lost", 2.0),
        ("strategy_bug", 0.7),
        ("venue_bug", 0.3),
        ("price_shock", 2.0),
    )

    def __init__(
        self,
        rng: random.Random,
        venue: ChaosVenue,
        strategy: ChaosStrategy,
        retire_at: int | None = None,
    ):
        self.rng = rng
        self.venue = venue
        self.strategy = strategy
        self.rate = rng.uniform(0.1, 0.35)
        self.retired = False
        self.retire_at = retire_at  # a fixed cycle instead of the random draw (tests)
        self.planned: Counter[str] = Counter()
        self._names = [name for name, _ in self.SCENARIOS]
        self._weights = [weight for _, weight in self.SCENARIOS]

    def before_cycle(self, cycle: int) -> None:
        self.venue.cycle = cycle
        self.venue.expire()
        due = self.rng.random() < RETIRE_RATE if self.retire_at is None else cycle >= self.retire_at
        if not self.retired and due:
            self.retired = True
            self.planned["endpoint_404_for_good"] += 1
            self.venue.inject(
                "fetch_balance",
                _fault(Transient, "HTTP 404 Not Found: exchange not available"),
                count=-1,
            )
        if self.rng.random() < self.rate:
            name = self.rng.choices(self._names, self._weights)[0]
            self.planned[name] += 1
            getattr(self, f"_{name}")()

    def exits_fail(self) -> None:
        """Make the next exit orders fail (called before some kills too)."""
        self.planned["exit_fails"] += 1
        self._exit_fails()

    def _any_call(self) -> str:
        return self.rng.choice((*READ_CALLS, "create_order", "cancel_order"))

    def _transient(self) -> None:
        count = self.rng.randint(1, 4)
        self.venue.inject(self._any_call(), _fault(Transient, "timeout"), count=count)

    def _rate_limited(self) -> None:
        wait = self.rng.choice((None, 0.5, 2.0, 10.0))
        maker = _fault(RateLimited, "429 Too Many Requests", retry_after=wait)
        self.venue.inject(self._any_call(), maker, count=self.rng.randint(1, 3))

    def _burst_429(self) -> None:
        maker = _fault(RateLimited, "429 burst", retry_after=self.rng.choice((None, 1.0, 5.0)))
        self.venue.inject("*", maker, count=self.rng.randint(5, 15), lasts=1)

    def _rejected(self) -> None:
        call = self.rng.choice(("create_order", "cancel_order", "fetch_order"))
        maker = _fault(Rejected, "invalid order")
        self.venue.inject(call, maker, count=self.rng.randint(1, 2), lasts=10)

    def _order_not_found(self) -> None:
        call = self.rng.choice(("cancel_order", "fetch_order"))
        self.venue.inject(call, _fault(OrderNotFound, "unknown order"), lasts=10)

    def _clock_rejected(self) -> None:
        maker = _fault(ClockRejected, "Timestamp for this request is outside of the recvWindow")
        self.venue.inject(self.rng.choice(SIGNED_CALLS), maker, count=self.rng.randint(1, 2))

    def _fatal(self) -> None:
        self.venue.inject(self._any_call(), _fault(Fatal, "API key revoked"))

    def _latency(self) -> None:
        seconds = self.rng.choice((1.0, 5.0, 20.0, 90.0))
        self.venue.inject(self._any_call(), None, count=self.rng.randint(1, 3), latency=seconds)

    def _clock_skew(self) -> None:
        self.venue.paper.set_clock_skew(self.rng.choice((0.0, -30.0, 15.0, 45.0)))

    def _exit_fails(self) -> None:
        kind = self.rng.choice((Transient, RateLimited, Rejected, Fatal))
        self.venue.inject(
            "create_order", _fault(kind, "exit refused"), count=self.rng.randint(1, 3), lasts=2
        )

    def _answer_lost(self) -> None:
        call = self.rng.choice(("create_order", "create_order", "cancel_order"))
        self.venue.inject(call, _fault(Transient, "connection reset"), after=True)

    def _strategy_bug(self) -> None:
        self.strategy.bugs += 1

    def _venue_bug(self) -> None:
        self.venue.inject(self._any_call(), _bug)

    def _price_shock(self) -> None:
        markets = sorted(self.venue.markets)
        if not markets:
            return
        symbol = self.rng.choice(markets)
        self.venue.paper.shock(symbol, self.rng.choice((-12.0, -6.0, 6.0, 12.0)))


# ---- commands -------------------------------------------------------------------------------


class Commander:
    """A random command now and then, through the Dispatcher where the command table has it,
    else the trader's operation; before a cycle, or while one runs."""

    COMMANDS = (
        ("pause", 2.0),
        ("unpause", 2.0),
        ("resume", 2.0),
        ("kill", 1.0),
        ("sync", 1.5),
        ("buy", 2.0),
        ("sell", 1.5),
        ("ban", 1.0),
        ("unban", 0.5),
        ("stop", 0.5),
    )
    STAKES = (None, 20.0, 60.0, 150.0, 400.0, 1500.0)

    def __init__(self, rng: random.Random, dispatcher: Dispatcher | None, trader: Trader):
        self.rng = rng
        self.dispatcher = dispatcher
        self.trader = trader
        self.rate = rng.uniform(0.1, 0.4)
        self.issued: Counter[str] = Counter()
        self.via_table: Counter[str] = Counter()
        self._names = [name for name, _ in self.COMMANDS]
        self._weights = [weight for _, weight in self.COMMANDS]

    def pick(self) -> tuple[str, list[str], float | None] | None:
        """(command, args, delay into the cycle or None for before it), or nothing."""
        if self.rng.random() >= self.rate:
            return None
        name = self.rng.choices(self._names, self._weights)[0]
        delay = self.rng.choice((0.0, 0.01, 0.1, 0.5, 1.0, 3.0, 8.0))
        delay = delay if self.rng.random() < 0.6 else None
        return name, self._args(name), delay

    def _args(self, name: str) -> list[str]:
        markets = sorted(self.trader.connector.markets) or ["BTC/USDT"]
        held = sorted(self.trader.book.positions)
        if name == "buy":
            stake = self.rng.choice(self.STAKES)
            return [self.rng.choice(markets)] + ([] if stake is None else [f"{stake:g}"])
        if name in ("sell", "ban"):
            pool = held if held and self.rng.random() < 0.8 else markets
            return [self.rng.choice(pool)]
        if name == "unban":
            bans = sorted(self.trader.store.bans(self.trader.label))
            return [self.rng.choice(bans or markets)]
        return []

    async def run(self, name: str, args: list[str]) -> object:
        self.issued[name] += 1
        dispatcher = self.dispatcher
        if dispatcher is not None and name in dispatcher.commands:
            self.via_table[name] += 1
            command = dispatcher.commands[name]
            text = " ".join([f"/{name}", *args, *(["now"] if command.confirm else [])])
            return await dispatcher.handle(text, who="chaos")
        trader = self.trader
        if name == "buy":
            stake = float(args[1]) if len(args) > 1 else None
            return await trader.buy(args[0], stake)
        if name in ("sell", "ban", "unban"):
            return await getattr(trader, name)(args[0])
        return await getattr(trader, name)()


# ---- one seed -------------------------------------------------------------------------------


class _Inbox:
    """A sender that only counts (the soak checks events, not texts)."""

    def __init__(self) -> None:
        self.sent = 0
        self.emergencies = 0

    async def send(self, message: Message) -> None:
        self.sent += 1
        self.emergencies += message.emergency


def seed_settings(rng: random.Random) -> tuple[TradingSettings, float]:
    """Settings and a starting balance drawn for one seed."""
    balance = rng.choice((1_500.0, 3_000.0, 10_000.0))
    settings = TradingSettings(
        stake_amount=rng.choice((50.0, 150.0, 400.0)),
        max_positions=rng.randint(2, 6),
        max_exposure=rng.choice((0.3, 0.5, 0.8, 0.95)),
        min_quote_volume=0.0,
        reentry_cooldown_seconds=rng.choice((0.0, 300.0, 1800.0)),
        scan_interval_seconds=SCAN_INTERVAL,
        sync_failure_limit_seconds=300.0,
        stop_exit_timeout_seconds=300.0,
        failsafe_on_fatal="stop" if rng.random() < 0.2 else "flatten",
        cancel_all_after_seconds=3 * SCAN_INTERVAL,
    )
    return settings, balance


async def soak(
    seed: int,
    cycles: int,
    clock: LoopClock,
    *,
    direct: bool = False,
    retire_at: int | None = None,
) -> SeedReport:
    """Run one seed for `cycles` cycles on a VirtualTimeLoop and check every invariant.
    `direct`: commands call the trader's operations, not the handlers; `retire_at`: the cycle
    at which fetch_balance starts answering 404 for good (else a rare random draw)."""
    rng = random.Random(seed)
    settings, balance = seed_settings(rng)
    paper = PaperExchange(
        clock=clock, seed=seed, markets=MARKETS, balances={"USDT": balance}, burst=40
    )
    monitor = Monitor(seed, settings, paper, clock)
    venue = ChaosVenue(paper, monitor, clock, random.Random(f"{seed}|venue"))
    inbox = _Inbox()
    notifier = Notifier([inbox], clock=clock, queue_size=10, emergency_repeat=300.0)

    def notify(event) -> None:
        monitor.events.append(event)
        notifier.notify(event)

    connector = ObservedConnector(
        venue,
        clock=clock,
        notify=notify,
        sync_failure_limit=settings.sync_failure_limit_seconds,
        cancel_all_after_seconds=settings.cancel_all_after_seconds,
    )
    strategy = ChaosStrategy(random.Random(f"{seed}|strategy"), monitor)
    store = Store()
    trader = ObservedTrader(
        connector, store=store, strategy=strategy, settings=settings, clock=clock, notify=notify
    )
    trader.monitor = monitor
    monitor.watch(trader, venue, notifier)
    desk = Desk([trader], store=store, clock=clock)
    dispatcher = None if direct else Dispatcher(Context(desk=desk, clock=clock, notifier=notifier))
    planner = FaultPlanner(random.Random(f"{seed}|faults"), venue, strategy, retire_at)
    commander = Commander(random.Random(f"{seed}|commands"), dispatcher, trader)
    started = time.perf_counter()
    with monitor.capturing_logs():
        await monitor.guard("start", trader.start())
        for cycle in range(cycles):
            await _one_cycle(cycle, trader, planner, commander, monitor, notifier, clock)
        await monitor.guard("close", trader.close())
    monitor.finish(notifier)
    monitor.stats["messages sent"] = inbox.sent
    return monitor.report(
        cycles=cycles,
        seconds=time.perf_counter() - started,
        planned=planner.planned,
        injected=venue.injected,
        natural=venue.natural,
        commands=commander.issued,
        via_table=commander.via_table,
    )


async def _one_cycle(cycle, trader, planner, commander, monitor, notifier, clock) -> None:
    monitor.cycle = cycle
    planner.before_cycle(cycle)
    began = clock.monotonic()
    picked = commander.pick()
    if picked is not None and picked[0] == "kill" and planner.rng.random() < 0.5:
        planner.exits_fail()
    if picked is not None and picked[2] is None:
        await _command(commander, monitor, picked)
    tasks = [asyncio.ensure_future(monitor.guard("cycle", trader.run_cycle()))]
    if picked is not None and picked[2] is not None:
        tasks.append(asyncio.ensure_future(_command(commander, monitor, picked, picked[2])))
    if planner.rng.random() < 0.15:  # the scheduler's separate sync job, out of phase
        tasks.append(asyncio.ensure_future(_sync_job(trader, monitor, planner.rng.uniform(1, 30))))
    await asyncio.gather(*tasks)
    await monitor.guard("notifier", notifier.drain())
    monitor.end_of_cycle()
    await clock.sleep(max(0.0, SCAN_INTERVAL - (clock.monotonic() - began)))


async def _command(commander: Commander, monitor: Monitor, picked, delay: float = 0.0) -> None:
    name, args, _ = picked
    if delay:
        await asyncio.sleep(delay)
    monitor.command_issued(name)
    result = await monitor.guard(f"/{name}", commander.run(name, args))
    monitor.command_done(name, result)


async def _sync_job(trader: Trader, monitor: Monitor, delay: float) -> None:
    await asyncio.sleep(delay)
    await monitor.guard("sync job", trader.run_sync())


def run_seed(
    seed: int, cycles: int, direct: bool = False, retire_at: int | None = None
) -> SeedReport:
    """One seed, start to finish, on its own VirtualTimeLoop (picklable, for a process pool)."""
    return run_simulated(
        lambda clock: soak(seed, cycles, clock, direct=direct, retire_at=retire_at)
    )
