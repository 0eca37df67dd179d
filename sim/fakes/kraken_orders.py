"""The account side of the fake Kraken (sim/fakes/kraken.py): balances by Kraken's asset ids
and a small spot order book, answered with Kraken's own fields.

AddOrder takes market and limit orders (the fake takes no stop types: the bot places none on
Kraken) and answers, as Kraken does, with the txid and a one-line description but no status.
A market order fills at once at the pair's price, paying the taker fee in the quote currency
(Kraken's default "fciq"); a limit order that crosses fills at once the same way, else it rests
until `set_price` crosses it and then fills at its limit paying the maker fee. An open order
holds its cost (buy) or its volume (sell): BalanceEx's `hold_trade`.

What AddOrder refuses, with Kraken's error strings: an unknown pair, a market not online, a
volume with more decimals than the pair's lot_decimals, under `ordermin` or a cost under
`costmin`, a price with more decimals than pair_decimals, a cl_ord_id that is neither a UUID nor
free text of at most 18 characters, a cl_ord_id already used by an open order (Kraken checks
uniqueness across open orders only; the exact wording of that refusal is not documented, the
fake says "EOrder:Duplicate order"), and funds short of cost + fee.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

OPEN, CLOSED, CANCELED = "open", "closed", "canceled"

TAKER_FEE = 0.0026
MAKER_FEE = 0.0016

# Kraken's asset ids with their altname and decimals (public Assets).
ASSETS = {
    "XXBT": ("XBT", 10),
    "XETH": ("ETH", 10),
    "XXDG": ("XDG", 8),
    "SOL": ("SOL", 10),
    "USDT": ("USDT", 8),
    "ZUSD": ("USD", 4),
}

_UUID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|[0-9a-f]{32}", re.IGNORECASE)
_FREE_TEXT = re.compile(r"[\x21-\x7e]{1,18}")


class KrakenError(Exception):
    """Raised inside a handler to answer {"error": [error]}."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass
class FakePair:
    """One spot pair as AssetPairs describes it: `id` is the key Kraken lists it under, `altname`
    what it writes in order descriptions ("XBTUSDT"; for XBT/USD the id is "XXBTZUSD")."""

    id: str
    base: str  # asset id: "XXBT"
    quote: str = "USDT"
    price: float = 100.0
    altname: str = ""
    lot_decimals: int = 8
    pair_decimals: int = 2
    ordermin: str = "0.0001"
    costmin: str = "0.5"
    status: str = "online"  # or cancel_only, post_only, limit_only, reduce_only
    quote_volume: float = 5_000_000.0  # over 24 h
    change_pct: float = 1.5

    def __post_init__(self) -> None:
        self.altname = self.altname or self.id

    @property
    def tick(self) -> float:
        return 10.0**-self.pair_decimals


@dataclass
class KrakenOrder:
    txid: str
    pair: FakePair
    side: str  # buy | sell
    ordertype: str  # market | limit
    volume: float
    price: float | None  # the limit
    opentm: float
    cl_ord_id: str | None = None
    userref: int | None = None
    status: str = OPEN
    vol_exec: float = 0.0
    cost: float = 0.0
    fee: float = 0.0
    closetm: float | None = None
    reason: str | None = None

    def description(self) -> str:
        """Kraken's one-line description: "buy 0.01000000 XBTUSDT @ limit 40000.0"."""
        at = "market" if self.price is None else f"limit {self.price:.{self.pair.pair_decimals}f}"
        return f"{self.side} {self.volume:.8f} {self.pair.altname} @ {at}"

    def info(self) -> dict:
        """The order as OpenOrders, ClosedOrders and QueryOrders list it."""
        decimals = self.pair.pair_decimals
        info = {
            "refid": None,
            "userref": self.userref,
            "status": self.status,
            "reason": self.reason,
            "opentm": self.opentm,
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": self.pair.altname,
                "type": self.side,
                "ordertype": self.ordertype,
                "price": f"{self.price or 0:.{decimals}f}",
                "price2": "0",
                "leverage": "none",
                "order": self.description(),
                "close": "",
            },
            "vol": f"{self.volume:.8f}",
            "vol_exec": f"{self.vol_exec:.8f}",
            "cost": f"{self.cost:.5f}",
            "fee": f"{self.fee:.5f}",
            "price": f"{self.cost / self.vol_exec if self.vol_exec else 0:.{decimals}f}",
            "stopprice": "0.00000",
            "limitprice": "0.00000",
            "misc": "",
            "oflags": "fciq",
        }
        if self.cl_ord_id is not None:
            info["cl_ord_id"] = self.cl_ord_id
        if self.closetm is not None:
            info["closetm"] = self.closetm
        return info


