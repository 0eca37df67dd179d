"""What the results commands need, read from the store and the traders and put through the
ledger (trading/ledger.py).

A command names the traders it is about (`Desk.select`). Their closed trades and equity
snapshots come from the store; their positions and balances from `Trader.info()`, and the
price of a coin held outside the bot from the price the trader last saw (`Trader.price`), so
nothing here reads a trader's book or waits on an exchange: /profit answers at once even while a
cycle is stuck on a slow one. Totals are per quote currency: USDT and EUR are never added up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

from trading import ledger
from trading.ledger import Holdings, PeriodResult, Profit, SymbolResult, Unit
from trading.records import ClosedTrade
from trading.store import Store

if TYPE_CHECKING:
    from trading.desk import Desk
    from trading.engine import Trader

# Per account and window. The store keeps one snapshot a minute, so a window of up to two
# weeks is read whole; a longer one is thinned like /chart's curve (each bucket's last
# snapshot), and a dip shorter than a bucket can be missing from its drawdown.
EQUITY_POINTS = 20_160


@dataclass(frozen=True)
class ProfitReport:
    accounts: tuple[Profit, ...]
    totals: tuple[Profit, ...]  # one per quote currency, when several accounts were asked


@dataclass(frozen=True)
class BalanceReport:
    accounts: tuple[Holdings, ...]
    totals: tuple[Holdings, ...]  # one per quote currency, when several accounts were asked
    unsynced: tuple[str, ...]  # accounts whose balance the exchange has not given yet


def latest_trades(desk: Desk, traders: Sequence[Trader], count: int) -> list[ClosedTrade]:
    """The `count` trades the traders closed last, newest first."""
    return ledger.latest(_trades(desk.store, traders), count)


def profit(desk: Desk, traders: Sequence[Trader], since: float | None) -> ProfitReport:
    """Results of trades closed since `since` (None: ever), the drawdown of the equity curve
    over the same window, and the open positions as they stand now."""
    start = 0.0 if since is None else since
    accounts = []
    parts: dict[str, list[tuple[list[ClosedTrade], list, list[float]]]] = defaultdict(list)
    for trader in traders:
        info = trader.info()
        trades = desk.store.trades(trader.label, start)
        curve = _curve(desk.store, trader.label, start)
        open_pnl = [p.pnl for p in info.positions]
        accounts.append(ledger.profit(trader.label, info.quote, trades, curve, open_pnl))
        parts[info.quote].append((trades, curve, open_pnl))
    totals = []
    if len(traders) > 1:
        for quote, group in sorted(parts.items()):
            totals.append(
                ledger.profit(
                    "total",
                    quote,
                    chain.from_iterable(trades for trades, _, _ in group),
                    ledger.combined([curve for _, curve, _ in group]),
                    [pnl for _, _, open_pnl in group for pnl in open_pnl],
                )
            )
    return ProfitReport(tuple(accounts), tuple(totals))


def periods(
    desk: Desk, traders: Sequence[Trader], unit: Unit, count: int
) -> list[tuple[str, list[PeriodResult]]]:
    """The last `count` periods, newest first, for each quote currency the traders trade in."""
    now = desk.clock.time()
    return [
        (quote, ledger.periods(_trades(desk.store, group), unit, count, now))
        for quote, group in _by_quote(traders)
    ]


def performance(desk: Desk, traders: Sequence[Trader]) -> list[SymbolResult]:
    """Per symbol (whose name carries its quote), the most profitable first."""
    return ledger.performance(_trades(desk.store, traders))


def balances(traders: Sequence[Trader]) -> BalanceReport:
    """Every currency each account holds, valued in its quote, the bot's part apart."""
    accounts = []
    unsynced = []
    for trader in traders:
        info = trader.info()
        if not info.started and not info.balances:
            unsynced.append(trader.label)
            continue
        bot: dict[str, float] = defaultdict(float)
        prices: dict[str, float] = {}
        for p in info.positions:
            base = _base(p.symbol)
            bot[base] += p.amount
            if p.amount > 0:  # valued as /info values it: the last price, else the entry's
                prices[base] = p.value / p.amount
        for currency in info.balances:
            symbol = f"{currency}/{info.quote}"
            if currency not in prices and trader.knows_symbol(symbol):
                price = trader.price(symbol)
                if price > 0:
                    prices[currency] = price
        accounts.append(ledger.holdings(trader.label, info.quote, info.balances, bot, prices))
    totals = ledger.merged("total", accounts) if len(traders) > 1 else []
    return BalanceReport(tuple(accounts), tuple(totals), tuple(unsynced))


def _trades(store: Store, traders: Sequence[Trader]) -> list[ClosedTrade]:
    return [t for trader in traders for t in store.trades(trader.label)]


def _curve(store: Store, account: str, since: float) -> list[tuple[float, float]]:
    curve = store.equity_curve(account, since, max_points=EQUITY_POINTS)
    return [(p.at, p.equity) for p in curve.points]


def _by_quote(traders: Sequence[Trader]) -> list[tuple[str, list[Trader]]]:
    groups: dict[str, list[Trader]] = defaultdict(list)
    for trader in traders:
        groups[trader.settings.quote].append(trader)
    return sorted(groups.items())


def _base(symbol: str) -> str:
    return symbol.split("/", 1)[0]
