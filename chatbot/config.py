"""Settings: read once from the environment (plus an optional .env), typed and frozen.

`load_settings(environ)` collects every problem before failing, so one start names every bad
variable; `ConfigError.problems` lists them. Nothing reads os.environ after this.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from dotenv import load_dotenv

from trading.exchange import known_exchange_ids, required_credentials, supports_sandbox
from trading.settings import PaperSettings, TradingSettings
from trading.strategies import available_strategies

T = TypeVar("T")

PAPER = "paper"
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
NOTIFY_LEVELS = ("on", "silent", "off")
# ccxt credential name -> our variable suffix
CREDENTIAL_SUFFIXES = {"apiKey": "API_KEY", "secret": "API_SECRET", "password": "API_PASSWORD"}


class Secret:
    """A credential whose repr and str never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class TelegramSettings:
    token: Secret | None
    chat_id: int | None
    allowed_user_ids: frozenset[int]
    api_base_url: str | None

    @property
    def enabled(self) -> bool:
        return self.token is not None


@dataclass(frozen=True)
class AccountSettings:
    """One exchange account. `missing` names the credential variables not set."""

    exchange: str
    account: str
    api_key: Secret | None = None
    api_secret: Secret | None = None
    api_password: Secret | None = None
    sandbox: bool = False
    missing: tuple[str, ...] = ()

    @property
    def has_credentials(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class NotifySettings:
    queue_size: int = 10
    max_age_seconds: float = 300.0
    emergency_repeat_seconds: float = 300.0
    entries: str = "silent"
    exits: str = "on"
    equity_change_pct: float = 5.0
    exposure_change_pct: float = 25.0
    daily_summary_time: tuple[int, int] = (20, 0)  # UTC hour, minute
    ntfy_url: Secret | None = None  # the topic URL is the password of an ntfy topic
    ntfy_token: Secret | None = None
    pushover_token: Secret | None = None
    pushover_user: Secret | None = None

    def secrets(self) -> tuple[Secret | None, ...]:
        """Every credential here (the ntfy topic URL is one: it is the topic's password)."""
        return (self.ntfy_url, self.ntfy_token, self.pushover_token, self.pushover_user)


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


class _Reader:
    """Reads variables, recording every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def fail(self, name: str, value: str, why: str) -> None:
        self.problems.append(f"{name}={value!r}: {why}")

    def parse(self, name: str, default: T, convert: Callable[[str], T], why: str) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return convert(value)
        except (ValueError, TypeError):
            self.fail(name, value, why)
            return default

    def bool(self, name: str, default: bool) -> bool:
        def convert(v: str) -> bool:
            if v.lower() in TRUE:
                return True
            if v.lower() in FALSE:
                return False
            raise ValueError(v)

        return self.parse(name, default, convert, "expected true or false")

    def number(
        self,
        name: str,
        default: float,
        *,
        low: float | None = None,
        high: float | None = None,
        integer: bool = False,
    ) -> float:
        kind = "a whole number" if integer else "a number"
        value = self.parse(name, default, int if integer else float, f"expected {kind}")
        if value != value or value in (float("inf"), float("-inf")):  # NaN / inf
            self.fail(name, str(value), f"expected {kind}")
            return default
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
            self.fail(name, str(value), f"must be {bounds}")
            return default
        return value

    def int(self, name: str, default: int, *, low: int | None = None, high: int | None = None):
        return int(self.number(name, default, low=low, high=high, integer=True))

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() not in choices:
            self.fail(name, value, f"expected one of {', '.join(choices)}")
            return default
        return value.lower()

    def secret(self, name: str) -> Secret | None:
        value = self.raw(name)
        return Secret(value) if value is not None else None


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Parse and validate every variable; raise ConfigError listing all problems."""
    r = _Reader(environ)
    telegram = _telegram(r)
    exchanges = _exchanges(r)
    dry_run = r.bool("DRY_RUN", True)
    accounts = _accounts(r, exchanges)
    paper = PaperSettings(
        markets=r.int("PAPER_MARKETS", 50, low=1, high=20_000),
        seed=r.int("PAPER_SEED", 1),
        balance=r.number("PAPER_BALANCE", 10_000.0, low=0),
        speed=r.number("PAPER_SPEED", 300.0, low=0.001, high=100_000),
        fee_rate=r.number("PAPER_FEE_RATE", 0.001, low=0, high=0.1),
    )
    trading = _trading(r)
    notify = _notify(r)
    health_port = _health_port(r)
    metrics_token = r.secret("METRICS_TOKEN")
    log_level = r.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
    suppress = r.bool("SUPPRESS_SINGLE_EXCHANGE_WARNING", False)
    data_dir = Path(r.raw("DATA_DIR") or "data")
    if r.problems:
        raise ConfigError(r.problems)
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


def _telegram(r: _Reader) -> TelegramSettings:
    token = r.secret("TELEGRAM_BOT_TOKEN")
    if token is not None and not re.fullmatch(r"\d+:[\w-]{20,}", token.get()):
        r.problems.append("TELEGRAM_BOT_TOKEN: not a bot token (expected <digits>:<secret>)")
    chat_id = r.parse("TELEGRAM_CHAT_ID", None, int, "expected a numeric chat id")
    if token is not None and chat_id is None and r.raw("TELEGRAM_CHAT_ID") is None:
        r.problems.append(
            "TELEGRAM_CHAT_ID: required when TELEGRAM_BOT_TOKEN is set "
            "(the only chat the bot obeys and reports to)"
        )

    def ids(value: str) -> frozenset[int]:
        return frozenset(int(x) for x in re.split(r"[,\s]+", value) if x)

    allowed = r.parse(
        "TELEGRAM_ALLOWED_USER_IDS", frozenset(), ids, "expected numeric user ids, comma-separated"
    )
    base_url = r.raw("TELEGRAM_API_BASE_URL")
    if base_url is not None and not re.match(r"https?://", base_url):
        r.fail("TELEGRAM_API_BASE_URL", base_url, "expected an http(s):// URL")
        base_url = None
    return TelegramSettings(token, chat_id, allowed, base_url)


def _exchanges(r: _Reader) -> tuple[str, ...]:
    value = r.raw("EXCHANGES") or PAPER
    ids = tuple(dict.fromkeys(x.strip().lower() for x in value.split(",") if x.strip()))
    known = known_exchange_ids()
    bad = [x for x in ids if x != PAPER and x not in known]
    if bad:
        r.fail("EXCHANGES", value, f"unknown exchange id {', '.join(bad)} (ccxt ids or 'paper')")
        return tuple(x for x in ids if x not in bad) or (PAPER,)
    return ids or (PAPER,)


def _accounts(r: _Reader, exchanges: tuple[str, ...]) -> tuple[AccountSettings, ...]:
    accounts: list[AccountSettings] = []
    for exchange in exchanges:
        if exchange == PAPER:
            accounts.append(AccountSettings(exchange=PAPER, account="MAIN"))
            continue
        prefix = exchange.upper() + "_"
        sandbox = r.bool(f"{prefix}SANDBOX", False)
        if sandbox and not supports_sandbox(exchange):
            r.problems.append(
                f"{prefix}SANDBOX=true: {exchange} has no testnet in ccxt; unset it or use "
                "DRY_RUN=true for a simulated account"
            )
        names = _account_names(r.env, prefix)
        seen: dict[str, str] = {}
        for name in names:
            if name.upper() in seen:
                r.problems.append(
                    f"{prefix}{seen[name.upper()]}_*, {prefix}{name}_*: two accounts named "
                    f"{exchange}:{name.lower()} (account names ignore case); rename one"
                )
            seen[name.upper()] = name
        required = required_credentials(exchange)
        needed = [suffix for name, suffix in CREDENTIAL_SUFFIXES.items() if name in required]
        for name in names or ["MASTER"]:
            get = {s: r.secret(f"{prefix}{name}_{s}") for s in CREDENTIAL_SUFFIXES.values()}
            missing = tuple(f"{prefix}{name}_{s}" for s in needed if get[s] is None)
            accounts.append(
                AccountSettings(
                    exchange=exchange,
                    account=name,
                    api_key=get["API_KEY"],
                    api_secret=get["API_SECRET"],
                    api_password=get["API_PASSWORD"],
                    sandbox=sandbox,
                    missing=missing,
                )
            )
    return tuple(accounts)


def _account_names(env: Mapping[str, str], prefix: str) -> list[str]:
    """Accounts named by `<EXCHANGE>_<ACCOUNT>_API_*` variables; account names may contain
    underscores, so split on the known prefix and suffix, never on every underscore."""
    names: list[str] = []
    for key in sorted(env):
        if not key.startswith(prefix):
            continue
        for suffix in CREDENTIAL_SUFFIXES.values():
            if key.endswith("_" + suffix) and len(key) > len(prefix) + len(suffix) + 1:
                name = key[len(prefix) : -len(suffix) - 1]
                if name not in names:
                    names.append(name)
    return names


def _trading(r: _Reader) -> TradingSettings:
    quote = (r.raw("QUOTE_CURRENCY") or "USDT").upper()
    if not re.fullmatch(r"[A-Z0-9]{2,10}", quote):
        r.fail("QUOTE_CURRENCY", quote, "expected a currency code such as USDT")
    scan = r.number("SCAN_INTERVAL_SECONDS", 60.0, low=1, high=86_400)
    cancel_after = _cancel_all_after(r, scan)
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
        strategy=_strategy(r),
        scan_interval_seconds=scan,
        sync_interval_seconds=sync,
        sync_failure_limit_seconds=sync_limit,
        stop_exit_timeout_seconds=r.number("STOP_EXIT_TIMEOUT_SECONDS", 300.0, low=0),
        failsafe_on_fatal=r.choice("FAILSAFE_ON_FATAL", "flatten", ("flatten", "stop")),
        cancel_all_after_seconds=cancel_after,
        recv_window_ms=r.int("RECV_WINDOW_MS", 10_000, low=1000, high=60_000),
    )


