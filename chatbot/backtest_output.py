"""A backtest's report as text, its trades as CSV and its equity as a PNG, in a results folder.
Everything is formatted from the replay's own figures (no wall-clock time, fixed decimals), so
the same input writes the same bytes."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from trading.backtest import Market
from trading.backtest_report import Report
from trading.ledger import SymbolResult
from trading.settings import TradingSettings


def write_results(
    rep: Report,
    folder: Path,
    *,
    strategy: str,
    source: str,
    settings: TradingSettings,
    market: Market,
) -> str:
    """Write report.txt, trades.csv and equity.png under `folder`; returns the report."""
    folder.mkdir(parents=True, exist_ok=True)
    text = report_text(rep, strategy=strategy, source=source, settings=settings, market=market)
    text += f"\nWritten: {folder / 'report.txt'}, trades.csv, equity.png\n"
    (folder / "report.txt").write_text(text)
    (folder / "trades.csv").write_text(trades_csv(rep))
    (folder / "equity.png").write_bytes(equity_png(rep))
    return text


def report_text(
    rep: Report, *, strategy: str, source: str, settings: TradingSettings, market: Market
) -> str:
    r, t, q = rep.result, rep.trades, settings.quote
    lines = [
        f"Backtest of {strategy} on {source}",
        f"{_when(r.start)} -> {_when(r.end)} UTC, a cycle every {r.step / 60:g} min "
        f"({r.cycles} cycles)",
        f"Balance {market.balance:.2f} {q}, stake {settings.stake_amount:g} {q}, at most "
        f"{settings.max_positions} positions, fee {market.fee_rate * 100:.2f} %, slippage "
        f"{market.slippage * 100:.2f} %",
        "",
        f"Trades         {t.count} (won {t.wins}, lost {t.losses}, win rate "
        f"{_pct(t.win_rate)}), {r.open_positions} open at the end",
        f"PnL            {rep.pnl:+.2f} {q} ({rep.pnl_pct:+.2f} %), realized {t.realized:+.2f}",
        f"Fees           {t.fees:.2f} {q} (taken out of the PnL)",
        f"Final equity   {rep.final_equity:.2f} {q}",
        f"Max drawdown   {_drawdown(rep, q)}",
        f"Sharpe         {_num(rep.sharpe)}   Sortino {_num(rep.sortino)}   "
        "(daily returns, annualised)",
        f"Exposure       mean {rep.exposure_mean * 100:.1f} %, max {rep.exposure_max * 100:.1f} %,"
        f" in the market {rep.in_market * 100:.1f} % of the cycles",
        "  by day       "
        + ", ".join(f"{_when(d)[5:10]} {e * 100:.0f}%" for d, e in rep.exposure_by_day),
        "Exits          " + (", ".join(f"{k} {n}" for k, n in rep.reasons) or "none"),
        "Best symbols   " + _symbols(rep.best),
        "Worst symbols  " + _symbols(rep.worst),
    ]
    return "\n".join(lines) + "\n"


def trades_csv(rep: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("symbol", "opened", "closed", "amount", "entry", "exit", "pnl", "fees",
                     "reason"))  # fmt: skip
    for t in sorted(rep.result.trades, key=lambda t: (t.closed_at, t.symbol)):
        writer.writerow((t.symbol, _when(t.opened_at), _when(t.closed_at), f"{t.amount:.10g}",
                         f"{t.entry_price:.10g}", f"{t.exit_price:.10g}", f"{t.pnl:.6f}",
                         f"{t.fees:.6f}", t.reason))  # fmt: skip
    return out.getvalue()


def equity_png(rep: Report) -> bytes:
    """Equity above, the share held in positions below; Agg, no metadata that would vary."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    curve = rep.result.curve
    days = [(p.at - rep.result.start) / 86_400 for p in curve]
    fig = Figure(figsize=(8, 4.5), dpi=100)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot(days, [p.equity for p in curve], color="tab:blue", linewidth=1)
    top.axhline(rep.result.starting_equity, color="grey", linewidth=0.5)
    top.set_ylabel("equity")
    top.ticklabel_format(axis="y", useOffset=False, style="plain")
    bottom.fill_between(days, [p.exposure * 100 for p in curve], color="tab:orange", alpha=0.6)
    bottom.set_ylabel("exposure %")
    bottom.set_xlabel(f"days from {_when(rep.result.start)} UTC")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _drawdown(rep: Report, quote: str) -> str:
    d = rep.drawdown
    if d is None or d.amount <= 0:
        return "none"
    return (f"{d.amount:.2f} {quote} ({d.fraction * 100:.2f} %), {_when(d.peak_at)} -> "
            f"{_when(d.trough_at)}")  # fmt: skip


def _symbols(results: list[SymbolResult]) -> str:
    return ", ".join(f"{r.symbol} {r.pnl:+.2f} ({r.trades})" for r in results) or "none"
