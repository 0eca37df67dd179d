"""A loopback fake of Binance's spot REST API that ccxt's real binance client can talk to.

It serves the handful of endpoints the bot uses (exchangeInfo, ticker/24hr, klines, time,
account, openOrders, order; the market data's answers are sim/fakes/binance_market.py), checks
the API key, the HMAC signature and the timestamp window like Binance does (a skewed server
clock answers -1021), keeps a tiny order book of its own
(sim/fakes/binance_orders.py: market orders fill at once, limit orders rest until the price
crosses, STOP_LOSS / STOP_LOSS_LIMIT sells rest until `set_price` reaches their stopPrice, every
change in `order_log`) and can be scripted to fail: an HTML 404 for a retired endpoint, an
unknown error code, Binance's own error answers (SERVER_BUSY, DISCONNECTED, UNKNOWN), a 429 with
Retry-After, 5xx.

    async with FakeBinance() as fake:
        venue = CcxtVenue("binance", "MASTER", api_key=fake.api_key, secret=fake.secret,
                          config=fake.ccxt_config())
        fake.fail_html(ACCOUNT)               # next GET /api/v3/account is a 404 page
        fake.fail_code(TICKER_24HR, **SERVER_BUSY, times=2)  # -1008 (HTTP 503), twice
        fake.clock_skew_ms = 15_000           # the exchange's clock runs 15 s ahead
        fake.stall(ACCOUNT)                   # GET /api/v3/account hangs until release(ACCOUNT)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import ccxt.async_support as ccxt
from aiohttp import web

from sim.fakes.binance_market import MarketData
from sim.fakes.binance_orders import BinanceError, FakeMarket, Logged, SpotBook
from sim.fakes.http import serve

EXCHANGE_INFO = "/api/v3/exchangeInfo"
TICKER_24HR = "/api/v3/ticker/24hr"
KLINES = "/api/v3/klines"
TIME = "/api/v3/time"
ACCOUNT = "/api/v3/account"
OPEN_ORDERS = "/api/v3/openOrders"
ORDER = "/api/v3/order"

# Binance's documented "try again" answers, as fail_code arguments: {"code": ..., "msg": ...}
# bodies with their HTTP status.
SERVER_BUSY = {
    "status": 503,
    "code": -1008,
    "msg": "Server is currently overloaded with other requests. Please try again in a few minutes.",
}
DISCONNECTED = {
    "status": 500,
    "code": -1001,
    "msg": "Internal error; unable to process your request. Please try again.",
}
UNKNOWN = {
    "status": 500,
    "code": -1000,
    "msg": "An unknown error occurred while processing the request.",
}


def default_markets() -> list[FakeMarket]:
    return [
        FakeMarket("BTC", price=50_000.0, step_size="0.00001", tick_size="0.01"),
        FakeMarket("ETH", price=3_000.0, step_size="0.0001", tick_size="0.01"),
        FakeMarket("DOGE", price=0.1, step_size="1", tick_size="0.00001", min_qty="1"),
        FakeMarket("OLD", price=1.0, status="BREAK", quote_volume=0.0),
    ]


@dataclass
class Failure:
    """A scripted answer that replaces the real one `times` times (-1: until cleared)."""

    status: int
    body: str
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None  # None: any method
    times: int = 1


class FakeBinance:
    """The fake server. Start it with `async with`, or `await start()` and `await stop()`."""

    def __init__(
        self,
        *,
        api_key: str = "fake-api-key-0123456789",
        secret: str = "fake-secret-abcdefghij",
        markets: list[FakeMarket] | None = None,
        balances: dict[str, float] | None = None,
        clock_skew_ms: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.secret = secret
        self.markets = {m.id: m for m in (markets or default_markets())}
        self.book = SpotBook(self.markets, balances or {"USDT": 10_000.0, "BTC": 0.5})
        self.free = self.book.free
        self.locked = self.book.locked
        self.orders = self.book.orders
        self.market_data = MarketData(self.book, self.server_ms)
        self.clock_skew_ms = clock_skew_ms  # server clock minus real clock
        self.requests: list[tuple[str, str]] = []  # (method, path), in arrival order
        self.failures: dict[str, list[Failure]] = {}
        self.stalls: dict[str, asyncio.Event] = {}
        self.parked: dict[str, int] = {}  # requests held by stall(), per path
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> str:
        self._runner, self.url = await serve(self._dispatch)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBinance:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def ccxt_config(self, *, rate_limit_ms: float = 1.0) -> dict:
        """Constructor settings that point ccxt's binance at this server. ccxt's limiter stays
        on, but paced for a loopback peer (real Binance weights would make tests sleep), and
        close() skips its wait for TLS connections to shut down (plain http here)."""
        return {
            "urls": loopback_urls("binance", self.url),
            "rateLimit": rate_limit_ms,
            "timeout_on_exit": 0,
        }

    # --- scripting -------------------------------------------------------------------------

    def fail(self, path: str, failure: Failure) -> None:
        self.failures.setdefault(path, []).append(failure)

    def fail_html(self, path: str, *, status: int = 404, times: int = 1) -> None:
        """A retired endpoint behind a CDN: an HTML error page, not JSON."""
        body = f"<html><head><title>{status} Not Found</title></head><body>gone</body></html>"
        self.fail(path, Failure(status, body, "text/html", times=times))

    def fail_code(
        self,
        path: str,
        *,
        code: int = -9999,
        msg: str = "Something new.",
        status: int = 400,
        times: int = 1,
    ) -> None:
        """Answer `times` requests to `path` (-1: until cleared) with Binance's error body."""
        body = json.dumps({"code": code, "msg": msg}, separators=(",", ":"))  # as Binance does
        self.fail(path, Failure(status, body, times=times))

    def fail_rate_limit(
        self, path: str, *, retry_after: float | None = 7, status: int = 429, times: int = 1
    ) -> None:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        body = json.dumps({"code": -1003, "msg": "Too many requests; please use the websocket."})
        self.fail(path, Failure(status, body, headers=headers, times=times))

    def fail_server_error(self, path: str, *, status: int = 503, times: int = 1) -> None:
        self.fail(path, Failure(status, "Service Unavailable", "text/plain", times=times))

    def stall(self, path: str) -> None:
        """Hold every request to `path` (recorded first) until `release(path)`: an exchange
        that takes a call and does not answer."""
        self.stalls[path] = asyncio.Event()

    def release(self, path: str) -> None:
        gate = self.stalls.pop(path, None)
        if gate is not None:
            gate.set()

    def clear_failures(self) -> None:
        self.failures.clear()

    def calls(self, path: str, method: str | None = None) -> int:
        return sum(1 for m, p in self.requests if p == path and method in (None, m))

    def server_ms(self) -> int:
        return int(time.time() * 1000 + self.clock_skew_ms)

    def set_price(self, symbol_id: str, price: float) -> None:
        """Move a market's price: stops it reaches trigger, resting limits it crosses fill."""
        self.book.set_price(symbol_id, price, self.server_ms())

    @property
    def order_log(self) -> list[Logged]:
        """Every order change, in order: (ms, action, order_id, symbol, type, stop_price)."""
        return self.book.order_log

    def most_live_stops(self, symbol_id: str) -> int:
        """The most stop orders live at one time on this market ("BTCUSDT")."""
        return self.book.most_live_stops(symbol_id)

    # --- dispatch --------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append((request.method, path))
        gate = self.stalls.get(path)
        if gate is not None:
            self.parked[path] = self.parked.get(path, 0) + 1
            try:
                await gate.wait()
            finally:
                self.parked[path] -= 1
        scripted = self._scripted(path, request.method)
        if scripted is not None:
            return scripted
        route = self._routes().get((request.method, path))
        if route is None:
            return web.Response(
                status=404, text="<html>404 Not Found</html>", content_type="text/html"
            )
        handler, signed = route
        try:
            params = await self._params(request, signed)
            return web.json_response(handler(params))
        except KeyError as e:
            error = {"code": -1102, "msg": f"Mandatory parameter {e} was not sent."}
            return web.json_response(error, status=400)
        except BinanceError as e:
            return web.json_response({"code": e.code, "msg": e.msg}, status=e.status)

    def _routes(self) -> dict[tuple[str, str], tuple]:
        return {
            ("GET", EXCHANGE_INFO): (self.market_data.exchange_info, False),
            ("GET", TICKER_24HR): (self.market_data.ticker_24hr, False),
            ("GET", KLINES): (self.market_data.klines, False),
            ("GET", TIME): (lambda p: {"serverTime": self.server_ms()}, False),
            ("GET", ACCOUNT): (lambda p: self.book.account(self.server_ms()), True),
            ("GET", OPEN_ORDERS): (self.book.open_orders, True),
            ("POST", ORDER): (lambda p: self.book.create(p, self.server_ms()), True),
            ("GET", ORDER): (self.book.get, True),
            ("DELETE", ORDER): (lambda p: self.book.cancel(p, self.server_ms()), True),
        }

    def _scripted(self, path: str, method: str) -> web.Response | None:
        for failure in self.failures.get(path, []):
            if failure.method not in (None, method) or failure.times == 0:
                continue
            if failure.times > 0:
                failure.times -= 1
            return web.Response(
                status=failure.status,
                text=failure.body,
                content_type=failure.content_type,
                headers=failure.headers,
            )
        return None

    async def _params(self, request: web.Request, signed: bool) -> dict[str, str]:
        query = request.rel_url.raw_query_string
        body = await request.text()
        params = dict(parse_qsl(query)) | dict(parse_qsl(body))
        if signed:
            self._authenticate(request, query + body, params)
        return params

    def _authenticate(self, request: web.Request, payload: str, params: dict[str, str]) -> None:
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        signed_part, sep, signature = payload.rpartition("&signature=")
        expected = hmac.new(self.secret.encode(), signed_part.encode(), hashlib.sha256).hexdigest()
        if not sep or not hmac.compare_digest(signature, expected):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        timestamp = int(params.get("timestamp", "0"))
        recv_window = int(params.get("recvWindow", "5000"))
        now = self.server_ms()
        if timestamp >= now + 1000 or now - timestamp > recv_window:
            raise BinanceError(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )


def loopback_urls(exchange_id: str, base_url: str) -> dict:
    """ccxt's `urls` for this exchange with the host of every API entry (live and testnet)
    replaced by `base_url`, paths kept, so the real client talks to a local fake."""
    urls = getattr(ccxt, exchange_id)().urls  # never opened: no session to close

    def rehost(value: object) -> object:
        if isinstance(value, dict):
            return {k: rehost(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith("http"):
            return base_url + urlsplit(value).path
        return value

    return {key: rehost(urls[key]) for key in ("api", "test") if key in urls}


__all__ = [
    "ACCOUNT",
    "DISCONNECTED",
    "EXCHANGE_INFO",
    "KLINES",
    "OPEN_ORDERS",
    "ORDER",
    "SERVER_BUSY",
    "TICKER_24HR",
    "TIME",
    "UNKNOWN",
    "BinanceError",
    "Failure",
    "FakeBinance",
    "FakeMarket",
    "Logged",
    "default_markets",
    "loopback_urls",
]
