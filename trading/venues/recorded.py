"""Recorded candles as a paper exchange's market (`MarketFeed`), for the backtest: the real
engine trades them on a clock the replay moves.

A moment `now` shows the market as it stood just before it, and nothing later: no answer
depends on a candle not closed by `now`.

    price        the close of the finest candle closed by `now`
    tickers      bid and ask `half_spread` around that price, on the market's tick; the 24 h
                 quote volume of the candles closed in the last day; the change against the
                 price a day ago
    candles      the timeframe's candles before the one forming, then the forming one merged
                 from the finest candles closed since it began (on the grid of the finest
                 timeframe the candle ending now: an exchange's forming candle in its last
                 moment, so its close is the price). A timeframe not recorded is merged from a
                 finer one that divides it
    stops        a resting stop triggers in the first candle closed since it was last looked at
                 whose low reaches it, at its trigger, or at the open when the candle opened
                 below it (a gap); limits alike from the high (sells) and low (buys). The
                 exchange looks before every call, so a stop and a target touched in one candle
                 go the pessimistic way: the stop fills before the bot sees a price

Markets are derived from the prices (5 significant digits of tick, a lot step under a unit of
quote, a 5-quote minimum), as the data carries none.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from itertools import accumulate

from trading.clock import Clock
from trading.errors import Rejected
from trading.models import TIMEFRAME_SECONDS, Candle, Market, Ticker

DAY = 86_400.0
MAX_CANDLES = 1000
MIN_COST = 5.0

Recording = Mapping[str, Mapping[str, Sequence[Candle]]]  # symbol -> timeframe -> oldest first


def recorded_span(candles: Recording) -> tuple[float, float]:
    """The first candle's open and the last candle's close, over every series."""
    ends = [
        (series[0].ts, series[-1].ts + TIMEFRAME_SECONDS[tf])
        for by_tf in candles.values()
        for tf, series in by_tf.items()
        if series
    ]
    if not ends:
        raise ValueError("no candles recorded")
    return min(a for a, _ in ends), max(b for _, b in ends)


class _Series:
    """One symbol's candles of one timeframe, as columns (bisect on open times)."""

    __slots__ = ("candles", "close", "high", "low", "open", "period", "qv", "ts", "volume")

    def __init__(self, period: int, candles: Sequence[Candle]) -> None:
        self.period = period
        self.candles = list(candles)
        self.ts = [c.ts for c in candles]
        self.open = [c.open for c in candles]
        self.high = [c.high for c in candles]
        self.low = [c.low for c in candles]
        self.close = [c.close for c in candles]
        self.volume = [c.volume for c in candles]
        self.qv = [0.0, *accumulate(c.close * c.volume for c in candles)]

    def closed_by(self, at: float) -> int:
        """How many candles closed at or before `at`."""
        return bisect_right(self.ts, at - self.period)

    def merged(self, period: int) -> _Series:
        """This series in candles of `period` seconds (a multiple of its own)."""
        out: list[Candle] = []
        for i, ts in enumerate(self.ts):
            start = ts - ts % period
            if out and out[-1].ts == start:
                last = out[-1]
                out[-1] = Candle(
                    start,
                    last.open,
                    max(last.high, self.high[i]),
                    min(last.low, self.low[i]),
                    self.close[i],
                    last.volume + self.volume[i],
                )
            else:
                out.append(self.candles[i]._replace(ts=start))
        return _Series(period, out)


def _pow10(exponent: int) -> float:
    return float(f"1e{exponent}")


def derived_market(symbol: str, price: float) -> Market:
    """Trading rules for a recorded symbol, from a price of it."""
    base, quote = symbol.split("/")
    step_exp = math.floor(math.log10(1.0 / price))
    amount_step = _pow10(step_exp) if step_exp < 0 else 1.0
    return Market(
        symbol=symbol,
        base=base,
        quote=quote,
        active=True,
        min_amount=amount_step,
        min_cost=MIN_COST,
        amount_step=amount_step,
        price_step=_pow10(math.floor(math.log10(price)) - 4),
    )


