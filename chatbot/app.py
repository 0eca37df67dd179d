"""Wiring: every part built once from the settings, all running on one event loop.

    settings -> venues -> connectors -> traders -> desk -> dispatcher -> console | Telegram
                          notifier (senders, pagers) <- every trader's notify
                          scheduler: a cycle and a sync job per trader, the daily summary

Every trader's book and mode are restored from the store before any command channel opens;
the exchange start (market load + reconciliation) is the first cycle's, and commands wait for it.

The process ends on SIGINT/SIGTERM, on EOF of an interactive console, or on /abort (exit 0,
so a restart-on-failure policy does not bring an aborted bot back). Ending is not a fault: the
work in flight finishes or is cancelled, nothing is sold, the modes stay as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import TextIO

import httpx

from chatbot.config import PAPER, Settings
from chatbot.config_strategy import strategy_of
from chatbot.console import Console, stdin_is_readable
from chatbot.front_host import CommandFront
from chatbot.health import HealthServer
from chatbot.heap import settle, settle_later
from chatbot.logsetup import RECENT
from chatbot.notifier import Notifier
from chatbot.pagers import pagers_from_settings
from chatbot.scheduling import add_daily_job, job_summary, new_scheduler, schedule_traders
from chatbot.senders import ConsoleSender, Sender, TelegramSender
from chatbot.telegram import TelegramTransport
from chatbot.venues import build_venues
from handlers.context import Context
from handlers.dispatch import Dispatcher
from trading.clock import Clock, RealClock
from trading.connector import Connector
from trading.desk import Desk
from trading.engine import Trader
from trading.models import Venue
from trading.paper_reset import reset_at_start
from trading.recorder import MarketRecorder
from trading.settings import TradingSettings
from trading.shared_tickers import SharedTickers
from trading.store import Store
from trading.venues.paper_state import PaperStateError

log = logging.getLogger("chatbot")

# Seconds a cycle or sync still running at shutdown gets to finish (an order on its way gets
# its answer recorded) before it is cancelled. Railway kills the process `drainingSeconds`
# (railway.toml) after SIGTERM; the grace, the notifier's flush and closing fit well inside.
SHUTDOWN_GRACE_SECONDS = 10.0
FIRST_CYCLE_DELAY = 0.5  # seconds from start to the first account's first cycle
# How old a whole-universe ticker read the accounts of one exchange share may be: 100 accounts
# cycling each minute read Binance's tickers 12 times a minute instead of 100.
SHARED_TICKERS_MAX_AGE = 5.0


def versions() -> dict[str, str]:
    found = {"chatbot": own_version(), "python": platform.python_version()}
    for package in ("python-telegram-bot", "ccxt", "apscheduler"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


def own_version() -> str:
    """The bot's version: its pyproject's, and the commit when the code is a git checkout."""
    root = Path(__file__).resolve().parent.parent
    version = "unknown"
    with contextlib.suppress(OSError, KeyError, tomllib.TOMLDecodeError):
        version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        if commit:
            version += f" ({commit})"
    return version


@dataclass
class Bot:
    """The running process: its parts and how it stops."""

    settings: Settings
    clock: Clock
    store: Store
    notifier: Notifier
    traders: list[Trader]
    desk: Desk
    dispatcher: Dispatcher
    http: httpx.AsyncClient
    telegram: TelegramTransport | CommandFront | None = None
    health: HealthServer | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    exit_code: int = 0

    def request_stop(self, code: int = 0) -> None:
        self.exit_code = code
        self.stop.set()


def build(
    settings: Settings,
    venues: list[Venue],
    *,
    clock: Clock | None = None,
    out: TextIO | None = None,
) -> Bot:
    """Assemble the parts (no I/O yet). The dispatcher comes first: the Telegram transport
    needs it, the notifier sends through the transport's bot, and the traders notify."""
    clock = clock or RealClock()
    ctx = Context(desk=None, clock=clock, settings=settings.redacted(), versions=versions())
    dispatcher = Dispatcher(ctx)
    telegram: TelegramTransport | CommandFront | None = None
    senders: list[Sender]
    if settings.telegram.enabled and settings.telegram.own_process:
        telegram = CommandFront(
            settings.telegram, dispatcher, clock=clock, log_level=settings.log_level
        )
        senders = [TelegramSender(telegram.bot, settings.telegram.chat_id, clock)]
    elif settings.telegram.enabled:
        telegram = TelegramTransport(settings.telegram, dispatcher, clock=clock)
        senders = [TelegramSender(telegram.bot, settings.telegram.chat_id, clock)]
    else:
        senders = [ConsoleSender(out or sys.stdout)]
    store = Store.in_dir(settings.data_dir)
    http = httpx.AsyncClient(timeout=10.0)
    notifier = Notifier.from_settings(
        settings.notify, senders, pagers_from_settings(settings.notify, http), clock=clock
    )
    if isinstance(telegram, CommandFront):
        telegram.notify = notifier.notify  # "the chat cannot command the bot" while it restarts
    strategy = strategy_of(settings.trading)
    recorder = MarketRecorder(settings.data_dir / "market", store)
    shared = _shared_ticker_reads(venues, clock)
    traders = [
        Trader(
            Connector(
                venue,
                clock=clock,
                notify=notifier.notify,
                sync_failure_limit=settings.trading.sync_failure_limit_seconds,
                unrecognized_limit=settings.trading.sync_failure_limit_seconds,
                cancel_all_after_seconds=settings.trading.cancel_all_after_seconds,
                shared_tickers=shared.get(id(venue)),
            ),
            store=store,
            strategy=strategy,
            settings=settings.trading,
            clock=clock,
            notify=notifier.notify,
            tap=recorder.tap(venue.name),
        )
        for venue in venues
    ]
    desk = Desk(traders, store=store, clock=clock)
    bot = Bot(
        settings=settings,
        clock=clock,
        store=store,
        notifier=notifier,
        traders=traders,
        desk=desk,
        dispatcher=dispatcher,
        http=http,
        telegram=telegram,
    )
    if settings.health_port is not None:
        bot.health = HealthServer(
            desk,
            notifier=notifier,
            clock=clock,
            port=settings.health_port,
            scan_interval=settings.trading.scan_interval_seconds,
            metrics_token=settings.metrics_token.get() if settings.metrics_token else None,
        )
    ctx.desk = desk
    ctx.notifier = notifier
    ctx.recorder = recorder
    ctx.abort = lambda: bot.request_stop(0)
    ctx.logs = RECENT.last
    return bot


