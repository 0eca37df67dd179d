"""The account side of the fake Binance (sim/fakes/binance.py): balances and a tiny order book.

Orders are answered with Binance spot's own fields. MARKET fills at once at the market price;
LIMIT rests until the price crosses it. STOP_LOSS and STOP_LOSS_LIMIT sells take `stopPrice`
(and, for the limit one, `price` and `timeInForce`), lock the base like a limit sell, and are
refused when the price is already at or under the trigger ("Stop price would trigger
immediately.", -2010), as Binance does. `set_price` through the trigger makes the stop working:
a STOP_LOSS fills at the new price, a STOP_LOSS_LIMIT at its limit if the price is at or above
it, else it rests as a limit (status NEW, isWorking true). Only sell stops: the bot is long-only.

Every change is written to `order_log`, so a test can check the exchange's own view, such as
"never two live stops for one position" (`most_live_stops`), and told to each of `listeners`
with the order as it stands then (as are price moves, with no order): what the websocket fake
(sim/fakes/binance_ws.py) pushes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

STOPS = ("STOP_LOSS", "STOP_LOSS_LIMIT")
LIMITS = ("LIMIT", "STOP_LOSS_LIMIT")


@dataclass
class FakeMarket:
    """One spot market as exchangeInfo describes it; filters are strings as Binance sends them."""

    base: str
    quote: str = "USDT"
    price: float = 100.0
    step_size: str = "0.00001"
    tick_size: str = "0.01"
    min_qty: str = "0.00001"
    min_notional: str = "5"
    status: str = "TRADING"
    quote_volume: float = 5_000_000.0
    change_pct: float = 1.5

    @property
    def id(self) -> str:
        return self.base + self.quote


class BinanceError(Exception):
    """Raised inside a handler to answer with Binance's {"code", "msg"} error body."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class Logged(NamedTuple):
    """One change of an order: action is new, triggered, filled or canceled."""

    ms: int  # server time
    action: str
    order_id: int
    symbol: str
    type: str
    stop_price: float | None


Listener = Callable[[str, str, dict | None], None]
"""Told (action, symbol id, a copy of the order) for every change; ("price", symbol id, None)."""


