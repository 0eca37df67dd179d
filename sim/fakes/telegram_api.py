"""A loopback fake of the Telegram Bot API that python-telegram-bot 22's real Bot talks to.

    async with FakeTelegramAPI() as api:
        bot = api.bot()                                   # telegram.Bot(api.token, base_url=...)
        api.fail_next("sendMessage", status=429, json=api.flood(retry_after=5))
        api.queue_command(chat_id=42, user_id=7, text="/kill now")
        call = await api.wait_for_message(42, "killed")   # a sendMessage to chat 42 matching
        assert call.params["disable_notification"] is False

Serves POST (and GET) /bot<token>/<method> for getMe (with a username, which CommandHandler
needs), deleteWebhook, getWebhookInfo, getUpdates (updates the test queued, honouring `offset`,
`limit` and a long-poll `timeout` capped at `max_poll` seconds), sendMessage, sendPhoto
(multipart), editMessageText, editMessageReplyMarkup, answerCallbackQuery, setMyCommands,
getMyCommands, deleteMyCommands, sendChatAction, deleteMessage. An unknown method answers 404,
a wrong token 401, as Telegram does.

Every call is recorded as an `ApiCall(method, params, files, at)`. PTB posts form fields (or
multipart when a file goes along) whose non-string values are JSON-encoded; `params` holds them
decoded: chat_id and message_id as int, disable_notification as bool, reply_markup as a dict,
while free text (text, caption, data, parse_mode...) stays a string. A JSON body works too.

Trouble is scripted per method (see sim/fakes/http.py): `fail_next(method, status=429,
json=api.flood(5))` is Telegram's flood control (PTB raises RetryAfter), `fail_next(method,
status=500)` a server error (NetworkError), `drop_next(method)` a dropped connection,
`stall(method)` holds requests until `release(method)`. Failed calls are recorded too, with
`ok=False`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sim.fakes.http import LoopbackServer
from sim.fakes.telegram_calls import ApiCall, read_params, user_of

DEFAULT_TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijkl"


class FakeTelegramAPI(LoopbackServer):
    """The fake Bot API server (see the module docstring for what it serves and scripts)."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = "test_trading_bot",
        first_name: str = "Test Bot",
        max_poll: float = 0.5,
    ) -> None:
        super().__init__()
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.username = username
        self.first_name = first_name
        self.max_poll = max_poll
        self.calls: list[ApiCall] = []
        self.commands: list[dict[str, Any]] = []
        self.pending_updates: list[dict[str, Any]] = []
        self.messages: dict[tuple[Any, int], dict[str, Any]] = {}  # (chat_id, id) -> message
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._methods: dict[str, Callable[[dict[str, Any], dict[str, bytes]], Any]] = {
            "getMe": lambda p, f: self.me(),
            "logOut": lambda p, f: True,
            "close": lambda p, f: True,
            "deleteWebhook": lambda p, f: True,
            "setWebhook": lambda p, f: True,
            "getWebhookInfo": lambda p, f: {
                "url": "",
                "has_custom_certificate": False,
                "pending_update_count": len(self.pending_updates),
            },
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "editMessageText": self._edit_text,
            "editMessageReplyMarkup": self._edit_markup,
            "answerCallbackQuery": lambda p, f: True,
            "setMyCommands": self._set_commands,
            "getMyCommands": lambda p, f: list(self.commands),
            "deleteMyCommands": self._delete_commands,
            "sendChatAction": lambda p, f: True,
            "deleteMessage": lambda p, f: True,
        }

    @property
    def base_url(self) -> str:
        """For `telegram.Bot(token, base_url=api.base_url)`; PTB appends the token."""
        return f"{self.url}/bot"

    def bot(self, **kwargs: Any):
        """A real python-telegram-bot Bot pointed at this fake."""
        from telegram import Bot

        return Bot(self.token, base_url=self.base_url, **kwargs)

    @staticmethod
    def flood(retry_after: int) -> dict[str, Any]:
        """The body Telegram sends with a 429 (use with `fail_next(..., status=429)`)."""
        return {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        }

    @staticmethod
    def error(status: int, description: str) -> dict[str, Any]:
        return {"ok": False, "error_code": status, "description": description}

    def me(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    # ---- what the bot sent --------------------------------------------------------------

    def calls_to(self, method: str, chat_id: Any = None, *, ok: bool | None = True) -> list:
        """Recorded calls of `method` (to `chat_id` if given); by default the successful ones."""
        return [
            c
            for c in self.calls
            if c.method == method
            and (chat_id is None or c.chat_id == chat_id)
            and (ok is None or c.ok == ok)
        ]

    def sent_texts(self, chat_id: Any = None) -> list[str]:
        """Texts of the messages (and photo captions) delivered, in order."""
        return [
            c.text
            for c in self.calls
            if c.ok
            and c.method in ("sendMessage", "sendPhoto")
            and (chat_id is None or c.chat_id == chat_id)
        ]

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        within: float = 5.0,
        *,
        since: int = 0,
    ) -> ApiCall:
        """The first successful call of `method` (at index >= `since` in `calls`) that
        satisfies `predicate`, waiting up to `within` seconds for it."""

        def find() -> ApiCall | None:
            for call in self.calls[since:]:
                if call.ok and call.method == method and (predicate is None or predicate(call)):
                    return call
            return None

        return await self.wait_until(find, within, f"a {method} call")

    async def wait_for_message(
        self,
        chat_id: Any,
        match: str | re.Pattern[str] | Callable[[str], bool] | None = None,
        within: float = 5.0,
        *,
        since: int = 0,
    ) -> ApiCall:
        """A sendMessage to `chat_id` whose text contains `match` (a substring), matches it (a
        compiled regex, searched) or satisfies it (a callable)."""

        def matches(call: ApiCall) -> bool:
            if call.chat_id != chat_id:
                return False
            if match is None:
                return True
            if isinstance(match, str):
                return match in call.text
            if isinstance(match, re.Pattern):
                return match.search(call.text) is not None
            return bool(match(call.text))

        return await self.wait_for_call("sendMessage", matches, within, since=since)

    # ---- what the user does -------------------------------------------------------------

    def queue_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        first_name: str = "Alice",
        username: str | None = "alice",
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Queue a text message from `user_id` in `chat_id` for getUpdates; returns the update."""
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat_id, first_name),
            "from": user_of(user_id, first_name, username),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        return self._queue({"message": message})

    def queue_command(self, chat_id: int, user_id: int, text: str, **kwargs: Any) -> dict:
        """Queue a command ("/kill now", "/status@test_trading_bot") with its bot_command
        entity at offset 0, which PTB's CommandHandler needs to match it."""
        if not text.startswith("/"):
            raise ValueError("a command starts with '/'")
        command = text.split(maxsplit=1)[0]
        entity = {
            "type": "bot_command",
            "offset": 0,
            "length": len(command.encode("utf-16-le")) // 2,
        }
        return self.queue_message(chat_id, user_id, text, entities=[entity], **kwargs)

    def queue_callback(
        self,
        chat_id: int,
        user_id: int,
        data: str,
        *,
        message_id: int | None = None,
        first_name: str = "Alice",
        username: str | None = "alice",
    ) -> dict[str, Any]:
        """Queue an inline-button press with `data` on the bot's message `message_id` (the last
        message the bot sent to the chat when omitted)."""
        message = self._bot_message(chat_id, message_id)
        query = {
            "id": str(next(self._callback_ids)),
            "from": user_of(user_id, first_name, username),
            "chat_instance": f"instance-{chat_id}",
            "data": data,
            "message": message,
        }
        return self._queue({"callback_query": query})

    def _queue(self, body: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **body}
        self.pending_updates.append(update)
        self._new_update.set()
        return update

    def _chat(self, chat_id: int, first_name: str = "Alice") -> dict[str, Any]:
        if chat_id < 0:
            return {"id": chat_id, "type": "supergroup", "title": "Test group"}
        return {"id": chat_id, "type": "private", "first_name": first_name}

    def _bot_message(self, chat_id: int, message_id: int | None) -> dict[str, Any]:
        if message_id is None:
            mine = [m for (c, _), m in self.messages.items() if c == chat_id]
            if mine:
                return mine[-1]
            message_id = next(self._message_ids)
        found = self.messages.get((chat_id, message_id))
        if found is not None:
            return found
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": self._botuser_of(),
            "text": "(a message of the bot)",
        }

    def _botuser_of(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    # ---- the server -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(self.error(401, "Unauthorized"), status=401)
        params, files = await read_params(request)
        await self.gate(method)
        if method == "getUpdates":
            return await self._get_updates(params)
        call = ApiCall(method, params, files, asyncio.get_running_loop().time())
        scripted = self.trouble(request, method)
        if scripted is not None:
            call.ok = False
            self._record(call)
            return scripted
        handler = self._methods.get(method)
        if handler is None:
            call.ok = False
            self._record(call)
            return web.json_response(self.error(404, "Not Found: method not found"), status=404)
        result = handler(params, files)
        self._record(call)
        return web.json_response({"ok": True, "result": result})

    def _record(self, call: ApiCall) -> None:
        self.calls.append(call)
        self.changed()

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        if offset:
            # Telegram forgets every update below the offset: they are confirmed.
            self.pending_updates = [u for u in self.pending_updates if u["update_id"] >= offset]
        limit = int(params.get("limit") or 100)
        wait = min(float(params.get("timeout") or 0), self.max_poll)
        if not self.pending_updates and wait > 0 and not self.closed:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), wait)
        self._record(ApiCall("getUpdates", params, {}, asyncio.get_running_loop().time()))
        return web.json_response({"ok": True, "result": self.pending_updates[:limit]})

    def _new_message(self, chat_id: Any, **content: Any) -> dict[str, Any]:
        chat = (
            self._chat(chat_id) if isinstance(chat_id, int) else {"id": chat_id, "type": "channel"}
        )
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": self._botuser_of(),
            **content,
        }
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _send_message(self, p: dict[str, Any], f: dict[str, bytes]) -> dict[str, Any]:
        content: dict[str, Any] = {"text": p.get("text", "")}
        if "reply_markup" in p:
            content["reply_markup"] = p["reply_markup"]
        return self._new_message(p.get("chat_id"), **content)

    def _send_photo(self, p: dict[str, Any], f: dict[str, bytes]) -> dict[str, Any]:
        data = f.get("photo", b"")
        size = {"file_id": "photo-1", "file_unique_id": "p1", "width": 1, "height": 1}
        content: dict[str, Any] = {"photo": [{**size, "file_size": len(data)}]}
        if p.get("caption"):
            content["caption"] = p["caption"]
        return self._new_message(p.get("chat_id"), **content)

    def _edited(self, p: dict[str, Any], **changes: Any) -> dict[str, Any] | bool:
        if "inline_message_id" in p:
            return True
        key = (p.get("chat_id"), int(p.get("message_id") or 0))
        message = dict(self.messages.get(key) or self._bot_message(*key))
        message.update(changes, edit_date=int(time.time()))
        self.messages[key] = message
        return message

    def _edit_text(self, p: dict[str, Any], f: dict[str, bytes]) -> dict[str, Any] | bool:
        changes: dict[str, Any] = {"text": p.get("text", "")}
        if "reply_markup" in p:
            changes["reply_markup"] = p["reply_markup"]
        return self._edited(p, **changes)

    def _edit_markup(self, p: dict[str, Any], f: dict[str, bytes]) -> dict[str, Any] | bool:
        return self._edited(p, reply_markup=p.get("reply_markup") or {"inline_keyboard": []})

    def _set_commands(self, p: dict[str, Any], f: dict[str, bytes]) -> bool:
        self.commands = list(p.get("commands") or [])
        return True

    def _delete_commands(self, p: dict[str, Any], f: dict[str, bytes]) -> bool:
        self.commands = []
        return True
