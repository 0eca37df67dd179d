"""Settings: read once from the environment (plus an optional .env), typed and frozen.

`load_settings(environ)` collects every problem before failing, so one start names every bad
variable; `ConfigError.problems` lists them. Nothing reads os.environ after this. Variables that
look like ours but that nothing reads come back as `warnings` (names only, never values).

The reader and its parsers live in `config_reader`, exchanges and accounts in
`config_accounts`, Telegram and the pagers (shared with the watchdog) in `config_channels`; their
public names are importable from here.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from dotenv import load_dotenv

from chatbot.config_accounts import PAPER, AccountSettings, read_accounts, read_exchanges
from chatbot.config_channels import (
    NotifySettings,
    TelegramSettings,
    read_notify,
    read_telegram,
    require_token,
)
from chatbot.config_reader import FALSE, ConfigError, Reader, Secret, unknown_variables
from chatbot.config_strategy import read_strategy
from trading.settings import PaperSettings, TradingSettings
from trading.venues.ccxt_exchanges import known_exchange_ids

__all__ = [
    "PAPER",
    "AccountSettings",
    "ConfigError",
    "NotifySettings",
    "Secret",
    "Settings",
    "TelegramSettings",
    "WatchdogSettings",
    "from_environment",
    "known_names",
    "load_settings",
    "load_watchdog_settings",
    "print_problems",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    telegram: TelegramSettings
    exchanges: tuple[str, ...]
    accounts: tuple[AccountSettings, ...]
    dry_run: bool
    paper: PaperSettings
    trading: TradingSettings
    notify: NotifySettings
    data_dir: Path
    health_port: int | None  # None: no health server
    log_level: str
    suppress_single_exchange_warning: bool = False
    metrics_token: Secret | None = None  # /metrics only with this bearer token
    secrets: tuple[Secret, ...] = field(default=(), repr=False)
    warnings: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def redacted(self) -> dict[str, object]:
        """Effective settings for /debug: every secret shown as *** (set) or unset."""
        return _redacted(self)


def _redacted(obj: object) -> object:
    if isinstance(obj, Secret):
        return "***"
    if hasattr(obj, "__dataclass_fields__"):
        return {
            name: _redacted(getattr(obj, name))
            for name, f in obj.__dataclass_fields__.items()  # type: ignore[attr-defined]
            if f.repr
        }
    if isinstance(obj, tuple | list | frozenset):
        return [_redacted(x) for x in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Parse and validate every variable; raise ConfigError listing all problems."""
    r = Reader(environ)
    settings = _read_settings(r)
    if r.problems:
        raise ConfigError(r.problems)
    return replace(settings, warnings=_warnings(r, settings.exchanges))


@functools.cache
def known_names() -> frozenset[str]:
    """Every variable the bot and the watchdog read by name, learnt by reading an empty
    environment (per-exchange variables are known by their pattern)."""
    r = Reader({})
    _read_settings(r)
    _read_watchdog(r)
    return frozenset(r.names)


def _warnings(r: Reader, exchanges: tuple[str, ...]) -> tuple[str, ...]:
    known = known_names() | r.names
    return tuple(unknown_variables(r.env, known, known_exchange_ids(), exchanges))


def _read_settings(r: Reader) -> Settings:
    telegram = read_telegram(r)
    require_token(r, telegram.token is not None, "TELEGRAM_BOT_TOKEN")
    exchanges = read_exchanges(r)
    dry_run = r.bool("DRY_RUN", True)
    accounts = read_accounts(r, exchanges)
    paper = PaperSettings(
        markets=r.int("PAPER_MARKETS", 50, low=1, high=20_000),
        seed=r.int("PAPER_SEED", 1),
        balance=r.number("PAPER_BALANCE", 10_000.0, low=0),
        speed=r.number("PAPER_SPEED", 300.0, low=0.001, high=100_000),
        fee_rate=r.number("PAPER_FEE_RATE", 0.001, low=0, high=0.1),
        reset=r.bool("PAPER_RESET", False),
    )
    trading = _trading(r)
    notify = read_notify(r)
    health_port = _health_port(r)
    metrics_token = r.secret("METRICS_TOKEN")
    log_level = r.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
    suppress = r.bool("SUPPRESS_SINGLE_EXCHANGE_WARNING", False)
    data_dir = Path(r.raw("DATA_DIR") or "data")
    secrets = tuple(
        s
        for s in (
            telegram.token,
            metrics_token,
            *notify.secrets(),
            *(x for a in accounts for x in (a.api_key, a.api_secret, a.api_password)),
        )
        if s is not None
    )
    return Settings(
        telegram=telegram,
        exchanges=exchanges,
        accounts=accounts,
        dry_run=dry_run,
        paper=paper,
        trading=trading,
        notify=notify,
        data_dir=data_dir,
        health_port=health_port,
        metrics_token=metrics_token,
        log_level=log_level,
        suppress_single_exchange_warning=suppress,
        secrets=secrets,
    )


