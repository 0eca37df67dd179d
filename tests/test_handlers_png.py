"""The pure-Python PNG writer and the equity chart drawn with it."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import struct
import time
import zlib

import pytest

from handlers.chart import (
    DOWN,
    GRID,
    HEIGHT,
    MAX_POINTS,
    PALETTE,
    UP,
    WIDTH,
    Series,
    _columns,
    chart,
    equity_chart,
    parse_period,
)
from handlers.context import Context
from handlers.png import Canvas, encode_png
from handlers.reply import plain
from sim.clock import FakeClock
from tests.engine_support import make_rig
from tests.png_decode import decode_png
from trading.desk import Desk
from trading.store import Store


def test_encoded_png_has_valid_chunks_and_round_trips():
    canvas = Canvas(3, 2, (10, 20, 30))
    canvas.set(2, 1, (255, 0, 0))
    data = canvas.png()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR" and struct.unpack(">II", data[16:24]) == (3, 2)
    assert data.endswith(b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))
    width, height, rgb = decode_png(data)
    assert (width, height) == (3, 2)
    assert rgb[:3] == bytes((10, 20, 30)) and rgb[-3:] == bytes((255, 0, 0))


def test_a_corrupted_png_is_detected():
    data = bytearray(Canvas(4, 4).png())
    data[40] ^= 0xFF  # inside IDAT
    with pytest.raises(ValueError, match="CRC"):
        decode_png(bytes(data))


def test_encode_refuses_the_wrong_amount_of_pixels():
    with pytest.raises(ValueError):
        encode_png(2, 2, b"\x00" * 11)


def test_lines_cover_both_ends_and_clip_outside_the_canvas():
    canvas = Canvas(10, 10)
    canvas.line(0, 0, 9, 9, (0, 0, 0))
    assert canvas.get(0, 0) == canvas.get(9, 9) == canvas.get(5, 5) == (0, 0, 0)
    canvas.line(-50, 3, 50, 3, (1, 2, 3), width=3)  # clipped, no IndexError
    assert canvas.get(0, 2) == canvas.get(9, 4) == (1, 2, 3)
    canvas.fill(20, 20, 30, 30, (9, 9, 9))  # entirely outside: nothing
    assert b"\x09\x09\x09" not in canvas.pixels


def test_periods_parse_and_nonsense_is_refused():
    assert parse_period("24h") == 86400 and parse_period("90m") == 5400
    assert parse_period("2W") == 14 * 86400 and parse_period("all") is None
    for bad in ("3x", "h", "-1d", "0d", ""):
        with pytest.raises(ValueError):
            parse_period(bad)


def _pixels(png: bytes) -> set[tuple[int, int, int]]:
    width, height, rgb = decode_png(png)
    assert (width, height) == (WIDTH, HEIGHT)
    return {tuple(rgb[i : i + 3]) for i in range(0, len(rgb), 3)}


def test_a_rising_curve_is_drawn_green_on_a_grid():
    t0 = time.time()
    series = Series("paper:main", "USDT", ((t0, 100.0), (t0 + 60, 105.0), (t0 + 120, 110.0)))
    chart = equity_chart([series])
    colors = _pixels(chart.png)
    assert UP in colors and GRID in colors and DOWN not in colors
    assert "100.00 → 110.00 USDT" in chart.caption and "+10.00 %" in chart.caption


def test_several_accounts_get_their_own_colour_on_a_shared_percent_axis():
    t0 = time.time()
    a = Series("a", "USDT", ((t0, 100.0), (t0 + 60, 90.0)))
    b = Series("b", "EUR", ((t0, 50_000.0), (t0 + 60, 51_000.0)))
    chart = equity_chart([a, b])
    colors = _pixels(chart.png)
    assert PALETTE[0][1] in colors and PALETTE[1][1] in colors
    assert "a blue, b orange" in chart.caption and "50,000.00 → 51,000.00 EUR" in chart.caption


def test_nothing_to_draw_gives_none():
    t0 = time.time()
    assert equity_chart([]) is None
    assert equity_chart([Series("a", "USDT", ((t0, 1.0),))]) is None
    assert equity_chart([Series("a", "USDT", ((t0, 1.0), (t0, 2.0)))]) is None


def test_a_long_history_is_reduced_to_four_points_per_pixel_column():
    points = [(i // 100, i % 7) for i in range(10_000)]  # 100 columns, 100 points each
    kept = _columns(points)
    assert len(kept) == 400
    assert {x for x, _ in kept} == set(range(100))
    assert (0, 0) in kept and (0, 6) in kept  # each column's extremes survive


def test_a_month_of_minutely_equity_draws_quickly():
    t0 = time.time()
    points = tuple((t0 + 60 * i, 1000.0 + (i % 500)) for i in range(43_200))
    started = time.perf_counter()
    chart = equity_chart([Series("a", "USDT", points)])
    assert chart is not None and time.perf_counter() - started < 5.0
    assert len(chart.png) < 200_000


def test_a_thinned_series_reports_every_snapshot_in_its_caption():
    t0 = time.time()
    thinned = Series("a", "USDT", ((t0, 100.0), (t0 + 60, 120.0)), count=5000, low=80, high=150)
    made = equity_chart([thinned])
    assert made is not None
    assert "min 80.00" in made.caption and "max 150.00" in made.caption
    assert "5000 points" in made.caption


async def test_chart_of_100_000_snapshots_answers_while_the_loop_keeps_ticking(tmp_path):
    # 100,000 minutely snapshots (69 days). Before the fix /chart all read every row and drew
    # on the loop: about 0.6 s during which /kill, the notifier and the scheduler stood still.
    clock = FakeClock()
    path = tmp_path / "bot.sqlite3"
    Store(path).close()
    start = clock.time() - 100_000 * 60
    values = [10_000.0 + (i % 977) - (i % 313) for i in range(100_000)]
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO equity (account, at, equity, exposure) VALUES ('paper:main', ?, ?, 0)",
            ((start + 60 * i, v) for i, v in enumerate(values)),
        )
    db.close()
    store = Store(path)
    rig = make_rig(clock, store=store)
    ctx = Context(desk=Desk([rig.trader], store=store, clock=clock), clock=clock)

    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(3000):  # bounded: 30 s of ticks at most
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    beat = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0.03)
        began = time.perf_counter()
        reply = await asyncio.wait_for(chart(ctx, ["paper:main", "all"]), 20)
        ended = time.perf_counter()
        await asyncio.sleep(0.03)
    finally:
        beat.cancel()
        store.close()
    assert reply.ok and reply.photo is not None
    assert decode_png(reply.photo)[:2] == (WIDTH, HEIGHT)
    text = plain(reply.text)
    assert "over all time" in text and "100000 points" in text  # the caption counts them all
    assert f"min {min(values):,.2f}" in text and f"max {max(values):,.2f}" in text
    during = [t for t in ticks if began - 0.02 <= t <= ended + 0.02]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert len(during) >= 2 and max(gaps) < 0.3, max(gaps)


def test_chart_asks_the_store_for_a_bounded_curve():
    assert 300 <= MAX_POINTS <= WIDTH  # about one point per pixel column
