"""/ping, /info and /debug: what the bot is doing, read from memory only.

None of these waits on an exchange or on a trader's lock, so they answer at once even while a
cycle is stuck on a slow exchange call or a /kill is still flattening.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping

from handlers.context import Context
from handlers.format import ago, command, money, num, pct, percent, pick, signed, span, utc
from handlers.reply import Reply, esc

# Settings whose names say they hold a credential: shown as *** even if the redaction upstream
# missed one (a secret must never reach a chat).
SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "passphrase")


def ago_at(now: float, then: float | None) -> str:
    return ago(None if then is None else now - then)


async def ping(ctx: Context, args: list[str]) -> Reply:
    """Alive, uptime, last cycle per account."""
    desk = ctx.desk
    now = ctx.clock.time()
    lines = [f"<b>pong</b> - up {span(now - desk.started_at)}"]
    for trader in desk.traders:
        s = trader.status()
        if not s.started and s.last_cycle_at is not None:
            error = s.last_error or s.health.last_fault or "no answer"
            lines.append(f"{esc(s.account)}: not started: markets never loaded ({esc(error)})")
            continue
        lines.append(f"{esc(s.account)}: {esc(s.mode)}, last cycle {ago_at(now, s.last_cycle_at)}")
    if not desk.traders:
        lines.append("no accounts are trading")
    return Reply(text="\n".join(lines))


# ---- /info -------------------------------------------------------------------------------


@command
async def info(ctx: Context, args: list[str]) -> Reply:
    """Per account: mode, balances, positions, exposure, API health, last cycle; totals."""
    traders, _ = pick(ctx, args, max_rest=0, usage="/info [ACCOUNT]")
    now = ctx.clock.time()
    blocks = []
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for trader in traders:
        result = trader.info()
        blocks.append("\n".join(_account_block(result, now)))
        total = totals[result.quote]
        total[0] += result.equity
        total[1] += len(result.positions)
        total[2] += sum(p.pnl for p in result.positions)
    if len(traders) > 1:
        lines = ["<b>Total</b>"]
        for quote, (equity, positions, pnl) in sorted(totals.items()):
            lines.append(
                f"equity {money(equity)} {esc(quote)}, {positions:.0f} positions, "
                f"open PnL {signed(pnl)} {esc(quote)}"
            )
        blocks.append("\n".join(lines))
    return Reply(text="\n\n".join(blocks))


def _account_block(r, now: float) -> list[str]:
    cycle = ago_at(now, r.last_cycle_at)
    if r.last_cycle_seconds is not None:
        cycle += f" (took {r.last_cycle_seconds:.1f} s)"
    quote = esc(r.quote)
    lines = [
        f"<b>{esc(r.account)}</b> · {esc(r.mode)}" + ("" if r.started else " · not started yet"),
        f"equity {money(r.equity)} {quote} · free {money(r.free_quote)} {quote}"
        f" · exposure {pct(r.exposure)}",
    ]
    if r.positions:
        lines.append(f"{len(r.positions)} open position(s):")
        lines.extend(_position_line(p) for p in r.positions)
    else:
        lines.append("no open positions")
    lines.append(f"open orders {r.open_orders} · banned symbols {r.bans}")
    if r.balances:
        held = ", ".join(f"{esc(c)} {num(v)}" for c, v in sorted(r.balances.items()))
        lines.append(f"balances: {held}")
    lines.append(f"API: {_health_line(r.health)} · last cycle {cycle}")
    if r.feed in FEED_WORDS:
        lines.append(f"event feed: {FEED_WORDS[r.feed]}")
    if r.last_error:
        lines.append(f"last error: {esc(r.last_error[:300])}")
    return lines


def _position_line(p) -> str:
    price = "no price yet" if p.price is None else num(p.price)
    marks = []
    if p.stop_loss is not None:
        where = "on exchange" if p.guard == "exchange" else "in bot"
        marks.append(f"stop {num(p.stop_loss)} {where}")
    if p.take_profit is not None:
        marks.append(f"target {num(p.take_profit)}")
    if p.manual:
        marks.append("manual")
    if p.banned:
        marks.append("banned")
    extra = f" · {esc(', '.join(marks))}" if marks else ""
    return (
        f"• {esc(p.symbol)} {num(p.amount)} @ {num(p.entry_price)} → {price}"
        f" · PnL {signed(p.pnl)} ({percent(p.pnl_pct / 100, sign=True)}){extra}"
    )


FEED_WORDS = {
    "up": "up (fills as they happen, REST checks every sync interval)",
    "down": "down: REST polling every cycle until it is back",
    "unavailable": "not offered by this exchange: REST polling",
}


def _health_line(health) -> str:
    if health is None:
        return "no data"
    return f"health {pct(health.score)}, circuit {esc(health.circuit)}"


# ---- /debug ------------------------------------------------------------------------------


@command
async def debug(ctx: Context, args: list[str]) -> Reply:
    """Versions, effective settings (secrets redacted), per account clock offset, circuit,
    health, budget and last fault; notifier queue and drops; scheduler jobs."""
    traders, _ = pick(ctx, args, max_rest=0, usage="/debug [ACCOUNT]")
    now = ctx.clock.time()
    lines = ["<b>Debug</b>"]
    versions = ", ".join(f"{esc(k)} {esc(v)}" for k, v in sorted(ctx.versions.items()))
    lines.append(f"versions: {versions or 'unknown'}")
    lines.append(f"up {span(now - ctx.desk.started_at)} · now {utc(now)}")
    lines.append("<b>Accounts</b>")
    lines.extend(_account_debug(t, now) for t in traders)
    lines.append("<b>Notifier</b>")
    lines.extend(_notifier_lines(ctx))
    lines.append("<b>Scheduler</b>")
    lines.extend(_job_lines(ctx, time.time()))
    lines.append("<b>Settings</b>")
    lines.extend(f"<code>{esc(k)} = {esc(v)}</code>" for k, v in flatten(ctx.settings))
    return Reply(text="\n".join(lines))


def _account_debug(trader, now: float) -> str:
    s = trader.status()
    h = s.health
    faults = ", ".join(f"{k} {v}" for k, v in sorted(h.faults_by_kind.items())) or "none"
    parts = [
        f"mode {s.mode}",
        f"clock offset {h.clock_offset_ms:+.0f} ms",
        f"circuit {h.circuit}",
        f"health {pct(h.score)}",
        f"budget {h.budget}",
        f"requests {h.requests}",
        f"faults {faults}",
        f"last fault {h.last_fault or 'none'}",
    ]
    if h.open_until is not None:
        parts.append(f"circuit open for {max(0.0, h.open_until - now):.0f} s")
    if h.sync_failing_since is not None:
        parts.append(f"sync failing since {ago_at(now, h.sync_failing_since)}")
    if h.unrecognized is not None:
        call, since, _ = h.unrecognized
        parts.append(f"{call} answering unrecognized errors since {ago_at(now, since)}")
    if h.has_dead_man:
        armed = h.dead_man_armed_until
        parts.append(
            "dead man's switch "
            + (f"armed for {armed - now:.0f} s" if armed is not None else "not armed")
        )
    parts.append(f"last sync {ago_at(now, s.last_sync_at)}")
    if s.feed.state != "off":
        feed = s.feed
        parts.append(
            f"event feed {feed.state}, {feed.events} events, {feed.missed} missed, "
            f"{feed.reconnects} reconnects"
        )
    if s.emergencies:
        parts.append("emergencies " + ", ".join(s.emergencies))
    if s.caution:
        parts.append(f"entries held: {s.caution}")
    parts.append(f"stops placed {s.stops_placed}")
    return f"{esc(s.account)}: " + esc(" · ".join(parts))


def _notifier_lines(ctx: Context) -> list[str]:
    if ctx.notifier is None:
        return ["no notifier"]
    s = ctx.notifier.stats()
    lines = [
        f"queue {s.queue_depth}/{s.queue_size}, reports {s.reports_depth}, urgent "
        f"{s.urgent_depth} · dropped {s.dropped_total} ({s.dropped_since_report} unreported), "
        f"stale {s.stale_dropped} · sent {s.sent}, failures {s.send_failures} · pages "
        f"{s.pages_sent} (failed {s.page_failures})"
    ]
    if s.flood_wait > 0:
        lines.append(f"Telegram flood wait: {s.flood_wait:.0f} s left")
    for a in s.active_emergencies:
        state = "acknowledged" if a.acked else "repeating"
        lines.append(
            f"emergency <code>{esc(a.key)}</code>: raised {a.count}×, sent {a.sends}×, {state}"
        )
    return lines


def _job_lines(ctx: Context, now: float) -> list[str]:
    # The scheduler runs on the wall clock, whatever clock the traders use.
    if ctx.jobs is None:
        return ["no scheduler"]
    jobs = ctx.jobs()
    if not jobs:
        return ["no jobs"]
    lines = []
    for job, next_run in jobs:
        if next_run is None:
            when = "paused"
        else:
            when = f"next in {max(0.0, next_run - now):.0f} s ({utc(next_run)})"
        lines.append(f"{esc(job)}: {when}")
    return lines


def flatten(settings: Mapping[str, object], prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as ("telegram.chat_id", "42") pairs, credentials masked."""
    out: list[tuple[str, str]] = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(flatten(value, f"{name}."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for i, item in enumerate(value):
                out.extend(flatten(item, f"{name}[{i}]."))
        elif value not in (None, "", "***") and any(w in key.lower() for w in SECRET_WORDS):
            out.append((name, "***"))
        else:
            out.append((name, _plain(value)))
    return out


def _plain(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return "unset" if value is None else str(value)
