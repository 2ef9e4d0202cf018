"""Seeded, camera-like distortions of label images: what a handheld PDA does to a clean label.

Every function is pure (returns a new image) and takes its randomness from the ``random.Random``
it is given, so a seed reproduces a photo exactly. The geometric ones keep an alpha channel when
given one, so ``photograph`` can tilt the label first and lay it on a seamless surface after.
"""

from __future__ import annotations

import io
import math
import random

import cv2
import numpy as np
from PIL import Image

# Surfaces a label is photographed on: concrete, cardboard, pallet wood, shelf steel.
BACKGROUNDS = ((118, 118, 114), (156, 120, 84), (104, 86, 66), (168, 170, 168), (132, 108, 80))

SEVERITIES = {
    "normal": {
        "warp": 0.08,  # corner displacement, fraction of the side
        "angle": 12.0,  # in-plane rotation, degrees either way
        "blur": (0.0, 1.2),  # Gaussian radius in final pixels
        "side": (1600, 2000),  # long side of the photo
        "quality": (55, 90),  # JPEG
    },
    "hard": {
        "warp": 0.15,
        "angle": 30.0,
        "blur": (0.0, 2.5),
        "side": (900, 1400),
        "quality": (35, 60),
    },
}


def _np_rng(rng: random.Random) -> np.random.Generator:
    return np.random.default_rng(rng.getrandbits(64))


def _fill(image: Image.Image) -> tuple[int, ...]:
    """What a transform puts where it uncovers: transparency, or the border's median colour."""
    if image.mode == "RGBA":
        return (0, 0, 0, 0)
    a = np.asarray(image.convert("RGB"))
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return tuple(int(v) for v in np.median(border, axis=0))


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image if image.mode == "RGBA" else image.convert("RGB"))


def _image(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array, "RGBA" if array.shape[2] == 4 else "RGB")


def perspective(image: Image.Image, rng: random.Random, max_shift: float) -> Image.Image:
    """A homography moving each corner by up to ``max_shift`` of the image's width/height;
    the result is sized to the warped outline."""
    w, h = image.size
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    moves = [
        [rng.uniform(-max_shift, max_shift) * w, rng.uniform(-max_shift, max_shift) * h]
        for _ in range(4)
    ]
    dst = src + np.float32(moves)
    dst -= dst.min(axis=0)
    out_w, out_h = (math.ceil(v) for v in dst.max(axis=0))
    warped = cv2.warpPerspective(
        _pixels(image),
        cv2.getPerspectiveTransform(src, dst),
        (out_w, out_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=_fill(image),
    )
    return _image(warped)


def rotate(image: Image.Image, degrees: float) -> Image.Image:
    """Rotated counter-clockwise by ``degrees``, canvas grown to fit."""
    w, h = image.size
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    out_w, out_h = math.ceil(w * cos + h * sin), math.ceil(w * sin + h * cos)
    matrix[0, 2] += (out_w - w) / 2
    matrix[1, 2] += (out_h - h) / 2
    turned = cv2.warpAffine(
        _pixels(image),
        matrix,
        (out_w, out_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=_fill(image),
    )
    return _image(turned)


def quarter_turn(image: Image.Image, turns: int) -> Image.Image:
    """Rotated by ``turns`` x 90 degrees: the PDA held sideways or upside down."""
    ops = {
        1: Image.Transpose.ROTATE_90,
        2: Image.Transpose.ROTATE_180,
        3: Image.Transpose.ROTATE_270,
    }
    return image.transpose(ops[turns % 4]) if turns % 4 else image.copy()


def place_on_background(image: Image.Image, rng: random.Random) -> Image.Image:
    """The label (its alpha, if any, as the outline) on a textured grey/brown surface,
    off-centre with a 6-22% margin, casting a slight shadow."""
    label = image.convert("RGBA")
    w, h = label.size
    left, right, top, bottom = (round(s * rng.uniform(0.06, 0.22)) for s in (w, w, h, h))
    size = (w + left + right, h + top + bottom)
    gen = _np_rng(rng)
    # Low-frequency blotches plus fine grain, so the surface is not a flat colour.
    coarse = gen.normal(0, 8, (6, 6)).astype(np.float32)
    shade = cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC)
    grain = gen.standard_normal((size[1] // 2 + 1, size[0] // 2 + 1), dtype=np.float32) * 5
    shade += cv2.resize(grain, size, interpolation=cv2.INTER_NEAREST)
    # The shadow: the label's outline, offset down-right and softened.
    alpha = np.asarray(label)[:, :, 3].astype(np.float32) / 255
    dx, dy = round(w * 0.006) + 1, round(h * 0.008) + 1
    shadow = np.zeros_like(shade)
    shadow[top + dy : top + dy + h, left + dx : left + dx + w] = alpha
    shade -= 45 * cv2.GaussianBlur(shadow, (0, 0), sigmaX=max(dx, dy))
    colour = rng.choice(BACKGROUNDS)
    canvas = Image.fromarray(
        np.dstack([np.clip(shade + c, 0, 255).astype(np.uint8) for c in colour]), "RGB"
    )
    canvas.paste(label, (left, top), label)
    return canvas


def downscale(image: Image.Image, long_side: int) -> Image.Image:
    """Shrunk so its longer side is ``long_side`` (never enlarged)."""
    w, h = image.size
    factor = long_side / max(w, h)
    if factor >= 1:
        return image.copy()
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    # Area averaging is what a sensor's binning does (and it is fast).
    return _image(cv2.resize(_pixels(image), size, interpolation=cv2.INTER_AREA))


def uneven_lighting(image: Image.Image, rng: random.Random, strength: float) -> Image.Image:
    """Darkened by up to ``strength`` along a linear or radial gradient (lamp, shadow)."""
    w, h = image.size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * math.pi)
        ramp = xs * math.cos(angle) + ys * math.sin(angle)
    else:
        ramp = np.hypot(xs - rng.uniform(0, w), ys - rng.uniform(0, h))
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    gain = 1.0 - strength * ramp
    lit = np.asarray(image.convert("RGB"), dtype=np.float32) * gain[:, :, None]
    return Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8), "RGB")


