"""`python -m chatbot download`: the real ccxt binance client pages candle history from the
loopback fake of Binance into the market data layout, resumes without duplicates, picks the
largest markets, refuses what it cannot download by name, and the result replays."""

from __future__ import annotations

import io
import itertools
import time

import pytest

from chatbot.__main__ import main as chatbot_main
from chatbot.download import run
from sim.clock import FakeClock
from sim.fakes.binance import KLINES, SERVER_BUSY, FakeBinance, FakeMarket
from trading.venues.market_files import file_name, load_folder

VOLUMES = {"BTC": 9e8, "ETH": 5e8, "DOGE": 1e8, "SOL": 3e8}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh checkout's view: no .env, DATA_DIR in a temporary folder."""
    monkeypatch.chdir(tmp_path)
    for name in ("QUOTE_CURRENCY", "EXCHANGES", "DRY_RUN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
async def fake():
    markets = [FakeMarket(b, price=100.0, quote_volume=v) for b, v in VOLUMES.items()]
    async with FakeBinance(markets=markets) as server:
        yield server


async def _download(fake: FakeBinance, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await run(
        ["--exchange", "binance", *args],
        config=fake.ccxt_config(),
        clock=FakeClock(time.time()),
        out=out,
    )
    return code, out.getvalue()


def _times(folder, symbol: str, timeframe: str) -> list[int]:
    lines = (folder / file_name(symbol, timeframe)).read_text().splitlines()[1:]
    return [int(line.split(",")[0]) for line in lines]


async def test_the_top_markets_are_downloaded_closed_and_paged_past_one_answer(workdir, fake):
    code, out = await _download(fake, "--days", "4", "--top", "2", "--timeframes", "5m,1h")
    assert code == 0, out
    folder = workdir / "data" / "market" / "binance"
    assert sorted(p.name for p in folder.iterdir()) == [
        "BTC_USDT-1h.csv", "BTC_USDT-5m.csv", "ETH_USDT-1h.csv", "ETH_USDT-5m.csv",
    ]  # fmt: skip
    five = _times(folder, "BTC/USDT", "5m")
    assert len(five) >= 4 * 288 - 2  # more than Binance's 1000 a page: a second page was read
    assert all(b - a == 300_000 for a, b in itertools.pairwise(five))
    assert five[-1] / 1000 + 300 <= time.time()  # the candle still forming is not written
    assert fake.calls(KLINES) >= 2 * (2 + 1)
    assert "1/2 BTC/USDT: 5m +" in out and "2/2 ETH/USDT: 5m +" in out


async def test_a_second_run_resumes_after_the_last_stored_candle_without_duplicates(workdir, fake):
    assert (await _download(fake, "--days", "2", "--symbols", "SOL/USDT"))[0] == 0
    folder = workdir / "data" / "market" / "binance"
    path = folder / file_name("SOL/USDT", "5m")
    lines = path.read_text().splitlines(keepends=True)
    complete = _times(folder, "SOL/USDT", "5m")
    path.write_text("".join(lines[:-100]))  # an interrupted download
    before = fake.calls(KLINES)
    code, out = await _download(fake, "--days", "2", "--symbols", "SOL/USDT")
    assert code == 0 and "(resumed)" in out
    again = _times(folder, "SOL/USDT", "5m")
    assert len(again) == len(set(again)) and again[: len(complete)] == complete
    # one page for the 5m series from where it stopped; the 1h series was complete: none
    assert fake.calls(KLINES) - before == 1


async def test_a_busy_exchange_is_retried(workdir, fake):
    fake.fail_code(KLINES, **SERVER_BUSY, times=2)
    code, _ = await _download(fake, "--days", "1", "--symbols", "BTC/USDT", "--timeframes", "1h")
    assert code == 0
    assert len(_times(workdir / "data" / "market" / "binance", "BTC/USDT", "1h")) >= 23


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--timeframes", "5m,7m"], "'7m'"),
        (["--timeframes", "2h"], "'2h'"),  # binance offers it, the bot does not replay it
        (["--symbols", "BTC/USDT,NOPE/USDT"], "NOPE/USDT"),
    ],
)
async def test_what_cannot_be_downloaded_exits_2_naming_it(workdir, fake, capsys, args, named):
    code, _ = await _download(fake, "--days", "1", *args)
    assert code == 2
    assert named in capsys.readouterr().err
    assert fake.calls(KLINES) == 0


def test_an_unknown_exchange_exits_2_naming_it_before_any_request(workdir, capsys):
    assert chatbot_main(["download", "--exchange", "binanse"]) == 2
    assert "'binanse'" in capsys.readouterr().err
    assert chatbot_main(["download", "--exchange", "binance", "--top", "0"]) == 2


async def test_downloaded_candles_load_for_the_backtest(workdir, fake):
    assert (await _download(fake, "--days", "1", "--top", "3"))[0] == 0
    recorded = load_folder(workdir / "data" / "market" / "binance", quote="USDT")
    assert sorted(recorded.candles) == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert set(recorded.candles["SOL/USDT"]) == {"5m", "1h"}
