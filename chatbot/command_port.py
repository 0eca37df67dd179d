"""What the Telegram transport asks of the Dispatcher, as one interface whether the Dispatcher
runs in the same process (LocalPort, here) or in the trading process beside the command front
(chatbot/front.py's RemotePort). The questions that may cross a process are awaited; `note`,
`expire` and `expires_at` never wait (a note is audited when it arrives, a deadline comes with
the reply that set it)."""

from __future__ import annotations

from typing import Protocol

from handlers.dispatch import Claim, Dispatcher
from handlers.reply import Reply
from handlers.table import Command


class ClaimLike(Protocol):
    action: str

    @property
    def line(self) -> str: ...


class CommandPort(Protocol):
    commands: dict[str, Command]
    confirm_ttl: float

    async def handle(self, text: str, who: str) -> Reply: ...
    async def ask(self, text: str, who: str, why: str = "") -> Reply: ...
    async def take(self, data: str, who: str) -> ClaimLike | Reply: ...
    async def settle(self, claim, who: str) -> Reply: ...
    def note(self, who: str, text: str, result: str) -> None: ...
    def expire(self) -> None: ...
    def expires_at(self, token: str) -> float | None: ...


class LocalPort:
    """The Dispatcher itself, on the transport's own event loop. `take` does not suspend, so a
    caller that awaits it still claims before any other update runs."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.commands = dispatcher.commands
        self.confirm_ttl = dispatcher.confirm_ttl

    async def handle(self, text: str, who: str) -> Reply:
        return await self.dispatcher.handle(text, who)

    async def ask(self, text: str, who: str, why: str = "") -> Reply:
        return self.dispatcher.ask(text, who, why)

    async def take(self, data: str, who: str) -> Claim | Reply:
        return self.dispatcher.take(data, who)

    async def settle(self, claim: Claim, who: str) -> Reply:
        return await self.dispatcher.settle(claim, who)

    def note(self, who: str, text: str, result: str) -> None:
        self.dispatcher.note(who, text, result)

    def expire(self) -> None:
        self.dispatcher.expire()

    def expires_at(self, token: str) -> float | None:
        return self.dispatcher.expires_at(token)


def port_of(dispatcher: Dispatcher | CommandPort) -> CommandPort:
    return LocalPort(dispatcher) if isinstance(dispatcher, Dispatcher) else dispatcher
