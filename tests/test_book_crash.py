"""Crash points: a process killed (SIGKILL) at any write of the store never leaves the book out of
step with the exchange.

One trade's whole life is played on the paper exchange and the store's writes are counted; then,
for every write k, the same life is played again with a store whose process dies at write k (the
write does not happen, nothing after it runs, and what was not committed is lost). A new trader
on the same file and the same exchange must find every coin the bot bought, count no fill twice,
record no round trip twice, and a /kill must leave nothing the bot bought behind.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pytest

from sim.clock import FakeClock
from tests.engine_support import Rig, ScriptedStrategy, make_rig
from trading.models import OrderStatus, OrderType, Side
from trading.store import Store

SYMBOLS = ("ETH/USDT", "SOL/USDT", "BNB/USDT")
TOLERANCE = 1e-9


class Crash(BaseException):
    """The process died here. A BaseException, so no handler of the bot survives it."""


class CrashingStore(Store):
    """Counts its writes; with `crash_at`, its process dies at that write (and stays dead)."""

    def __init__(self, path: Path, crash_at: int | None = None) -> None:
        self.writes = 0
        self.crash_at = crash_at
        super().__init__(path)

    def _write(self, sql, params=()):
        if self.crash_at is not None and self.writes >= self.crash_at:
            raise Crash(f"killed at write {self.crash_at}")
        self.writes += 1
        return super()._write(sql, params)


async def life_of_a_trade(rig: Rig) -> None:
    """Three entries at market; ETH exits at its take-profit, SOL by /sell; a /stop rests an OCO
    (limit sell and stop) for BNB whose limit fills in part; /kill cancels it and sells the rest
    at market."""
    trader, paper = rig.trader, rig.paper
    await trader.start()
    await trader.run_cycle()
    rig.strategy.entries = []
    rig.clock.advance(60)
    paper.shock("ETH/USDT", 10)
    await trader.run_cycle()
    await trader.sell("SOL/USDT")
    await trader.stop()
    paper.shock("BNB/USDT", 5)  # through the resting sell: half of it fills
    rig.clock.advance(60)
    await trader.run_sync()
    await trader.kill()


def new_rig(tmp_path: Path, crash_at: int | None = None) -> Rig:
    strategy = ScriptedStrategy(list(SYMBOLS))
    store = CrashingStore(tmp_path / "bot.sqlite3", crash_at)
    return make_rig(FakeClock(), strategy=strategy, store=store, fill_share=0.5)


def filled(rig: Rig) -> dict[str, dict[Side, float]]:
    """What the exchange filled, by symbol and side, over the account's whole history."""
    totals: dict[str, dict[Side, float]] = defaultdict(lambda: {Side.BUY: 0.0, Side.SELL: 0.0})
    for order in rig.paper.order_log:
        totals[order.symbol][order.side] += order.filled
    return totals


def held(rig: Rig) -> dict[str, float]:
    """The coins the account holds, by symbol: all of them the bot's (it started in USDT)."""
    totals = {s: rig.paper.peek_balance().total_of(s.split("/")[0]) for s in SYMBOLS}
    return {symbol: amount for symbol, amount in totals.items() if amount > 0}


def out_of_step(rig: Rig) -> list[str]:
    """Where a restarted trader's book, after its start-up sync, differs from the exchange."""
    problems = []
    positions = {s: p.amount for s, p in rig.trader.book.positions.items()}
    stored = {p.symbol: p.amount for p in rig.store.positions(rig.trader.label)}
    if stored != positions:
        problems.append(f"store {stored} != book {positions}")
    holdings = held(rig)
    for symbol, sides in filled(rig).items():
        position = positions.get(symbol, 0.0)
        if not math.isclose(holdings.get(symbol, 0.0), position, abs_tol=TOLERANCE):
            problems.append(f"{symbol}: exchange holds {holdings.get(symbol)}, book {position}")
        bought_less_sold = sides[Side.BUY] - sides[Side.SELL]
        if not math.isclose(bought_less_sold, position, abs_tol=TOLERANCE):
            problems.append(f"{symbol}: filled buys - sells {bought_less_sold}, book {position}")
    return problems + misrecorded_trades(rig, closed_only=True)


def misrecorded_trades(rig: Rig, *, closed_only: bool) -> list[str]:
    """Each round trip recorded once, for all it sold, from its orders (never guessed)."""
    problems = []
    trades = rig.store.trades(rig.trader.label)
    for symbol, sides in filled(rig).items():
        recorded = [t for t in trades if t.symbol == symbol]
        if closed_only and symbol in rig.trader.book.positions:
            if recorded:
                problems.append(f"{symbol}: a trade recorded for a position still open")
            continue
        if len(recorded) != 1:
            problems.append(f"{symbol}: {len(recorded)} trades recorded for one round trip")
            continue
        [trade] = recorded
        if not math.isclose(trade.amount, sides[Side.SELL], abs_tol=TOLERANCE):
            problems.append(f"{symbol}: trade of {trade.amount}, sold {sides[Side.SELL]}")
        if "balance gone" in trade.reason:
            problems.append(f"{symbol}: closed by a guess ({trade.reason})")
    return problems


async def test_the_life_of_a_trade_applies_a_partial_fill_and_ends_flat(tmp_path):
    rig = new_rig(tmp_path)
    await life_of_a_trade(rig)

    [stop_sell] = [o for o in rig.paper.order_log if o.type is OrderType.OCO]
    assert stop_sell.status is OrderStatus.CANCELED and 0 < stop_sell.filled < stop_sell.amount
    [recorded] = [o for o in rig.store.orders(rig.trader.label) if o.order.id == stop_sell.id]
    assert recorded.order.filled == stop_sell.filled  # the book saw and applied the partial fill
    assert held(rig) == {} and rig.trader.book.positions == {}
    assert misrecorded_trades(rig, closed_only=False) == []


async def test_a_crash_at_any_write_leaves_the_book_in_step_with_the_exchange(tmp_path):
    rig = new_rig(tmp_path / "count")
    await life_of_a_trade(rig)
    total = rig.store.writes

    failures: dict[int, list[str]] = {}
    for k in range(total):
        folder = tmp_path / str(k)
        crashed = new_rig(folder, crash_at=k)
        with pytest.raises(Crash):
            await life_of_a_trade(crashed)
        await crashed.trader.close()
        crashed.store.close()  # whatever was not committed is gone

        restarted = make_rig(
            crashed.clock,
            paper=crashed.paper,
            store=Store(folder / "bot.sqlite3"),
            strategy=ScriptedStrategy(),
        )
        await restarted.trader.start()
        problems = out_of_step(restarted)
        result = await restarted.trader.kill()
        if not result.flat or held(restarted) or restarted.trader.book.positions:
            problems.append(f"/kill left {held(restarted)} (says flat: {result.flat})")
        problems += misrecorded_trades(restarted, closed_only=False)
        await restarted.trader.close()
        restarted.store.close()
        if problems:
            failures[k] = problems
    assert failures == {}, f"{len(failures)} of {total} crash points broke the book: {failures}"
