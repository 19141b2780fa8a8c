"""A tiny line-chart plotter that writes PNG with the standard library only (zlib + struct).

matplotlib is not a dependency of the project, and one chart does not justify installing it from
the network on every machine that runs `make bench`; this draws axes, ticks, lines with markers,
dashed reference lines and a legend, with a built-in 5x7 pixel font.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
GREY: Color = (200, 200, 200)
PALETTE: tuple[Color, ...] = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189))

# 5x7 glyphs: seven rows per character, each row's low 5 bits are pixels (bit 4 = leftmost).
# Lower case is drawn as upper case.
_FONT: dict[str, tuple[int, ...]] = {
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E),
    "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F),
    "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02),
    "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E),
    "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E),
    "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    "A": (0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    " ": (0, 0, 0, 0, 0, 0, 0),
    ".": (0, 0, 0, 0, 0, 0x0C, 0x0C),
    ",": (0, 0, 0, 0, 0x0C, 0x04, 0x08),
    "-": (0, 0, 0, 0x1F, 0, 0, 0),
    "/": (0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10),
    "(": (0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02),
    ")": (0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08),
    ":": (0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0),
    "=": (0, 0, 0x1F, 0, 0x1F, 0, 0),
    "%": (0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03),
    "+": (0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0),
    "_": (0, 0, 0, 0, 0, 0, 0x1F),
    "x": (0, 0, 0x11, 0x0A, 0x04, 0x0A, 0x11),
    "<": (0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02),
    ">": (0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08),
    "?": (0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04),
}


def _glyph(char: str) -> tuple[int, ...]:
    return _FONT.get(char) or _FONT.get(char.upper()) or _FONT["?"]


class Canvas:
    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def dot(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            at = (y * self.width + x) * 3
            self.pixels[at : at + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        for y in range(max(0, min(y0, y1)), min(self.height, max(y0, y1) + 1)):
            for x in range(max(0, min(x0, x1)), min(self.width, max(x0, x1) + 1)):
                self.dot(x, y, color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, width: int = 1, dash: int = 0) -> None:
        """Bresenham, thickened by a square brush; `dash` > 0 draws `dash` pixels on, `dash` off."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err, step = dx + dy, 0
        half = width // 2
        while True:
            if not dash or (step // dash) % 2 == 0:
                self.rect(x0 - half, y0 - half, x0 - half + width - 1, y0 - half + width - 1, color)
            if x0 == x1 and y0 == y1:
                return
            doubled = 2 * err
            if doubled >= dy:
                err += dy
                x0 += sx
            if doubled <= dx:
                err += dx
                y0 += sy
            step += 1

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> None:
        for i, char in enumerate(text):
            rows = _glyph(char)
            for row in range(7):
                for col in range(5):
                    if rows[row] >> (4 - col) & 1:
                        left, top = x + (i * 6 + col) * scale, y + row * scale
                        self.rect(left, top, left + scale - 1, top + scale - 1, color)

    def vtext(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> None:
        """Text rotated 90 degrees counter-clockwise, reading bottom to top, starting at (x, y)."""
        for i, char in enumerate(text):
            rows = _glyph(char)
            for row in range(7):
                for col in range(5):
                    if rows[row] >> (4 - col) & 1:
                        left, top = x + row * scale, y - (i * 6 + col) * scale
                        self.rect(left, top - scale + 1, left + scale - 1, top, color)

    def png(self) -> bytes:
        stride = self.width * 3
        # Each scanline starts with filter type 0 (none).
        rows = (self.pixels[y * stride : (y + 1) * stride] for y in range(self.height))
        raw = b"".join(b"\x00" + bytes(row) for row in rows)

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def text_width(text: str, scale: int = 2) -> int:
    return len(text) * 6 * scale


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(top / step) + 1)]


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]  # (x, y); x is placed on a log2 axis
    color: int = 0  # index into PALETTE


@dataclass(frozen=True)
class Reference:
    label: str
    value: float  # a horizontal dashed line
    color: int = 0  # index into PALETTE: the same as a series to pair them


def _legend(canvas: Canvas, left: int, top: int, entries: Sequence[tuple[str, int, bool]]) -> None:
    """A boxed legend at the chart's top left: (label, palette index, dashed) per line."""
    box_right = left + 64 + max((text_width(label) for label, _, _ in entries), default=0)
    box_bottom = top + 12 + 22 * len(entries)
    canvas.rect(left + 8, top + 4, box_right, box_bottom, GREY)
    canvas.rect(left + 9, top + 5, box_right - 1, box_bottom - 1, WHITE)
    legend_y = top + 12
    for label, index, dashed in entries:
        color = PALETTE[index % len(PALETTE)]
        width, dash = (2, 6) if dashed else (3, 0)
        canvas.line(left + 16, legend_y + 7, left + 48, legend_y + 7, color, width, dash=dash)
        canvas.text(left + 56, legend_y, label, color)
        legend_y += 22


def line_chart(
    path: Path,
    title: str,
    x_label: str,
    y_label: str,
    series: Sequence[Series],
    references: Sequence[Reference] = (),
    width: int = 960,
    height: int = 600,
) -> Path:
    canvas = Canvas(width, height)
    left, right, top, bottom = 110, width - 30, 60, height - 80
    xs = sorted({x for s in series for x, _ in s.points}) or [1.0]
    top_value = max([y for s in series for _, y in s.points] + [r.value for r in references] + [1.0])
    ticks = nice_ticks(top_value * 1.05)
    y_max = ticks[-1]
    log_lo, log_hi = math.log2(xs[0]), math.log2(xs[-1])

    def px(x: float) -> int:
        if log_hi == log_lo:
            return (left + right) // 2
        return round(left + 20 + (math.log2(x) - log_lo) / (log_hi - log_lo) * (right - left - 40))

    def py(y: float) -> int:
        return round(bottom - y / y_max * (bottom - top))

    canvas.text((width - text_width(title)) // 2, 20, title)
    for tick in ticks:
        y = py(tick)
        canvas.line(left, y, right, y, GREY)
        label = f"{tick:g}"
        canvas.text(left - 10 - text_width(label), y - 7, label)
    for x in xs:
        label = f"{x:g}"
        canvas.line(px(x), bottom, px(x), bottom + 6, BLACK)
        canvas.text(px(x) - text_width(label) // 2, bottom + 12, label)
    canvas.line(left, top, left, bottom, BLACK, 2)
    canvas.line(left, bottom, right, bottom, BLACK, 2)
    canvas.text((left + right - text_width(x_label)) // 2, height - 34, x_label)
    canvas.vtext(22, (top + bottom + text_width(y_label)) // 2, y_label)
    for ref in references:
        canvas.line(left, py(ref.value), right, py(ref.value), PALETTE[ref.color % len(PALETTE)], 2, dash=8)
    for item in series:
        color = PALETTE[item.color % len(PALETTE)]
        points = sorted(item.points)
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            canvas.line(px(x0), py(y0), px(x1), py(y1), color, 3)
        for px_value, py_value in ((px(x), py(y)) for x, y in points):
            canvas.rect(px_value - 4, py_value - 4, px_value + 4, py_value + 4, color)
    # The legend goes last, on a white box, so no line runs through its text.
    entries = [(r.label, r.color, True) for r in references] + [(s.label, s.color, False) for s in series]
    _legend(canvas, left, top, entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(canvas.png())
    return path
