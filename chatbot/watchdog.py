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

This module is the process: its settings, the wiring and the run until a signal. The poller and
its alarm are chatbot/watchdog_poll.py's, the /ack listener chatbot/watchdog_ack.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass

import httpx
from telegram import Bot
from telegram.error import TelegramError

from chatbot.config import (
    TelegramSettings,
    WatchdogSettings,
    from_environment,
    load_watchdog_settings,
)
from chatbot.notifier import Notifier
from chatbot.pagers import Pager, brief, describe, pagers_from_settings
from chatbot.senders import ConsoleSender, Sender, TelegramSender
from chatbot.tasks import cancel_all
from chatbot.watchdog_ack import AckListener
from chatbot.watchdog_poll import Watchdog
from trading.clock import Clock, RealClock

log = logging.getLogger("chatbot.watchdog")


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
            await cancel_all(tasks)
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
