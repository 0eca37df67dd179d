"""One way in for every transport: parse a command line, ask for confirmation where the table
says so, run the handler, audit the result. Telegram, the console and the tests all use it.

A confirmation is answered in two steps so a transport that handles presses concurrently can
never run it twice or let a later tap undo it: `take()` claims it synchronously (exactly one
press gets the Claim, every other one a refusal to show), `settle()` then runs or cancels it.
`press()` is the two in one, for transports that handle one input at a time."""

from __future__ import annotations

import logging
import secrets
import shlex
from dataclasses import dataclass

from handlers.context import Context
from handlers.reply import Button, Reply, esc, plain, refuse
from handlers.table import COMMANDS, Command

log = logging.getLogger("handlers")
CONFIRM_TTL_SECONDS = 60.0
# Tokens of answered confirmations remembered to tell a second tap "already handled" rather
# than "no longer open"; a bound, not a deadline: older ones get the generic answer.
REMEMBER_ANSWERED = 256


def command_name(word: str) -> str:
    """The command a line's first word names: `/Kill@my_bot` -> `kill`."""
    return word.lstrip("/").split("@", 1)[0].lower()


def confirmation_tokens(reply: Reply) -> list[str]:
    """The tokens of the confirmations a reply's buttons ask for."""
    parts = (button.data.partition(":") for button in reply.buttons)
    return [token for action, _, token in parts if action == "confirm"]


@dataclass(frozen=True, slots=True)
class _Pending:
    command: Command
    args: list[str]
    who: str
    expires_at: float

    @property
    def line(self) -> str:
        return " ".join(["/" + self.command.name, *self.args])


@dataclass(frozen=True, slots=True)
class Claim:
    """A confirmation taken by one press: its holder, and only it, settles it."""

    action: str  # "confirm" or "cancel"
    pending: _Pending

    @property
    def line(self) -> str:
        """The command line it confirms, e.g. `/kill kraken`."""
        return self.pending.line


