"""`python -m chatbot.watchdog`: the outside view, on another machine or Railway service.

It polls the bot's /healthz (WATCHDOG_URL) every WATCHDOG_INTERVAL_SECONDS. When the bot has
not answered 200 for WATCHDOG_STALE_SECONDS (down, stuck, unreachable, or a trader's cycle
stalled), it raises one emergency through the same notifier code as the bot (Telegram with
sound to TELEGRAM_CHAT_ID, ntfy / Pushover), which repeats every EMERGENCY_REPEAT_SECONDS until
the bot answers healthy again (announced as cleared) or someone sends /ack.

It never trades and never touches an exchange: flattening from outside could fight a bot that
is in fact alive and only unreachable from here.

Telegram allows ONE process to poll getUpdates per bot token (a second poller gets 409 Conflict
and steals updates), so the watchdog sends with the bot's TELEGRAM_BOT_TOKEN but listens for
/ack only with a token of its own, WATCHDOG_TELEGRAM_BOT_TOKEN (a second bot from @BotFather,
in the same chat). Without one, Telegram repeats end when the bot recovers; Pushover's own
acknowledgement still stops Pushover's siren.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from telegram import Bot
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError

from chatbot.config import (
    TelegramSettings,
    WatchdogSettings,
    from_environment,
    load_watchdog_settings,
)
from chatbot.notifier import Notifier
from chatbot.pagers import Pager, brief, describe, pagers_from_settings
from chatbot.senders import ConsoleSender, Sender, TelegramSender
from trading.clock import Clock, RealClock
from trading.events import Emergency, EmergencyCleared, Notify

log = logging.getLogger("chatbot.watchdog")

ACCOUNT = "watchdog"
KEY = "watchdog:bot-unhealthy"


def _where(url: str) -> str:
    """The URL without credentials, query or path, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class Watchdog:
    """Polls a /healthz URL and turns a long enough silence into one emergency, and the next
    healthy answer into its all-clear. `run()` sleeps on the injected clock, so a FakeClock
    drives it in tests; `tick` (e.g. the notifier's `drain`) runs after every poll."""

    def __init__(
        self,
        url: str,
        *,
        notify: Notify,
        clock: Clock,
        http: httpx.AsyncClient,
        stale_seconds: float,
        interval_seconds: float,
        timeout_seconds: float = 10.0,
        tick: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.url = url
        self.where = _where(url)
        self._notify = notify
        self.clock = clock
        self._http = http
        self.stale_seconds = stale_seconds
        self.interval_seconds = interval_seconds
        self.timeout_seconds = timeout_seconds
        self._tick = tick
        self.last_ok = clock.monotonic()  # the bot gets the grace period from our start
        self.alarmed = False
        self.problem: str | None = None  # why the last poll was not healthy
        self.polls = 0
        self.failures = 0
        self.alarms = 0

    async def check(self) -> str | None:
        """One poll: None when the bot answers 200, else what was wrong (never raises)."""
        try:
            response = await self._http.get(self.url, timeout=self.timeout_seconds)
        except httpx.TimeoutException:
            return f"no answer within {self.timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            return f"no answer ({type(exc).__name__})"
        if response.status_code == 200:
            return None
        return f"HTTP {response.status_code}{_stale_detail(response)}"

    async def step(self) -> None:
        """Poll once and raise, update or clear the alarm."""
        self.polls += 1
        problem = await self.check()
        now = self.clock.monotonic()
        if problem is None:
            self._healthy(now)
            return
        self.failures += 1
        changed = problem != self.problem
        self.problem = problem
        silent_for = now - self.last_ok
        if changed:
            log.info("poll of %s: %s (%.0f s since healthy)", self.where, problem, silent_for)
        if self.alarmed:
            if changed:  # what the repeats say follows the bot's state (coalesced, same key)
                self._raise(silent_for, problem)
            return
        if silent_for >= self.stale_seconds:
            self.alarmed = True
            self.alarms += 1
            log.error("the bot at %s has not been healthy for %.0f s", self.where, silent_for)
            self._raise(silent_for, problem)

    def _raise(self, silent_for: float, problem: str) -> None:
        self._notify(
            Emergency(
                account=ACCOUNT,
                at=self.clock.time(),
                key=KEY,
                message=f"The bot at {self.where} has not answered healthy for "
                f"{_ago(silent_for)}: {problem}. It may be down or stuck: check it, "
                "/kill from its chat if it answers, or flatten on the exchange.",
            )
        )

    def _healthy(self, now: float) -> None:
        down_for = now - self.last_ok
        self.last_ok, self.problem = now, None
        if not self.alarmed:
            return
        self.alarmed = False
        log.warning("the bot at %s answers healthy again", self.where)
        self._notify(
            EmergencyCleared(
                account=ACCOUNT,
                at=self.clock.time(),
                key=KEY,
                message=f"The bot at {self.where} answers healthy again "
                f"(unhealthy for about {_ago(down_for)}).",
            )
        )

    async def run(self, *, polls: int | None = None) -> None:
        """Poll, then wait out the interval: forever, or `polls` times."""
        done = 0
        while polls is None or done < polls:
            started = self.clock.monotonic()
            await self.step()
            if self._tick is not None:
                await self._tick()
            done += 1
            elapsed = self.clock.monotonic() - started
            await self.clock.sleep(max(0.0, self.interval_seconds - elapsed))

    def status(self) -> str:
        """One line for /ping in the watchdog's own chat."""
        since = _ago(self.clock.monotonic() - self.last_ok)
        if self.problem is None:
            return f"The bot at {self.where} is healthy (last poll OK, {self.polls} polls)."
        alarm = " Alarm raised." if self.alarmed else ""
        return f"The bot at {self.where}: {self.problem}; healthy {since} ago.{alarm}"


def _stale_detail(response: httpx.Response) -> str:
    try:
        stale = response.json().get("stale")
    except (ValueError, AttributeError):
        return ""
    if isinstance(stale, list) and stale:
        return f" (no recent cycle: {', '.join(str(s) for s in stale[:5])})"
    return ""


class AckListener:
    """Reads the watchdog's own bot's updates: /ack stops the repeats, /ping says what the
    watchdog sees. Obeys only the configured chat (and users, when set); ignores the rest."""

    def __init__(
        self,
        bot: Bot,
        *,
        chat_id: int,
        allowed_user_ids: frozenset[int] = frozenset(),
        ack: Callable[[], int],
        status: Callable[[], str],
        clock: Clock,
    ) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.allowed = allowed_user_ids
        self._ack = ack
        self._status = status
        self.clock = clock
        self._offset: int | None = None
        self.acks = 0

    async def poll_once(self, long_poll: float = 0) -> int:
        """One getUpdates; returns how many commands were obeyed."""
        updates = await self.bot.get_updates(
            offset=self._offset, timeout=int(long_poll), allowed_updates=["message"]
        )
        obeyed = 0
        for update in updates:
            self._offset = update.update_id + 1
            message = update.message
            if message is None or not message.text:
                continue
            user = message.from_user.id if message.from_user else None
            if message.chat_id != self.chat_id or (self.allowed and user not in self.allowed):
                log.warning("ignored a message from user %s in chat %s", user, message.chat_id)
                continue
            command = message.text.split(maxsplit=1)[0].split("@", 1)[0].lower()
            if command == "/ack":
                count = self._ack()
                self.acks += 1
                reply = f"Acknowledged {count} watchdog alarm(s): no more repeats."
            elif command in ("/ping", "/status", "/start", "/help"):
                reply = f"{self._status()}\nSend /ack to stop the repeats of an alarm."
            else:
                continue
            obeyed += 1
            await self.bot.send_message(self.chat_id, reply)
        return obeyed

    async def run(self, poll_timeout: float = 30.0) -> None:
        """Long-poll until cancelled; trouble is logged and retried, never raised."""
        failures = 0
        while True:
            try:
                await self.poll_once(poll_timeout)
                failures = 0
                continue
            except InvalidToken:
                log.error("WATCHDOG_TELEGRAM_BOT_TOKEN was rejected; /ack is not available")
                return
            except Conflict:
                log.warning(
                    "another process polls WATCHDOG_TELEGRAM_BOT_TOKEN (409 Conflict): it must "
                    "be a bot of its own, not the trading bot's"
                )
                failures += 1
            except (NetworkError, TelegramError) as exc:
                log.warning("reading /ack failed: %s", brief(exc))
                failures += 1
            await self.clock.sleep(min(60.0, 2.0**failures))


@dataclass
class WatchdogApp:
    """The watchdog's parts, wired from its settings."""

    watchdog: Watchdog
    notifier: Notifier
    listener: AckListener | None
    bots: list[Bot]
    pagers: list[Pager]


def _bot(token: str, telegram: TelegramSettings) -> Bot:
    if telegram.api_base_url:
        return Bot(token, base_url=telegram.api_base_url)
    return Bot(token)


def build(
    settings: WatchdogSettings,
    *,
    http: httpx.AsyncClient,
    clock: Clock,
    send_bot: Bot | None = None,
    listen_bot: Bot | None = None,
    out=None,
) -> WatchdogApp:
    """The notifier (Telegram sender and pagers from the same settings as the bot), the poller,
    and the /ack listener when the watchdog has a token of its own. Tests pass bots made
    against a fake Bot API."""
    telegram = settings.telegram
    bots: list[Bot] = []
    if listen_bot is None and settings.listen_token is not None:
        listen_bot = _bot(settings.listen_token.get(), telegram)
    if listen_bot is not None:
        bots.append(listen_bot)
    if send_bot is None and telegram.token is not None:
        send_bot = _bot(telegram.token.get(), telegram)
    if send_bot is None:
        send_bot = listen_bot  # no bot token of the bot's: alarms come from the watchdog's
    elif send_bot is not listen_bot:
        bots.append(send_bot)
    senders: list[Sender] = []
    if send_bot is not None and telegram.chat_id is not None:
        senders.append(TelegramSender(send_bot, telegram.chat_id, clock))
    else:
        senders.append(ConsoleSender(out))
    pagers = pagers_from_settings(settings.notify, http)
    notifier = Notifier.from_settings(settings.notify, senders, pagers, clock=clock)
    watchdog = Watchdog(
        settings.url,
        notify=notifier.notify,
        clock=clock,
        http=http,
        stale_seconds=settings.stale_seconds,
        interval_seconds=settings.interval_seconds,
        timeout_seconds=settings.timeout_seconds,
    )
    listener = None
    if listen_bot is not None and telegram.chat_id is not None:
        listener = AckListener(
            listen_bot,
            chat_id=telegram.chat_id,
            allowed_user_ids=telegram.allowed_user_ids,
            ack=notifier.ack,
            status=watchdog.status,
            clock=clock,
        )
    return WatchdogApp(watchdog, notifier, listener, bots, pagers)


async def run(settings: WatchdogSettings) -> int:
    """Run until cancelled (SIGINT / SIGTERM)."""
    clock = RealClock()
    async with httpx.AsyncClient(timeout=settings.timeout_seconds) as http:
        app = build(settings, http=http, clock=clock)
        for bot in app.bots:
            try:
                await bot.initialize()
            except (TelegramError, OSError) as exc:  # sends retry later; polling is what matters
                log.warning("telegram not reachable at start: %s", brief(exc))
        log.info(
            "watching %s every %g s; alarm after %g s; pagers: %s; /ack: %s",
            app.watchdog.where,
            settings.interval_seconds,
            settings.stale_seconds,
            describe(app.pagers),
            "listening" if app.listener else "no WATCHDOG_TELEGRAM_BOT_TOKEN",
        )
        await app.notifier.start()
        tasks = [asyncio.create_task(app.watchdog.run(), name="watchdog-poll")]
        if app.listener is not None:
            tasks.append(asyncio.create_task(app.listener.run(), name="watchdog-ack"))
        try:
            await _until_signal()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.notifier.stop()
            for bot in app.bots:
                with contextlib.suppress(Exception):
                    await bot.shutdown()
    log.info("watchdog stopped")
    return 0


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main(argv: list[str] | None = None) -> int:
    from chatbot.logsetup import setup_logging

    if sys.argv[1:] if argv is None else argv:
        print("usage: python -m chatbot.watchdog  (configured by WATCHDOG_* variables)")
        return 2
    settings = from_environment(load_watchdog_settings, "the watchdog")
    if settings is None:
        return 2
    setup_logging(settings.log_level, settings.secrets)
    for warning in settings.warnings:
        log.warning("%s", warning)
    try:
        return asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
