"""Chinese licence plates rendered as a dock camera sees a truck's front, for gate tests.

Drawn to GA 36-2018 proportions: a 440 x 140 mm plate (480 mm for the 8-character green
new-energy plate), seven 45 x 90 mm characters with a dot after the second, white on blue
(cars), black on yellow (trucks) or black on green (new energy). Glyphs come from the
system's CJK font (``fonts-noto-cjk``), squeezed into the character cells the way plate
lettering is narrow. The plate sits on a truck's grille in a 720p frame with some noise.
"""

from __future__ import annotations

import functools
import random

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tests.support.gate_media import FRAME_SIZE, encode_jpeg
from tests.support.labels import require_fonts

COLOURS = {  # background, lettering (RGB)
    "blue": ((31, 78, 180), (255, 255, 255)),
    "yellow": ((245, 196, 0), (0, 0, 0)),
    "green": ((124, 211, 140), (0, 0, 0)),
}
MM = 0.8  # pixels per millimetre: the plate about 350 px wide in a 720p frame


@functools.lru_cache(maxsize=1)
def _font_path() -> str:
    fonts = require_fonts("zh")
    bold = [f for f in fonts if "Bold" in f]
    return (bold or fonts)[0]


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    path = _font_path()
    # Noto CJK collections start with the Japanese face; plates are Simplified Chinese.
    for index in range(16):
        try:
            font = ImageFont.truetype(path, size, index=index)
        except OSError:
            break
        if (font.getname()[0] or "").split()[-1:] == ["SC"]:
            return font
    return ImageFont.truetype(path, size)


def _glyph(char: str, width: int, height: int) -> Image.Image:
    """The character's ink as a mask, stretched to its cell (a 1 keeps its narrow stroke)."""
    canvas = Image.new("L", (320, 320), 0)
    ImageDraw.Draw(canvas).text((40, 20), char, font=_font(220), fill=255)
    box = canvas.getbbox()
    if box is None:
        raise ValueError(f"the font has no glyph for {char!r}")
    return canvas.crop(box).resize((width // 3 if char == "1" else width, height), Image.LANCZOS)


def render_plate(plate: str, colour: str | None = None) -> Image.Image:
    """``plate`` in its plain form (``沪A12345``, ``沪AD12345``) as an RGB image."""
    colour = colour or ("green" if len(plate) == 8 else "blue")
    background, ink = COLOURS[colour]
    wide = len(plate) == 8
    width, height = round((480 if wide else 440) * MM), round(140 * MM)
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(
        (2, 2, width - 3, height - 3),
        radius=round(8 * MM),
        outline=ink,
        width=max(2, round(MM * 2)),
    )
    cell_w, cell_h = round((43 if wide else 45) * MM), round(90 * MM)
    gap, dot = round((9 if wide else 12) * MM), round((22 if wide else 22) * MM)
    used = len(plate) * cell_w + (len(plate) - 1) * gap + dot
    x, y = (width - used) // 2, (height - cell_h) // 2
    for position, char in enumerate(plate):
        glyph = _glyph(char, cell_w, cell_h)
        image.paste(
            Image.new("RGB", glyph.size, ink), (x + (cell_w - glyph.size[0]) // 2, y), glyph
        )
        x += cell_w + gap
        if position == 1:  # the dot between the office letter and the serial
            centre, radius = x - gap // 2 + dot // 2, round(5 * MM)
            draw.ellipse(
                (centre - radius, height // 2 - radius, centre + radius, height // 2 + radius),
                fill=ink,
            )
            x += dot
    return image


def truck_frame(plate: str, colour: str | None = None, *, seed: int = 5) -> np.ndarray:
    """A 720p BGR frame of a truck's front at the dock door with ``plate`` on its bumper."""
    rng = random.Random(seed)
    width, height = FRAME_SIZE
    frame = np.full((height, width, 3), 112, np.uint8)
    cab = (rng.randint(260, 340), 60, rng.randint(940, 1020), 700)
    cv2.rectangle(frame, cab[:2], cab[2:], (150, 60, 40), -1)  # a blue cab
    for slat in range(5):  # the grille
        top = 330 + slat * 34
        cv2.rectangle(frame, (cab[0] + 60, top), (cab[2] - 60, top + 18), (40, 40, 40), -1)
    plate_bgr = cv2.cvtColor(np.asarray(render_plate(plate, colour)), cv2.COLOR_RGB2BGR)
    top, left = 540, (cab[0] + cab[2]) // 2 - plate_bgr.shape[1] // 2 + rng.randint(-30, 30)
    frame[top : top + plate_bgr.shape[0], left : left + plate_bgr.shape[1]] = plate_bgr
    noise = np.random.default_rng(seed).normal(0, 3.0, frame.shape)
    return np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def truck_jpeg(plate: str, colour: str | None = None, *, seed: int = 5) -> bytes:
    return encode_jpeg(truck_frame(plate, colour, seed=seed), quality=85)


__all__ = ["render_plate", "truck_frame", "truck_jpeg"]
