"""Decoding untrusted image files: size limits, formats, EXIF rotation, colour modes.

Shared by dataset imports (cnn_core.data.owndata) and prediction uploads
(cnn_core.explain.preprocess).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # per image; below Pillow's own bomb limit (~89 million)
MAX_BYTES = 20 * 1024 * 1024
ACCEPTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
FORMAT_NAMES = "PNG, JPEG, GIF, BMP or WebP"
# Phones save multi-picture JPEGs, which Pillow's JPEG opener reports as "MPO".
FORMAT_ALIASES = {"MPO": "JPEG"}
PAPER = 255  # transparent pixels are composited onto white paper
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as Pillow's "L"
SIXTEEN_BIT_MAX = 65535


class ImageRejected(ValueError):
    """An uploaded file that cannot be used; the message names it and says what to do."""


# ---------------------------------------------------------------------------- decoding


def decode_image(
    data: bytes,
    name: str = "image",
    *,
    max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_BYTES,
) -> Image.Image:
    """Decode untrusted image bytes into a loaded "L" or "RGB" Pillow image.

    The byte size and the pixel count (from the header) are checked before any pixel is
    decoded. EXIF rotation is applied, animated images give their first frame, and
    transparency is composited onto white, so a transparent PNG of a dark digit looks
    like ink on paper. Pillow's process-wide limit `Image.MAX_IMAGE_PIXELS` also applies,
    so the effective cap is the smaller of the two.

    Args:
        data: the file's bytes.
        name: the file name, used in messages.
        max_pixels: the largest width × height accepted.
        max_bytes: the largest file accepted, in bytes.

    Returns:
        A fully loaded image in mode "L" (grayscale sources) or "RGB".

    Raises:
        ImageRejected: the bytes are too many, empty, not an accepted image format, over
            the pixel limit, truncated or corrupt. Never anything else for bad bytes.
        TypeError: `data` is not bytes-like.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"decode_image needs the file's bytes, got {type(data).__name__}.")
    _check_byte_size(len(data), name, max_bytes)
    try:
        # The warning filters are changed locally, never Image.MAX_IMAGE_PIXELS. (Before
        # Python 3.14 the filters are process-wide, so another thread could swap them
        # meanwhile; the pixel check in _open_checked does not depend on them.)
        with warnings.catch_warnings():
            # At open, Pillow's bomb warning gives way to our own check just after it,
            # which knows width and height for the message and applies Pillow's limit too.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(bytes(data)), formats=list(ACCEPTED_FORMATS))
        _check_header(image, name, max_pixels)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = _load_first_frame(image)
        return normalize_mode(_apply_exif_rotation(image))
    except ImageRejected:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageRejected(
            f"{name}: the image is over Pillow's safety limit for pixels ({exc}). "
            "Resize it and upload again."
        ) from exc
    except UnidentifiedImageError as exc:
        raise _not_an_image(name) from exc
    except Exception as exc:  # any failure on untrusted bytes is a rejection, not a crash
        raise ImageRejected(
            f"{name}: the file is truncated or corrupted ({type(exc).__name__}: {exc}). "
            "Save or export it again and upload the new file."
        ) from exc


def _check_byte_size(size: int, name: str, max_bytes: int) -> None:
    if size == 0:
        raise ImageRejected(f"{name}: the file is empty. Upload an image ({FORMAT_NAMES}).")
    if size > max_bytes:
        raise ImageRejected(
            f"{name}: the file is {_format_bytes(size)}, over the {_format_bytes(max_bytes)} "
            "limit. Save it smaller (fewer pixels or JPEG) and upload again."
        )


def _check_header(image: Image.Image, name: str, max_pixels: int) -> None:
    """Check the format and the pixel count of a lazily opened image (header only)."""
    # Image.open was only given the accepted formats' openers; this catches aliases.
    image_format = FORMAT_ALIASES.get(image.format or "", image.format)
    if image_format not in ACCEPTED_FORMATS:
        raise _not_an_image(name)
    limit = _pixel_limit(max_pixels)
    width, height = image.size
    if width * height > limit:
        count, cap = _format_count(width * height), _format_count(limit)
        if count == cap:  # just over the limit: rounded, both would read "40 million"
            count, cap = f"{width * height:,}", f"{limit:,}"
        raise ImageRejected(
            f"{name}: the image is {width}×{height} = {count} pixels, "
            f"over the {cap} pixel limit. Resize it below that and upload again."
        )


def _pixel_limit(max_pixels: int) -> int:
    """Ours or Pillow's process-wide limit (None: disabled), whichever is lower."""
    pillow_limit = Image.MAX_IMAGE_PIXELS
    return max_pixels if pillow_limit is None else min(max_pixels, int(pillow_limit))


def _load_first_frame(image: Image.Image) -> Image.Image:
    """Decode the first frame now, so a truncated file fails here and not on a page."""
    image.seek(0)
    image.load()
    return image


def _apply_exif_rotation(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should cost the rotation, not the image
        return image.copy()


def _not_an_image(name: str) -> ImageRejected:
    return ImageRejected(
        f"{name}: this is not an image Pillow can read ({FORMAT_NAMES}). Upload one of those."
    )


def _format_count(count: int) -> str:
    if count >= 1_000_000:
        return f"{round(count / 1_000_000, 1):g} million"
    return f"{count:,}"


def _format_bytes(size: int) -> str:
    return f"{round(size / 2**20, 1):g} MB"


# ------------------------------------------------------------------------- colour modes


def normalize_mode(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to "L" or "RGB", compositing transparency onto white.

    Args:
        image: a Pillow image in any mode (1, L, LA, P, PA, RGB, RGBA, CMYK, I;16, I, F…).

    Returns:
        The image in mode "L" (1, L, LA, 16-bit, I, F) or "RGB" (everything else).
    """
    mode = image.mode
    has_transparency = "transparency" in image.info
    if mode in ("L", "RGB") and not has_transparency:
        return image
    if mode == "I" or mode.startswith("I;16"):
        return _sixteen_bit_to_l(image)
    if mode == "F":
        return _float_to_l(image)
    if mode == "1" and not has_transparency:
        return image.convert("L")
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or has_transparency:
        target = "LA" if mode in ("1", "L", "LA", "La") else "RGBA"
        return _composite_on_white(image.convert(target))
    return image.convert("RGB")  # P, CMYK, YCbCr, HSV…


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    # 16-bit samples span 0..65535: scale them, since clipping at 255 would turn almost
    # every pixel white. "I" only comes from 16-bit sources among the accepted formats.
    values = np.clip(np.asarray(image).astype(np.float64), 0, SIXTEEN_BIT_MAX)
    return Image.fromarray(np.rint(values * (255 / SIXTEEN_BIT_MAX)).astype(np.uint8))


def _float_to_l(image: Image.Image) -> Image.Image:
    # Float images conventionally hold [0, 1]; anything brighter is taken as 0..255.
    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    if values.max(initial=0.0) <= 1.0:
        values = values * 255
    return Image.fromarray(np.rint(np.clip(values, 0, 255)).astype(np.uint8))


def _composite_on_white(image: Image.Image) -> Image.Image:
    """Blend an "LA" or "RGBA" image onto white paper; returns "L" or "RGB"."""
    pixels = np.asarray(image, dtype=np.float32)
    colour, alpha = pixels[..., :-1], pixels[..., -1:] / 255
    blended = np.rint(colour * alpha + PAPER * (1 - alpha)).astype(np.uint8)
    return Image.fromarray(blended[..., 0] if blended.shape[-1] == 1 else blended)