class SpotBook:
    """Balances (total per asset id) and every order of the one API key."""

    def __init__(self, pairs: dict[str, FakePair], balances: dict[str, float]) -> None:
        self.pairs = pairs
        self.balances: dict[str, float] = dict(balances)
        self.orders: dict[str, KrakenOrder] = {}
        self._ids = itertools.count(1000)

    # --- the endpoints ---------------------------------------------------------------------

    def balance_ex(self) -> dict:
        held = self.held()
        assets = sorted(set(self.balances) | set(held))
        return {
            a: {
                "balance": f"{self.balances.get(a, 0.0):.10f}",
                "hold_trade": f"{held.get(a, 0.0):.10f}",
            }
            for a in assets
        }

    def open_orders(self, params: dict) -> dict:
        return {"open": {o.txid: o.info() for o in self._matching(params, open_=True)}}

    def closed_orders(self, params: dict) -> dict:
        """Kraken's history page: finished orders, the most recently closed first, 50 a page."""
        done = sorted(self._matching(params, open_=False), key=lambda o: -(o.closetm or 0))
        start = int(params.get("ofs", "0"))
        return {"closed": {o.txid: o.info() for o in done[start : start + 50]}, "count": len(done)}

    def query_orders(self, params: dict) -> dict:
        txids = params["txid"].split(",")
        if any(t not in self.orders for t in txids):
            raise KrakenError("EOrder:Invalid order")
        return {t: self.orders[t].info() for t in txids}

    def add_order(self, params: dict, now: float) -> dict:
        pair = self.pair(params["pair"])
        side, ordertype = params["type"], params["ordertype"]
        if side not in ("buy", "sell"):
            raise KrakenError("EGeneral:Invalid arguments:type")
        if ordertype not in ("market", "limit"):
            raise KrakenError("EGeneral:Invalid arguments:ordertype")  # no stops here
        if pair.status != "online":
            raise KrakenError(f"EService:Market in {pair.status} mode")
        volume = _decimal(params["volume"], pair.lot_decimals, "EGeneral:Invalid arguments:volume")
        if volume < float(pair.ordermin):
            raise KrakenError("EOrder:Order minimum not met")
        price = self._limit(params, pair) if ordertype == "limit" else None
        if volume * (price or pair.price) < float(pair.costmin):
            raise KrakenError("EOrder:Cost minimum not met")
        cl_ord_id = self._client_id(params.get("cl_ord_id"))
        spend_asset, spend = self._reservation(side, volume, price or pair.price, pair)
        if self.free(spend_asset) < spend - 1e-12:
            raise KrakenError("EOrder:Insufficient funds")
        order = KrakenOrder(
            txid=_txid(next(self._ids)),
            pair=pair,
            side=side,
            ordertype=ordertype,
            volume=volume,
            price=price,
            opentm=now,
            cl_ord_id=cl_ord_id,
            userref=int(params["userref"]) if "userref" in params else None,
        )
        self.orders[order.txid] = order
        if price is None or _crosses(order, pair.price):
            self._fill(order, pair.price, TAKER_FEE, now)
        return {"descr": {"order": order.description()}, "txid": [order.txid]}

    def cancel_order(self, params: dict, now: float) -> dict:
        if "cl_ord_id" in params:
            order = self.by_client_id(params["cl_ord_id"])
        else:
            order = self.orders.get(params["txid"])
        if order is None or order.status != OPEN:
            raise KrakenError("EOrder:Unknown order")
        self._cancel(order, now)
        return {"count": 1, "pending": False}

    def cancel_all(self, now: float) -> dict:
        live = [o for o in self.orders.values() if o.status == OPEN]
        for order in live:
            self._cancel(order, now)
        return {"count": len(live)}

    def set_price(self, pair_id: str, price: float, now: float) -> None:
        """The market trades at `price`: resting limits it crosses fill at their limit."""
        pair = self.pair(pair_id)
        pair.price = price
        for order in list(self.orders.values()):
            if order.pair is pair and order.status == OPEN and _crosses(order, price):
                self._fill(order, order.price or price, MAKER_FEE, now)

    # --- reading ---------------------------------------------------------------------------

    def pair(self, name: str) -> FakePair:
        """A pair by its id or altname, as Kraken accepts either."""
        found = self.pairs.get(name) or next(
            (p for p in self.pairs.values() if p.altname == name), None
        )
        if found is None:
            raise KrakenError("EQuery:Unknown asset pair")
        return found

    def held(self) -> dict[str, float]:
        held: dict[str, float] = {}
        for o in self.orders.values():
            if o.status == OPEN:
                asset, amount = self._reservation(o.side, o.volume, o.price or 0.0, o.pair)
                held[asset] = held.get(asset, 0.0) + amount
        return held

    def free(self, asset: str) -> float:
        return self.balances.get(asset, 0.0) - self.held().get(asset, 0.0)

    def by_client_id(self, cl_ord_id: str) -> KrakenOrder | None:
        return next((o for o in self.orders.values() if o.cl_ord_id == cl_ord_id), None)

    # --- inside ----------------------------------------------------------------------------

    def _matching(self, params: dict, *, open_: bool) -> list[KrakenOrder]:
        cl_ord_id, userref = params.get("cl_ord_id"), params.get("userref")
        return [
            o
            for o in self.orders.values()
            if (o.status == OPEN) is open_
            and cl_ord_id in (None, o.cl_ord_id)
            and userref in (None, str(o.userref))
        ]

    def _limit(self, params: dict, pair: FakePair) -> float:
        if "price" not in params:
            raise KrakenError("EGeneral:Invalid arguments:price")
        problem = (
            f"EOrder:Invalid price:{pair.altname} price can only be specified up to "
            f"{pair.pair_decimals} decimals."
        )
        return _decimal(params["price"], pair.pair_decimals, problem)

    def _client_id(self, cl_ord_id: str | None) -> str | None:
        if cl_ord_id is None:
            return None
        if not (_UUID.fullmatch(cl_ord_id) or _FREE_TEXT.fullmatch(cl_ord_id)):
            raise KrakenError("EGeneral:Invalid arguments:cl_ord_id")
        if any(o.cl_ord_id == cl_ord_id and o.status == OPEN for o in self.orders.values()):
            raise KrakenError("EOrder:Duplicate order")
        return cl_ord_id

    @staticmethod
    def _reservation(side: str, volume: float, price: float, pair: FakePair) -> tuple[str, float]:
        if side == "buy":
            return pair.quote, volume * price * (1 + TAKER_FEE)
        return pair.base, volume

    def _fill(self, order: KrakenOrder, price: float, fee_rate: float, now: float) -> None:
        pair, cost = order.pair, order.volume * price
        fee = cost * fee_rate
        sign = 1 if order.side == "buy" else -1
        self.balances[pair.base] = self.balances.get(pair.base, 0.0) + sign * order.volume
        self.balances[pair.quote] = self.balances.get(pair.quote, 0.0) - sign * cost - fee
        order.status, order.vol_exec, order.cost, order.fee = CLOSED, order.volume, cost, fee
        order.closetm = now

    @staticmethod
    def _cancel(order: KrakenOrder, now: float) -> None:
        order.status, order.closetm, order.reason = CANCELED, now, "User requested"


def _decimal(text: str, decimals: int, problem: str) -> float:
    if len(text.partition(".")[2].rstrip("0")) > decimals:
        raise KrakenError(problem)
    try:
        return float(text)
    except ValueError:
        raise KrakenError(problem) from None


def _crosses(order: KrakenOrder, price: float) -> bool:
    if order.price is None:
        return True
    return price <= order.price if order.side == "buy" else price >= order.price


def _txid(n: int) -> str:
    """Kraken's order id shape: 6-5-6 upper-case letters and digits ("O01000-KRAKN-001000")."""
    return f"O{n:05d}-KRAKN-{n:06d}"