class RecordedFeed:
    """A MarketFeed over recorded candles: `{symbol: {timeframe: [Candle, ...]}}`, each series
    oldest first. Every answer depends only on the data and `clock.time()`."""

    has_bulk_tickers = True

    def __init__(
        self,
        candles: Recording,
        *,
        clock: Clock,
        half_spread: float = 0.0005,
    ) -> None:
        self._clock = clock
        self._half_spread = half_spread
        self._series: dict[str, dict[int, _Series]] = {}
        self._finest: dict[str, _Series] = {}
        self._markets: dict[str, Market] = {}
        self._tickers: dict[str, Ticker | None] = {}  # of the moment `_tickers_at`
        self._tickers_at = math.nan
        for symbol in sorted(candles):
            by_period = {
                TIMEFRAME_SECONDS[tf]: _Series(TIMEFRAME_SECONDS[tf], series)
                for tf, series in candles[symbol].items()
                if series
            }
            if not by_period:
                continue
            self._series[symbol] = by_period
            finest = self._finest[symbol] = by_period[min(by_period)]
            self._markets[symbol] = derived_market(symbol, finest.close[0])


    async def load_markets(self) -> dict[str, Market]:
        return dict(self._markets)

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]:
        now = self._clock.time()
        if now != self._tickers_at:  # a cycle asks more than once at one moment
            self._tickers_at, self._tickers = now, {}
        wanted = self._markets if symbols is None else symbols
        out = {}
        for symbol in wanted:
            if symbol not in self._tickers:
                self._tickers[symbol] = self._ticker(symbol, now)
            ticker = self._tickers[symbol]
            if ticker is not None:
                out[symbol] = ticker
        return out

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[Candle]:
        period = TIMEFRAME_SECONDS.get(timeframe)
        series = self._timeframe(symbol, period, timeframe)
        now = self._clock.time()
        forming_start = now - (now % series.period or series.period)
        end = series.closed_by(forming_start)
        count = max(1, min(int(limit), MAX_CANDLES))
        out = series.candles[max(0, end - count + 1) : end]
        forming = self._forming(symbol, forming_start, now)
        if forming is not None:
            out.append(forming)
        return out[-count:]

    # -- the price path the paper exchange's engine sweeps ------------------------------------

    def price(self, symbol: str, at: float | None = None) -> float:
        """The price at `at` (default now)."""
        price = self._price(self._get(symbol), self._clock.time() if at is None else at)
        if price is None:
            raise Rejected(f"no price for {symbol} yet", venue="replay", call="price")
        return price

    def first_touch(self, symbol: str, level: float, since: float, until: float) -> Ticker | None:
        """A sell stop at `level`: the market at the first touch in a candle closed in
        (since, until], if one reached it."""
        return self.first_reach(symbol, level, False, since, until)

    def first_reach(
        self, symbol: str, level: float, rising: bool, since: float, until: float
    ) -> Ticker | None:
        """The market at the first candle closed in (since, until] whose high (`rising`) or low
        reached `level`: at `level`, or at the open when it opened past it."""
        s = self._get(symbol)
        for i in range(s.closed_by(since), s.closed_by(until)):
            if rising and s.high[i] >= level:
                at = max(s.open[i], level)
            elif not rising and s.low[i] <= level:
                at = min(s.open[i], level)
            else:
                continue
            return Ticker(symbol, at, at, at, 0.0, 0.0, s.ts[i] + s.period)
        return None

    # -- reading ------------------------------------------------------------------------------

    def _get(self, symbol: str) -> _Series:
        series = self._finest.get(symbol)
        if series is None:
            raise Rejected(f"unknown symbol {symbol}", venue="replay", call="market data")
        return series

    def _timeframe(self, symbol: str, period: int | None, timeframe: str) -> _Series:
        by_period = self._series.get(symbol)
        if by_period is None:
            raise Rejected(f"unknown symbol {symbol}", venue="replay", call="fetch_ohlcv")
        if period is not None and period not in by_period:
            finer = [p for p in by_period if period % p == 0]
            if finer:
                by_period[period] = by_period[max(finer)].merged(period)
        if period is None or period not in by_period:
            missing = f"timeframe {timeframe} of {symbol} not recorded"
            raise Rejected(missing, venue="replay", call="fetch_ohlcv")
        return by_period[period]

    @staticmethod
    def _price(s: _Series, at: float) -> float | None:
        i = s.closed_by(at) - 1
        return s.close[i] if i >= 0 else None

    def _forming(self, symbol: str, start: float, now: float) -> Candle | None:
        f = self._finest[symbol]
        lo, hi = bisect_left(f.ts, start), f.closed_by(now)
        if lo >= hi:  # nothing traded since it began: flat at the last price
            price = self._price(f, now)
            return None if price is None else Candle(start, price, price, price, price, 0.0)
        return Candle(
            start,
            f.open[lo],
            max(f.high[lo:hi]),
            min(f.low[lo:hi]),
            f.close[hi - 1],
            math.fsum(f.volume[lo:hi]),
        )

    def _ticker(self, symbol: str, now: float) -> Ticker | None:
        f = self._get(symbol)
        price = self._price(f, now)
        if price is None:
            return None
        day_ago = self._price(f, now - DAY) or f.open[0]
        tick = self._markets[symbol].price_step
        digits = max(0, -math.floor(math.log10(tick)))
        bid = round(math.floor(price * (1 - self._half_spread) / tick) * tick, digits)
        ask = round(math.ceil(price * (1 + self._half_spread) / tick) * tick, digits)
        if ask <= bid:
            ask = round(bid + tick, digits)
        day = f.qv[f.closed_by(now)] - f.qv[f.closed_by(now - DAY)]
        return Ticker(
            symbol=symbol,
            last=round(round(price / tick) * tick, digits),
            bid=bid,
            ask=ask,
            quote_volume=day,
            change_pct=(price / day_ago - 1.0) * 100.0,
            timestamp=now,
        )
