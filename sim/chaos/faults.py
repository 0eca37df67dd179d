"""The chaos soak's faults: what each one is (a maker the venue raises it with), and the planner
that decides, cycle by cycle, which ones to throw.

    FaultPlanner                   what goes wrong before each cycle, from the seed's own rng
    RETRYABLE                      the "try again" answers any well exchange gives now and then

The venue that throws them at the connector is sim/chaos/venue.py; the soak that drives both is
sim/chaos/soak.py.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from sim.chaos.actors import ChaosStrategy
from sim.chaos.logwatch import ChaosBug
from trading.errors import (
    ClockRejected,
    Fatal,
    Fault,
    OrderNotFound,
    RateLimited,
    Rejected,
    Transient,
)

if TYPE_CHECKING:
    from sim.chaos.venue import ChaosVenue

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
RETIRE_RATE = 0.0003  # per cycle: about one seed in seven loses its balance endpoint for good

FaultMaker = Callable[[str], BaseException]


def make_fault(cls: type[Fault], text: str, **kwargs) -> FaultMaker:
    return lambda call: cls(f"chaos: {text}", venue="paper", call=call, **kwargs)


def _bug(call: str) -> BaseException:
    return ChaosBug(f"chaos: the venue's {call} raised")


# What exchanges answer when they want the request again (the connector's classification of
# each: Transient or RateLimited, never Fatal).
RETRYABLE: tuple[tuple[str, FaultMaker], ...] = (
    ("timeout", make_fault(Transient, "request timed out")),
    ("5xx", make_fault(Transient, "HTTP 502 Bad Gateway")),
    (
        "server busy",
        make_fault(
            Transient,
            'binance {"code":-1008,"msg":"Server is currently overloaded with other requests. '
            'Please try again in a few minutes."}',
        ),
    ),
    ("429", make_fault(RateLimited, "429 Too Many Requests", retry_after=1.0)),
)


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
        venue.retryable_rate = rng.uniform(0.01, 0.04)
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
                make_fault(Transient, "HTTP 404 Not Found: exchange not available"),
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
        self.venue.inject(self._any_call(), make_fault(Transient, "timeout"), count=count)

    def _rate_limited(self) -> None:
        wait = self.rng.choice((None, 0.5, 2.0, 10.0))
        maker = make_fault(RateLimited, "429 Too Many Requests", retry_after=wait)
        self.venue.inject(self._any_call(), maker, count=self.rng.randint(1, 3))

    def _burst_429(self) -> None:
        maker = make_fault(RateLimited, "429 burst", retry_after=self.rng.choice((None, 1.0, 5.0)))
        self.venue.inject("*", maker, count=self.rng.randint(5, 15), lasts=1)

    def _rejected(self) -> None:
        call = self.rng.choice(("create_order", "cancel_order", "fetch_order"))
        maker = make_fault(Rejected, "invalid order")
        self.venue.inject(call, maker, count=self.rng.randint(1, 2), lasts=10)

    def _order_not_found(self) -> None:
        call = self.rng.choice(("cancel_order", "fetch_order"))
        self.venue.inject(call, make_fault(OrderNotFound, "unknown order"), lasts=10)

    def _clock_rejected(self) -> None:
        maker = make_fault(ClockRejected, "Timestamp for this request is outside of the recvWindow")
        self.venue.inject(self.rng.choice(SIGNED_CALLS), maker, count=self.rng.randint(1, 2))

    def _fatal(self) -> None:
        self.venue.inject(self._any_call(), make_fault(Fatal, "API key revoked"))

    def _latency(self) -> None:
        seconds = self.rng.choice((1.0, 5.0, 20.0, 90.0))
        self.venue.inject(self._any_call(), None, count=self.rng.randint(1, 3), latency=seconds)

    def _clock_skew(self) -> None:
        self.venue.paper.set_clock_skew(self.rng.choice((0.0, -30.0, 15.0, 45.0)))

    def _exit_fails(self) -> None:
        kind = self.rng.choice((Transient, RateLimited, Rejected, Fatal))
        self.venue.inject(
            "create_order", make_fault(kind, "exit refused"), count=self.rng.randint(1, 3), lasts=2
        )

    def _answer_lost(self) -> None:
        call = self.rng.choice(("create_order", "create_order", "cancel_order"))
        self.venue.inject(call, make_fault(Transient, "connection reset"), after=True)

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
