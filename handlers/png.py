"""A tiny RGB canvas and PNG encoder (zlib + struct), enough for an equity curve.

One picture a day does not justify matplotlib (tens of megabytes, a slow import): lines, filled
rectangles and an 8-bit RGB PNG are all /chart needs. The picture carries no text; the caption
of the Telegram message holds the numbers.
"""

from __future__ import annotations

import itertools
import struct
import zlib

Color = tuple[int, int, int]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Canvas:
    """A width x height RGB picture in memory; drawing clips to the canvas, (0, 0) is the
    top-left corner."""

    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"a canvas needs a positive size, not {width}x{height}")
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def get(self, x: int, y: int) -> Color:
        i = (y * self.width + x) * 3
        r, g, b = self.pixels[i : i + 3]
        return (r, g, b)

    def set(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.pixels[i : i + 3] = bytes(color)

    def fill(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill the rectangle with corners (x0, y0) and (x1, y1), both included."""
        left, right = max(0, min(x0, x1)), min(self.width - 1, max(x0, x1))
        top, bottom = max(0, min(y0, y1)), min(self.height - 1, max(y0, y1))
        if left > right or top > bottom:
            return
        run = bytes(color) * (right - left + 1)
        for y in range(top, bottom + 1):
            start = (y * self.width + left) * 3
            self.pixels[start : start + len(run)] = run

    def hline(self, x0: int, x1: int, y: int, color: Color) -> None:
        self.fill(x0, y, x1, y, color)

    def vline(self, x: int, y0: int, y1: int, color: Color) -> None:
        self.fill(x, y0, x, y1, color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, width: int = 1) -> None:
        """A straight line (Bresenham) drawn with a square brush `width` pixels wide."""
        half = (width - 1) // 2
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx = 1 if x0 < x1 else -1
        sy = 1 if y0 < y1 else -1
        err = dx + dy
        # Bounded by the segment's length: each step moves x or y closer to the end.
        for _ in range(dx - dy + 1):
            if width <= 1:
                self.set(x0, y0, color)
            else:
                self.fill(x0 - half, y0 - half, x0 - half + width - 1, y0 - half + width - 1, color)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def polyline(self, points: list[tuple[int, int]], color: Color, width: int = 1) -> None:
        if len(points) == 1:
            x, y = points[0]
            self.line(x, y, x, y, color, width)
        for (xa, ya), (xb, yb) in itertools.pairwise(points):
            self.line(xa, ya, xb, yb, color, width)

    def png(self) -> bytes:
        return encode_png(self.width, self.height, bytes(self.pixels))


def _chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def encode_png(width: int, height: int, rgb: bytes) -> bytes:
    """An 8-bit truecolour PNG of `rgb` (width * height * 3 bytes, rows top to bottom)."""
    stride = width * 3
    if len(rgb) != stride * height:
        raise ValueError(f"expected {stride * height} bytes of RGB, got {len(rgb)}")
    # Each scanline starts with its filter type; 0 (none) keeps the encoder trivial and zlib
    # still compresses a chart's large flat areas to a few kilobytes.
    raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )
