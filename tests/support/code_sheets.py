"""Sheets of many small 2D codes, photographed like a 12 MP phone still: what a tray of drug
packs, a sheet of serial labels or a shelf of totes looks like to the still pipeline.

Every sheet is made from a seed: the contents (some of them on purpose the same at two
places), the grid, and the camera (tilt, rotation, blur, noise, uneven light, JPEG). The
truth lists each printed symbol with its centre in the photo, so a reader can be scored per
physical symbol, not per distinct text.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

import cv2
import numpy as np
import zxingcpp
from PIL import Image

PAPER_MODULE_PX = 8
FORMATS = {"datamatrix": zxingcpp.BarcodeFormat.DataMatrix, "qrcode": zxingcpp.BarcodeFormat.QRCode}


@dataclass(frozen=True)
class PrintedCode:
    format: str
    content: str
    centre: tuple[float, float]  # in the photo
    side: float  # the symbol's longer side in the photo, pixels


@dataclass(frozen=True)
class Sheet:
    jpeg: bytes
    codes: tuple[PrintedCode, ...]
    width: int
    height: int


def _modules(content: str, fmt: str) -> np.ndarray:
    options = "forceSquareDataMatrix" if fmt == "datamatrix" else ""
    symbol = zxingcpp.create_barcode(content, FORMATS[fmt], options=options)
    return np.asarray(symbol.to_image(scale=1, add_quiet_zones=False))


def sheet(
    seed: int,
    *,
    formats: tuple[str, ...] = ("datamatrix",),
    rows: int = 5,
    columns: int = 6,
    size: tuple[int, int] = (4032, 3024),
    module_px: tuple[float, float] = (3.0, 4.5),
    tilt: float = 0.12,
    angle: float = 20.0,
    blur: tuple[float, float] = (0.6, 1.4),
    duplicates: int = 2,
    quality: int = 80,
) -> Sheet:
    """A ``rows`` x ``columns`` grid of codes on white paper, in perspective (each paper
    corner moved by up to ``tilt`` of the side), turned by up to ``angle`` degrees, filling
    most of a ``size`` photo; modules come out about ``module_px`` pixels wide before the
    perspective. ``duplicates`` codes repeat another code's content elsewhere on the sheet."""
    rng = random.Random(seed)
    count = rows * columns
    contents = [
        f"0106901234{rng.randrange(10**6):06d}21{rng.randrange(10**8):08d}"
        if rng.random() < 0.5
        else f"SN{seed:03d}-{index:02d}-{rng.randrange(10**6):06d}"
        for index in range(count)
    ]
    for index in rng.sample(range(1, count), min(duplicates, count - 1)):
        contents[index] = contents[index - 1]
    module = rng.uniform(*module_px)  # in the photo
    symbols = [(rng.choice(formats), text) for text in contents]
    grids = [_modules(text, fmt) for fmt, text in symbols]
    # Drawn at PAPER_MODULE_PX a module, the paper is then shrunk so that it fills most of
    # the photo and a module comes out ``module`` pixels wide.
    out_w, out_h = size
    scale = module / PAPER_MODULE_PX
    cell = int(min(out_w * 0.8 / columns, out_h * 0.8 / rows) / scale)
    biggest = max(max(g.shape) for g in grids) * PAPER_MODULE_PX
    if biggest * 1.3 > cell:
        raise ValueError("codes this big do not fit the grid: fewer rows/columns or modules")
    paper_w, paper_h = columns * cell, rows * cell
    paper = np.full((paper_h, paper_w), 255, dtype=np.uint8)
    centres = []
    for index, grid in enumerate(grids):
        row, column = divmod(index, columns)
        h, w = (s * PAPER_MODULE_PX for s in grid.shape)
        art = cv2.resize(grid, (w, h), interpolation=cv2.INTER_NEAREST)
        slack = (cell - max(w, h)) // 4
        top = row * cell + (cell - h) // 2 + rng.randint(-slack, slack)
        left = column * cell + (cell - w) // 2 + rng.randint(-slack, slack)
        paper[top : top + h, left : left + w] = art
        centres.append((left + w / 2, top + h / 2, max(w, h)))

    # The camera: paper corners into the photo, moved and turned, the whole sheet in view.
    turn = math.radians(rng.uniform(-angle, angle))
    cos, sin = math.cos(turn), math.sin(turn)
    corners = []
    for x, y in ((0, 0), (paper_w, 0), (paper_w, paper_h), (0, paper_h)):
        dx, dy = (x - paper_w / 2) * scale, (y - paper_h / 2) * scale
        dx += rng.uniform(-tilt, tilt) * paper_w * scale
        dy += rng.uniform(-tilt, tilt) * paper_h * scale
        corners.append((out_w / 2 + dx * cos - dy * sin, out_h / 2 + dx * sin + dy * cos))
    # A strong turn can take corners out of the frame: shrink the sheet back into view.
    spread = np.float32(corners) - (out_w / 2, out_h / 2)
    fit = min(1.0, 0.47 * out_w / float(np.abs(spread[:, 0]).max()),
              0.47 * out_h / float(np.abs(spread[:, 1]).max()))  # fmt: skip
    corners = [(out_w / 2 + x * fit, out_h / 2 + y * fit) for x, y in spread]
    scale *= fit
    source = np.float32([[0, 0], [paper_w, 0], [paper_w, paper_h], [0, paper_h]])
    matrix = cv2.getPerspectiveTransform(source, np.float32(corners))
    photo = cv2.warpPerspective(
        paper, matrix, (out_w, out_h), flags=cv2.INTER_AREA, borderValue=110
    ).astype(np.float32)

    gen = np.random.default_rng(rng.getrandbits(64))
    light = cv2.resize(gen.normal(1.0, 0.12, (4, 4)).astype(np.float32), (out_w, out_h))
    photo = photo * np.clip(light, 0.6, 1.3) * rng.uniform(0.75, 0.95) + rng.uniform(0, 25)
    photo = cv2.GaussianBlur(photo, (0, 0), rng.uniform(*blur))
    photo += gen.normal(0, rng.uniform(2.0, 6.0), photo.shape).astype(np.float32)
    image = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8), "L")
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)

    codes = []
    for (fmt, text), (x, y, side) in zip(symbols, centres, strict=True):
        mapped = cv2.perspectiveTransform(np.float32([[[x, y]]]), matrix)[0, 0]
        codes.append(PrintedCode(fmt, text, (float(mapped[0]), float(mapped[1])), side * scale))
    return Sheet(buffer.getvalue(), tuple(codes), out_w, out_h)


def score(codes: tuple[PrintedCode, ...], symbols: list) -> tuple[int, int]:
    """(printed codes read, symbols reported that match no printed code): each symbol may
    answer for one printed code with its content, whose centre lies within half a side."""
    used: set[int] = set()
    found = 0
    for code in codes:
        for index, symbol in enumerate(symbols):
            if index in used or symbol.content != code.content:
                continue
            cx = sum(p[0] for p in symbol.position) / len(symbol.position)
            cy = sum(p[1] for p in symbol.position) / len(symbol.position)
            if math.hypot(cx - code.centre[0], cy - code.centre[1]) <= code.side * 0.5:
                used.add(index)
                found += 1
                break
    return found, len(symbols) - len(used)