def blur(image: Image.Image, radius: float) -> Image.Image:
    """Gaussian defocus / hand shake (``radius`` is the standard deviation in pixels)."""
    if radius <= 0:
        return image.copy()
    return _image(cv2.GaussianBlur(_pixels(image), (0, 0), sigmaX=radius))


def sensor_noise(image: Image.Image, rng: random.Random, sigma: float) -> Image.Image:
    """Additive Gaussian noise, independent per channel like a small phone sensor."""
    a = np.asarray(image.convert("RGB"), dtype=np.float32)
    a += _np_rng(rng).standard_normal(a.shape, dtype=np.float32) * sigma
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    """Re-encoded as JPEG at ``quality`` and decoded again (the artefacts are the point)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def photograph(image: Image.Image, rng: random.Random, severity: str = "normal") -> Image.Image:
    """``image`` as a handheld PDA photo: tilted, rotated, lying on a surface, shrunk to phone
    resolution, unevenly lit, defocused, noisy and JPEG-compressed. ``severity`` is "normal"
    (what a reader must handle) or "hard" (stress: stronger everything, maybe sideways)."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {sorted(SEVERITIES)}, got {severity!r}")
    s = SEVERITIES[severity]
    # Geometry on the label alone, so the surface around it stays seamless.
    label = image.convert("RGBA")
    label = perspective(label, rng, rng.uniform(0.0, s["warp"]))
    label = rotate(label, rng.uniform(-s["angle"], s["angle"]))
    photo = place_on_background(label, rng)
    if severity == "hard" and rng.random() < 0.5:
        photo = quarter_turn(photo, rng.choice((1, 2, 3)))
    # Shrink before the photometric steps: a blur radius or noise sigma then means the same
    # thing in the final pixels of every photo.
    photo = downscale(photo, rng.randint(*s["side"]))
    photo = uneven_lighting(photo, rng, rng.uniform(0.15, 0.45))
    photo = blur(photo, rng.uniform(*s["blur"]))
    photo = sensor_noise(photo, rng, rng.uniform(2.0, 8.0))
    return jpeg(photo, rng.randint(*s["quality"]))
