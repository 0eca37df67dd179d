from collections import Counter

import pytest

from sim.clock import FakeClock
from trading.connector import Connector
from trading.models import Candle, Position, Ticker
from trading.scanner import Scanner
from trading.strategies import (
    Signal,
    UnknownStrategy,
    available_strategies,
    load_strategy,
)
from trading.strategies.trend import TrendParams, TrendStrategy, atr, ema, rsi
from trading.venues.paper import PaperExchange

T0 = 1_700_000_000.0


def series(closes: list[float], step: float, wick: float = 0.002) -> list[Candle]:
    """Candles from closes: each opens at the previous close, wicks a fraction beyond."""
    candles, prev = [], closes[0]
    for i, close in enumerate(closes):
        high = max(prev, close) * (1 + wick)
        low = min(prev, close) * (1 - wick)
        candles.append(Candle(T0 + i * step, prev, high, low, close, 1_000.0))
        prev = close
    return candles


def zigzag(start: float, n: int, up: float, down: float, pattern: int = 3) -> list[float]:
    """`pattern - 1` steps up by `up`, then one step down by `down` (fractions), repeated;
    ends on an up step so the forming candle is the freshest high."""
    closes, price = [], start
    for i in range(n):
        last = i == n - 1
        price *= 1 - down if (i % pattern == pattern - 1 and not last) else 1 + up
        closes.append(price)
    return closes


def uptrend() -> dict[str, list[Candle]]:
    hourly = series(zigzag(100.0, 50, up=0.012, down=0.01), 3600)
    price = hourly[-1].close
    fast = series(zigzag(price / 1.05, 50, up=0.0015, down=0.0015), 300, wick=0.0005)
    return {"1h": hourly, "5m": fast}


def downtrend() -> dict[str, list[Candle]]:
    hourly = series(zigzag(100.0, 50, up=-0.012, down=-0.01), 3600)
    fast = series(zigzag(60.0, 50, up=-0.0015, down=-0.0015), 300)
    return {"1h": hourly, "5m": fast}


def flat() -> dict[str, list[Candle]]:
    closes = [100.0 * (1.004 if i % 2 else 0.996) for i in range(50)]
    return {"1h": series(closes, 3600), "5m": series(closes, 300)}


def ticker(change: float, volume: float = 1e6, spread: float = 0.001) -> Ticker:
    last = 100.0
    return Ticker(
        "X/USDT", last, last * (1 - spread / 2), last * (1 + spread / 2), volume, change, T0
    )


def held(price: float) -> Position:
    return Position("paper:main", "X/USDT", 1.0, price, T0, price * 0.95, price * 1.1)


@pytest.fixture
def trend() -> TrendStrategy:
    return TrendStrategy()


def test_uptrend_with_healthy_momentum_gives_a_signal(trend):
    candles = uptrend()
    signal = trend.entry("X/USDT", candles)
    assert isinstance(signal, Signal)
    assert signal.score > 0
    assert "trend" in signal.reason


def test_signal_levels_are_sane_and_reward_exceeds_risk(trend):
    candles = uptrend()
    price = candles["5m"][-1].close
    signal = trend.entry("X/USDT", candles)
    assert signal is not None
    assert signal.stop_loss < price < signal.take_profit
    assert signal.take_profit - price > price - signal.stop_loss
    risk_pct = (price - signal.stop_loss) / price
    assert TrendParams().min_stop_pct <= risk_pct <= TrendParams().max_stop_pct


def test_downtrend_gives_no_signal(trend):
    assert trend.entry("X/USDT", downtrend()) is None


def test_flat_noisy_market_gives_no_signal(trend):
    assert trend.entry("X/USDT", flat()) is None


def test_overbought_momentum_gives_no_signal(trend):
    candles = uptrend()
    price = candles["1h"][-1].close
    candles["5m"] = series([price * 1.002**i for i in range(50)], 300)  # RSI 100: exhausted
    assert trend.entry("X/USDT", candles) is None


def test_trend_without_a_fresh_breakout_gives_no_signal(trend):
    candles = uptrend()
    fast = candles["5m"]
    last_hour_high = max(c.high for c in fast[-13:-1])
    fast[-1] = fast[-1]._replace(close=last_hour_high * 0.999)
    assert trend.entry("X/USDT", candles) is None
    anywhere_in_trend = TrendStrategy(TrendParams(require_breakout=False))
    assert anywhere_in_trend.entry("X/USDT", candles) is not None


def test_too_little_history_gives_no_signal(trend):
    candles = uptrend()
    assert trend.entry("X/USDT", {"1h": candles["1h"][-20:], "5m": candles["5m"]}) is None
    assert trend.entry("X/USDT", {"1h": candles["1h"]}) is None


