"""The random process behind the synthetic markets: one price path per market, deterministic
from a seed.

A path is built in two layers, each generated lazily and seeded by (seed, market, position)
alone, so the universe is the same whatever order markets are asked in and a 2,000-market screen
only pays for what it reads:

    day blocks   24 hourly log returns with regimes (trend up, trend down, calm, noisy) that
                 switch at random, hourly volumes; chained forward and backward from an anchor
                 day, so history reaches back as far as anyone asks
    hour detail  a 1-minute random walk pinned to the hour's return (a Brownian bridge), minute
                 volumes that add up to the hour's, wicks; kept in a bounded LRU

The price at any moment is log-linear between minute boundaries, times the shocks applied
before it. Apart from trading/venues/market_sim.py, which shows these paths as an exchange
would (markets, tickers, candles): this module draws them, that one reads them.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field

# regime -> (drift sign, volatility multiplier); weights of drawing it
_REGIMES = ((1.0, 1.0), (-1.0, 1.0), (0.0, 0.6), (0.0, 1.6))
_REGIME_WEIGHTS = (0.27, 0.23, 0.3, 0.2)
_SWITCH_PER_HOUR = 0.1


@dataclass(frozen=True, slots=True)
class Spec:
    """What never changes about one market's price process."""

    index: int
    logp0: float  # log price at the anchor day's start
    sigma: float  # per-minute volatility of log price
    trend: float  # hourly drift in a trend regime, in hourly sigmas
    hour_volume: float  # typical base volume per hour
    half_spread: float  # fraction of price
    tick: float
    tick_digits: int


@dataclass(slots=True)
class Day:
    """24 hours of one market at hourly resolution; cum[i] is the log price at hour i's start."""

    cum: array
    ret: array
    sig: array  # per-minute sigma within each hour
    vol: array  # base volume per hour
    qv: array  # quote volume per hour (volume at the hour's mid price)


@dataclass(frozen=True, slots=True)
class Detail:
    lp: array  # 61 log prices at minute boundaries
    vol: array  # 60 minute volumes
    up: array  # 60 upper wicks, log units
    dn: array  # 60 lower wicks, log units


@dataclass(slots=True)
class Path:
    """One market's path: its spec, the day blocks drawn so far, the shocks applied to it."""

    spec: Spec
    days: dict[int, Day] = field(default_factory=dict)
    shocks: list[tuple[float, float]] = field(default_factory=list)  # (at, factor)


class PricePaths:
    """Draws the paths of one universe (`seed`) around its anchor day, caching hour details."""

    def __init__(self, *, seed: int, anchor_day: int, lru_size: int) -> None:
        self._seed = seed
        self.anchor_day = anchor_day
        self._rng = random.Random()  # reseeded before every use: order never matters
        self._lru: OrderedDict[tuple[int, int], Detail] = OrderedDict()
        self._lru_size = lru_size

    def price(self, path: Path, at: float, *, inclusive: bool = True) -> float:
        """The mid price at `at`: after a shock made at that moment, or (inclusive=False) just
        before it."""
        minute = math.floor(at / 60)
        detail = self.detail(path, minute // 60)
        j = minute % 60
        frac = (at - minute * 60) / 60
        log_price = detail.lp[j] + frac * (detail.lp[j + 1] - detail.lp[j])
        return math.exp(log_price) * self.factor(path, at, inclusive=inclusive)

    @staticmethod
    def factor(path: Path, at: float, *, inclusive: bool) -> float:
        """What the shocks before `at` (and, inclusive, at it) multiply the price by."""
        factor = 1.0
        for when, k in path.shocks:
            if when < at or (inclusive and when == at):
                factor *= k
        return factor

    def detail(self, path: Path, hour: int) -> Detail:
        key = (path.spec.index, hour)
        detail = self._lru.get(key)
        if detail is not None:
            self._lru.move_to_end(key)
            return detail
        day = self.day(path, hour // 24)
        i = hour % 24
        base, ret, sig = day.cum[i], day.ret[i], day.sig[i]
        rng = self._rng
        rng.seed(f"{self._seed}|{path.spec.index}|h{hour}")
        gauss, uniform = rng.gauss, rng.random
        walk = [0.0] * 61
        acc = 0.0
        for j in range(1, 61):
            acc += gauss(0.0, sig)
            walk[j] = acc
        pull = (acc - ret) / 60  # pins the walk to the hour's return: a Brownian bridge
        weights = [0.4 + uniform() for _ in range(60)]
        scale = day.vol[i] / sum(weights)
        detail = Detail(
            lp=array("d", [base + w - j * pull for j, w in enumerate(walk)]),
            vol=array("d", [w * scale for w in weights]),
            up=array("d", [1.2 * sig * uniform() for _ in range(60)]),
            dn=array("d", [1.2 * sig * uniform() for _ in range(60)]),
        )
        self._lru[key] = detail
        if len(self._lru) > self._lru_size:
            self._lru.popitem(last=False)
        return detail

    def day(self, path: Path, day: int) -> Day:
        """Day blocks chain from the anchor day outwards, so each is built once, in order."""
        block = path.days.get(day)
        if block is not None:
            return block
        step = 1 if day >= self.anchor_day else -1
        first = day
        while first != self.anchor_day and first - step not in path.days:
            first -= step
        for d in range(first, day + step, step):
            path.days[d] = self._make_day(path, d, step)
        return path.days[day]

    def _make_day(self, path: Path, day: int, step: int) -> Day:
        spec = path.spec
        rng = self._rng
        rng.seed(f"{self._seed}|{spec.index}|d{day}")
        hour_sigma = spec.sigma * math.sqrt(60)
        regime = rng.choices(range(len(_REGIMES)), _REGIME_WEIGHTS)[0]
        ret, sig, vol = array("d"), array("d"), array("d")
        for _ in range(24):
            if rng.random() < _SWITCH_PER_HOUR:
                regime = rng.choices(range(len(_REGIMES)), _REGIME_WEIGHTS)[0]
            drift, vol_mult = _REGIMES[regime]
            z = rng.gauss(0.0, 1.0)
            ret.append(hour_sigma * (drift * spec.trend + vol_mult * z))
            sig.append(spec.sigma * vol_mult)
            vol.append(spec.hour_volume * math.exp(rng.gauss(0.0, 0.35)) * (0.6 + 0.4 * abs(z)))
        if day == self.anchor_day:
            start = spec.logp0
        elif step == 1:
            start = path.days[day - 1].cum[24]
        else:
            start = path.days[day + 1].cum[0] - sum(ret)
        cum = array("d", [start])
        for r in ret:
            cum.append(cum[-1] + r)
        qv = array("d", [v * math.exp(cum[i] + ret[i] / 2) for i, v in enumerate(vol)])
        return Day(cum=cum, ret=ret, sig=sig, vol=vol, qv=qv)
