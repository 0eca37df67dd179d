"""The ledger: what the closed trades, the equity curve and the coins held say about results.

Pure functions, no I/O: trading/reports.py reads the store and the traders and hands their
figures over, handlers/results.py formats what comes back. Money is in the quote currency of
the account (a trade's quote is its symbol's), as floats rounded only when shown. Periods are
UTC: days from midnight, ISO weeks from Monday, calendar months.

A trade's `pnl` is after fees, entry and exit both (trading/fills.py), so realized profit is
the plain sum of `pnl` and the fees shown beside it are already taken out of it.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from trading.records import ClosedTrade

Curve = Sequence[tuple[float, float]]  # (epoch, equity), oldest first


def trade_return(trade: ClosedTrade) -> float:
    """The round trip's profit as a fraction of what its entry cost."""
    cost = trade.amount * trade.entry_price
    return trade.pnl / cost if cost > 0 else 0.0


def latest(trades: Iterable[ClosedTrade], count: int) -> list[ClosedTrade]:
    """The `count` trades closed last, newest first."""
    return heapq.nlargest(count, trades, key=lambda t: t.closed_at)


# ---- profit over a window -------------------------------------------------------------------


@dataclass(frozen=True)
class TradeStats:
    """What a set of closed trades adds up to. A trade that made exactly nothing is neither
    won nor lost."""

    count: int = 0
    wins: int = 0
    losses: int = 0
    realized: float = 0.0  # sum of pnl, fees taken out
    fees: float = 0.0
    gross_profit: float = 0.0  # sum of the winners' pnl
    gross_loss: float = 0.0  # sum of the losers' pnl, as a positive number
    best: ClosedTrade | None = None  # most quote made
    worst: ClosedTrade | None = None  # most quote lost (or least made)

    @property
    def win_rate(self) -> float | None:
        """Won / closed; None without trades."""
        return self.wins / self.count if self.count else None

    @property
    def profit_factor(self) -> float | None:
        """Gross profit over gross loss: inf when nothing was lost, None when nothing moved."""
        if self.gross_loss > 0:
            return self.gross_profit / self.gross_loss
        return math.inf if self.gross_profit > 0 else None


def stats(trades: Iterable[ClosedTrade]) -> TradeStats:
    chosen = list(trades)
    if not chosen:
        return TradeStats()
    won = [t.pnl for t in chosen if t.pnl > 0]
    lost = [t.pnl for t in chosen if t.pnl < 0]
    return TradeStats(
        count=len(chosen),
        wins=len(won),
        losses=len(lost),
        realized=math.fsum(t.pnl for t in chosen),
        fees=math.fsum(t.fees for t in chosen),
        gross_profit=math.fsum(won),
        gross_loss=-math.fsum(lost),
        best=max(chosen, key=lambda t: t.pnl),
        worst=min(chosen, key=lambda t: t.pnl),
    )


@dataclass(frozen=True)
class Drawdown:
    """The deepest fall of equity from a peak before it, relative to that peak."""

    amount: float  # peak minus trough, in quote
    fraction: float  # of the peak
    peak_at: float
    trough_at: float


def max_drawdown(curve: Curve) -> Drawdown | None:
    """The largest relative fall from a running peak; a curve that never fell gives a zero
    drawdown, an empty one None. Deposits and withdrawals move equity too: a withdrawal
    reads as a drawdown."""
    if not curve:
        return None
    peak_at, peak = curve[0]
    deepest = Drawdown(0.0, 0.0, peak_at, peak_at)
    for at, equity in curve:
        if equity > peak:
            peak_at, peak = at, equity
        elif peak > 0 and (peak - equity) / peak > deepest.fraction:
            deepest = Drawdown(peak - equity, (peak - equity) / peak, peak_at, at)
    return deepest