def test_quiet_market_gets_the_minimum_stop_distance():
    candles = uptrend()
    price = candles["5m"][-1].close
    strategy = TrendStrategy(TrendParams(stop_atr=0.01, target_atr=0.02, min_spread_atr=0.0))
    signal = strategy.entry("X/USDT", candles)
    assert signal is not None
    assert signal.stop_loss == pytest.approx(price * (1 - 0.01))
    assert signal.take_profit == pytest.approx(price * (1 + 0.02))


def test_exit_signal_when_the_hourly_trend_turns_down(trend):
    candles = downtrend()
    reason = trend.exit(held(90.0), candles, candles["5m"][-1].close)
    assert reason == "1h trend turned down"


def test_no_exit_signal_while_the_hourly_trend_holds(trend):
    candles = uptrend()
    assert trend.exit(held(100.0), candles, candles["5m"][-1].close) is None


def test_no_exit_signal_without_enough_history(trend):
    candles = downtrend()
    assert trend.exit(held(90.0), {"1h": candles["1h"][:10]}, 50.0) is None


def test_prescreen_skips_falling_spiking_and_wide_spread_markets(trend):
    assert trend.prescreen(ticker(-2.0)) is None
    assert trend.prescreen(ticker(0.0)) is None
    assert trend.prescreen(ticker(40.0)) is None  # parabolic spike
    assert trend.prescreen(ticker(5.0, spread=0.05)) is None
    assert trend.prescreen(ticker(5.0, volume=0.0)) is None


def test_prescreen_prefers_steady_rise_and_volume(trend):
    steady = trend.prescreen(ticker(6.0))
    jumpy = trend.prescreen(ticker(22.0))
    thin = trend.prescreen(ticker(6.0, volume=1e4))
    small = trend.prescreen(ticker(1.0))
    assert None not in (steady, jumpy, thin, small)
    assert steady > jumpy
    assert steady > thin
    assert steady > small


def test_indicators_on_known_series():
    assert ema([5.0] * 10, 3) == [5.0] * 10
    assert ema([], 3) == []
    assert rsi([float(i) for i in range(30)]) == 100.0
    assert rsi([float(30 - i) for i in range(30)]) == pytest.approx(0.0)
    assert rsi([1.0, 2.0]) == 50.0  # no history yet
    bars = [Candle(T0 + i, 10.0, 11.0, 9.0, 10.0, 1.0) for i in range(20)]
    assert atr(bars) == pytest.approx(2.0)


def test_load_strategy_by_name_and_list_available():
    assert "trend" in available_strategies()
    assert "base" not in available_strategies()
    strategy = load_strategy("trend")
    assert strategy.name == "trend"
    assert strategy.timeframes == ("5m", "1h")
    with pytest.raises(UnknownStrategy, match=r"available: .*trend"):
        load_strategy("nope")


async def trade_on_paper(days: float, cycle_seconds: float) -> Counter:
    """A minimal trader on the paper markets: 8 slots, stop / target checked each cycle against
    the bid, the strategy's exit signal, a 30 min re-entry cooldown. Counts what happened."""
    clock = FakeClock()
    paper = PaperExchange(clock=clock, markets=50, seed=1, rate_limit=0)
    connector = Connector(paper, clock=clock)
    await connector.load_markets()
    strategy = load_strategy("trend")
    scanner = Scanner(connector, strategy, quote="USDT", min_quote_volume=100_000)
    held: dict[str, Position] = {}
    cooldown: dict[str, float] = {}
    seen = Counter()
    end = clock.time() + days * 86_400
    while clock.time() < end:  # bounded: the clock advances every turn
        now = clock.time()
        resting = {s for s, until in cooldown.items() if until > now}
        scan = await scanner.scan(exclude=set(held) | resting, budget=20)
        for symbol, position in list(held.items()):
            bid = scan.tickers[symbol].bid
            if bid <= position.stop_loss:
                seen["stop-loss"] += 1
            elif bid >= position.take_profit:
                seen["take-profit"] += 1
            elif strategy.exit(position, await scanner.candles_for(symbol), bid):
                seen["signal exit"] += 1
            else:
                continue
            del held[symbol]
            cooldown[symbol] = now + 1_800
        for c in scan.candidates[: 8 - len(held)]:
            assert c.signal.stop_loss < c.ticker.ask < c.signal.take_profit
            held[c.symbol] = Position(
                "paper:main", c.symbol, 1.0, c.ticker.ask, now, c.signal.stop_loss,
                c.signal.take_profit,
            )  # fmt: skip
            seen["entry"] += 1
        clock.advance(cycle_seconds)
    return seen


async def test_trades_a_handful_of_times_a_day_on_paper_markets_hitting_stops_and_targets():
    seen = await trade_on_paper(days=1.0, cycle_seconds=900)
    assert 3 <= seen["entry"] <= 30
    assert seen["stop-loss"] >= 1
    assert seen["take-profit"] >= 1
