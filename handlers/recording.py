"""/record: keep the candles and tickers the scans read on disk, for the backtest to replay.

`/record` shows whether it is on, what the disk holds (symbols and timeframes per exchange)
and how large it is; `/record on` and `/record off` switch it (trading/recorder.py). It costs
no request: only what the cycles fetch anyway is written.
"""

from __future__ import annotations

from handlers.context import Context
from handlers.format import BadInput, command
from handlers.reply import Reply, esc, refuse
from trading.recorder import RecordingStatus

USAGE = "/record shows what is recorded; /record on or /record off switches it."
SHOWN_SYMBOLS = 8


@command
async def record(ctx: Context, args: list[str]) -> Reply:
    """Show or switch the recording of market data."""
    recorder = ctx.recorder
    if recorder is None:
        return refuse("Recording is not available in this process.")
    if len(args) > 1 or (args and args[0].lower() not in ("on", "off")):
        raise BadInput(USAGE)
    if not args:
        return Reply(text=describe(recorder.status()))
    on = args[0].lower() == "on"
    was = recorder.on
    status = recorder.switch(on)
    if on == was:
        head = f"Recording was already {'on' if on else 'off'}."
    elif on:
        head = "Recording is on: the candles and tickers the scans read go to disk."
    else:
        head = "Recording is off; what was recorded stays on disk."
    return Reply(text=f"{head}\n{describe(status)}")


def describe(status: RecordingStatus) -> str:
    state = "on" if status.on else "off"
    lines = [f"<b>Recording: {state}</b> ({status.written} candles written since the start)"]
    if status.error:
        lines.append(f"Stopped by itself: {esc(status.error)}")
    if not status.recorded:
        lines.append(f"Nothing recorded yet under <code>{esc(status.folder)}</code>.")
        return "\n".join(lines)
    for ex in status.recorded:
        shown = ", ".join(ex.symbols[:SHOWN_SYMBOLS])
        more = f" +{len(ex.symbols) - SHOWN_SYMBOLS}" if len(ex.symbols) > SHOWN_SYMBOLS else ""
        lines.append(
            f"{esc(ex.exchange)}: {len(ex.symbols)} symbols ({esc(shown)}{more}), "
            f"{', '.join(ex.timeframes)}, {size(ex.size)}"
        )
    lines.append(f"Replay: <code>python -m chatbot backtest --data {esc(status.folder)}</code>")
    return "\n".join(lines)


def size(n: int) -> str:
    """Bytes in the largest unit that keeps a number of at least 1."""
    for unit in ("bytes", "KB", "MB"):
        if n < 1024:
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