def combined(curves: Sequence[Curve]) -> list[tuple[float, float]]:
    """Several accounts' curves as one: at each snapshot of any of them, the sum of every
    account's latest equity. Before an account's first snapshot its first value stands in, so
    an account whose curve starts later does not show as a jump in the total."""
    present = [c for c in curves if c]
    latest_of = [c[0][1] for c in present]
    tagged = [[(at, i, equity) for at, equity in c] for i, c in enumerate(present)]
    out: list[tuple[float, float]] = []
    for at, i, equity in heapq.merge(*tagged):
        latest_of[i] = equity
        total = math.fsum(latest_of)
        if out and out[-1][0] == at:
            out[-1] = (at, total)
        else:
            out.append((at, total))
    return out


@dataclass(frozen=True)
class Profit:
    """An account's results (or several accounts' of one quote, as "total") over a window."""

    account: str
    quote: str
    trades: TradeStats
    unrealized: float  # open positions priced now against their entry price
    open_positions: int
    drawdown: Drawdown | None  # None: no equity snapshot in the window

    @property
    def pnl(self) -> float:
        return self.trades.realized + self.unrealized


def profit(
    account: str,
    quote: str,
    trades: Iterable[ClosedTrade],
    curve: Curve,
    open_pnl: Sequence[float],
) -> Profit:
    return Profit(
        account=account,
        quote=quote,
        trades=stats(trades),
        unrealized=math.fsum(open_pnl),
        open_positions=len(open_pnl),
        drawdown=max_drawdown(curve),
    )


# ---- per period ------------------------------------------------------------------------------


