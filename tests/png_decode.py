"""Reading back the PNGs handlers/png.py writes, so tests check pictures by their pixels."""

from __future__ import annotations

import struct
import zlib

from handlers.png import PNG_SIGNATURE


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, rgb) of a PNG written by `encode_png` (filter 0 only); checks every
    chunk's CRC. """
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    pos, width, height, idat = len(PNG_SIGNATURE), 0, 0, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(tag + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"bad CRC in {tag!r}")
        if tag == b"IHDR":
            width, height, depth, kind = struct.unpack(">IIBB", body[:10])
            if (depth, kind) != (8, 2):
                raise ValueError("only 8-bit RGB is supported")
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 3 + 1
    rows = [raw[y * stride : (y + 1) * stride] for y in range(height)]
    if any(row[:1] != b"\x00" for row in rows):
        raise ValueError("only filter type 0 is supported")
    return width, height, b"".join(row[1:] for row in rows)
