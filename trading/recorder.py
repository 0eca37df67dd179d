"""/record: what the scans already read, kept on disk for the backtest to replay.

While recording is on, every closed candle a scanner reads (trading/scanner.py hands them over
as it receives them) is appended to the market data layout (trading/venues/market_files.py),
`DATA_DIR/market/<exchange>/<BASE>_<QUOTE>-<tf>.csv`, after the last one that file holds: a
candle is written once however many cycles and accounts read it. The tickers the scan read for
those symbols go to `DATA_DIR/market/<exchange>/tickers/<BASE>_<QUOTE>.csv`
(`time,last,bid,ask,quote_volume,change_pct`, time in epoch ms), at most one a minute of market
time each; the replay reads the candles (a ticker file is outside its layout). Recording asks
the exchange for nothing: it only sees what a cycle fetched anyway, so a market the scan does
not look at for a while has a gap.

Whether it is on is kept in the store, so a restart continues it. A write that fails (a full
disk) switches recording off with the reason, never the trading: the recorder is an observer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from trading.models import TIMEFRAME_SECONDS, Candle, Ticker
from trading.store import Store
from trading.venues.market_files import append_candles, last_time, series_files

META_KEY = "recording"
TICKERS = "tickers"
TICKER_HEADER = "time,last,bid,ask,quote_volume,change_pct"
TICKER_EVERY = 60.0  # seconds of market time between two tickers of a symbol

log = logging.getLogger("trading.recorder")


@dataclass(frozen=True)
class RecordedExchange:
    """What the disk holds for one exchange."""

    exchange: str
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    size: int  # bytes, tickers included


@dataclass(frozen=True)
class RecordingStatus:
    """What /record shows."""

    on: bool
    folder: Path
    recorded: tuple[RecordedExchange, ...]
    written: int  # candles written since the process started
    error: str | None  # why recording stopped by itself, if it did


class MarketRecorder:
    """One for the process: every account's scanner taps it, so two accounts on one exchange
    write each candle once."""

    def __init__(self, folder: Path, store: Store) -> None:
        self.folder = folder
        self._store = store
        self.on = store.get_meta(META_KEY) == "on"
        self.written = 0
        self.error: str | None = None
        self._last: dict[tuple[str, str, str], float | None] = {}  # series -> last open
        self._ticker_at: dict[tuple[str, str], float] = {}
        self._symbols: set[tuple[str, str]] = set()  # whose candles were recorded

    def tap(self, exchange: str) -> MarketTap:
        """What one account's scanner hands its reads to."""
        return MarketTap(self, exchange.lower())

    def switch(self, on: bool) -> RecordingStatus:
        self.on = on
        self.error = None
        self._store.set_meta(META_KEY, "on" if on else "off")
        return self.status()

    def status(self) -> RecordingStatus:
        found = []
        folders = sorted(p for p in self.folder.iterdir() if p.is_dir()) if (
            self.folder.is_dir()
        ) else []  # fmt: skip
        for folder in folders:
            files = series_files(folder)[0]
            if not files:
                continue
            symbols = tuple(sorted({f.symbol for f in files}))
            timeframes = tuple(sorted({f.timeframe for f in files}, key=TIMEFRAME_SECONDS.get))
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            found.append(RecordedExchange(folder.name, symbols, timeframes, size))
        return RecordingStatus(self.on, self.folder, tuple(found), self.written, self.error)

    # -- what the taps hand over

    def candles(self, exchange: str, symbol: str, timeframe: str, closed: Sequence[Candle]):
        if not self.on or not closed:
            return
        try:
            self._append(exchange, symbol, timeframe, closed)
        except OSError as exc:
            self._fail(exc)

    def tickers(self, exchange: str, tickers: Mapping[str, Ticker]) -> None:
        if not self.on:
            return
        try:
            self._append_tickers(exchange, tickers.values())
        except OSError as exc:
            self._fail(exc)

    def _append(self, exchange: str, symbol: str, timeframe: str, closed: Sequence[Candle]):
        folder = self.folder / exchange
        key = (exchange, symbol, timeframe)
        if key not in self._last:
            self._last[key] = last_time(folder, symbol, timeframe)
        last = self._last[key]
        new = [c for c in closed if last is None or c.ts > last]
        if new:
            self.written += append_candles(folder, symbol, timeframe, new)
            self._last[key] = new[-1].ts
        self._symbols.add((exchange, symbol))

    def _append_tickers(self, exchange: str, tickers: Iterable[Ticker]) -> None:
        folder = self.folder / exchange / TICKERS
        for t in tickers:
            key = (exchange, t.symbol)
            if key not in self._symbols or t.timestamp < self._ticker_at.get(key, 0.0):
                continue
            self._ticker_at[key] = t.timestamp + TICKER_EVERY
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{t.symbol.replace('/', '_')}.csv"
            new = not path.exists()
            with path.open("a", encoding="ascii") as f:
                if new:
                    f.write(TICKER_HEADER + "\n")
                f.write(f"{round(t.timestamp * 1000)},{t.last!r},{t.bid!r},{t.ask!r},"
                        f"{t.quote_volume!r},{t.change_pct!r}\n")  # fmt: skip

    def _fail(self, exc: OSError) -> None:
        self.switch(False)
        self.error = f"{type(exc).__name__}: {exc}"
        log.warning("recording stopped: %s", self.error)


@dataclass(frozen=True)
class MarketTap:
    """A recorder as one exchange's scanner sees it."""

    recorder: MarketRecorder
    exchange: str

    def candles(self, symbol: str, timeframe: str, closed: Sequence[Candle]) -> None:
        self.recorder.candles(self.exchange, symbol, timeframe, closed)

    def tickers(self, tickers: Mapping[str, Ticker]) -> None:
        self.recorder.tickers(self.exchange, tickers)
