"""Market data on disk: where recorded candles live, how they are written and read, and how
Freqtrade's downloads are taken in.

The layout, under DATA_DIR (or any folder given to `--data`):

    market/<exchange>/<BASE>_<QUOTE>-<timeframe>.csv     e.g. market/binance/BTC_USDT-5m.csv

one file per symbol and timeframe, a header line `time,open,high,low,close,volume`, then one
candle a line, `time` its open time in epoch milliseconds (as ccxt and Freqtrade give it). The
format is append-only: a download that resumes, or a recorder, adds lines at the end; a reader
sorts by time and keeps the last line of a time it sees twice, so an overlap is harmless.

Freqtrade's downloads (`user_data/data/<exchange>/BTC_USDT-5m.json`, a JSON list of
`[ms, open, high, low, close, volume]`, optionally gzipped) are read in place as well, or copied
into the layout by `import_freqtrade`. Its feather files need pyarrow; without it they are skipped
and said so. Futures and mark-price files (`-futures`, `-mark`, ...) are spot-only's to skip.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from trading.models import TIMEFRAME_SECONDS, Candle

HEADER = "time,open,high,low,close,volume"
_NAME = re.compile(r"^(?P<pair>[A-Z0-9]+(?:_[A-Z0-9]+)+)-(?P<tf>\d+[mhd])(?P<rest>[-.].*)$")
_READABLE = {".csv": "csv", ".json": "json", ".json.gz": "json", ".feather": "feather"}


def market_dir(data_dir: Path | str, exchange: str) -> Path:
    """Where an exchange's recorded candles live under DATA_DIR."""
    return Path(data_dir) / "market" / exchange.lower()


def file_name(symbol: str, timeframe: str) -> str:
    return f"{symbol.replace('/', '_')}-{timeframe}.csv"


@dataclass(frozen=True)
class SeriesFile:
    """One file of candles: whose, of which timeframe, in which format."""

    path: Path
    symbol: str
    timeframe: str
    format: str  # "csv", "json" or "feather"


def series_files(folder: Path) -> tuple[list[SeriesFile], list[str]]:
    """The candle files in `folder` whose timeframe the bot knows, and notes on what it skipped
    (feather without pyarrow, futures files). Sorted, so every reader sees them alike."""
    found: list[SeriesFile] = []
    skipped: list[str] = []
    feather_ok = _has_pyarrow()
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        match = _NAME.match(path.name)
        if match is None or match["tf"] not in TIMEFRAME_SECONDS:
            continue
        fmt = _READABLE.get(match["rest"])
        if fmt is None or match["pair"].count("_") != 1:  # BTC_USDT_USDT-5m-futures.json
            skipped.append(f"{path.name}: not spot candles")
            continue
        if fmt == "feather" and not feather_ok:
            skipped.append(f"{path.name}: feather needs pyarrow (pip install pyarrow)")
            continue
        base, quote = match["pair"].split("_")
        found.append(SeriesFile(path, f"{base}/{quote}", match["tf"], fmt))
    return found, skipped


def read_series(file: SeriesFile) -> list[Candle]:
    """The file's candles, oldest first, one per open time (the last line of a time wins)."""
    if file.format == "csv":
        rows = _csv_rows(file.path)
    elif file.format == "json":
        opener = gzip.open if file.path.name.endswith(".gz") else open
        with opener(file.path, "rt") as f:
            rows = json.load(f)
    else:
        rows = _feather_rows(file.path)
    by_time = {float(r[0]) / 1000.0: r for r in rows}
    return [
        Candle(ts, float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]))
        for ts, r in sorted(by_time.items())
    ]


@dataclass(frozen=True)
class Recorded:
    """What a folder holds for one quote currency: candles by symbol and timeframe, and notes
    on the files it skipped."""

    candles: dict[str, dict[str, list[Candle]]]
    skipped: list[str]


def load_folder(folder: Path, *, quote: str, markets: int | None = None) -> Recorded:
    """Every spot series in `folder` quoted in `quote`; with `markets`, only that many symbols,
    the largest by quote volume over the whole recording first (ties by name)."""
    files, skipped = series_files(folder)
    candles: dict[str, dict[str, list[Candle]]] = {}
    for file in files:
        if file.symbol.endswith(f"/{quote}"):
            candles.setdefault(file.symbol, {})[file.timeframe] = read_series(file)
    if markets is not None:
        turnover = {
            symbol: max(math.fsum(c.close * c.volume for c in s) for s in series.values())
            for symbol, series in candles.items()
        }
        chosen = sorted(candles, key=lambda s: (-turnover[s], s))[:markets]
        candles = {s: candles[s] for s in sorted(chosen)}
    return Recorded(candles, skipped)


def append_candles(folder: Path, symbol: str, timeframe: str, candles: Iterable[Candle]) -> int:
    """Append candles to the symbol's file (created with its header); returns lines written."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name(symbol, timeframe)
    lines = [_line(c) for c in candles]
    new = not path.exists()
    with path.open("a", encoding="ascii") as f:
        if new:
            f.write(HEADER + "\n")
        f.writelines(lines)
    return len(lines)


def last_time(folder: Path, symbol: str, timeframe: str) -> float | None:
    """The open time (epoch seconds) of the file's last candle, for a download to resume."""
    path = folder / file_name(symbol, timeframe)
    if not path.exists():
        return None
    rows = _csv_rows(path)
    return max(float(r[0]) for r in rows) / 1000.0 if rows else None


def import_freqtrade(source: Path, dest: Path) -> tuple[list[str], list[str]]:
    """Copy every spot candle file of a Freqtrade exchange folder into the layout at `dest`
    (a market/<exchange> folder); returns the files written and the notes on what was skipped."""
    files, skipped = series_files(source)
    written = []
    for file in files:
        if file.format == "csv":
            continue
        target = dest / file_name(file.symbol, file.timeframe)
        target.unlink(missing_ok=True)
        append_candles(dest, file.symbol, file.timeframe, read_series(file))
        written.append(target.name)
    return written, skipped


def _line(c: Candle) -> str:
    return f"{round(c.ts * 1000)},{c.open!r},{c.high!r},{c.low!r},{c.close!r},{c.volume!r}\n"


def _csv_rows(path: Path) -> list[Sequence[str]]:
    with path.open(encoding="ascii") as f:
        return [line.split(",") for line in f.read().splitlines()[1:] if line]


def _has_pyarrow() -> bool:
    try:
        import pyarrow.feather  # noqa: F401
    except ImportError:
        return False
    return True


def _feather_rows(path: Path) -> list[Sequence[float]]:
    from pyarrow import feather

    table = feather.read_table(path).to_pydict()
    names = ("open", "high", "low", "close", "volume")
    return [
        (d.timestamp() * 1000.0, *(table[n][i] for n in names)) for i, d in enumerate(table["date"])
    ]
