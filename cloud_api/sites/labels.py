"""库位 codes and printable 库位 labels. Pure: data in, codes or PDF bytes and images out.

- ``grid_codes`` names a block of bins from aisle × rack × level (× position) ranges:
  A-C × 01-20 × 1-4 gives A-01-1, A-01-2, … C-20-4.
- ``render_labels`` lays locations out on A4 pages, a grid of labels each carrying its
  code as a Code 128 or Data Matrix symbol (exactly the text a PDA sends as ``location``
  when it scans the bin), the code in large print and the warehouse and zone names.

Pages are drawn at 300 dpi, made 1-bit and pass through a Group 4 multi-page TIFF on their
way into the PDF. Pillow keeps a decoded page at one byte per pixel (8.7 MB for A4), so
holding all 84 pages of a 2,000-label sheet at once would take most of a gigabyte; this way
only one page is decoded at a time and the PDF stays small (bars are stored losslessly).
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zxingcpp
from PIL import Image, ImageDraw, ImageFont, ImageSequence, TiffImagePlugin

from cangyun.errors import Invalid

# --- 库位 codes ------------------------------------------------------------------------

# What a location code may be: it is printed in a barcode, typed on PDAs and used in URLs.
# (Use fullmatch: "$" would also accept a trailing newline.)
LOCATION_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_CODE_LENGTH = 64
MAX_GRID = 10_000  # locations per generated block
SEPARATORS = ("-", "_", ".", "")
MAX_DIGITS = 4  # racks, levels and positions run up to 9999


class GridError(Invalid):
    """A grid that cannot be generated; ``field`` names the request field at fault."""

    code = "invalid_grid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


@dataclass(frozen=True)
class Axis:
    """One dimension of a grid, both ends inclusive: single letters or numbers.

    Numbers keep the width of ``first``: 01-20 gives 01 … 20, 1-12 gives 1 … 12."""

    name: str  # aisles, racks, levels or positions: names the field in errors
    first: str
    last: str

    def size(self) -> int:
        first, last = self.first, self.last
        if _is_letter(first) and _is_letter(last):
            if first.isupper() != last.isupper():
                raise GridError(self.name, f"{self.name}: {first} and {last} differ in case")
            span = ord(last) - ord(first) + 1
        elif _is_number(first) and _is_number(last):
            span = int(last) - int(first) + 1
        else:
            raise GridError(
                self.name,
                f"{self.name} must run between two letters (A-C) or two numbers of at most"
                f" {MAX_DIGITS} digits (01-20)",
            )
        if span < 1:
            raise GridError(self.name, f"{self.name}: {first} comes after {last}")
        return span

    def values(self) -> list[str]:
        self.size()  # validates
        if _is_letter(self.first):
            return [chr(c) for c in range(ord(self.first), ord(self.last) + 1)]
        width = len(self.first)
        return [str(n).zfill(width) for n in range(int(self.first), int(self.last) + 1)]


def _is_letter(text: str) -> bool:
    return len(text) == 1 and text.isascii() and text.isalpha()


def _is_number(text: str) -> bool:
    return 1 <= len(text) <= MAX_DIGITS and text.isascii() and text.isdigit()


def grid_size(axes: Sequence[Axis]) -> int:
    return math.prod(axis.size() for axis in axes)


def grid_codes(
    axes: Sequence[Axis], *, prefix: str = "", separator: str = "-", limit: int = MAX_GRID
) -> list[str]:
    """Every code of the grid, first axis slowest: the order a person walks the racks."""
    if not axes:
        raise GridError("aisles", "a grid needs at least one range")
    if separator not in SEPARATORS:
        raise GridError("separator", f"separator must be one of {SEPARATORS!r}")
    if prefix and not LOCATION_CODE.fullmatch(prefix):
        raise GridError("prefix", "prefix may hold only letters, digits, '_', '.' and '-'")
    count = grid_size(axes)
    if count > limit:
        raise GridError(
            axes[0].name,
            f"this grid makes {count} locations; at most {limit} per call: split the"
            f" {axes[0].name} over several calls",
        )
    values = [axis.values() for axis in axes]
    codes = [prefix + separator.join(parts) for parts in itertools.product(*values)]
    longest = max(codes, key=len)
    if len(longest) > MAX_CODE_LENGTH or not LOCATION_CODE.fullmatch(codes[0]):
        raise GridError(
            "prefix", f"codes such as {longest!r} are not valid location codes (1-64 characters)"
        )
    return codes


# --- labels ----------------------------------------------------------------------------

SYMBOLOGIES = ("code128", "datamatrix")
MAX_LABELS = 2_000  # per PDF; more is a job for filters (zone, prefix)
DPI = 300
PAGE_SIZE = (2480, 3508)  # A4 at 300 dpi
COLUMNS, ROWS = 3, 8  # 24 labels of 63 × 35 mm: common adhesive sheet stock
MIN_MODULE_PX = 2  # 0.17 mm: the narrowest bar a PDA imager reads well off a printed label
MAX_BAR_MODULE_PX = 5  # wider bars only make short codes sprawl
MIN_TEXT_PX = 18

_FORMATS = {
    "code128": zxingcpp.BarcodeFormat.Code128,
    "datamatrix": zxingcpp.BarcodeFormat.DataMatrix,
}


def _mm(millimetres: float) -> int:
    return round(millimetres * DPI / 25.4)


MARGIN = _mm(10)  # most office printers cannot print to the edge
PAD = _mm(2.5)


class LabelError(Invalid):
    """Labels that cannot be printed as asked (nothing to print, a code too long...)."""

    code = "unprintable"

    def __init__(self, message: str, *, field: str = "symbology") -> None:
        # What the caller can change is the symbology (a Data Matrix holds longer codes).
        super().__init__(message, field=field)


@dataclass(frozen=True)
class Label:
    code: str  # the location code: barcode content and large print
    warehouse: str  # names printed small, for people
    zone: str = ""


@dataclass(frozen=True)
class Placement:
    """Where one label landed: page index and pixel box (left, top, right, bottom)."""

    code: str
    page: int
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class LabelSheet:
    pdf: bytes
    page_count: int
    placements: tuple[Placement, ...]
    tiff: bytes  # the same pages, 1-bit Group 4: what went into the PDF

    def pages(self) -> Iterator[Image.Image]:
        """The page images in order, one decoded at a time (grayscale)."""
        with Image.open(io.BytesIO(self.tiff)) as pages:
            for frame in ImageSequence.Iterator(pages):
                yield frame.convert("L")


def cell_boxes() -> list[tuple[int, int, int, int]]:
    """The label cells of one page, row by row."""
    width = (PAGE_SIZE[0] - 2 * MARGIN) // COLUMNS
    height = (PAGE_SIZE[1] - 2 * MARGIN) // ROWS
    return [
        (
            MARGIN + col * width,
            MARGIN + row * height,
            MARGIN + (col + 1) * width,
            MARGIN + (row + 1) * height,
        )
        for row in range(ROWS)
        for col in range(COLUMNS)
    ]


def render_labels(
    labels: Sequence[Label], symbology: str = "code128", *, title: str = "库位标签"
) -> LabelSheet:
    if symbology not in _FORMATS:
        raise LabelError(f"symbology must be one of {', '.join(SYMBOLOGIES)}")
    if not labels:
        raise LabelError("there are no labels to print")
    if len(labels) > MAX_LABELS:
        raise LabelError(f"at most {MAX_LABELS} labels per sheet")
    boxes = cell_boxes()
    placements: list[Placement] = []
    tiff = io.BytesIO()
    with TiffImagePlugin.AppendingTiffWriter(tiff, new=True) as writer:
        for page_no, start in enumerate(range(0, len(labels), len(boxes))):
            page = Image.new("L", PAGE_SIZE, 255)
            draw = ImageDraw.Draw(page)
            for label, box in zip(labels[start : start + len(boxes)], boxes, strict=False):
                _draw_label(page, draw, label, box, symbology)
                placements.append(Placement(label.code, page_no, box))
            page.convert("1", dither=Image.Dither.NONE).save(writer, "TIFF", compression="group4")
            writer.newFrame()
    page_count = placements[-1].page + 1
    pdf = io.BytesIO()
    with Image.open(io.BytesIO(tiff.getvalue())) as pages:
        pages.save(pdf, "PDF", save_all=True, resolution=DPI, title=title)
    return LabelSheet(pdf.getvalue(), page_count, tuple(placements), tiff.getvalue())


def _draw_label(
    page: Image.Image,
    draw: ImageDraw.ImageDraw,
    label: Label,
    box: tuple[int, int, int, int],
    symbology: str,
) -> None:
    left, top, right, bottom = box
    _cut_guide(draw, box)
    names = " · ".join(n for n in (label.warehouse, label.zone) if n)
    width, height = right - left - 2 * PAD, bottom - top - 2 * PAD
    x, y = left + PAD, top + PAD
    if symbology == "code128":
        names_h, bars_h = round(height * 0.16), round(height * 0.46)
        gap = round(height * 0.04)
        _text(draw, names, _REGULAR, (x, y, x + width, y + names_h))
        bars = _code128(label.code, width, bars_h)
        page.paste(bars, (x + (width - bars.width) // 2, y + names_h + gap))
        code_top = y + names_h + gap + bars_h + gap
        _text(draw, label.code, _BOLD, (x, code_top, x + width, y + height))
    else:
        symbol = _datamatrix(label.code, height)
        page.paste(symbol, (x, y + (height - symbol.height) // 2))
        text_left = x + symbol.width + PAD
        code_h = round(height * 0.42)
        _text(draw, label.code, _BOLD, (text_left, y, x + width, y + code_h))
        line_h = round(height * 0.2)
        names_top = y + code_h + round(height * 0.08)
        zone_top = names_top + line_h + round(height * 0.04)
        # One size for both lines, so a long zone name does not look like a footnote.
        size = min(
            _fitted(n, _REGULAR, x + width - text_left, line_h).size
            for n in (label.warehouse, label.zone or label.warehouse)
        )
        _text(
            draw,
            label.warehouse,
            _REGULAR,
            (text_left, names_top, x + width, names_top + line_h),
            size,
        )
        _text(draw, label.zone, _REGULAR, (text_left, zone_top, x + width, zone_top + line_h), size)


def _cut_guide(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int]) -> None:
    """A dotted outline: enough to cut along, too faint to look like part of the label."""
    left, top, right, bottom = box
    for x in range(left, right, 12):
        draw.line((x, top, x + 2, top), fill=0)
        draw.line((x, bottom - 1, x + 2, bottom - 1), fill=0)
    for y in range(top, bottom, 12):
        draw.line((left, y, left, y + 2), fill=0)
        draw.line((right - 1, y, right - 1, y + 2), fill=0)


def _symbol(code: str, symbology: str, scale: int) -> Image.Image:
    barcode = zxingcpp.create_barcode(code, _FORMATS[symbology])
    return Image.fromarray(np.asarray(barcode.to_image(scale=scale))).convert("L")


def _code128(code: str, max_width: int, height: int) -> Image.Image:
    modules = _symbol(code, "code128", 1).width  # quiet zones included
    scale = min(max_width // modules, MAX_BAR_MODULE_PX)
    if scale < MIN_MODULE_PX:
        raise LabelError(
            f"location code {code!r} is too long for a Code 128 label; print it as datamatrix"
        )
    bars = _symbol(code, "code128", scale)
    # Stretch only vertically: bar widths stay whole pixels.
    return bars.resize((bars.width, height), Image.Resampling.NEAREST)


def _datamatrix(code: str, side: int) -> Image.Image:
    modules = _symbol(code, "datamatrix", 1).width
    scale = side // modules
    if scale < MIN_MODULE_PX:
        raise LabelError(f"location code {code!r} is too long for a Data Matrix label")
    return _symbol(code, "datamatrix", scale)


def _text(
    draw: ImageDraw.ImageDraw,
    text: str,
    face: _Face,
    box: tuple[int, int, int, int],
    size: int | None = None,
) -> None:
    """Text as large as fits the box (at most ``size``), centred in it; cut with an
    ellipsis if even the smallest size is too wide (the symbol still carries the code)."""
    if not text:
        return
    left, top, right, bottom = box
    font = _fitted(text, face, right - left, bottom - top, size)
    if not _fits(font, text, right - left, bottom - top):
        while len(text) > 1 and not _fits(font, text + "…", right - left, 10**6):
            text = text[:-1]
        text += "…"
    draw.text(((left + right) // 2, (top + bottom) // 2), text, fill=0, font=font, anchor="mm")


def _fitted(
    text: str, face: _Face, width: int, height: int, size: int | None = None
) -> ImageFont.FreeTypeFont:
    size = max(min(size or height, height), MIN_TEXT_PX)
    font = _font(face, size)
    while size > MIN_TEXT_PX and not _fits(font, text, width, height):
        size = max(MIN_TEXT_PX, int(size * 0.9))
        font = _font(face, size)
    return font


def _fits(font: ImageFont.FreeTypeFont, text: str, w: int, h: int) -> bool:
    x0, y0, x1, y1 = font.getbbox(text, anchor="mm")
    return x1 - x0 <= w and y1 - y0 <= h


# --- fonts -----------------------------------------------------------------------------

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
# (bold, regular) file-name globs, best first: CJK faces so Chinese warehouse and zone
# names print, then DejaVu (Latin only); without any, Pillow's built-in font.
FONT_CHOICES = (
    ("NotoSansCJK*-Bold.tt[cf]", "NotoSansCJK*-Regular.tt[cf]"),
    ("NotoSansCJKsc-Bold.otf", "NotoSansCJKsc-Regular.otf"),
    ("NotoSansSC-Bold.[ot]tf", "NotoSansSC-Regular.[ot]tf"),
    ("wqy-zenhei.ttc", "wqy-zenhei.ttc"),
    ("wqy-microhei.ttc", "wqy-microhei.ttc"),
    ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf"),
)


@dataclass(frozen=True)
class _Face:
    weight: str  # bold | regular


_BOLD, _REGULAR = _Face("bold"), _Face("regular")


@functools.cache
def font_files() -> dict[str, tuple[str, int] | None]:
    """The installed font file (and face index in a collection) for each weight."""
    for bold, regular in FONT_CHOICES:
        regular_path = _find(regular)
        if regular_path is not None:
            bold_path = _find(bold) or regular_path
            return {
                "bold": (bold_path, _simplified_chinese_index(bold_path)),
                "regular": (regular_path, _simplified_chinese_index(regular_path)),
            }
    return {"bold": None, "regular": None}


def _find(pattern: str) -> str | None:
    for directory in FONT_DIRS:
        root = Path(directory).expanduser()
        if root.is_dir():
            for path in sorted(root.rglob(pattern)):
                return str(path)
    return None


def _simplified_chinese_index(path: str) -> int:
    """Noto CJK collections hold JP, KR, SC, TC and HK faces; mainland sites want SC."""
    if not path.endswith(".ttc"):
        return 0
    for index in range(16):
        try:
            family = ImageFont.truetype(path, 12, index=index).getname()[0] or ""
        except OSError:
            break
        if family.endswith(" SC"):
            return index
    return 0


# A FreeType face may be used by one thread at a time, and the API renders in several
# request threads: each thread keeps its own loaded fonts.
_loaded = threading.local()


def _font(face: _Face, size: int) -> ImageFont.FreeTypeFont:
    fonts: dict[tuple[_Face, int], ImageFont.FreeTypeFont] = _loaded.__dict__.setdefault(
        "fonts", {}
    )
    if (face, size) not in fonts:
        fonts[(face, size)] = _load_font(face, size)
    return fonts[(face, size)]


def _load_font(face: _Face, size: int) -> ImageFont.FreeTypeFont:
    found = font_files()[face.weight]
    if found is None:
        default = ImageFont.load_default(size)
        if not isinstance(default, ImageFont.FreeTypeFont):  # Pillow built without FreeType
            raise LabelError("no font: install fonts-noto-cjk or fonts-dejavu-core")
        return default
    path, index = found
    return ImageFont.truetype(path, size, index=index)