class Unit(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO: from Monday
    MONTH = "month"


@dataclass(frozen=True)
class PeriodResult:
    """The trades closed in one period, [start, end)."""

    start: float  # epoch
    end: float
    pnl: float
    fees: float
    trades: int
    wins: int


def period_start(at: float, unit: Unit) -> datetime:
    """The UTC start of the period holding `at`."""
    day = datetime.fromtimestamp(at, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if unit is Unit.WEEK:
        return day - timedelta(days=day.weekday())
    if unit is Unit.MONTH:
        return day.replace(day=1)
    return day


def _step(start: datetime, unit: Unit, forward: bool) -> datetime:
    """The start of the period after (or before) the one starting at `start`."""
    if unit is Unit.MONTH:
        return (start + timedelta(days=32) if forward else start - timedelta(days=1)).replace(day=1)
    days = 7 if unit is Unit.WEEK else 1
    return start + timedelta(days=days if forward else -days)


def periods(
    trades: Iterable[ClosedTrade], unit: Unit, count: int, now: float
) -> list[PeriodResult]:
    """The last `count` periods up to the one holding `now` (it included, though not over),
    newest first, the empty ones too; a trade counts in the period it closed in."""
    starts = [period_start(now, unit)]
    while len(starts) < count:
        starts.append(_step(starts[-1], unit, forward=False))
    # ascending edges: period k (oldest first) is [edges[k], edges[k + 1])
    edges = [s.timestamp() for s in reversed(starts)]
    edges.append(_step(starts[0], unit, forward=True).timestamp())
    found: dict[int, list[ClosedTrade]] = defaultdict(list)
    for trade in trades:
        k = bisect.bisect_right(edges, trade.closed_at) - 1
        if 0 <= k < count:
            found[k].append(trade)
    out = []
    for k in reversed(range(count)):
        s = stats(found[k])
        out.append(PeriodResult(edges[k], edges[k + 1], s.realized, s.fees, s.count, s.wins))
    return out


# ---- per symbol ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolResult:
    symbol: str
    trades: int
    wins: int
    pnl: float
    fees: float
    cost: float  # what the entries cost, in quote

    @property
    def ret(self) -> float:
        """The profit as a fraction of what the entries cost."""
        return self.pnl / self.cost if self.cost > 0 else 0.0


def performance(trades: Iterable[ClosedTrade]) -> list[SymbolResult]:
    """Per symbol, the most profitable first (ties by symbol)."""
    by_symbol: dict[str, list[ClosedTrade]] = defaultdict(list)
    for trade in trades:
        by_symbol[trade.symbol].append(trade)
    out = []
    for symbol, chosen in by_symbol.items():
        s = stats(chosen)
        cost = math.fsum(t.amount * t.entry_price for t in chosen)
        out.append(SymbolResult(symbol, s.count, s.wins, s.realized, s.fees, cost))
    return sorted(out, key=lambda r: (-r.pnl, r.symbol))


# ---- what is held --------------------------------------------------------------------------


@dataclass(frozen=True)
class Holding:
    """One currency held: how much, how much of it the bot's positions hold, its value."""

    currency: str
    amount: float
    bot: float  # in the bot's positions; the rest is the owner's own (or the quote's cash)
    value: float | None  # in quote; None when no price is known

    @property
    def own(self) -> float:
        return max(0.0, self.amount - self.bot)

    def share(self, part: float) -> float:
        """The value of `part` of the amount (0 when unpriced)."""
        if self.value is None or self.amount <= 0:
            return 0.0
        return self.value * part / self.amount


@dataclass(frozen=True)
class Holdings:
    """An account's coins (or several accounts' of one quote, as "total"), largest first."""

    account: str
    quote: str
    coins: tuple[Holding, ...]

    @property
    def value(self) -> float:
        """What every priced coin is worth, in quote."""
        return math.fsum(h.value for h in self.coins if h.value is not None)

    @property
    def cash(self) -> float:
        return math.fsum(h.amount for h in self.coins if h.currency == self.quote)

    @property
    def bot_value(self) -> float:
        return math.fsum(h.share(h.bot) for h in self._others())

    @property
    def own_value(self) -> float:
        return math.fsum(h.share(h.own) for h in self._others())

    @property
    def unpriced(self) -> tuple[str, ...]:
        return tuple(h.currency for h in self.coins if h.value is None)

    def _others(self) -> list[Holding]:
        return [h for h in self.coins if h.currency != self.quote]


def holdings(
    account: str,
    quote: str,
    totals: Mapping[str, float],
    bot: Mapping[str, float],
    prices: Mapping[str, float],
) -> Holdings:
    """Every currency with a positive total. `bot` is what the bot's positions hold of each
    (at most the total: a position the balance no longer covers is the sync's to settle);
    `prices` values a currency in quote (the quote itself is worth 1)."""
    coins = []
    for currency, amount in totals.items():
        if amount <= 0:
            continue
        price = 1.0 if currency == quote else prices.get(currency)
        mine = 0.0 if currency == quote else min(amount, bot.get(currency, 0.0))
        coins.append(Holding(currency, amount, mine, None if price is None else amount * price))
    return Holdings(account, quote, tuple(sorted(coins, key=_largest_first)))


def merged(account: str, parts: Sequence[Holdings]) -> list[Holdings]:
    """Several accounts' holdings summed per currency, one Holdings per quote. A currency
    some account cannot price has no value in the sum either: a total that silently left a
    part out would read as complete."""
    by_quote: dict[str, dict[str, list[Holding]]] = defaultdict(lambda: defaultdict(list))
    for part in parts:
        for coin in part.coins:
            by_quote[part.quote][coin.currency].append(coin)
    out = []
    for quote, coins in sorted(by_quote.items()):
        summed = []
        for currency, held in coins.items():
            values = [h.value for h in held]
            summed.append(
                Holding(
                    currency,
                    math.fsum(h.amount for h in held),
                    math.fsum(h.bot for h in held),
                    None if None in values else math.fsum(v for v in values if v is not None),
                )
            )
        out.append(Holdings(account, quote, tuple(sorted(summed, key=_largest_first))))
    return out


def _largest_first(h: Holding) -> tuple[bool, float, str]:
    return (h.value is None, -(h.value or 0.0), h.currency)
