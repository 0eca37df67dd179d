"""Market data for the paper exchange: the `MarketFeed` interface and `SyntheticFeed`, an
offline universe whose prices are deterministic from a seed.

The universe (names, reference prices, volatilities, lot sizes, a few halted markets) is drawn
here; each market's price path is trading/venues/price_path.py's. What an exchange shows is read
from the paths:

    candles      1m from the path's hour detail, everything larger merged from 1m (completed
                 hours cached, and the completed candles of each timeframe's latest request);
                 the last candle is the one forming at clock.time(), interpolated within the
                 minute so prices move between candle closes
    tickers      the price at `now` and 24 h ago, bid and ask around it on the tick; the 24 h
                 quote volume summed per hour
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from trading.clock import Clock
from trading.errors import Rejected
from trading.models import TIMEFRAME_SECONDS, Candle, Market, Ticker
from trading.venues.price_path import Path, PricePaths, Spec

# Markets or candles drawn between two turns of the event loop: a feed shares the loop with the
# bot, and drawing a fresh market's hours takes about half a millisecond each.
_CHUNK = 16


class MarketFeed(Protocol):
    """Where a paper exchange gets market data: a SyntheticFeed offline, or a ccxt venue's
    public calls in DRY_RUN (live prices, simulated fills)."""

    has_bulk_tickers: bool

    async def load_markets(self) -> dict[str, Market]: ...

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]: ...

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[Candle]: ...


# Realistic majors first (reference prices of late 2023), then generated names.
_MAJORS = (
    ("BTC", 37_000.0), ("ETH", 2_000.0), ("SOL", 55.0), ("XRP", 0.6), ("BNB", 240.0),
    ("DOGE", 0.075), ("ADA", 0.37), ("TRX", 0.1), ("AVAX", 21.0), ("DOT", 5.2),
    ("LINK", 14.0), ("LTC", 70.0), ("ATOM", 9.5), ("UNI", 5.5), ("XLM", 0.12),
    ("NEAR", 1.8), ("APT", 7.5), ("FIL", 4.3), ("ARB", 1.1), ("OP", 1.6),
)  # fmt: skip
_ALWAYS_ACTIVE = 8  # the first markets are never halted
_INACTIVE_BLOCK = 20  # after them, one inactive market in every block of 20
_MINUTES_PER_YEAR = 525_600
MAX_CANDLES = 1000


@dataclass(slots=True)
class _Series:
    """One market: its price path, and what is cached of reading it."""

    path: Path
    hours: dict[int, Candle] = field(default_factory=dict)  # completed hour candles
    # (hour, its quote volume, that of 24 h before, the sum of the 23 hours between)
    window: tuple[int, float, float, float] | None = None
    # timeframe seconds -> {candle index: completed candle}, what the latest request read
    spans: dict[int, dict[int, Candle]] = field(default_factory=dict)


def _pow10(exponent: int) -> float:
    return float(f"1e{exponent}")


def _merge(ts: float, parts: Sequence[Candle]) -> Candle:
    return Candle(
        float(ts),
        parts[0].open,
        max(p.high for p in parts),
        min(p.low for p in parts),
        parts[-1].close,
        sum(p.volume for p in parts),
    )


class SyntheticFeed:
    """An offline universe of spot markets with deterministic 1-minute price paths.

    Every result depends only on (seed, markets, quote) and the clock's time, so two feeds built
    alike answer alike. `shock` moves one market's path from now on, for tests."""

    has_bulk_tickers = True

    def __init__(
        self, *, seed: int = 1, markets: int = 50, quote: str = "USDT", clock: Clock
    ) -> None:
        self._seed = seed
        self._quote = quote
        self._clock = clock
        self._markets: dict[str, Market] = {}
        self._specs: dict[str, Spec] = {}
        self._series: dict[str, _Series] = {}
        # Tickers read two hours of detail per market; room for an hour's turnover of them.
        self._lru_size = 4 * markets + 2_048
        self._paths = self._draw(int(clock.time() // 86_400))
        for index, base in enumerate(self._bases(markets)):
            self._add_market(index, base)

    def _draw(self, anchor_day: int) -> PricePaths:
        """The paths, chained from `anchor_day`, with nothing drawn yet."""
        return PricePaths(seed=self._seed, anchor_day=anchor_day, lru_size=self._lru_size)

    # -- the universe ---------------------------------------------------------------------

    def _bases(self, count: int) -> list[str]:
        bases = [base for base, _ in _MAJORS[:count]]
        taken = {*bases, *(b for b, _ in _MAJORS), self._quote}
        rng = random.Random(f"{self._seed}|names")
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        while len(bases) < count:
            name = "".join(rng.choice(letters) for _ in range(rng.choice((3, 4, 4, 5))))
            if name not in taken:
                taken.add(name)
                bases.append(name)
        return bases

    def _inactive(self, index: int) -> bool:
        if index < _ALWAYS_ACTIVE:
            return False
        block, offset = divmod(index - _ALWAYS_ACTIVE, _INACTIVE_BLOCK)
        return offset == random.Random(f"{self._seed}|inactive|{block}").randrange(_INACTIVE_BLOCK)

    def _add_market(self, index: int, base: str) -> None:
        symbol = f"{base}/{self._quote}"
        rng = random.Random(f"{self._seed}|{symbol}|spec")
        if index < len(_MAJORS):
            price = _MAJORS[index][1] * rng.uniform(0.9, 1.1)
            annual_vol = (0.45, 0.55)[index] if index < 2 else rng.uniform(0.6, 1.1)
            quote_volume = max(2e9 * 0.6**index, 5e6) * rng.uniform(0.7, 1.4)
            half_spread = rng.uniform(0.5, 2.0) / 20_000
        else:
            price = 10 ** rng.uniform(-4.0, 2.5)
            annual_vol = rng.uniform(0.7, 2.0)
            quote_volume = 10 ** rng.uniform(4.3, 8.0)  # about a fifth under 100,000
            half_spread = rng.uniform(3.0, 25.0) / 20_000
        step_exp = math.floor(math.log10(1.0 / price))
        amount_step = _pow10(step_exp) if step_exp < 0 else 1.0
        tick_exp = math.floor(math.log10(price)) - 4  # five significant digits
        self._markets[symbol] = Market(
            symbol=symbol,
            base=base,
            quote=self._quote,
            active=not self._inactive(index),
            min_amount=amount_step,
            min_cost=rng.choice((5.0, 10.0)),
            amount_step=amount_step,
            price_step=_pow10(tick_exp),
        )
        self._specs[symbol] = Spec(
            index=index,
            logp0=math.log(price),
            sigma=annual_vol / math.sqrt(_MINUTES_PER_YEAR),
            trend=rng.uniform(0.25, 0.8),
            hour_volume=quote_volume / 24.0 / price,
            half_spread=half_spread,
            tick=_pow10(tick_exp),
            tick_digits=max(0, -tick_exp),
        )

    def _get(self, symbol: str) -> _Series:
        series = self._series.get(symbol)
        if series is None:
            spec = self._specs.get(symbol)
            if spec is None:
                raise Rejected(f"unknown symbol {symbol}", venue="paper", call="market data")
            series = self._series[symbol] = _Series(Path(spec))
        return series

    # -- the feed interface -----------------------------------------------------------------

    async def load_markets(self) -> dict[str, Market]:
        return dict(self._markets)

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]:
        wanted = list(self._markets if symbols is None else symbols)
        now = self._clock.time()
        tickers = {}
        for i, symbol in enumerate(wanted):
            if i and i % _CHUNK == 0:
                await asyncio.sleep(0)
            tickers[symbol] = self._ticker(symbol, now)
        return tickers

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[Candle]:
        series = self._get(symbol)
        period = TIMEFRAME_SECONDS.get(timeframe)
        if period is None:
            raise Rejected(f"unsupported timeframe {timeframe}", venue="paper", call="fetch_ohlcv")
        now = self._clock.time()
        current = int(now // period)
        first = current - max(1, min(int(limit), MAX_CANDLES)) + 1
        done = series.spans.setdefault(period, {})
        candles, drawn = [], 0
        for p in range(first, current + 1):
            candle = done.get(p)
            if candle is None:
                drawn += 1
                if drawn % _CHUNK == 0:
                    await asyncio.sleep(0)
                candle = self._span(series, p * period, (p + 1) * period, now)
                if (p + 1) * period <= now:  # completed: it never changes again
                    done[p] = candle
            candles.append(candle)
        for p in [p for p in done if p < first]:
            del done[p]
        return candles

    # -- for tests and the paper exchange ------------------------------------------------------

    def price(self, symbol: str, at: float | None = None) -> float:
        """The mid price at `at` (default now), unrounded."""
        path = self._get(symbol).path
        return self._paths.price(path, self._clock.time() if at is None else at)

    def first_touch(self, symbol: str, level: float, since: float, until: float) -> Ticker | None:
        """The ticker at the first moment in [since, until] the mid price is at or below `level`,
        if there is one: where the path falls through `level`, or just after a shock that gaps
        below it. The log price is linear between minute boundaries and shocks, so those edges
        are all there is to check (candle wicks are drawn, not traded)."""
        path = self._get(symbol).path
        edges = {since, until, *(at for at, _ in path.shocks if since < at <= until)}
        edges.update(60.0 * m for m in range(math.floor(since / 60) + 1, math.ceil(until / 60)))
        target = math.log(level)
        previous: tuple[float, float] | None = None  # (edge, log price just after it)
        for edge in sorted(edges):
            if previous is not None:
                start, high = previous
                low = math.log(self._paths.price(path, edge, inclusive=False))
                if low <= target:  # fell through it: where, by the log-linear path
                    crossed = start + (edge - start) * (high - target) / (high - low)
                    return self._ticker(symbol, crossed)
            after = math.log(self._paths.price(path, edge))
            if after <= target:
                return self._ticker(symbol, edge)
            previous = (edge, after)
        return None

    def shock(self, symbol: str, pct: float) -> None:
        """Move the market's price path by `pct` percent (-10 = down 10 %) from now on."""
        if pct <= -100.0:
            raise ValueError(f"a shock of {pct} % would take the price to zero or below")
        self._get(symbol).path.shocks.append((self._clock.time(), 1.0 + pct / 100.0))

    # -- what a restart needs to draw the same paths ----------------------------------------------

    @property
    def identity(self) -> dict[str, object]:
        """What the universe is drawn from: another identity is another universe."""
        return {"seed": self._seed, "markets": len(self._markets), "quote": self._quote}

    def state(self) -> dict[str, object]:
        """The anchor day (paths chain from it, so it is fixed at the first start, not at every
        start) and the shocks; everything else is derived from the identity and cached."""
        shocks = {s: [list(x) for x in series.path.shocks] for s, series in self._series.items()}
        anchor_day = self._paths.anchor_day
        return {"anchor_day": anchor_day, "shocks": {s: x for s, x in shocks.items() if x}}

    def restore(self, state: dict) -> None:
        """Continue the paths `state()` described."""
        self._paths = self._draw(int(state["anchor_day"]))
        self._series.clear()
        for symbol, shocks in state["shocks"].items():
            self._get(symbol).path.shocks = [(float(at), float(k)) for at, k in shocks]

    # -- prices --------------------------------------------------------------------------------

    def _ticker(self, symbol: str, now: float) -> Ticker:
        series = self._get(symbol)
        spec = series.path.spec
        mid = self._paths.price(series.path, now)
        day_ago = self._paths.price(series.path, now - 86_400)
        tick, digits = spec.tick, spec.tick_digits
        bid = round(math.floor(mid * (1.0 - spec.half_spread) / tick) * tick, digits)
        ask = round(math.ceil(mid * (1.0 + spec.half_spread) / tick) * tick, digits)
        if ask <= bid:
            ask = round(bid + tick, digits)
        return Ticker(
            symbol=symbol,
            last=round(round(mid / tick) * tick, digits),
            bid=bid,
            ask=ask,
            quote_volume=self._quote_volume(series, now),
            change_pct=(mid / day_ago - 1.0) * 100.0,
            timestamp=now,
        )

    def _quote_volume(self, series: _Series, now: float) -> float:
        hour = math.floor(now / 3600)
        window = series.window
        if window is None or window[0] != hour:  # once an hour: tickers are read every minute
            between = sum(self._hour_qv(series, h) for h in range(hour - 23, hour))
            window = (hour, self._hour_qv(series, hour), self._hour_qv(series, hour - 24), between)
            series.window = window
        inside = (now - hour * 3600) / 3600  # of the current hour, the rest of the oldest
        return window[1] * inside + window[2] * (1 - inside) + window[3]

    def _hour_qv(self, series: _Series, hour: int) -> float:
        return self._paths.day(series.path, hour // 24).qv[hour % 24]

    # -- candles -------------------------------------------------------------------------------

    def _span(self, series: _Series, start: int, end: int, now: float) -> Candle:
        """The candle of [start, end): whole hours and minutes, then the forming minute."""
        parts: list[Candle] = []
        t = start
        stop = min(end, now)
        while t + 60 <= stop:
            if t % 3600 == 0 and t + 3600 <= stop:
                parts.append(self._hour_candle(series, t // 3600))
                t += 3600
            else:
                parts.append(self._minute(series, t // 60))
                t += 60
        if end > now:
            parts.append(self._minute(series, t // 60, until=now))
        return _merge(start, parts)

    def _hour_candle(self, series: _Series, hour: int) -> Candle:
        candle = series.hours.get(hour)
        if candle is None:
            minutes = [self._minute(series, hour * 60 + j) for j in range(60)]
            candle = series.hours[hour] = _merge(hour * 3600, minutes)
        return candle

    def _minute(self, series: _Series, minute: int, until: float | None = None) -> Candle:
        """A completed 1m candle, or the one forming at `until`."""
        detail = self._paths.detail(series.path, minute // 60)
        j = minute % 60
        start = minute * 60
        frac = 1.0 if until is None else (until - start) / 60
        lp_open = detail.lp[j]
        lp_close = lp_open + frac * (detail.lp[j + 1] - lp_open)
        f_open = f_close = 1.0
        path = series.path
        if path.shocks:
            f_open = self._paths.factor(path, start, inclusive=True)
            if until is None:
                f_close = self._paths.factor(path, start + 60, inclusive=False)
            else:
                f_close = self._paths.factor(path, until, inclusive=True)
        o = math.exp(lp_open)
        c = math.exp(lp_close)
        high = max(o, c) * math.exp(frac * detail.up[j]) * max(f_open, f_close)
        low = min(o, c) * math.exp(-frac * detail.dn[j]) * min(f_open, f_close)
        return Candle(float(start), o * f_open, high, low, c * f_close, detail.vol[j] * frac)
