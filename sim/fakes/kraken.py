"""A loopback fake of Kraken's spot REST API that ccxt's real kraken client can talk to.

Public (GET): Time, Assets, AssetPairs, Ticker, OHLC. Private (POST, form-encoded): BalanceEx,
OpenOrders, ClosedOrders, QueryOrders, AddOrder, CancelOrder, CancelAll, CancelAllOrdersAfter
(the account side is sim/fakes/kraken_orders.py). Every answer is Kraken's envelope,
{"error": [...], "result": ...}, with HTTP 200 even for errors, as Kraken does.

A private call is checked like Kraken checks it: the API-Key header, then API-Sign (base64 of
HMAC-SHA512, keyed with the base64-decoded secret, of the URI path + SHA256(nonce + POST data)),
then the nonce, which must be above the last one this key used ("EAPI:Invalid nonce"; no nonce
window). Then the key's request counter: every private call but AddOrder and CancelOrder adds 1,
the counter decays by `decay_per_second` on the fake's clock, and a call that would take it past
`counter_limit` is answered "EAPI:Rate limit exceeded" (Kraken's Starter tier: 15, 0.33/s).
Public calls are not limited here (Kraken limits them per IP).

CancelAllOrdersAfter arms the key's dead man's switch: once the fake's clock passes its trigger
time, every open order of the key is cancelled (checked at each request and at `set_price`).

    async with FakeKraken() as fake:
        venue = CcxtVenue("kraken", "MASTER", api_key=fake.api_key, secret=fake.secret,
                          config=fake.ccxt_config())
        fake.fail_error(BALANCE_EX, "EService:Unavailable", times=2)   # the next two
        fake.fail_error(TICKER, "EAPI:Rate limit exceeded", times=-1)  # until clear_failures()
        fake.stall(ADD_ORDER)         # accepted (nonce and all), unanswered until release()
        fake.set_price("XBTUSDT", 45_000.0)  # resting limits it crosses fill
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import time
from email.utils import formatdate
from urllib.parse import parse_qsl

from aiohttp import web

from sim.fakes.binance import loopback_urls
from sim.fakes.http import serve
from sim.fakes.kraken_orders import ASSETS, FakePair, KrakenError, KrakenOrder, SpotBook
from trading.clock import Clock, RealClock

PUBLIC, PRIVATE = "/0/public/", "/0/private/"
TIME = PUBLIC + "Time"
ASSETS_PATH = PUBLIC + "Assets"
ASSET_PAIRS = PUBLIC + "AssetPairs"
TICKER = PUBLIC + "Ticker"
OHLC = PUBLIC + "OHLC"
BALANCE_EX = PRIVATE + "BalanceEx"
OPEN_ORDERS = PRIVATE + "OpenOrders"
CLOSED_ORDERS = PRIVATE + "ClosedOrders"
QUERY_ORDERS = PRIVATE + "QueryOrders"
ADD_ORDER = PRIVATE + "AddOrder"
CANCEL_ORDER = PRIVATE + "CancelOrder"
CANCEL_ALL = PRIVATE + "CancelAll"
CANCEL_ALL_AFTER = PRIVATE + "CancelAllOrdersAfter"

ENDPOINTS = (TIME, ASSETS_PATH, ASSET_PAIRS, TICKER, OHLC, BALANCE_EX, OPEN_ORDERS,
             CLOSED_ORDERS, QUERY_ORDERS, ADD_ORDER, CANCEL_ORDER, CANCEL_ALL,
             CANCEL_ALL_AFTER)  # fmt: skip

# Order placement and cancels have their own limits at Kraken, not this counter.
_UNCOUNTED = frozenset({ADD_ORDER, CANCEL_ORDER})
_INTERVALS = frozenset({1, 5, 15, 30, 60, 240, 1440, 10080, 21600})  # minutes


def default_pairs() -> list[FakePair]:
    return [
        FakePair("XBTUSDT", "XXBT", price=50_000.0, pair_decimals=1, ordermin="0.00005"),
        FakePair("ETHUSDT", "XETH", price=3_000.0, pair_decimals=2, ordermin="0.002"),
        FakePair("XDGUSDT", "XXDG", price=0.1, pair_decimals=7, ordermin="50"),
        FakePair("XXBTZUSD", "XXBT", "ZUSD", price=50_000.0, altname="XBTUSD", pair_decimals=1),
        FakePair("SOLUSDT", "SOL", price=150.0, status="cancel_only", quote_volume=0.0),
    ]


class FakeKraken:
    """The fake server. Start it with `async with`, or `await start()` and `await stop()`."""

    def __init__(
        self,
        *,
        api_key: str = "fake-kraken-key-0123456789",
        secret: str = base64.b64encode(bytes(range(64))).decode(),
        pairs: list[FakePair] | None = None,
        balances: dict[str, float] | None = None,
        clock: Clock | None = None,
        counter_limit: float = 15.0,
        decay_per_second: float = 0.33,
    ) -> None:
        self.api_key = api_key
        self.secret = secret
        self.clock = clock or RealClock()
        self.pairs = {p.id: p for p in (pairs or default_pairs())}
        self.book = SpotBook(self.pairs, balances or {"USDT": 10_000.0, "XXBT": 0.5})
        self.orders = self.book.orders
        self.balances = self.book.balances
        self.counter_limit = counter_limit
        self.decay_per_second = decay_per_second
        self.counter = 0.0
        self._counted_at = self.clock.time()
        self.nonces: list[int] = []  # accepted, in arrival order
        self.dead_man_at: float | None = None  # the switch's trigger time, when armed
        self.dead_man_fired = 0
        self.requests: list[tuple[str, str]] = []  # (method, path), in arrival order
        self.arrivals: list[tuple[float, str]] = []  # (the clock's monotonic time, path)
        self.failures: dict[str, list[list]] = {}  # path -> [[error, times left], ...]
        self.stalls: dict[str, asyncio.Event] = {}
        self.parked: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> str:
        self._runner, self.url = await serve(self._dispatch)
        return self.url

    async def stop(self) -> None:
        for gate in self.stalls.values():
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeKraken:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def ccxt_config(self, *, rate_limit_ms: float = 1.0) -> dict:
        """Constructor settings that point ccxt's kraken at this server, its limiter paced for
        a loopback peer (Kraken's 1 s per request, 3 per private read, would make tests
        sleep), and close() not waiting for TLS connections to shut down (plain http here)."""
        return {
            "urls": loopback_urls("kraken", self.url),
            "rateLimit": rate_limit_ms,
            "timeout_on_exit": 0,
        }

    # --- scripting -------------------------------------------------------------------------

    def fail_error(self, path: str, error: str, *, times: int = 1) -> None:
        """Answer the next `times` requests to `path` (-1: until cleared) with Kraken's
        {"error": [error]}, before any check: the request is not processed."""
        self.failures.setdefault(path, []).append([error, times])

    def clear_failures(self) -> None:
        self.failures.clear()

    def stall(self, path: str) -> None:
        """Hold every request to `path` after its checks (its nonce is spent) until
        `release(path)`: Kraken took the call and does not answer yet."""
        self.stalls[path] = asyncio.Event()

    def release(self, path: str) -> None:
        gate = self.stalls.pop(path, None)
        if gate is not None:
            gate.set()

    def calls(self, path: str) -> int:
        return sum(1 for _, p in self.requests if p == path)

    def set_price(self, pair_id: str, price: float) -> None:
        """Move a pair's price: resting limits it crosses fill."""
        now = self.clock.time()
        self._fire_dead_man(now)
        self.book.set_price(pair_id, price, now)

    def order(self, cl_ord_id: str) -> KrakenOrder | None:
        """The order placed under this client order id, if any."""
        return self.book.by_client_id(cl_ord_id)

    def open_orders(self) -> list[KrakenOrder]:
        self._fire_dead_man(self.clock.time())
        return [o for o in self.orders.values() if o.status == "open"]

    # --- dispatch --------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append((request.method, path))
        self.arrivals.append((self.clock.monotonic(), path))
        body = await request.text()
        now = self.clock.time()
        self._fire_dead_man(now)
        try:
            self._scripted(path)
            handler = self._routes().get(path)
            if handler is None:
                raise KrakenError("EGeneral:Unknown method")
            params = dict(parse_qsl(request.rel_url.raw_query_string)) | dict(parse_qsl(body))
            if path.startswith(PRIVATE):
                self._authenticate(request, path, body, params)
                self._count(path, now)
            await self._gate(path)
            result = handler(params)
        except KrakenError as e:
            return web.json_response({"error": [e.error]})
        except KeyError as e:
            return web.json_response({"error": [f"EGeneral:Invalid arguments:{e.args[0]}"]})
        return web.json_response({"error": [], "result": result})

    def _routes(self) -> dict:
        book = self.book
        return {
            TIME: self._time,
            ASSETS_PATH: lambda p: _assets(),
            ASSET_PAIRS: lambda p: {i: _pair_info(m) for i, m in self.pairs.items()},
            TICKER: self._ticker,
            OHLC: self._ohlc,
            BALANCE_EX: lambda p: book.balance_ex(),
            OPEN_ORDERS: book.open_orders,
            CLOSED_ORDERS: book.closed_orders,
            QUERY_ORDERS: book.query_orders,
            ADD_ORDER: lambda p: book.add_order(p, self.clock.time()),
            CANCEL_ORDER: lambda p: book.cancel_order(p, self.clock.time()),
            CANCEL_ALL: lambda p: book.cancel_all(self.clock.time()),
            CANCEL_ALL_AFTER: self._cancel_all_after,
        }

    def _scripted(self, path: str) -> None:
        for failure in self.failures.get(path, []):
            error, times = failure
            if times == 0:
                continue
            if times > 0:
                failure[1] -= 1
            raise KrakenError(error)

    async def _gate(self, path: str) -> None:
        gate = self.stalls.get(path)
        if gate is None:
            return
        self.parked[path] = self.parked.get(path, 0) + 1
        try:
            await gate.wait()
        finally:
            self.parked[path] -= 1

    def _authenticate(self, request: web.Request, path: str, body: str, params: dict) -> None:
        if request.headers.get("API-Key") != self.api_key:
            raise KrakenError("EAPI:Invalid key")
        nonce = params.get("nonce", "")
        digest = hashlib.sha256((nonce + body).encode()).digest()
        mac = hmac.new(base64.b64decode(self.secret), path.encode() + digest, hashlib.sha512)
        expected = base64.b64encode(mac.digest()).decode()
        if not hmac.compare_digest(request.headers.get("API-Sign", ""), expected):
            raise KrakenError("EAPI:Invalid signature")
        if not nonce.isdigit() or (self.nonces and int(nonce) <= self.nonces[-1]):
            raise KrakenError("EAPI:Invalid nonce")
        self.nonces.append(int(nonce))

    def _count(self, path: str, now: float) -> None:
        elapsed = max(0.0, now - self._counted_at)
        self.counter = max(0.0, self.counter - elapsed * self.decay_per_second)
        self._counted_at = now
        cost = 0.0 if path in _UNCOUNTED else 1.0
        if self.counter + cost > self.counter_limit:
            raise KrakenError("EAPI:Rate limit exceeded")
        self.counter += cost

    def _fire_dead_man(self, now: float) -> None:
        if self.dead_man_at is not None and now >= self.dead_man_at:
            self.dead_man_at = None
            self.dead_man_fired += 1
            self.book.cancel_all(now)

    # --- endpoints -------------------------------------------------------------------------

    def _time(self, params: dict) -> dict:
        now = self.clock.time()
        return {"unixtime": int(now), "rfc1123": formatdate(now, usegmt=True)}

    def _cancel_all_after(self, params: dict) -> dict:
        timeout = int(params["timeout"])
        if not 0 <= timeout <= 86_400:
            raise KrakenError("EGeneral:Invalid arguments:timeout")
        now = self.clock.time()
        self.dead_man_at = now + timeout if timeout else None
        return {
            "currentTime": _iso(now),
            "triggerTime": _iso(self.dead_man_at) if self.dead_man_at else "0",
        }

    def _ticker(self, params: dict) -> dict:
        names = params["pair"].split(",") if params.get("pair") else list(self.pairs)
        wanted = [self.book.pair(n) for n in names]
        return {p.id: _ticker(p) for p in wanted}

    def _ohlc(self, params: dict) -> dict:
        pair = self.book.pair(params["pair"])
        minutes = int(params.get("interval", "1"))
        if minutes not in _INTERVALS:
            raise KrakenError("EGeneral:Invalid arguments:interval")
        step = minutes * 60
        current = int(self.clock.time()) // step * step
        rows = []
        for i in range(719, -1, -1):  # Kraken answers the last 720, the current one included
            t = current - i * step
            o = pair.price * (1 + 0.01 * math.sin(t / step / 7))  # deterministic per time
            c = pair.price * (1 + 0.01 * math.sin((t + step) / step / 7))
            hi, lo = max(o, c) * 1.001, min(o, c) * 0.999
            d = pair.pair_decimals
            prices = [f"{x:.{d}f}" for x in (o, hi, lo, c, (o + c) / 2)]
            rows.append([t, *prices, "12.50000000", 100])
        return {pair.id: rows, "last": current - step}