async def run(settings: Settings, *, inp: TextIO | None = None, out: TextIO | None = None) -> int:
    """Run the bot until it is told to stop; returns the process exit status."""
    try:
        venues = build_venues(settings)
    except PaperStateError as exc:
        log.error("%s", exc)
        return 2
    if not venues:
        log.error("no account can trade (see the lines above); nothing to do")
        return 1
    return await serve(build(settings, venues, out=out), inp=inp, out=out, settle_heap=True)


async def serve(
    bot: Bot,
    *,
    inp: TextIO | None = None,
    out: TextIO | None = None,
    grace: float = SHUTDOWN_GRACE_SECONDS,
    settle_heap: bool = False,
) -> int:
    """Run a built bot until it is told to stop, then shut it down (`grace`: seconds the work
    in flight gets to finish); returns the process exit status. `settle_heap`: exclude what
    start-up built from the collector's work (chatbot/heap.py; the process's whole heap, so
    not in a test)."""
    settings = bot.settings
    scheduler = new_scheduler()
    bot.dispatcher.ctx.jobs = lambda: [
        (str(j["id"]), j["next_run"])
        for j in job_summary(scheduler)  # type: ignore[misc]
    ]
    _on_signals(bot)
    tasks: list[asyncio.Task] = []
    try:
        for trader in bot.traders:
            trader.restore()  # before any command can arrive: commands act on the real book
            _start_afresh(trader, settings)
        await bot.notifier.start()
        if bot.telegram is not None:
            try:
                await bot.telegram.start()
            except Exception as exc:
                # Never trade without the channel that can stop it.
                log.error("Telegram is unreachable or refused the token (%s): not trading", exc)
                bot.exit_code = 1
                return 1
        cadences = _cadences(bot.traders, settings)
        for group, cadence in cadences:
            schedule_traders(scheduler, group, cadence, first_delay=FIRST_CYCLE_DELAY)
        add_daily_job(scheduler, *settings.notify.daily_summary_time, bot.notifier.daily_summary)
        if settle_heap:
            settle()
            # The staggered first cycles (which load the markets) are done within an interval.
            longest = max((c.scan_interval_seconds for _, c in cadences), default=0.0)
            settle_later(scheduler, FIRST_CYCLE_DELAY + 2 * longest)
        scheduler.start()
        if bot.health is not None:
            await bot.health.start()
        log.info(
            "running %d account(s): %s (dry run: %s, commands: %s)",
            len(bot.traders),
            ", ".join(bot.desk.labels),
            settings.dry_run,
            "telegram" if bot.telegram else "console",
        )
        inp = inp or sys.stdin
        if bot.telegram is None and stdin_is_readable(inp):
            tasks.append(asyncio.create_task(_console(bot, inp, out or sys.stdout)))
        await bot.stop.wait()
    finally:
        await _shutdown(bot, scheduler, tasks, grace)
    return bot.exit_code


