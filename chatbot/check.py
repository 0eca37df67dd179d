"""`python -m chatbot check`: connect every configured account once and say what works.

For each account: load markets, read the exchange clock, fetch the balance; a dry-run account
whose credentials are set also has them tried read-only on the real account, so the switch to
live trading holds no surprise. Nothing is ordered. Keys and secrets are never printed.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import TextIO

from chatbot.config import Settings
from chatbot.logsetup import redact
from chatbot.venues import Plan, VenueFactory, dead_man, plan
from trading.clock import Clock
from trading.errors import Fault
from trading.models import Venue

WIDTH = 18  # label column


@dataclass
class Report:
    """What the check found for one account."""

    exchange: str
    account: str
    mode: str
    quote: str
    markets: int | None = None
    total: float | None = None
    free: float | None = None
    clock_offset_ms: float | None = None
    dead_man: str | None = None
    credentials: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def lines(self) -> list[str]:
        rows = [("mode", self.mode)]
        if self.markets is not None:
            rows.append(("markets", f"{self.markets} spot"))
        if self.total is not None:
            rows.append(("balance", f"{self.total:.2f} {self.quote} (free {self.free:.2f})"))
        if self.clock_offset_ms is not None:
            rows.append(("clock offset", f"{self.clock_offset_ms:+.0f} ms (exchange - local)"))
        if self.dead_man is not None:
            rows.append(("cancel-all-after", self.dead_man))
        if self.credentials is not None:
            rows.append(("credentials", self.credentials))
        rows.append(("result", "OK" if self.ok else f"FAILED - {self.problem}"))
        return [f"{self.exchange} {self.account}"] + [
            f"  {name + ':':<{WIDTH}}{value}" for name, value in rows
        ]


async def run_check(
    settings: Settings,
    out: TextIO = sys.stdout,
    *,
    ccxt_config: dict | None = None,
    paper_clock: Clock | None = None,
) -> int:
    """Check every configured account; 0 when all of them work, 1 otherwise."""
    factory = VenueFactory(
        settings, paper_clock=paper_clock, ccxt_config=ccxt_config, keep_state=False
    )
    reports = [await _check(plan(a, settings), factory, settings) for a in settings.accounts]
    secrets = [s.get() for s in settings.secrets]
    for report in reports:
        out.write(redact("\n".join(report.lines()), secrets) + "\n\n")
    ready = sum(r.ok for r in reports)
    out.write(f"{ready} of {len(reports)} accounts ready\n")
    out.flush()
    return 0 if ready == len(reports) else 1


async def _check(p: Plan, factory: VenueFactory, settings: Settings) -> Report:
    a = p.account
    report = Report(a.exchange, a.account, _mode_text(p.mode), settings.trading.quote)
    if p.skip is not None:
        report.problem = p.skip
        return report
    venue: Venue | None = None
    try:
        venue = factory.build(p)
        await _measure(venue, report)
        if p.mode == "dry-run" and a.has_credentials and a.api_key is not None:
            await _try_credentials(factory, p, report)
    except Fault as fault:
        report.problem = _fault_text(fault)
    finally:
        if venue is not None:
            await _close(venue)
    return report


async def _measure(venue: Venue, report: Report) -> None:
    report.dead_man = dead_man(venue)
    report.markets = len(await venue.load_markets())
    report.clock_offset_ms = await venue.sync_time()
    balance = await venue.fetch_balance()
    report.total = balance.total_of(report.quote)
    report.free = balance.free_of(report.quote)


async def _try_credentials(factory: VenueFactory, p: Plan, report: Report) -> None:
    """Read-only: the real balance, proving the key, secret and clock work."""
    real = factory.real(p.account)
    try:
        balance = await real.fetch_balance()
        report.clock_offset_ms = real.clock_offset_ms  # the real exchange's, not the paper's
        report.credentials = (
            f"OK, read-only (exchange balance {balance.total_of(report.quote):.2f} {report.quote})"
        )
    except Fault as fault:
        report.credentials = "FAILED"
        report.problem = f"credentials: {_fault_text(fault)}"
    finally:
        await _close(real)


async def _close(venue: Venue) -> None:
    with contextlib.suppress(Fault):  # the check is over: a failing close changes nothing
        await venue.close()


def _mode_text(mode: str) -> str:
    return {
        "dry-run": "dry-run (live prices, simulated orders)",
        "paper": "paper (simulated exchange)",
        "sandbox": "sandbox (exchange testnet)",
    }.get(mode, mode)


def _fault_text(fault: Fault) -> str:
    return f"{type(fault).__name__}: {fault}"
