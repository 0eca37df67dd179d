"""A loopback fake of Binance spot's websockets that ccxt.pro's real binance client can talk to.

It rides on the REST fake (sim/fakes/binance.py) and pushes what its order book does, so an
order created, filled, triggered or cancelled through REST (or by `set_price`) reaches the socket:

- the user data stream, as ccxt.pro subscribes to it for spot: on the WebSocket API
  (`USER_STREAM`), a signed `userDataStream.subscribe.signature` request (the API key, HMAC and
  timestamp window checked as the REST fake does), then `{"subscriptionId", "event"}` frames: an
  `executionReport` for every order change (a triggered stop is reported NEW with `w` true, the
  order entering the book) and, once the change is done, an `outboundAccountPosition` with the
  market's two assets. Binance's older listenKey streams are not served: ccxt.pro no longer uses
  them for spot.
- market streams (`MARKET_STREAM`): `SUBSCRIBE` to `<symbol>@ticker` or `!ticker@arr`, then a
  `24hrTicker` event (alone, or in a list) whenever the market's price is set.

Knobs, for the faults a feed must survive:

    async with FakeBinance() as rest, FakeBinanceWs(rest) as ws:
        config = ws.ccxt_config()   # REST and websocket urls both on the loopback fakes
        ws.drop()                   # every socket cut, no close frame: a network drop
        ws.go_silent()              # sockets stay open, nothing is sent (pongs included)...
        ws.resume()                 # ...until now: what was held goes out
        ws.lose(1)                  # the next execution report is never sent
        ws.refuse_upgrades = True   # upgrades get a 404 page: a server that only speaks REST
        ws.limit_connections(2.0)   # upgrades get a 429 with Retry-After: 2, until cleared (None)
        ws.max_streams = 1024       # a SUBSCRIBE past it closes the connection, as Binance does

Each host of ccxt's websocket urls becomes a path prefix of this server (wss://stream.binance.com
:9443/ws -> ws://127.0.0.1:<port>/stream/ws), so ccxt still sees the `/stream` it checks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import ccxt.pro
from aiohttp import WSMsgType, web

from sim.fakes.binance import FakeBinance
from sim.fakes.binance_orders import BinanceError
from sim.fakes.http import LoopbackServer

USER_STREAM = "/ws-api/ws-api/v3"  # from wss://ws-api.binance.com:443/ws-api/v3
MARKET_STREAM = "/stream/ws/{index}"  # from wss://stream.binance.com:9443/ws, plus ccxt's index
ALL_TICKERS = "!ticker@arr"

# The execution type an order's change is reported with.
_EXECUTION = {"new": "NEW", "triggered": "NEW", "filled": "TRADE", "canceled": "CANCELED"}


class _Socket:
    """One accepted websocket. Frames queue in `outbox`; a writer sends them while the fake
    speaks."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.outbox: asyncio.Queue[tuple[WSMsgType, Any]] = asyncio.Queue()
        self.subscription: int | None = None  # the user data stream's id, once subscribed
        self.streams: set[str] = set()  # the market streams subscribed

    def send(self, frame: Any) -> None:
        self.outbox.put_nowait((WSMsgType.TEXT, json.dumps(frame, separators=(",", ":"))))

    def cut(self) -> None:
        if self.request.transport is not None:
            self.request.transport.abort()