def _trading(r: Reader) -> TradingSettings:
    quote = (r.raw("QUOTE_CURRENCY") or "USDT").upper()
    if not re.fullmatch(r"[A-Z0-9]{2,10}", quote):
        r.fail("QUOTE_CURRENCY", quote, "expected a currency code such as USDT")
    scan = r.number("SCAN_INTERVAL_SECONDS", 60.0, low=1, high=86_400)
    cancel_after = _cancel_all_after(r, scan)
    strategy, strategy_dir, strategy_params = read_strategy(r)
    sync = r.number("SYNC_INTERVAL_SECONDS", 120.0, low=1)
    sync_limit = r.number("SYNC_FAILURE_LIMIT_SECONDS", 300.0, low=1)
    gap = min(scan, sync)  # a sync runs in every cycle and in its own job
    if sync_limit < 3 * gap:
        # Escalation flattens everything: it must rest on several failed syncs, not two.
        r.problems.append(
            f"SYNC_FAILURE_LIMIT_SECONDS={sync_limit:g}: must be at least three sync periods "
            f"({3 * gap:g} s with SCAN_INTERVAL_SECONDS={scan:g}, SYNC_INTERVAL_SECONDS={sync:g})"
        )
    return TradingSettings(
        quote=quote,
        stake_amount=r.number("STAKE_AMOUNT", 100.0, low=0.000001),
        max_positions=r.int("MAX_POSITIONS", 8, low=1, high=1000),
        max_exposure=r.number("MAX_EXPOSURE", 0.8, low=0.0, high=1.0),
        min_balance=r.number("MIN_BALANCE", 10.0, low=0),
        min_quote_volume=r.number("MIN_QUOTE_VOLUME", 100_000.0, low=0),
        reentry_cooldown_seconds=r.number("REENTRY_COOLDOWN_SECONDS", 1800.0, low=0),
        loop_guard_round_trips=r.int("LOOP_GUARD_ROUND_TRIPS", 3, low=1),
        loop_guard_window_seconds=r.number("LOOP_GUARD_WINDOW_SECONDS", 3600.0, low=1),
        strategy=strategy,
        strategy_dir=strategy_dir,
        strategy_params=strategy_params,
        scan_interval_seconds=scan,
        sync_interval_seconds=sync,
        sync_failure_limit_seconds=sync_limit,
        stop_exit_timeout_seconds=r.number("STOP_EXIT_TIMEOUT_SECONDS", 300.0, low=0),
        failsafe_on_fatal=r.choice("FAILSAFE_ON_FATAL", "flatten", ("flatten", "stop")),
        cancel_all_after_seconds=cancel_after,
        recv_window_ms=r.int("RECV_WINDOW_MS", 10_000, low=1000, high=60_000),
        stop_limit_gap_pct=r.number("STOP_LIMIT_GAP_PCT", 2.0, low=0.1, high=50),
        trailing_stop_pct=r.number("TRAILING_STOP_PCT", 0.0, low=0, high=50),
        break_even_at_pct=r.number("BREAK_EVEN_AT_PCT", 0.0, low=0, high=1000),
        manual_stop_loss_pct=r.number("MANUAL_STOP_LOSS_PCT", 5.0, low=0.1, high=99),
        manual_take_profit_pct=r.number("MANUAL_TAKE_PROFIT_PCT", 10.0, low=0.1, high=10_000),
        event_feed=r.choice("EVENT_FEED", "auto", ("auto", "off")),
    )


def _cancel_all_after(r: Reader, scan: float) -> float:
    """The exchange-side dead man's switch must outlive a cycle or two, or it cancels the bot's
    own resting orders between cycles. Unset: three scan intervals; 0: off."""
    value = r.number("CANCEL_ALL_AFTER_SECONDS", 3 * scan, low=0, high=86_400)
    if 0 < value < 2 * scan:
        r.problems.append(
            f"CANCEL_ALL_AFTER_SECONDS={value:g}: must be 0 (off) or at least twice "
            f"SCAN_INTERVAL_SECONDS ({scan:g}), or resting orders die between cycles"
        )
    return value


def _health_port(r: Reader) -> int | None:
    name = "HEALTH_PORT" if r.raw("HEALTH_PORT") is not None else "PORT"
    value = r.raw(name)
    if value is None:
        return 8080
    if value.lower() in FALSE:
        return None
    port = r.int(name, 8080, low=0, high=65535)
    return port


