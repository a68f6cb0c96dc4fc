"""A PNG as grey pixels, with the standard library only: enough to hand a screenshot of the QR
code, exactly as the browser drew it, to a QR reader (zxing-cpp) without an imaging library.
Handles what Chromium writes: 8-bit, not interlaced, grey / RGB / grey+alpha / RGBA."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


@dataclass(frozen=True)
class GreyImage:
    width: int
    height: int
    pixels: bytes  # one byte per pixel, row by row

    def view(self) -> memoryview:
        """The pixels shaped (height, width), as zxing-cpp reads a buffer."""
        return memoryview(self.pixels).cast("B", (self.height, self.width))


def grey(png: bytes) -> GreyImage:
    if not png.startswith(_SIGNATURE):
        raise ValueError("not a PNG")
    position, header, data = len(_SIGNATURE), b"", bytearray()
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        body = png[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            data += body
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour {colour}, interlace {interlace})")
    channels = _CHANNELS[colour]
    rows = _unfilter(zlib.decompress(bytes(data)), width * channels, height, channels)
    out = bytearray(width * height)
    for y, row in enumerate(rows):
        for x in range(width):
            pixel = row[x * channels : (x + 1) * channels]
            value = (
                pixel[0]
                if channels <= 2
                else (299 * pixel[0] + 587 * pixel[1] + 114 * pixel[2]) // 1000
            )
            if channels in (2, 4):  # composite on white
                alpha = pixel[-1]
                value = (value * alpha + 255 * (255 - alpha)) // 255
            out[y * width + x] = value
    return GreyImage(width, height, bytes(out))


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> list[bytes]:
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            corner = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
            elif kind != 0:
                raise ValueError(f"unknown PNG filter {kind}")
        rows.append(bytes(line))
        previous = line
    return rows


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c
