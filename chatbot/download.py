"""`python -m chatbot download`: candle history from an exchange's public API (no key needed)
into the market data layout, for the backtest to replay.

    python -m chatbot download --exchange binance [--days 30] [--timeframes 5m,1h]
                               [--symbols BTC/USDT,ETH/USDT | --top N] [--quote USDT]
                               [--data DIR]

Files go to DIR/<exchange>/ (DIR: DATA_DIR/market by default, what `backtest --data` reads).
A second run resumes each series after its last stored candle. Requests keep to the exchange's
rate limit (ccxt's, paced as the bot paces it). On a terminal a progress bar is redrawn in
place; otherwise one line per symbol. Exit 2 on a bad option or setting (an unknown exchange,
symbol or timeframe named), 1 when the exchange fails past the retries.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

from chatbot.config import from_environment, load_settings
from trading.clock import Clock, RealClock
from trading.download import Progress, SeriesDone, choose_symbols, download
from trading.errors import Closed, Fault
from trading.venues.ccxt_history import CcxtHistory, HistoryRefused

DEFAULT_TOP = 20
BAR = 30


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m chatbot download", description=__doc__.split("\n")[0]
    )
    p.add_argument("--exchange", required=True, help="a ccxt exchange id, e.g. binance")
    p.add_argument("--days", type=float, default=30.0, help="how far back (default 30)")
    p.add_argument("--timeframes", default="5m,1h", help="comma-separated (default 5m,1h)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--symbols", help="comma-separated, e.g. BTC/USDT,ETH/USDT")
    which.add_argument("--top", type=int, help=f"the N largest by volume (default {DEFAULT_TOP})")
    p.add_argument("--quote", help="quote currency of --top (default QUOTE_CURRENCY)")
    p.add_argument("--data", type=Path, help="where the candles go (default DATA_DIR/market)")
    args = p.parse_args(argv)
    if args.days <= 0 or (args.top is not None and args.top < 1):
        p.error("--days and --top must be positive")
    return args


def main(argv: list[str]) -> int:
    return asyncio.run(run(argv))


async def run(
    argv: list[str],
    *,
    config: dict | None = None,
    clock: Clock | None = None,
    out: TextIO | None = None,
) -> int:
    """The command; `config` is merged into the ccxt client's constructor (a test server's
    urls), `out` gets the progress and the summary."""
    try:
        args = parse(argv)
    except SystemExit as exc:  # argparse printed why
        return 0 if exc.code == 0 else 2
    settings = from_environment(load_settings, "the download")
    if settings is None:
        return 2
    root = args.data or settings.data_dir / "market"
    quote = (args.quote or settings.trading.quote).upper()
    out = out or sys.stdout
    try:
        source = CcxtHistory(args.exchange.lower(), config=config)
    except (HistoryRefused, Fault) as exc:
        print(f"download: {exc}", file=sys.stderr)
        return 2
    try:
        return await _download(source, args, root / source.name, quote, clock or RealClock(), out)
    except HistoryRefused as exc:
        print(f"download: {exc}", file=sys.stderr)
        return 2
    except (Fault, Closed) as exc:
        print(f"download: {source.name} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        await source.close()


async def _download(
    source: CcxtHistory, args: argparse.Namespace, folder: Path, quote: str, clock: Clock,
    out: TextIO,
) -> int:  # fmt: skip
    timeframes = [t.strip() for t in args.timeframes.split(",") if t.strip()]
    for timeframe in timeframes:
        source.check_timeframe(timeframe)
    symbols = await _symbols(source, args, quote)
    print(f"{source.name}: {len(symbols)} symbols x {','.join(timeframes)}, "
          f"{args.days:g} days, into {folder}", file=out)  # fmt: skip
    bar = ProgressBar(out, len(timeframes))
    try:
        done = await download(
            source, folder, symbols, timeframes, days=args.days, clock=clock, progress=bar.show
        )
    finally:
        bar.close()
    print(f"added {sum(d.added for d in done)} candles to {len(done)} series", file=out)
    return 0


async def _symbols(source: CcxtHistory, args: argparse.Namespace, quote: str) -> list[str]:
    if args.symbols is None:
        return await choose_symbols(source, quote=quote, top=args.top or DEFAULT_TOP)
    wanted = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    markets = await source.load_markets()
    unknown = [s for s in wanted if s not in markets]
    if unknown:
        raise HistoryRefused(f"{source.name} has no spot market {', '.join(unknown)}")
    return wanted


class ProgressBar:
    """On a terminal one line redrawn in place; elsewhere (a log, a pipe) a line per symbol
    once its every timeframe is done."""

    def __init__(self, out: TextIO, timeframes: int) -> None:
        self.out = out
        self.tty = out.isatty()
        self.timeframes = timeframes
        self._series: list[SeriesDone] = []  # of the symbol being read

    def show(self, p: Progress) -> None:
        if self.tty:
            filled = BAR * (p.index + (p.done is not None)) // max(1, p.symbols)
            bar = "#" * filled + "." * (BAR - filled)
            line = f"[{bar}] {p.index + 1}/{p.symbols} {p.symbol} {p.timeframe}: +{p.added}"
            self.out.write(f"\r{line:<78}")
            self.out.flush()
            return
        if p.done is None:
            return
        self._series.append(p.done)
        if len(self._series) == self.timeframes:
            parts = ", ".join(f"{s.timeframe} +{s.added}" for s in self._series)
            resumed = " (resumed)" if any(s.resumed for s in self._series) else ""
            print(f"{p.index + 1}/{p.symbols} {p.symbol}: {parts}{resumed}", file=self.out)
            self._series = []

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")