def _cancel_all_after(r: _Reader, scan: float) -> float:
    """The exchange-side dead man's switch must outlive a cycle or two, or it cancels the bot's
    own resting orders between cycles. Unset: three scan intervals; 0: off."""
    value = r.number("CANCEL_ALL_AFTER_SECONDS", 3 * scan, low=0, high=86_400)
    if 0 < value < 2 * scan:
        r.problems.append(
            f"CANCEL_ALL_AFTER_SECONDS={value:g}: must be 0 (off) or at least twice "
            f"SCAN_INTERVAL_SECONDS ({scan:g}), or resting orders die between cycles"
        )
    return value


def _strategy(r: _Reader) -> str:
    name = (r.raw("STRATEGY") or "trend").lower()
    known = available_strategies()
    if name not in known:
        r.fail("STRATEGY", name, f"unknown strategy (available: {', '.join(known)})")
        return "trend"
    return name


def _notify(r: _Reader) -> NotifySettings:
    def hhmm(value: str) -> tuple[int, int]:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
        if not m or int(m[1]) > 23 or int(m[2]) > 59:
            raise ValueError(value)
        return int(m[1]), int(m[2])

    ntfy_url = r.secret("NTFY_URL")
    if ntfy_url is not None and not re.match(r"https?://", ntfy_url.get()):
        # The topic is the secret: name the variable, never echo the value.
        r.problems.append("NTFY_URL: expected an http(s):// URL of an ntfy topic")
        ntfy_url = None
    pushover_token, pushover_user = r.secret("PUSHOVER_TOKEN"), r.secret("PUSHOVER_USER")
    if (pushover_token is None) != (pushover_user is None):
        r.problems.append("PUSHOVER_TOKEN, PUSHOVER_USER: set both or neither")
    return NotifySettings(
        queue_size=r.int("NOTIFY_QUEUE_SIZE", 10, low=1, high=10_000),
        max_age_seconds=r.number("NOTIFY_MAX_AGE_SECONDS", 300.0, low=1),
        emergency_repeat_seconds=r.number("EMERGENCY_REPEAT_SECONDS", 300.0, low=10),
        entries=r.choice("NOTIFY_ENTRIES", "silent", NOTIFY_LEVELS),
        exits=r.choice("NOTIFY_EXITS", "on", NOTIFY_LEVELS),
        equity_change_pct=r.number("NOTIFY_EQUITY_CHANGE_PCT", 5.0, low=0),
        exposure_change_pct=r.number("NOTIFY_EXPOSURE_CHANGE_PCT", 25.0, low=0),
        daily_summary_time=r.parse(
            "DAILY_SUMMARY_TIME", (20, 0), hhmm, "expected HH:MM (UTC), e.g. 20:00"
        ),
        ntfy_url=ntfy_url,
        ntfy_token=r.secret("NTFY_TOKEN"),
        pushover_token=pushover_token,
        pushover_user=pushover_user,
    )


def _health_port(r: _Reader) -> int | None:
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

    @property
    def timeout_seconds(self) -> float:
        """One poll's HTTP timeout: an answer slower than the interval counts as none."""
        return max(1.0, min(self.interval_seconds, 10.0))


def load_watchdog_settings(environ: Mapping[str, str]) -> WatchdogSettings:
    """Parse the watchdog's variables (and the Telegram and pager ones it shares with the bot);
    raise ConfigError listing all problems."""
    r = _Reader(environ)
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
    telegram = _telegram(r)
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
    notify = _notify(r)
    log_level = r.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
    if r.problems:
        raise ConfigError(r.problems)
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
        print(f"Configuration error ({what} did not start):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        print("See .env.example for every variable and its default.", file=sys.stderr)
        return None
