"""The command front (chatbot/front.py) seen from the trading process: it starts the process,
answers its questions with the Dispatcher on the trading loop, pushes the /ping text a few
times a second, and starts it again if it dies. Same lifecycle as TelegramTransport (start,
stop_polling, shutdown, `bot`), so the app wires either one.

The notifier does not go through the front: it sends with a Bot of this process (Telegram
allows one poller per token, any number of senders), so alerts still go out while the front is
restarting, and one of them says the chat cannot command the bot meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from telegram import Bot
from telegram.request import HTTPXRequest

from chatbot.config import TelegramSettings
from chatbot.front import BEAT_SECONDS, FD_VARIABLE
from chatbot.front_wire import Wire, reply_to_wire
from chatbot.telegram import file_url
from handlers import status
from handlers.dispatch import Claim, Dispatcher, confirmation_tokens
from handlers.reply import Reply, refuse
from trading.clock import Clock
from trading.events import Emergency, EmergencyCleared, Notify, discard

log = logging.getLogger("chatbot.front")

PULSE_SECONDS = 0.25
SILENT_LIMIT_SECONDS = 12 * BEAT_SECONDS
KEY = "telegram:front-down"
# The front parses what strangers send: it gets the bot token over the socket and none of the
# other credentials, so a flaw in it cannot hand out exchange keys.
CREDENTIAL_NAME = re.compile(
    r"(_API_(KEY|SECRET|PASSWORD)|TOKEN|SECRET|PASSWORD)$|^(NTFY|PUSHOVER)_"
)
PROJECT = Path(__file__).resolve().parents[1]


class FrontFailed(RuntimeError):
    """The front could not start polling (Telegram refused the token or cannot be reached)."""


class CommandFront:
    """The Telegram transport in its own process, driven from here."""

    def __init__(
        self,
        settings: TelegramSettings,
        dispatcher: Dispatcher,
        *,
        clock: Clock,
        notify: Notify = discard,
        log_level: str = "INFO",
        pulse_every: float = PULSE_SECONDS,
        start_timeout: float = 60.0,
        stop_timeout: float = 15.0,
        restart_after: tuple[float, float] = (1.0, 30.0),
        silent_limit: float = SILENT_LIMIT_SECONDS,
        options: dict[str, Any] | None = None,
    ) -> None:
        if settings.token is None:
            raise ValueError("the command front needs TELEGRAM_BOT_TOKEN")
        self.settings = settings
        self.dispatcher = dispatcher
        self.clock = clock
        self.notify = notify
        self.log_level = log_level
        self.pulse_every = pulse_every
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.restart_after = restart_after
        self.silent_limit = silent_limit
        self._heard_at = time.monotonic()
        self.options = options or {}  # TelegramTransport's keyword arguments, for tests
        base = settings.api_base_url
        extra = {"base_url": base, "base_file_url": file_url(base)} if base else {}
        self.bot = Bot(settings.token.get(), request=HTTPXRequest(connection_pool_size=16), **extra)
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._wire: Wire | None = None
        self._claims: dict[int, Claim] = {}
        self._claim_ids = 0
        self._started: asyncio.Future | None = None
        self._stopped = asyncio.Event()
        self._stopping = False
        self._tasks: set[asyncio.Task] = set()
        self._supervisor: asyncio.Task | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the front and wait until it polls. Raises FrontFailed (or the Bot's error) if
        Telegram refuses the token or cannot be reached, as the transport's start does."""
        await self.bot.initialize()
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="telegram-front")
        self._spawn_task(self._pulse_forever(), "telegram-front-pulse")
        self._spawn_task(self._watch_forever(), "telegram-front-watch")

    async def stop_polling(self) -> None:
        """No new command from now on; the commands in flight finish first (their questions
        are still answered here meanwhile). Never raises."""
        if self._stopping:
            return
        self._stopping = True
        wire = self._wire
        if wire is None or self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await wire.send({"op": "stop"})
            await asyncio.wait_for(self._stopped.wait(), 2 * self.stop_timeout + 5)

    async def shutdown(self) -> None:
        """Stop polling if not done, end the front's process, close the Bot. Never raises."""
        await self.stop_polling()
        if self._supervisor is not None:
            self._supervisor.cancel()
        if self._wire is not None:
            await self._wire.close()
        await self._reap()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.bot.shutdown()

    async def stop(self) -> None:
        await self.shutdown()

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "chatbot.front",
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env={**front_environment(os.environ), FD_VARIABLE: str(theirs.fileno())},
            )
        finally:
            theirs.close()
        self._wire = wire = await Wire.over(ours)
        self._started = asyncio.get_running_loop().create_future()
        self._heard_at = time.monotonic()
        self._stopped.clear()
        self._spawn_task(self._listen(wire), "telegram-front-listen")
        await wire.send(self._hello())
        try:
            await asyncio.wait_for(asyncio.shield(self._started), self.start_timeout)
        except (TimeoutError, FrontFailed):
            await self._reap()
            raise
        log.info("telegram: the command front polls as @%s", self._started.result())

    def _hello(self) -> dict[str, Any]:
        tg = self.settings
        return {
            "op": "hello",
            "telegram": {
                "token": tg.token.get() if tg.token else None,
                "chat_id": tg.chat_id,
                "allowed": sorted(tg.allowed_user_ids),
                "api_base_url": tg.api_base_url,
            },
            "confirm_ttl": self.dispatcher.confirm_ttl,
            "log_level": self.log_level,
            "options": self.options,
            "beat": self.silent_limit / (SILENT_LIMIT_SECONDS / BEAT_SECONDS),
        }

    async def _supervise(self) -> None:
        """Start the front again whenever it dies, sooner the first times; the owner hears
        that the chat cannot command the bot meanwhile, and when it can again."""
        first, longest = self.restart_after
        wait = first
        while True:
            assert self.process is not None
            code = await self.process.wait()
            if self._stopping:
                return
            self.restarts += 1
            log.error("telegram: the command front ended (exit %s); restarting it", code)
            self._say_down(code)
            while not self._stopping:
                await asyncio.sleep(wait)
                wait = min(longest, 2 * wait)
                try:
                    await self._spawn()
                except Exception as exc:
                    log.error("telegram: the command front did not start again: %s", exc)
                    continue
                wait = first
                self.notify(EmergencyCleared(account="", at=self.clock.time(), key=KEY,
                                             message="Telegram commands work again."))  # fmt: skip
                break

    def _say_down(self, code: int | None) -> None:
        self.notify(
            Emergency(
                account="",
                at=self.clock.time(),
                key=KEY,
                message=(
                    f"The Telegram command process ended (exit {code}): commands are not heard "
                    "until it is back (restarting it). Trading and its stops go on."
                ),
            )
        )

    async def _reap(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        try:
            await asyncio.wait_for(process.wait(), self.stop_timeout)
        except TimeoutError:
            log.error("telegram: the command front did not end; killing it")
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    # ---- the front's questions -------------------------------------------------------------

    async def _listen(self, wire: Wire) -> None:
        while (message := await wire.receive()) is not None:
            self._heard_at = time.monotonic()
            op = message.get("op")
            if op == "ready":
                _settle(self._started, message.get("username"))
            elif op == "failed":
                _fail(self._started, FrontFailed(message.get("error", "failed")))
            elif op == "stopped":
                self._stopped.set()
            elif op == "note":
                self.dispatcher.note(message["who"], message["text"], message["result"])
            elif op == "expire":
                self.dispatcher.expire()
            elif op == "ask":
                reply = self.dispatcher.ask(message["text"], message["who"], message["why"])
                await self._answer(wire, message, reply)
            elif op == "take":
                await self._take(wire, message)
            elif op in ("handle", "settle"):
                self._spawn_task(self._run(wire, message), f"telegram-front-{op}")
        _fail(self._started, FrontFailed("the command front ended before polling"))
        self._stopped.set()

    async def _take(self, wire: Wire, message: dict[str, Any]) -> None:
        # Answered in arrival order, before the next question: one press gets the claim.
        claim = self.dispatcher.take(message["data"], message["who"])
        if isinstance(claim, Reply):
            await self._answer(wire, message, claim)
            return
        self._claim_ids += 1
        self._claims[self._claim_ids] = claim
        answer = {"id": message["id"], "claim": self._claim_ids, "action": claim.action}
        await wire.send({**answer, "line": claim.line})

    async def _run(self, wire: Wire, message: dict[str, Any]) -> None:
        try:
            if message["op"] == "handle":
                reply = await self.dispatcher.handle(message["text"], message["who"])
            else:
                claim = self._claims.pop(message["claim"])
                reply = await self.dispatcher.settle(claim, message["who"])
        except Exception as exc:  # the Dispatcher answers handler failures; this is ours
            log.exception("telegram: answering the command front failed")
            reply = refuse(f"failed: {type(exc).__name__}")
        await self._pulse(wire)  # a /ping after this reply sees what the command changed
        await self._answer(wire, message, reply)

    async def _answer(self, wire: Wire, message: dict[str, Any], reply: Reply) -> None:
        deadlines = {}
        for token in confirmation_tokens(reply):
            if (at := self.dispatcher.expires_at(token)) is not None:
                deadlines[token] = at
        with contextlib.suppress(ConnectionError, OSError):
            await wire.send({"id": message["id"], "reply": reply_to_wire(reply),
                             "deadlines": deadlines})  # fmt: skip

    async def _watch_forever(self) -> None:
        """A front that says nothing for `silent_limit` seconds (it beats every few seconds)
        is wedged, not dead: it is ended, and the supervisor starts another."""
        while True:
            await asyncio.sleep(self.silent_limit / 4)
            process = self.process
            silent = time.monotonic() - self._heard_at
            if self._stopping or process is None or process.returncode is not None:
                continue
            if silent > self.silent_limit:
                log.error("telegram: the command front said nothing for %.0f s; ending it", silent)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()

    async def _pulse_forever(self) -> None:
        while True:
            if self._wire is not None:
                await self._pulse(self._wire)
            await asyncio.sleep(self.pulse_every)

    async def _pulse(self, wire: Wire) -> None:
        try:
            reply = await status.ping(self.dispatcher.ctx, [])
            await wire.send({"op": "pulse", "text": reply.text})
        except (ConnectionError, OSError):
            pass  # the front is gone; the supervisor starts another
        except Exception:
            log.exception("telegram: the /ping text could not be rendered")

    def _spawn_task(self, coro, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def front_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The trading process's environment without a credential, with the project importable
    wherever the bot was started from."""
    kept = {k: v for k, v in environ.items() if not CREDENTIAL_NAME.search(k.upper())}
    kept["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), environ.get("PYTHONPATH")]))
    return kept


def _settle(future: asyncio.Future | None, value: object) -> None:
    if future is not None and not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future | None, exc: BaseException) -> None:
    if future is not None and not future.done():
        future.set_exception(exc)
