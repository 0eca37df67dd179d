"""The backtest is the live engine on recorded time: the real Trader (scanner, strategy, risk
gate, order router, exits, the stops resting at the exchange) cycles against a PaperExchange
whose market is recorded candles (trading/venues/recorded.py), on a ReplayClock the replay moves
one cycle at a time. Without a recording the synthetic paper market's history is recorded first
(trading/venues/synthetic_history.py) and replayed the same way. There is no second code path:
what the backtest shows is what the bot does.

A cycle runs at the close of every candle of the finest recorded timeframe, never more often
than the scan interval (a cycle between two closes would see nothing new; the exchange still
triggers resting stops inside every candle). The store is in memory; the trades and the equity
curve it records are the result. Nothing reads the wall clock or draws at random, so the same
input replays the same trades.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from trading.connector import Connector
from trading.engine import Trader
from trading.events import Event
from trading.models import TIMEFRAME_SECONDS
from trading.records import ClosedTrade, EquityPoint
from trading.replay_clock import ReplayClock
from trading.settings import TradingSettings
from trading.store import Store
from trading.strategies.base import Strategy
from trading.venues.paper import PaperExchange
from trading.venues.recorded import RecordedFeed, Recording, recorded_span
from trading.venues.synthetic_history import synthetic_history

LABEL = "replay"
SYNTHETIC_END = 1_699_920_000.0  # 2023-11-14 00:00 UTC: the synthetic replay's fixed last day


@dataclass(frozen=True)
class Market:
    """What the paper exchange of a replay is made of."""

    candles: Recording
    balance: float = 10_000.0
    fee_rate: float = 0.001
    slippage: float = 0.0005


@dataclass(frozen=True)
class BacktestResult:
    """What a replay did: every closed trade and the equity curve with its exposure."""

    start: float
    end: float
    step: float
    cycles: int
    starting_equity: float
    trades: list[ClosedTrade]
    curve: list[EquityPoint]  # one a cycle: equity and the share of it held in positions
    open_positions: int  # still held at the end (valued in the last equity point)


def cycle_step(candles: Recording, settings: TradingSettings) -> float:
    """Seconds between two cycles: the finest recorded candle, never under the scan interval."""
    finest = min(TIMEFRAME_SECONDS[tf] for by_tf in candles.values() for tf in by_tf)
    return max(float(finest), settings.scan_interval_seconds)


def window(
    candles: Recording,
    step: float,
    *,
    days: float | None = None,
    start: float | None = None,
    end: float | None = None,
) -> tuple[float, float]:
    """The replayed span within the recording: from `start` (or `days` before the end, or the
    first candle) to `end` (or the last candle), both on the cycle grid."""
    first, last = recorded_span(candles)
    last = min(last, end if end is not None else last)
    last -= last % step
    if start is not None:
        first = max(first, start)
    elif days is not None:
        first = max(first, last - 86_400.0 * days)
    return first - first % step + (step if first % step else 0.0), last


async def synthetic_recording(
    strategy: Strategy, *, start: float, end: float, markets: int, seed: int = 1
) -> Recording:
    """The synthetic paper market from `start` to `end`, with the history before them the
    strategy reads (its candle limit of its longest timeframe) as a warm-up."""
    longest = max(TIMEFRAME_SECONDS[tf] for tf in strategy.timeframes)
    return await synthetic_history(
        start=start - longest * (strategy.candle_limit + 1),
        end=end,
        markets=markets,
        timeframes=tuple(strategy.timeframes),
        seed=seed,
    )


async def run_backtest(
    market: Market,
    *,
    strategy: Strategy,
    settings: TradingSettings,
    start: float,
    end: float,
) -> BacktestResult:
    """Replay [start, end] through a Trader cycling every `cycle_step`."""
    step = cycle_step(market.candles, settings)
    # REST sync every cycle, as with EVENT_FEED=off: the replay runs cycle after cycle without
    # the event loop's idle moments in which a feed's pushes arrive, so the sync would find
    # every fill first and the run would depend on task scheduling instead of the data.
    settings = replace(settings, event_feed="off")
    clock = ReplayClock(start)
    feed = RecordedFeed(market.candles, clock=clock)
    paper = PaperExchange(
        clock=clock,
        name=LABEL,
        feed=feed,
        quote=settings.quote,
        balances={settings.quote: market.balance},
        fee_rate=market.fee_rate,
        slippage=market.slippage,
        rate_limit=0.0,  # a replay is not paced: no request waits for a token
    )
    store = Store()
    connector = Connector(paper, clock=clock, notify=_ignore)
    trader = Trader(
        connector, store=store, strategy=strategy, settings=settings, clock=clock, notify=_ignore
    )
    cycles = 0
    at = start
    try:
        while at <= end:
            clock.advance_to(at)
            await trader.run_cycle()
            cycles += 1
            at += step
        await paper.advance()
    finally:
        await trader.close()
    label = connector.label
    result = BacktestResult(
        start=start,
        end=end,
        step=step,
        cycles=cycles,
        starting_equity=market.balance,
        trades=store.trades(label),
        curve=store.equity(label),
        open_positions=len(trader.book.positions),
    )
    store.close()
    return result


def _ignore(_event: Event) -> None:
    """A replay pages nobody: its events are the store's trades and equity."""