def _assets() -> dict:
    return {
        asset: {
            "aclass": "currency",
            "altname": altname,
            "decimals": decimals,
            "display_decimals": min(decimals, 5),
            "status": "enabled",
        }
        for asset, (altname, decimals) in ASSETS.items()
    }


def _pair_info(p: FakePair) -> dict:
    fees = [[0, 0.26], [50_000, 0.24], [100_000, 0.22]]
    return {
        "altname": p.altname,
        "wsname": f"{ASSETS[p.base][0]}/{ASSETS[p.quote][0]}",
        "aclass_base": "currency",
        "base": p.base,
        "aclass_quote": "currency",
        "quote": p.quote,
        "lot": "unit",
        "cost_decimals": 5,
        "pair_decimals": p.pair_decimals,
        "lot_decimals": p.lot_decimals,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": fees,
        "fees_maker": [[v, r - 0.1] for v, r in fees],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": p.ordermin,
        "costmin": p.costmin,
        "tick_size": f"{p.tick:.{p.pair_decimals}f}",
        "status": p.status,
    }


def _ticker(p: FakePair) -> dict:
    d = p.pair_decimals
    open_price = p.price / (1 + p.change_pct / 100)
    volume = f"{p.quote_volume / p.price:.8f}"
    return {
        "a": [f"{p.price + p.tick:.{d}f}", "1", "1.000"],
        "b": [f"{p.price - p.tick:.{d}f}", "1", "1.000"],
        "c": [f"{p.price:.{d}f}", "0.01000000"],
        "v": [volume, volume],
        "p": [f"{p.price:.{d}f}", f"{p.price:.{d}f}"],
        "t": [1000, 1000],
        "l": [f"{open_price * 0.98:.{d}f}"] * 2,
        "h": [f"{p.price * 1.02:.{d}f}"] * 2,
        "o": f"{open_price:.{d}f}",
    }


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


__all__ = [
    "ADD_ORDER",
    "ASSETS_PATH",
    "ASSET_PAIRS",
    "BALANCE_EX",
    "CANCEL_ALL",
    "CANCEL_ALL_AFTER",
    "CANCEL_ORDER",
    "CLOSED_ORDERS",
    "ENDPOINTS",
    "OHLC",
    "OPEN_ORDERS",
    "PRIVATE",
    "PUBLIC",
    "QUERY_ORDERS",
    "TICKER",
    "TIME",
    "FakeKraken",
    "FakePair",
    "KrakenError",
    "KrakenOrder",
    "default_pairs",
]