@dataclass(frozen=True)
class WatchdogSettings:
    """`python -m chatbot.watchdog`: what it polls, when it alarms, and how it reaches the human
    (the bot's own Telegram chat and pagers; it only listens for /ack with its own token)."""

    url: str
    stale_seconds: float
    interval_seconds: float
    telegram: TelegramSettings  # sends with TELEGRAM_BOT_TOKEN to TELEGRAM_CHAT_ID
    listen_token: Secret | None  # WATCHDOG_TELEGRAM_BOT_TOKEN: polls getUpdates for /ack
    notify: NotifySettings
    log_level: str = "INFO"
    secrets: tuple[Secret, ...] = field(default=(), repr=False)
    warnings: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def timeout_seconds(self) -> float:
        """One poll's HTTP timeout: an answer slower than the interval counts as none."""
        return max(1.0, min(self.interval_seconds, 10.0))


def load_watchdog_settings(environ: Mapping[str, str]) -> WatchdogSettings:
    """Parse the watchdog's variables (and the Telegram and pager ones it shares with the bot);
    raise ConfigError listing all problems."""
    r = Reader(environ)
    settings = _read_watchdog(r)
    if r.problems:
        raise ConfigError(r.problems)
    return replace(settings, warnings=_warnings(r, ()))


def _read_watchdog(r: Reader) -> WatchdogSettings:
    url = r.raw("WATCHDOG_URL")
    if url is None:
        r.problems.append("WATCHDOG_URL: required (the bot's health URL, e.g. https://.../healthz)")
    elif not re.match(r"https?://", url):
        r.fail("WATCHDOG_URL", url, "expected an http(s):// URL of the bot's /healthz")
    interval = r.number("WATCHDOG_INTERVAL_SECONDS", 10.0, low=1, high=3600)
    stale = r.number("WATCHDOG_STALE_SECONDS", 120.0, low=1, high=86_400)
    if stale < interval:
        r.problems.append(
            f"WATCHDOG_STALE_SECONDS={stale:g}: must be at least WATCHDOG_INTERVAL_SECONDS "
            f"({interval:g}), or one missed poll raises the alarm"
        )
    telegram = read_telegram(r)
    listen = r.secret("WATCHDOG_TELEGRAM_BOT_TOKEN")
    if listen is not None:
        if not re.fullmatch(r"\d+:[\w-]{20,}", listen.get()):
            r.problems.append(
                "WATCHDOG_TELEGRAM_BOT_TOKEN: not a bot token (expected <digits>:<secret>)"
            )
        elif telegram.token is not None and listen == telegram.token:
            r.problems.append(
                "WATCHDOG_TELEGRAM_BOT_TOKEN: must be another bot than TELEGRAM_BOT_TOKEN "
                "(two processes polling one token steal each other's updates)"
            )
        if telegram.chat_id is None and r.raw("TELEGRAM_CHAT_ID") is None:
            r.problems.append(
                "TELEGRAM_CHAT_ID: required with WATCHDOG_TELEGRAM_BOT_TOKEN "
                "(the only chat whose /ack the watchdog obeys)"
            )
    # Alarms go out with either token: the bot's, or the watchdog's own when it has none.
    require_token(
        r,
        telegram.token is not None or listen is not None,
        "TELEGRAM_BOT_TOKEN or WATCHDOG_TELEGRAM_BOT_TOKEN",
    )
    notify = read_notify(r)
    log_level = r.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
    secrets = tuple(
        s
        for s in (
            telegram.token,
            listen,
            *notify.secrets(),
        )
        if s is not None
    )
    return WatchdogSettings(
        url=url or "",
        stale_seconds=stale,
        interval_seconds=interval,
        telegram=telegram,
        listen_token=listen,
        notify=notify,
        log_level=log_level,
        secrets=secrets,
    )


def from_environment(loader: Callable[[Mapping[str, str]], T], what: str) -> T | None:
    """The environment, with a .env in the working directory filling in what it does not set,
    parsed by `loader`. On bad variables every problem is printed and None returned (the caller
    exits with status 2, no traceback)."""
    load_dotenv(Path.cwd() / ".env", override=False)
    try:
        return loader(os.environ)
    except ConfigError as exc:
        print_problems(exc.problems, what)
        return None


def print_problems(problems: list[str], what: str) -> None:
    """A configuration error as the user sees it: every problem, no traceback."""
    print(f"Configuration error ({what} did not start):", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    print("See .env.example for every variable and its default.", file=sys.stderr)