class FakeBinanceWs(LoopbackServer):
    """The websocket side of `rest`. Start it with `async with`, after the REST fake."""

    def __init__(self, rest: FakeBinance) -> None:
        super().__init__()
        self.rest = rest
        self.refuse_upgrades = False
        self.max_streams = 1024  # market streams one connection may listen to (Binance: 1024)
        self.sockets: list[_Socket] = []
        self.refused = 0  # upgrades answered with a 404 page, or a 429
        self.upgrades = 0  # websocket upgrades asked for, refused or not
        self.subscribed = 0  # user data stream subscriptions answered
        self.market_subscriptions: list[list[str]] = []  # every SUBSCRIBE's streams, in order
        self.closed_for_streams = 0  # connections closed for listening to too many streams
        self._connection_retry_after: float | None = None
        self._voice = asyncio.Event()
        self._voice.set()
        self._subscription_ids = itertools.count()
        self._trade_ids = itertools.count(1)
        self._assets_changed: set[str] = set()
        self._lost = 0  # execution reports still to leave unsent
        self.app.router.add_get(USER_STREAM, self._user_stream)
        self.app.router.add_get(MARKET_STREAM, self._market_stream)
        rest.book.listeners.append(self._on_book)

    def ccxt_config(self, *, rate_limit_ms: float = 1.0) -> dict:
        """The REST fake's ccxt settings, with ccxt.pro's websocket urls pointed here too."""
        config = self.rest.ccxt_config(rate_limit_ms=rate_limit_ms)
        urls = ccxt.pro.binance().urls  # never opened: no session to close
        ws_base = self.url.replace("http://", "ws://", 1)
        for key in ("api", "test"):
            config["urls"].setdefault(key, {})["ws"] = _rehost(urls[key]["ws"], ws_base)
        return config

    async def close(self) -> None:
        self.drop()  # open sockets would keep the runner's cleanup waiting
        await super().close()

    # --- knobs -----------------------------------------------------------------------------

    def drop(self) -> None:
        """Cut every open socket without a close frame, as a network failure does."""
        for socket in list(self.sockets):
            socket.cut()

    def go_silent(self) -> None:
        """Keep every socket open but send nothing, pongs included, until `resume()`."""
        self._voice.clear()

    def resume(self) -> None:
        self._voice.set()

    def limit_connections(self, retry_after: float | None) -> None:
        """Refuse every upgrade with a 429 and this Retry-After, as Binance does past its
        connections per IP (None: accept them again)."""
        self._connection_retry_after = retry_after

    def lose(self, reports: int = 1) -> None:
        """Never send the next `reports` execution reports (nor their balances): events a
        connection lost without noticing."""
        self._lost += reports

    # --- connections -----------------------------------------------------------------------

    async def _user_stream(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._user_request)

    async def _market_stream(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._market_request)

    async def _serve(
        self, request: web.Request, answer: Callable[[_Socket, dict], None]
    ) -> web.StreamResponse:
        self.upgrades += 1
        if self._connection_retry_after is not None:
            self.refused += 1
            self.changed()
            error = {"code": -1003, "msg": "Too many connection attempts."}
            headers = {"Retry-After": f"{self._connection_retry_after:g}"}
            return web.json_response(error, status=429, headers=headers)
        if self.refuse_upgrades:
            self.refused += 1
            self.changed()
            page = "<html>404 Not Found</html>"
            return web.Response(status=404, text=page, content_type="text/html")
        ws = web.WebSocketResponse(autoping=False)  # pongs go through the outbox: silence holds
        await ws.prepare(request)
        socket = _Socket(ws, request)
        self.sockets.append(socket)
        self.changed()
        writer = asyncio.create_task(self._write(socket))
        try:
            async for message in ws:
                if message.type == WSMsgType.PING:
                    socket.outbox.put_nowait((WSMsgType.PONG, message.data))
                elif message.type == WSMsgType.TEXT:
                    answer(socket, json.loads(message.data))
        finally:
            writer.cancel()
            self.sockets.remove(socket)
            self.changed()
        return ws

    async def _write(self, socket: _Socket) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                kind, data = await socket.outbox.get()
                await self._voice.wait()
                if kind == WSMsgType.PONG:
                    await socket.ws.pong(data)
                else:
                    await socket.ws.send_str(data)

    # --- requests --------------------------------------------------------------------------

    def _user_request(self, socket: _Socket, request: dict) -> None:
        request_id = request.get("id")
        if request.get("method") != "userDataStream.subscribe.signature":
            error = {"code": -1100, "msg": "The fake serves only the user data subscription."}
            socket.send({"id": request_id, "status": 400, "error": error})
            return
        try:
            self._check_signature(request.get("params") or {})
        except BinanceError as e:
            error = {"code": e.code, "msg": e.msg}
            socket.send({"id": request_id, "status": e.status, "error": error})
            return
        socket.subscription = next(self._subscription_ids)
        self.subscribed += 1
        self.changed()
        result = {"subscriptionId": socket.subscription}
        socket.send({"id": request_id, "status": 200, "result": result, "rateLimits": []})

    def _check_signature(self, params: dict) -> None:
        if params.get("apiKey") != self.rest.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        signed = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")
        expected = hmac.new(self.rest.secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(str(params.get("signature", "")), expected):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        now = self.rest.server_ms()
        timestamp, window = int(params.get("timestamp", 0)), int(params.get("recvWindow", 5000))
        if timestamp >= now + 1000 or now - timestamp > window:
            raise BinanceError(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )

    def _market_request(self, socket: _Socket, request: dict) -> None:
        request_id, streams = request.get("id"), request.get("params") or []
        known = {f"{m.id.lower()}@ticker" for m in self.rest.markets.values()} | {ALL_TICKERS}
        if request.get("method") != "SUBSCRIBE" or not set(streams) <= known:
            error = {"code": 2, "msg": "Invalid request: invalid stream"}
            socket.send({"id": request_id, "error": error})
            return
        self.market_subscriptions.append(list(streams))
        self.changed()
        if len(socket.streams | set(streams)) > self.max_streams:
            self.closed_for_streams += 1
            socket.cut()
            return
        socket.streams.update(streams)
        socket.send({"result": None, "id": request_id})

    # --- pushes ----------------------------------------------------------------------------

    def _on_book(self, action: str, symbol_id: str, order: dict | None) -> None:
        if order is None:
            self._push_ticker(symbol_id)
            return
        if self._lost > 0:
            self._lost -= 1
            return
        report = self._execution_report(action, order)
        for socket in self._user_sockets():
            socket.send({"subscriptionId": socket.subscription, "event": report})
        market = self.rest.markets[symbol_id]
        if not self._assets_changed:  # the balances once the whole change is done
            asyncio.get_running_loop().call_soon(self._push_balances)
        self._assets_changed |= {market.base, market.quote}

    def _execution_report(self, action: str, order: dict) -> dict:
        execution = _EXECUTION[action]
        now = self.rest.server_ms()
        traded = execution == "TRADE"  # the book fills an order whole: its last trade is all
        filled, quote = order["executedQty"], order["cummulativeQuoteQty"]
        cancelled = execution == "CANCELED"
        return {
            "e": "executionReport",
            "E": now,
            "s": order["symbol"],
            # A cancel is reported under the cancel request's own id, the order's in C.
            "c": f"cancel-{order['orderId']}" if cancelled else order["clientOrderId"],
            "S": order["side"],
            "o": order["type"],
            "f": order["timeInForce"],
            "q": order["origQty"],
            "p": order["price"],
            "P": order["stopPrice"],
            "F": "0.00000000",
            "g": -1,
            "C": order["clientOrderId"] if cancelled else "",
            "x": execution,
            "X": order["status"],
            "r": "NONE",
            "i": order["orderId"],
            "l": filled if traded else "0.00000000",
            "z": filled,
            "L": f"{float(quote) / float(filled):.8f}" if traded else "0.00000000",
            "n": "0",
            "N": None,
            "T": order["updateTime"],
            "t": next(self._trade_ids) if traded else -1,
            "w": order["isWorking"],  # true once a stop triggered
            "m": False,
            "O": order["time"],
            "Z": quote,
            "Y": quote if traded else "0.00000000",
            "Q": "0.00000000",
        }

    def _user_sockets(self) -> list[_Socket]:
        return [s for s in self.sockets if s.subscription is not None]

    def _push_balances(self) -> None:
        assets, self._assets_changed = sorted(self._assets_changed), set()
        book, now = self.rest.book, self.rest.server_ms()
        event = {
            "e": "outboundAccountPosition",
            "E": now,
            "u": now,
            "B": [
                {"a": a, "f": f"{book.free.get(a, 0.0):.8f}", "l": f"{book.locked.get(a, 0.0):.8f}"}
                for a in assets
            ],
        }
        for socket in self._user_sockets():
            socket.send({"subscriptionId": socket.subscription, "event": event})

    def _push_ticker(self, symbol_id: str) -> None:
        rest_ticker = self.rest.market_data.ticker(self.rest.markets[symbol_id])
        event = _ticker_event(rest_ticker, self.rest.server_ms())
        for socket in self.sockets:
            if f"{symbol_id.lower()}@ticker" in socket.streams:
                socket.send(event)
            if ALL_TICKERS in socket.streams:
                socket.send([event])


def _ticker_event(rest: dict, now: int) -> dict:
    """The REST fake's 24 h ticker as the `24hrTicker` stream event."""
    return {
        "e": "24hrTicker",
        "E": now,
        "s": rest["symbol"],
        "p": rest["priceChange"],
        "P": rest["priceChangePercent"],
        "w": rest["weightedAvgPrice"],
        "x": rest["openPrice"],
        "c": rest["lastPrice"],
        "Q": "1.00000000",
        "b": rest["bidPrice"],
        "B": "1.00000000",
        "a": rest["askPrice"],
        "A": "1.00000000",
        "o": rest["openPrice"],
        "h": rest["highPrice"],
        "l": rest["lowPrice"],
        "v": rest["volume"],
        "q": rest["quoteVolume"],
        "O": rest["openTime"],
        "C": rest["closeTime"],
        "F": 0,
        "L": rest["count"] - 1,
        "n": rest["count"],
    }


def _rehost(value: Any, ws_base: str) -> Any:
    """ccxt's websocket urls with each host turned into a path prefix of `ws_base`."""
    if isinstance(value, dict):
        return {k: _rehost(v, ws_base) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("wss://"):
        parts = urlsplit(value)
        return f"{ws_base}/{(parts.hostname or '').split('.')[0]}{parts.path}"
    return value
