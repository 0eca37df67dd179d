"""`python -m chatbot backtest`: the live engine replayed on recorded candles (or, without any,
on the synthetic paper market's history), a report on stdout and in a results folder.

    python -m chatbot backtest [--data DIR] [--exchange X] [--strategy NAME]
                               [--days N | --start YYYY-MM-DD [--end YYYY-MM-DD]]
                               [--markets N] [--stake AMOUNT] [--results DIR]

Settings come from the environment like the bot's (STRATEGY, STAKE_AMOUNT, MAX_POSITIONS,
PAPER_BALANCE, PAPER_FEE_RATE, ...); the options override them. The data is DATA_DIR/market/
<exchange>/ (trading/venues/market_files.py), or a Freqtrade data folder. The results folder
(default DATA_DIR/backtest) gets report.txt, trades.csv and equity.png. Exit 2 on a bad option
or setting, or a --data folder without candles.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from chatbot.backtest_output import write_results
from chatbot.config import Settings, from_environment, load_settings
from chatbot.config_strategy import strategy_of
from trading.backtest import (
    SYNTHETIC_END,
    Market,
    cycle_step,
    run_backtest,
    synthetic_recording,
    window,
)
from trading.backtest_report import report
from trading.strategies import Strategy
from trading.venues.market_files import load_folder, series_files

SYNTHETIC_DAYS = 7.0
SYNTHETIC_MARKETS = 20


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m chatbot backtest", description=__doc__.split("\n")[0]
    )
    p.add_argument("--data", type=Path, help="recorded candles (default DATA_DIR/market)")
    p.add_argument("--exchange", help="the exchange's folder under --data (default: the first)")
    p.add_argument("--strategy", help="overrides STRATEGY")
    span = p.add_mutually_exclusive_group()
    span.add_argument("--days", type=float, help="the last N days of the data")
    span.add_argument("--start", type=_date, help="first day, YYYY-MM-DD (UTC)")
    p.add_argument("--end", type=_date, help="day after the last, YYYY-MM-DD (UTC)")
    p.add_argument("--markets", type=int, help="the N largest markets by turnover")
    p.add_argument("--stake", type=float, help="overrides STAKE_AMOUNT (quote per entry)")
    p.add_argument("--results", type=Path, help="results folder (default DATA_DIR/backtest)")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    try:
        args = parse(argv)
    except SystemExit as exc:  # argparse printed why
        return 0 if exc.code == 0 else 2
    overrides = {"STRATEGY": args.strategy} if args.strategy else {}
    settings = from_environment(lambda env: load_settings({**env, **overrides}), "the backtest")
    if settings is None:
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.stake is not None:
        settings = replace(settings, trading=replace(settings.trading, stake_amount=args.stake))
    strategy = strategy_of(settings.trading)
    folder, exchange = _folder(args, settings)
    if folder is None and args.data is not None:
        print(f"no candles under {args.data}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    text = asyncio.run(_run(args, settings, strategy, folder, exchange))
    print(text, end="")
    print(f"(replayed in {time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


async def _run(
    args: argparse.Namespace,
    settings: Settings,
    strategy: Strategy,
    folder: Path | None,
    exchange: str,
) -> str:
    if folder is None:
        end = args.end or (SYNTHETIC_END if args.start is None else args.start + 86_400.0)
        start = args.start or end - 86_400.0 * (args.days or SYNTHETIC_DAYS)
        markets = args.markets or SYNTHETIC_MARKETS
        candles = await synthetic_recording(strategy, start=start, end=end, markets=markets)
        source = f"the synthetic paper market ({len(candles)} markets, no data found)"
        days = None
    else:
        recorded = load_folder(folder, quote=settings.trading.quote, markets=args.markets)
        for note in recorded.skipped:
            print(f"skipped {note}", file=sys.stderr)
        candles = recorded.candles
        source = f"{exchange} ({len(candles)} markets, {folder})"
        start, end, days = args.start, args.end, args.days
    step = cycle_step(candles, settings.trading)
    first, last = window(candles, step, days=days, start=start, end=end)
    market = Market(candles, balance=settings.paper.balance, fee_rate=settings.paper.fee_rate)
    result = await run_backtest(
        market, strategy=strategy, settings=settings.trading, start=first, end=last
    )
    results = args.results or settings.data_dir / "backtest"
    return write_results(report(result), results, strategy=strategy.name, source=source,
                         settings=settings.trading, market=market)  # fmt: skip


def _folder(args: argparse.Namespace, settings: Settings) -> tuple[Path | None, str]:
    """The folder of candle files to replay, and the exchange it is of; None: there is none."""
    root = args.data or settings.data_dir / "market"
    candidates = [root / args.exchange] if args.exchange else [root]
    if not args.exchange and root.is_dir():
        candidates += sorted(p for p in root.iterdir() if p.is_dir())
    for folder in candidates:
        if series_files(folder)[0]:
            return folder, folder.name
    return None, "paper"


def _date(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text}") from exc