class SpotBook:
    """Free and locked balances per asset, and every order, by orderId."""

    def __init__(self, markets: dict[str, FakeMarket], balances: dict[str, float]) -> None:
        self.markets = markets
        self.free: dict[str, float] = dict(balances)
        self.locked: dict[str, float] = {}
        self.orders: dict[int, dict] = {}
        self.order_log: list[Logged] = []
        self.listeners: list[Listener] = []
        self._ids = itertools.count(1000)

    def most_live_stops(self, symbol_id: str) -> int:
        """The most stop orders that were live at one time on this market, by the order log."""
        live = most = 0
        for entry in self.order_log:
            if entry.symbol != symbol_id or entry.type not in STOPS:
                continue
            live += {"new": 1, "filled": -1, "canceled": -1}.get(entry.action, 0)
            most = max(most, live)
        return most

    # --- the endpoints ---------------------------------------------------------------------

    def account(self, now: int) -> dict:
        assets = sorted(set(self.free) | set(self.locked))
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "updateTime": now,
            "accountType": "SPOT",
            "balances": [
                {
                    "asset": a,
                    "free": f"{self.free.get(a, 0.0):.8f}",
                    "locked": f"{self.locked.get(a, 0.0):.8f}",
                }
                for a in assets
            ],
            "permissions": ["SPOT"],
        }

    def open_orders(self, params: dict) -> list[dict]:
        symbol = params.get("symbol")
        return [
            o
            for o in self.orders.values()
            if o["status"] == "NEW" and symbol in (None, o["symbol"])
        ]

    def create(self, params: dict, now: int) -> dict:
        m = self.market(params["symbol"])
        client_id = params.get("newClientOrderId") or f"fake-{next(self._ids)}"
        if any(o["clientOrderId"] == client_id for o in self.orders.values()):
            raise BinanceError(400, -2010, "Duplicate order sent.")
        qty = float(params["quantity"])
        if qty < float(m.min_qty) or not _on_step(qty, float(m.step_size)):
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
        kind, side = params["type"], params["side"]
        limit = float(params["price"]) if kind in LIMITS else None
        stop = self._checked_stop(params, m) if kind in STOPS else None
        if qty * (limit or stop or m.price) < float(m.min_notional):
            raise BinanceError(400, -1013, "Filter failure: NOTIONAL")
        spend_asset, spend = (m.quote, qty * (limit or m.price)) if side == "BUY" else (m.base, qty)
        if self.free.get(spend_asset, 0.0) < spend - 1e-12:
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
        order = {
            "symbol": m.id,
            "orderId": next(self._ids),
            "orderListId": -1,
            "clientOrderId": client_id,
            "transactTime": now,
            "time": now,
            "updateTime": now,
            "price": f"{limit or 0:.8f}",
            "origQty": f"{qty:.8f}",
            "executedQty": "0.00000000",
            "cummulativeQuoteQty": "0.00000000",
            "status": "NEW",
            "timeInForce": params.get("timeInForce", "GTC"),
            "type": kind,
            "side": side,
            "stopPrice": f"{stop or 0:.8f}",
            "isWorking": stop is None,
            "workingTime": now if stop is None else -1,
            "selfTradePreventionMode": "NONE",
        }
        self.orders[order["orderId"]] = order
        self._log(now, "new", order)
        self._move(spend_asset, spend, to_locked=True)
        if stop is None and (limit is None or _crosses(order, m.price)):
            self._fill(order, m, m.price, now)
        answer = dict(order, fills=[])
        if stop is None:  # Binance answers a new order with stopPrice only for stop types
            del answer["stopPrice"]
        return answer

    def get(self, params: dict) -> dict:
        self.market(params["symbol"])
        if "orderId" in params:
            order = self.orders.get(int(params["orderId"]))
        else:
            client_id = params.get("origClientOrderId")
            order = next((o for o in self.orders.values() if o["clientOrderId"] == client_id), None)
        if order is None or order["symbol"] != params["symbol"]:
            raise BinanceError(400, -2013, "Order does not exist.")
        return order

    def cancel(self, params: dict, now: int) -> dict:
        try:
            order = self.get(params)
        except BinanceError:
            raise BinanceError(400, -2011, "Unknown order sent.") from None
        if order["status"] != "NEW":
            raise BinanceError(400, -2011, "Unknown order sent.")
        m = self.markets[order["symbol"]]
        qty, limit = float(order["origQty"]), float(order["price"])
        asset, amount = (m.quote, qty * limit) if order["side"] == "BUY" else (m.base, qty)
        self._move(asset, amount, to_locked=False)
        order["status"] = "CANCELED"
        order["updateTime"] = now
        self._log(now, "canceled", order)
        return dict(order, origClientOrderId=order["clientOrderId"])

    def set_price(self, symbol_id: str, price: float, now: int) -> None:
        """The market trades at `price`: stops it reaches trigger, limits it crosses fill."""
        m = self.markets[symbol_id]
        m.price = price
        self._tell("price", symbol_id, None)
        for order in list(self.orders.values()):
            if order["symbol"] != symbol_id or order["status"] != "NEW":
                continue
            if not order["isWorking"]:
                if price > float(order["stopPrice"]):
                    continue
                order.update(isWorking=True, workingTime=now, updateTime=now)
                self._log(now, "triggered", order)
                if order["type"] == "STOP_LOSS":
                    self._fill(order, m, price, now)
                    continue
            if _crosses(order, price):
                # A triggered stop-limit trades at its limit; a plain limit at the new price.
                at = float(order["price"]) if order["type"] in STOPS else price
                self._fill(order, m, at, now)

    def market(self, symbol_id: str) -> FakeMarket:
        if symbol_id not in self.markets:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return self.markets[symbol_id]

    # --- inside ----------------------------------------------------------------------------

    def _checked_stop(self, params: dict, m: FakeMarket) -> float:
        if params["side"] != "SELL":
            raise BinanceError(400, -2010, "The fake takes sell stops only.")
        if params["type"] == "STOP_LOSS" and "price" in params:
            raise BinanceError(400, -1106, "Parameter 'price' sent when not required.")
        if params["type"] == "STOP_LOSS_LIMIT" and "timeInForce" not in params:
            raise KeyError("timeInForce")  # answered -1102, a mandatory parameter missing
        stop = float(params["stopPrice"])
        if stop >= m.price:
            raise BinanceError(400, -2010, "Stop price would trigger immediately.")
        return stop

    def _fill(self, order: dict, m: FakeMarket, price: float, now: int) -> None:
        qty = float(order["origQty"])
        reserved_price = float(order["price"]) or price
        if order["side"] == "BUY":
            self.locked[m.quote] = self.locked.get(m.quote, 0.0) - qty * reserved_price
            self.free[m.quote] = self.free.get(m.quote, 0.0) + qty * (reserved_price - price)
            self.free[m.base] = self.free.get(m.base, 0.0) + qty
        else:
            self.locked[m.base] = self.locked.get(m.base, 0.0) - qty
            self.free[m.quote] = self.free.get(m.quote, 0.0) + qty * price
        order.update(
            status="FILLED",
            executedQty=f"{qty:.8f}",
            cummulativeQuoteQty=f"{qty * price:.8f}",
            updateTime=now,
        )
        self._log(now, "filled", order)

    def _move(self, asset: str, amount: float, *, to_locked: bool) -> None:
        sign = 1 if to_locked else -1
        self.free[asset] = self.free.get(asset, 0.0) - sign * amount
        self.locked[asset] = self.locked.get(asset, 0.0) + sign * amount

    def _log(self, now: int, action: str, order: dict) -> None:
        stop = float(order["stopPrice"]) or None
        entry = Logged(now, action, order["orderId"], order["symbol"], order["type"], stop)
        self.order_log.append(entry)
        self._tell(action, order["symbol"], dict(order))

    def _tell(self, action: str, symbol_id: str, order: dict | None) -> None:
        for listener in self.listeners:
            listener(action, symbol_id, order)


def _crosses(order: dict, price: float) -> bool:
    limit = float(order["price"])
    return price <= limit if order["side"] == "BUY" else price >= limit


def _on_step(qty: float, step: float) -> bool:
    return abs(qty / step - round(qty / step)) < 1e-6
