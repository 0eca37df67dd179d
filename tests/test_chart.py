"""/chart and /chart pnl: matplotlib pictures through the real python-telegram-bot Application
against the loopback fake Bot API, read back from their PNG header and pixels."""

from __future__ import annotations

import io
import struct
import subprocess
import sys

import pytest

from chatbot.console import KEEP_PICTURES, Console, save_picture
from handlers import plots
from handlers.reply import plain
from sim.clock import FakeClock
from sim.fakes.telegram_api import FakeTelegramAPI
from tests.handlers_support import make_office
from tests.telegram_support import CHAT, OWNER, api_fixture, polling  # noqa: F401 (fixture)
from tests.test_results import trade_history
from trading.modes import Mode

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZE = (1000, 500)  # plots.WIDTH x plots.HEIGHT inches at plots.DPI


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a PNG must open with."""
    assert png[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", png[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", png[16:24])


def pixels_near(png: bytes, hex_color: str, tolerance: int = 40) -> int:
    """How many pixels are within `tolerance` (per channel) of a colour."""
    from matplotlib.image import imread

    image = imread(io.BytesIO(png), format="png")[..., :3] * 255
    want = [int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]
    return int((abs(image - want) <= tolerance).all(axis=-1).sum())


@pytest.fixture
async def traded():
    o = await trade_history()
    yield o
    await o.close()


async def ask(api: FakeTelegramAPI, line: str, method: str):
    since = len(api.calls)
    api.queue_command(CHAT, OWNER, line)
    return await api.wait_for_call(method, lambda c: c.chat_id == CHAT, since=since)


# ---- through Telegram ----------------------------------------------------------------------


async def test_chart_is_sent_as_a_1000_by_500_png_with_the_periods_change(api, traded):
    async with polling(api, traded):
        photo = await ask(api, "/chart paper all", "sendPhoto")
    png = photo.files["photo"]
    assert png_size(png) == SIZE and 20_000 < len(png) < 400_000
    points = traded.store.equity("paper:main")
    first, last = points[0].equity, points[-1].equity
    caption = plain(photo.text)
    assert f"{first:,.2f} → {last:,.2f} USDT" in caption
    assert f"change {last - first:+,.2f}" in caption and "2 trades closed" in caption


async def test_chart_pnl_draws_the_daily_profit_that_adds_up_to_the_trades(api, traded):
    async with polling(api, traded):
        photo = await ask(api, "/chart pnl 7", "sendPhoto")
    assert png_size(photo.files["photo"]) == SIZE
    trades = traded.store.trades()
    total = sum(t.pnl for t in trades)
    caption = plain(photo.text)
    assert "Daily profit over the last 7 days" in caption
    assert f"total {total:+,.2f} USDT from {len(trades)} trades" in caption


@pytest.mark.parametrize(
    ("line", "answer"),
    [("/chart pnl 0", "DAYS is a whole number from 1 to 365, not 0"),
     ("/chart pnl lots", "not lots"),
     ("/chart pnl 7 8", "Too many arguments"),
     ("/chart paper 7d 8", "Too many arguments"),
     ("/chart 3x", "neither an account nor a period"),
     ("/chart nope pnl", "No account nope")],
)  # fmt: skip
async def test_bad_chart_arguments_are_answered_and_change_nothing(api, traded, line, answer):
    before = len(api.calls)
    async with polling(api, traded):
        reply = await ask(api, line, "sendMessage")
    assert answer in reply.text
    assert not any(c.method == "sendPhoto" for c in api.calls[before:])
    assert [t.mode for t in traded.desk.traders] == [Mode.RUNNING, Mode.RUNNING]


# ---- what the picture shows ----------------------------------------------------------------

HOUR = 3600.0


def minutes(start: float, count: int, equity: float, step: float = 0.0):
    return [(start + i * 60, equity + i * step) for i in range(count)]


def test_a_restart_is_a_gap_not_a_drop():
    before = minutes(0.0, 120, 1000.0, 0.1)
    after = minutes(5 * HOUR, 120, 1012.0, 0.1)
    assert plots.gaps([at for at, _ in before + after]) == [(before[-1][0], after[0][0])]
    assert plots.gaps([at for at, _ in minutes(0.0, 300, 1.0)]) == []
    # a few missed cycles of a slow exchange are no gap
    assert plots.gaps([0.0, 60.0, 120.0, 420.0, 480.0]) == []


async def test_chart_caption_says_how_long_the_bot_was_not_running():
    o = make_office(FakeClock())
    now = o.clock.time()
    for at, equity in minutes(now - 10 * HOUR, 60, 1000.0) + minutes(now - 3 * HOUR, 60, 1001.0):
        o.store.add_equity("paper:main", at, equity, 0.0)
    reply = await o.run("/chart 12h")
    await o.close()
    assert png_size(reply.photo) == SIZE
    text = plain(reply.text)
    assert "shaded: the bot was not running (6 h 1 min)" in text
    assert "1,000.00 → 1,001.00 USDT" in text and "min 1,000.00" in text


def test_a_losing_exit_is_marked_in_red_on_a_rising_curve():
    rising = minutes(0.0, 600, 1000.0, 0.5)
    bare = plots.equity_png([plots.Line("a", rising)], ylabel="equity (USDT)")
    marked = plots.equity_png(
        [
            plots.Line(
                "a", rising, (plots.Mark(3000.0, exit=False), plots.Mark(9000.0, True, False))
            )
        ],
        ylabel="equity (USDT)",
    )
    assert pixels_near(bare, plots.DOWN) == 0 and pixels_near(bare, plots.UP) > 500
    assert pixels_near(marked, plots.DOWN) > 20


def test_daily_bars_are_green_for_a_gain_and_red_for_a_loss():
    gains = plots.pnl_png([(d * 86400.0, 5.0) for d in range(5)], ylabel="profit (USDT)")
    mixed = plots.pnl_png([(d * 86400.0, (-1) ** d * 5.0) for d in range(5)], ylabel="USDT")
    assert png_size(gains) == SIZE
    assert pixels_near(gains, plots.DOWN) == 0 and pixels_near(gains, plots.UP) > 1000
    assert pixels_near(mixed, plots.DOWN) > 1000


# ---- console and start-up ------------------------------------------------------------------


async def test_the_console_saves_the_picture_under_its_folder_and_prints_the_path(traded, tmp_path):
    out = io.StringIO()
    console = Console(
        traded.dispatcher,
        inp=io.StringIO("/chart paper all\n"),
        out=out,
        pictures=tmp_path / "charts",
    )
    await console.run()
    saved = list((tmp_path / "charts").glob("*.png"))
    assert len(saved) == 1 and f"[picture saved: {saved[0]}]" in out.getvalue()
    assert png_size(saved[0].read_bytes()) == SIZE


def test_the_console_keeps_only_the_newest_pictures(tmp_path):
    for _ in range(KEEP_PICTURES + 3):
        save_picture(tmp_path, PNG_SIGNATURE)
    assert len(list(tmp_path.glob("chart-*.png"))) == KEEP_PICTURES


def test_starting_the_bot_does_not_import_matplotlib():
    probe = "import sys, chatbot.app, handlers.table; print('matplotlib' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
