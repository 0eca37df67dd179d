"""The market data of the fake Binance (sim/fakes/binance.py): exchangeInfo, the 24 h tickers and
the klines, with Binance spot's own fields, from the fake's markets and its server clock.

It stands apart from the server (routing, scripted failures, signatures) and from the account
side (sim/fakes/binance_orders.py) because it only answers the public endpoints and keeps no
state of its own; the websocket fake (sim/fakes/binance_ws.py) builds its ticker events from the
same `ticker`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from sim.fakes.binance_orders import FakeMarket, SpotBook

INTERVAL_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}


class MarketData:
    """The public endpoints' answers for the markets of `book`, at the time `server_ms` says."""

    def __init__(self, book: SpotBook, server_ms: Callable[[], int]) -> None:
        self.book = book
        self.server_ms = server_ms

    def exchange_info(self, params: dict) -> dict:
        return {
            "timezone": "UTC",
            "serverTime": self.server_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [_symbol_info(m) for m in self.book.markets.values()],
        }

    def ticker_24hr(self, params: dict) -> dict | list:
        if "symbol" in params:
            return self.ticker(self.book.market(params["symbol"]))
        wanted = set(json.loads(params["symbols"])) if "symbols" in params else None
        return [
            self.ticker(m) for m in self.book.markets.values() if wanted is None or m.id in wanted
        ]

    def ticker(self, m: FakeMarket) -> dict:
        now = self.server_ms()
        tick = float(m.tick_size)
        open_price = m.price / (1 + m.change_pct / 100)
        return {
            "symbol": m.id,
            "priceChange": f"{m.price - open_price:.8f}",
            "priceChangePercent": f"{m.change_pct:.3f}",
            "weightedAvgPrice": f"{m.price:.8f}",
            "lastPrice": f"{m.price:.8f}",
            "bidPrice": f"{m.price - tick:.8f}",
            "askPrice": f"{m.price + tick:.8f}",
            "openPrice": f"{open_price:.8f}",
            "highPrice": f"{m.price * 1.02:.8f}",
            "lowPrice": f"{open_price * 0.98:.8f}",
            "volume": f"{m.quote_volume / m.price:.8f}",
            "quoteVolume": f"{m.quote_volume:.8f}",
            "openTime": now - 86_400_000,
            "closeTime": now,
            "count": 1000,
        }

    def klines(self, params: dict) -> list[list]:
        """Binance's paging: at most `limit` (default 500, at most 1000) candles from the first
        whose open is at or after `startTime` (without it: the last ones), none opening after
        `endTime` or later than now; the last one is the candle still forming."""
        m = self.book.market(params["symbol"])
        step = INTERVAL_SECONDS[params["interval"]] * 1000
        limit = min(int(params.get("limit", "500")), 1000)
        last_open = self.server_ms() // step * step
        if "endTime" in params:
            last_open = min(last_open, int(params["endTime"]) // step * step)
        if "startTime" in params:
            first = -(-int(params["startTime"]) // step) * step
            opens = range(first, min(last_open, first + (limit - 1) * step) + 1, step)
        else:
            opens = range(last_open - (limit - 1) * step, last_open + 1, step)
        return [_kline(m.price, t, step) for t in opens]


def _kline(price: float, t: int, step: int) -> list:
    """One candle of a market, deterministic from its open time."""
    wave = 1 + 0.01 * math.sin(t / step / 7)
    o, c = price * wave, price * (1 + 0.01 * math.sin((t + step) / step / 7))
    hi, lo = max(o, c) * 1.001, min(o, c) * 0.999
    prices = [f"{x:.8f}" for x in (o, hi, lo, c)]
    return [t, *prices, "12.5", t + step - 1, "1000.0", 10, "6.0", "500.0", "0"]


def _symbol_info(m: FakeMarket) -> dict:
    return {
        "symbol": m.id,
        "status": m.status,
        "baseAsset": m.base,
        "baseAssetPrecision": 8,
        "quoteAsset": m.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": m.tick_size,
                "maxPrice": "1000000.00",
                "tickSize": m.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": m.min_qty,
                "maxQty": "9000000.00",
                "stepSize": m.step_size,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": m.min_notional,
                "applyMinToMarket": True,
                "maxNotional": "9000000.00",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
    }