class Dispatcher:
    """Parses command lines, asks for confirmations and answers them, runs handlers, audits."""

    def __init__(
        self,
        ctx: Context,
        commands: tuple[Command, ...] = COMMANDS,
        *,
        confirm_ttl: float = CONFIRM_TTL_SECONDS,
    ) -> None:
        self.ctx = ctx
        self.commands = {c.name: c for c in commands}
        self.confirm_ttl = confirm_ttl
        self._pending: dict[str, _Pending] = {}
        self._answered: dict[str, None] = {}  # insertion-ordered: the oldest go first
        ctx.drop_confirmations = self.drop_all

    def drop_all(self) -> list[str]:
        """/cancel: every confirmation still open is dropped; their command lines."""
        dropped = [p.line for p in self._pending.values()]
        for token, pending in list(self._pending.items()):
            self._remember(token)
            self._audit(pending.who, pending.command.name, pending.args, "cancelled")
        self._pending.clear()
        return dropped

    async def handle(self, text: str, who: str) -> Reply:
        """Run `/name args...` (the leading slash and a @botname suffix are optional)."""
        parsed = self._parse(text)
        if isinstance(parsed, Reply):
            return parsed
        command, args = parsed
        if command.confirm or command.ask is not None:
            now = [a for a in args if a.lower() != "now"]
            if command.check is not None and (problem := command.check(self.ctx, now)):
                reply = refuse(problem)
                self._audit(who, command.name, args, plain(reply.text))
                return reply
            why = command.ask(self.ctx, now) if command.ask is not None else None
            # `/kill now`, `/kill kraken now`: no confirmation
            if len(now) < len(args) or (not command.confirm and why is None):
                return await self._run(command, now, who)
            return self._ask(command, now, who, why or "")
        return await self._run(command, args, who)

    def ask(self, text: str, who: str, why: str = "") -> Reply:
        """Ask for a confirmation before running `text`, whatever the table says (a transport
        uses it for a command it got late); `why` (HTML) heads the question. Unknown commands
        and arguments the command's check refuses are answered at once."""
        parsed = self._parse(text)
        if isinstance(parsed, Reply):
            return parsed
        command, args = parsed
        args = [a for a in args if a.lower() != "now"]
        if command.check is not None and (problem := command.check(self.ctx, args)):
            reply = refuse(problem)
            self._audit(who, command.name, args, plain(reply.text))
            return reply
        return self._ask(command, args, who, why)

    async def press(self, data: str, who: str) -> Reply:
        """A confirmation button (or the console's yes/no) was pressed."""
        claim = self.take(data, who)
        if isinstance(claim, Reply):
            return claim
        return await self.settle(claim, who)

    def take(self, data: str, who: str) -> Claim | Reply:
        """Claim the confirmation a press names. Synchronous, so of two presses of one message
        only the first gets the Claim; any other gets the refusal to show (already handled,
        expired, unknown). An expired confirmation is audited here."""
        action, _, token = data.partition(":")
        if action not in ("confirm", "cancel"):
            return refuse("That confirmation is no longer open.")
        pending = self._pending.pop(token, None)
        if pending is None:
            if token in self._answered:
                return refuse("Already handled: the first answer to this confirmation counts.")
            return refuse("That confirmation is no longer open.")
        if self.ctx.clock.time() > pending.expires_at:
            self._audit(who, pending.command.name, pending.args, "confirmation expired")
            return refuse(f"Confirmation expired: nothing done. Send {esc(pending.line)} again.")
        self._remember(token)
        return Claim(action, pending)

    async def settle(self, claim: Claim, who: str) -> Reply:
        """Run (confirm) or drop (cancel) a claimed confirmation; the reply says which."""
        pending = claim.pending
        if claim.action == "cancel":
            self._audit(who, pending.command.name, pending.args, "cancelled")
            return Reply(text=f"Cancelled {esc(pending.line)}: nothing done.")
        return await self._run(pending.command, pending.args, who)

    def expires_at(self, token: str) -> float | None:
        """When an open confirmation expires (clock time); None once pressed or expired."""
        pending = self._pending.get(token)
        return None if pending is None else pending.expires_at

    def note(self, who: str, text: str, result: str) -> None:
        """Audit a command line a transport did not run (unauthorized, stale)."""
        words = text.strip().split()
        self._audit(who, command_name(words[0]) if words else "", words[1:], result)

    def expire(self) -> list[str]:
        """Forget confirmations past their time; returns their tokens (to edit their messages)."""
        now = self.ctx.clock.time()
        gone = [t for t, p in self._pending.items() if now > p.expires_at]
        for token in gone:
            pending = self._pending.pop(token)
            self._audit(pending.who, pending.command.name, pending.args, "confirmation expired")
        return gone

    def _parse(self, text: str) -> tuple[Command, list[str]] | Reply:
        try:
            words = shlex.split(text.strip())
        except ValueError:
            words = text.strip().split()
        if not words:
            return refuse("Send a command; /help lists them.")
        name = command_name(words[0])
        command = self.commands.get(name)
        if command is None:
            return refuse(f"Unknown command /{esc(name)}. /help lists them.")
        return command, words[1:]

    def _ask(self, command: Command, args: list[str], who: str, why: str = "") -> Reply:
        self.expire()
        token = secrets.token_hex(4)
        pending = _Pending(command, args, who, self.ctx.clock.time() + self.confirm_ttl)
        self._pending[token] = pending
        return Reply(
            text=(
                (f"{why}\n" if why else "")
                + f"<b>Confirm {esc(pending.line)}</b>: {esc(command.help)}\n"
                f"This request expires in {self.confirm_ttl:.0f} s."
            ),
            buttons=(Button("Confirm", f"confirm:{token}"), Button("Cancel", f"cancel:{token}")),
        )

    def _remember(self, token: str) -> None:
        self._answered[token] = None
        while len(self._answered) > REMEMBER_ANSWERED:
            del self._answered[next(iter(self._answered))]

    async def _run(self, command: Command, args: list[str], who: str) -> Reply:
        try:
            reply = await command.handler(self.ctx, args)
        except Exception as exc:  # a handler bug must not kill the transport
            log.exception("/%s failed", command.name)
            reply = refuse(f"/{esc(command.name)} failed: {esc(type(exc).__name__)}: {esc(exc)}")
        self._audit(who, command.name, args, plain(reply.text))
        return reply

    def _audit(self, who: str, name: str, args: list[str], result: str) -> None:
        store = getattr(self.ctx.desk, "store", None)
        if store is None:
            return
        try:
            store.audit(self.ctx.clock.time(), who, name, " ".join(args), result[:2000])
        except Exception:  # auditing must never block a command such as /kill
            log.exception("audit of /%s failed", name)