def _cadences(
    traders: list[Trader], settings: Settings
) -> list[tuple[list[Trader], TradingSettings]]:
    """Live accounts cycle every SCAN_INTERVAL_SECONDS. The offline paper exchange runs
    PAPER_SPEED times faster than real time, so its accounts cycle every SCAN_INTERVAL_SECONDS
    of paper time (at least once a second): a newcomer sees trades within minutes."""
    live = settings.trading
    speed = settings.paper.speed
    paper = replace(
        live,
        scan_interval_seconds=max(1.0, live.scan_interval_seconds / speed),
        sync_interval_seconds=max(1.0, live.sync_interval_seconds / speed),
    )
    on_paper = [t for t in traders if t.connector.venue.name == PAPER]
    on_live = [t for t in traders if t.connector.venue.name != PAPER]
    return [(group, cadence) for group, cadence in ((on_paper, paper), (on_live, live)) if group]


def _shared_ticker_reads(venues: list[Venue], clock: Clock) -> dict[int, SharedTickers]:
    """One shared whole-universe ticker read per live exchange (and sandbox) with several
    accounts, by id of venue (trading/shared_tickers.py). Offline paper accounts draw their own
    market: nothing to share."""
    groups: dict[tuple[str, bool], list[Venue]] = {}
    for venue in venues:
        if venue.name != PAPER:
            key = (venue.name, bool(getattr(venue, "sandbox", False)))
            groups.setdefault(key, []).append(venue)
    shared: dict[int, SharedTickers] = {}
    for group in groups.values():
        if len(group) > 1:
            reads = SharedTickers(clock=clock, max_age=SHARED_TICKERS_MAX_AGE)
            shared.update((id(venue), reads) for venue in group)
    return shared


def _start_afresh(trader: Trader, settings: Settings) -> None:
    result = reset_at_start(trader.parts, always=settings.paper.reset)
    if result is None:
        return
    why = "PAPER_RESET=true" if settings.paper.reset else "no saved paper account"
    log.warning(
        "%s: %s: started afresh with %s; dropped %d position(s), %d open order(s), not sold%s",
        trader.label,
        why,
        result.after,
        len(result.positions),
        len(result.open_orders),
        f" ({result.reason})" if result.reason else "",
    )


async def _console(bot: Bot, inp: TextIO, out: TextIO) -> None:
    pictures = bot.settings.data_dir / "charts"
    await Console(bot.dispatcher, inp=inp, out=out, pictures=pictures).run()
    log.info("end of input: stopping")
    bot.request_stop(0)


def _on_signals(bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, bot.request_stop, 0)


async def _shutdown(
    bot: Bot, scheduler, tasks: list[asyncio.Task], grace: float = SHUTDOWN_GRACE_SECONDS
) -> None:
    """No new work first (no job starts, no command is fetched); then the commands in flight
    finish and the cycles in flight finish within `grace` or are cancelled, which is not a
    fault (nothing is sold, no mode changes); then the flattening stops, the notifier flushes
    while the Telegram Bot is still open (its last messages, emergencies included, must go
    out), the connectors close under nothing running, and the store closes last."""
    if scheduler.running:
        scheduler.pause()  # shutdown() would cancel the running jobs at once, mid-order
    for task in tasks:
        task.cancel()
    channels = [bot.telegram.stop_polling()] if bot.telegram is not None else []
    # Concurrently: a command may be waiting for the lock of a cycle that is finishing.
    drained = await asyncio.gather(
        *channels, *(t.drain(grace) for t in bot.traders), return_exceptions=True
    )
    for failure in (r for r in drained if isinstance(r, BaseException)):
        log.error("shutdown: stopping the work in flight failed", exc_info=failure)
    if scheduler.running:
        scheduler.shutdown(wait=False)
    if bot.health is not None:
        await bot.health.stop()
    for trader in bot.traders:
        with contextlib.suppress(Exception):
            await trader.close()  # after the commands: a /kill may have started the flattening
    await bot.notifier.stop()
    for trader in bot.traders:
        with contextlib.suppress(Exception):
            await trader.connector.close()
    if bot.telegram is not None:
        await bot.telegram.shutdown()
    await bot.http.aclose()
    bot.store.close()
    log.info("stopped")
