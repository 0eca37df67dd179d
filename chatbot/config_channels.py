"""The channels to the owner, shared by the bot and the watchdog: Telegram (commands and
messages) and the pagers (ntfy, Pushover) with what deserves them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatbot.config_reader import Reader, Secret

NOTIFY_LEVELS = ("on", "silent", "off")
# What only a bot token makes useful: set without one, the bot would fall back to the console.
TELEGRAM_COMPANIONS = ("TELEGRAM_CHAT_ID", "TELEGRAM_ALLOWED_USER_IDS", "TELEGRAM_API_BASE_URL")


@dataclass(frozen=True)
class TelegramSettings:
    token: Secret | None
    chat_id: int | None
    allowed_user_ids: frozenset[int]
    api_base_url: str | None
    # The transport in a process of its own (chatbot/front.py): commands answer as fast with a
    # hundred accounts trading as with none. TELEGRAM_OWN_PROCESS=false keeps it on the loop.
    own_process: bool = False

    @property
    def enabled(self) -> bool:
        return self.token is not None


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


def read_telegram(r: Reader) -> TelegramSettings:
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
    own = r.bool("TELEGRAM_OWN_PROCESS", True)
    return TelegramSettings(token, chat_id, allowed, base_url, own_process=own)


def require_token(r: Reader, has_token: bool, token: str) -> None:
    """A chat id without a token leaves the process on the console while its owner believes a
    chat can stop it: refused, naming what is set and what is missing."""
    orphans = [name for name in TELEGRAM_COMPANIONS if r.raw(name) is not None]
    if has_token or not orphans:
        return
    if len(orphans) == 1:
        r.problems.append(
            f"{token}: required when {orphans[0]} is set (set both, or neither for the console)"
        )
    else:
        r.problems.append(
            f"{token}: required when {', '.join(orphans)} are set (set the token too, or none "
            "of them for the console)"
        )


def read_notify(r: Reader) -> NotifySettings:
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
