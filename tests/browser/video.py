"""Frames for Chromium's fake camera: a label placed on a camera-sized picture, as Y4M.

``--use-file-for-fake-video-capture`` plays a Y4M file in a loop as the camera. The format
is a text header, then per frame ``FRAME\\n`` and the Y, U and V planes (4:2:0, so U and V
at half width and height). Nothing here needs ffmpeg.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zxingcpp
from PIL import Image

FRAME_SIZE = (1280, 720)


def aim_at_barcodes(label: Image.Image) -> Image.Image:
    """The part of the label an operator points the camera at: its barcodes, with a margin
    of label around them (as a hand holds a PDA a little further out than needed)."""
    found = zxingcpp.read_barcodes(np.asarray(label.convert("L")))
    if not found:
        return label
    xs = [p.x for r in found for p in (r.position.top_left, r.position.bottom_right)]
    ys = [p.y for r in found for p in (r.position.top_left, r.position.bottom_right)]
    xs += [p.x for r in found for p in (r.position.top_right, r.position.bottom_left)]
    ys += [p.y for r in found for p in (r.position.top_right, r.position.bottom_left)]
    margin = label.width // 12
    box = (
        max(0, min(xs) - margin),
        max(0, min(ys) - margin),
        min(label.width, max(xs) + margin),
        min(label.height, max(ys) + margin),
    )
    return label.crop(box)


def camera_picture(label: Image.Image, size: tuple[int, int] = FRAME_SIZE) -> Image.Image:
    """The label (or the part aimed at) fitted into the frame, on a grey bench."""
    width, height = size
    picture = Image.new("RGB", size, (150, 150, 145))
    scale = min(width * 0.9 / label.width, height * 0.92 / label.height)
    fitted = label.convert("RGB").resize(
        (round(label.width * scale), round(label.height * scale)), Image.Resampling.LANCZOS
    )
    picture.paste(fitted, ((width - fitted.width) // 2, (height - fitted.height) // 2))
    return picture


def write_y4m(path: Path, picture: Image.Image, frames: int = 10, fps: int = 10) -> Path:
    """Write ``picture`` as a still Y4M video (BT.601 full range, like JPEG)."""
    rgb = np.asarray(picture.convert("RGB"), dtype=np.float32)
    height, width = rgb.shape[:2]
    if width % 2 or height % 2:
        raise ValueError("4:2:0 needs an even width and height")
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128

    def half(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    planes = b"".join(
        np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in (y, half(u), half(v))
    )
    header = f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode()
    with open(path, "wb") as handle:
        handle.write(header)
        for _ in range(frames):
            handle.write(b"FRAME\n")
            handle.write(planes)
    return path
