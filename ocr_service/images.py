"""Turning uploaded bytes into a checked image, or a clear, typed refusal.

Limits come before decoding: the byte size, the format from the file header, the pixel
count from the header (a 20000×20000 PNG is refused without allocating it), animation. Only
then are the pixels decoded, so a truncated or corrupt file fails here with its own code.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_IMAGE_BYTES = 32 * 1024 * 1024
MAX_PIXELS = 48_000_000  # a 48 MP phone photo; anything bigger is refused, not decoded
ALLOWED_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp"}

# Pillow's own bomb check would raise at 2x its limit with a different exception; ours comes
# first, so keep Pillow's just above it as a second line of defence.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS + 1


class ImageError(ValueError):
    """An upload that is not a usable image. ``status`` is the HTTP status to answer."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class LoadedImage:
    """A decoded photo, upright (EXIF orientation applied), in RGB and 8-bit grayscale."""

    rgb: Image.Image
    gray: np.ndarray
    format: str

    @property
    def width(self) -> int:
        return self.rgb.width

    @property
    def height(self) -> int:
        return self.rgb.height


def load_image(
    data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_PIXELS
) -> LoadedImage:
    if not data:
        raise ImageError("empty_image", "the upload is empty (0 bytes)", 400)
    if len(data) > max_bytes:
        raise ImageError(
            "image_too_large",
            f"the image is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB",
            413,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ImageError(
            "not_an_image", "the upload is not an image; send a JPEG, PNG or WebP photo", 415
        ) from exc
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(max_pixels) from exc
    kind = ALLOWED_FORMATS.get(image.format or "")
    if kind is None:
        raise ImageError(
            "unsupported_format",
            f"{image.format or 'this'} images are not supported; send a JPEG, PNG or WebP photo",
            415,
        )
    if image.width * image.height > max_pixels:
        raise _too_many_pixels(max_pixels, image.width, image.height)
    if getattr(image, "is_animated", False) and image.format != "MPO":
        raise ImageError(
            "animated_image", "animated images are not supported; send a single photo", 415
        )
    try:
        image.load()
        upright = ImageOps.exif_transpose(image) or image
        rgb = upright.convert("RGB")
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(max_pixels) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow says "image file is truncated" or "broken data stream" here.
        raise ImageError(
            "corrupt_image", f"the {kind.upper()} file is truncated or corrupt ({exc})", 422
        ) from exc
    gray = np.asarray(rgb.convert("L"))
    return LoadedImage(rgb=rgb, gray=gray, format=kind)


def _too_many_pixels(limit: int, width: int | None = None, height: int | None = None) -> ImageError:
    size = f"{width}×{height} " if width and height else ""
    return ImageError(
        "too_many_pixels",
        f"the image {size}has more than {limit / 1e6:.0f} million pixels; send a smaller photo",
        413,
    )
