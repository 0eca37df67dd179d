"""/record: the candles and tickers the scans read go to disk at no request's cost, closed ones
only and each once, the switch survives a restart, and the recording replays through
`python -m chatbot backtest --data DATA_DIR/market`. Through the real python-telegram-bot
Application polling the loopback fake Bot API, in front of the engine on paper."""

from __future__ import annotations

import asyncio
import io
import itertools

from chatbot.__main__ import main
from chatbot.app import build
from chatbot.config import load_settings
from chatbot.console import Console
from sim.clock import FakeClock
from sim.faults import FaultyPaper
from tests.engine_support import make_rig
from tests.handlers_support import make_office
from tests.telegram_support import api_fixture, polling, say  # noqa: F401 (fixtures)
from trading.models import TIMEFRAME_SECONDS
from trading.recorder import MarketRecorder
from trading.store import Store
from trading.strategies.trend import TrendStrategy
from trading.venues.market_files import file_name, series_files

HOUR = 3600.0


def _rows(path) -> list[list[float]]:
    return [list(map(float, line.split(","))) for line in path.read_text().splitlines()[1:]]


async def test_record_on_writes_the_closed_candles_and_tickers_the_scans_read(api, tmp_path):
    root = tmp_path / "market"
    office = make_office(FakeClock(), recorder=lambda store: MarketRecorder(root, store))
    await office.start()
    office.rig.strategy.entries = ["BTC/USDT", "ETH/USDT"]
    try:
        async with polling(api, office):
            off = await say(api, "/record", "Recording")
            assert "Recording: off" in off.text and "Nothing recorded yet" in off.text
            await office.rig.cycles(2, step=HOUR)
            assert not root.exists()  # off: nothing written
            on = await say(api, "/record on", "Recording")
            assert "Recording is on" in on.text
            await office.rig.cycles(6, step=HOUR)
            shown = await say(api, "/record", "Recording")
            await say(api, "/record off", "Recording is off")
    finally:
        await office.close()
    folder = root / "paper"
    assert sorted(f.name for f in folder.iterdir()) == [
        "BTC_USDT-1h.csv", "ETH_USDT-1h.csv", "tickers",
    ]  # fmt: skip
    last_cycle = office.clock.time() - HOUR
    for symbol in ("BTC/USDT", "ETH/USDT"):
        opens = [row[0] / 1000 for row in _rows(folder / file_name(symbol, "1h"))]
        assert all(b - a == HOUR for a, b in itertools.pairwise(opens))  # each once, no gap
        assert opens[-1] + HOUR <= last_cycle  # closed by the last cycle that read it
        assert len(opens) >= 6
        tickers = _rows(folder / "tickers" / f"{symbol.replace('/', '_')}.csv")
        # one a cycle from the second on: held since the cycles before /record on, their first
        # candles came from the exits' read, after that cycle's scan had read the tickers
        assert len(tickers) == 5 and all(row[1] > 0 for row in tickers)
    assert "<b>Recording: on</b>" in shown.text
    assert "paper: 2 symbols (BTC/USDT, ETH/USDT), 1h, " in shown.text
    assert f"--data {root}" in shown.text


async def test_recording_asks_the_exchange_for_nothing_more(tmp_path):
    calls = []
    for on in (False, True):
        clock = FakeClock()
        store = Store()
        recorder = MarketRecorder(tmp_path / str(on), store)
        recorder.switch(on)
        rig = make_rig(clock, strategy=TrendStrategy(), store=store, tap=recorder.tap("paper"))
        await rig.cycles(30, step=300.0)
        await rig.trader.close()
        calls.append(dict(rig.paper.calls))
        assert bool(list((tmp_path / str(on)).rglob("*.csv"))) is on
    assert calls[0] == calls[1]


def test_the_switch_survives_a_restart(tmp_path):
    path = tmp_path / "bot.sqlite"
    with Store(path) as store:
        assert MarketRecorder(tmp_path, store).on is False
        MarketRecorder(tmp_path, store).switch(True)
    with Store(path) as store:
        assert MarketRecorder(tmp_path, store).on is True


async def test_a_write_that_fails_switches_recording_off_and_the_cycle_goes_on(tmp_path):
    blocked = tmp_path / "market"
    blocked.write_text("a file where the folder should be")
    store = Store()
    recorder = MarketRecorder(blocked, store)
    recorder.switch(True)
    rig = make_rig(FakeClock(), store=store, tap=recorder.tap("paper"))
    rig.strategy.entries = ["BTC/USDT"]
    await rig.cycles(2, step=HOUR)
    await rig.trader.close()
    assert "BTC/USDT" in rig.trader.book.positions  # the trading did not notice
    status = recorder.status()
    assert status.on is False and "Error" in (status.error or "")
    assert store.get_meta("recording") == "off"


async def test_what_was_recorded_replays_through_the_backtest(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    for name in ("STRATEGY", "EXCHANGES", "DRY_RUN"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "data" / "market"
    store = Store()
    recorder = MarketRecorder(root, store)
    recorder.switch(True)
    strategy = TrendStrategy()
    rig = make_rig(FakeClock(), strategy=strategy, store=store, tap=recorder.tap("paper"))
    await rig.cycles(12 * 24, step=300.0)  # a day of 5 m cycles
    await rig.trader.close()
    files, _ = series_files(root / "paper")
    assert {f.timeframe for f in files} == set(strategy.timeframes)
    for f in files:
        opens = [row[0] / 1000 for row in _rows(f.path)]
        assert opens == sorted(set(opens))
        assert opens[-1] + TIMEFRAME_SECONDS[f.timeframe] <= rig.clock.time()
    args = ["backtest", "--data", str(root), "--days", "0.5", "--results", str(tmp_path / "r")]
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out
    assert f"on paper ({len({f.symbol for f in files})} markets, {root / 'paper'})" in out


async def _console(bot, text: str) -> str:
    out = io.StringIO()
    await Console(bot.dispatcher, inp=io.StringIO(text), out=out).run()
    return out.getvalue()


async def _close(bot) -> None:
    for trader in bot.traders:
        await trader.close()
    await bot.http.aclose()
    bot.store.close()


async def test_the_bot_records_from_the_console_and_a_restart_continues(tmp_path):
    settings = load_settings({"DATA_DIR": str(tmp_path), "HEALTH_PORT": "off"})
    clock = FakeClock()
    bot = build(settings, [FaultyPaper(clock=clock, markets=12)], clock=clock, out=io.StringIO())
    try:
        said = await _console(bot, "/record on\n")
        assert "Recording is on" in said
        trader = bot.traders[0]
        await trader.start()
        for _ in range(3):
            await trader.run_cycle()
            clock.advance(300.0)
    finally:
        await _close(bot)
    files, _ = series_files(tmp_path / "market" / "paper")
    assert files and {f.timeframe for f in files} == set(TrendStrategy.timeframes)
    again = build(settings, [FaultyPaper(clock=clock, markets=12)], clock=clock, out=io.StringIO())
    try:
        said = await _console(again, "/record\n")
    finally:
        await _close(again)
    assert "Recording: on" in said and f"paper: {len({f.symbol for f in files})} symbols" in said
