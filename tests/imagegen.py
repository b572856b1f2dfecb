"""Image files made in memory for the preprocessing and upload tests.

Every generator is deterministic (fixed pictures, seeded noise), so a failing file can be
rebuilt from its name and a test's counts are the same on every run.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def pattern_rgb(width: int = 16, height: int = 12) -> Image.Image:
    """A few flat colours, so lossless formats (and GIF's palette) keep them exactly."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[: height // 2, : width // 2] = (255, 0, 0)
    pixels[: height // 2, width // 2 :] = (0, 0, 255)
    pixels[height // 2 :, : width // 2] = (10, 200, 30)
    pixels[height // 2 :, width // 2 :] = (250, 250, 250)
    return Image.fromarray(pixels)


def noise_rgb(size: int = 96, seed: int = 0) -> Image.Image:
    """Incompressible pixels, so half of the file really is half of the data."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def seven_on_paper(width: int = 64, height: int = 80) -> Image.Image:
    """A dark '7' on white paper with a red corner mark: no flip or turn leaves it alike."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    stroke = max(1, min(width, height) // 8)
    top, left, right = height // 5, width // 5, width * 4 // 5
    draw.line([(left, top), (right, top), (width * 2 // 5, height * 4 // 5)], (0, 0, 0), stroke)
    draw.rectangle([0, 0, max(0, width // 8 - 1), max(0, height // 8 - 1)], (220, 0, 0))
    return image


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + body))
    return struct.pack(">I", len(body)) + kind + body + crc


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixel data at all."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def png_from_samples(samples: np.ndarray, colour_type: int) -> bytes:
    """A PNG written by hand from big-endian samples, for depths Pillow cannot save.

    Args:
        samples: (H, W, C) uint16 for 16-bit files, C matching the colour type
            (0 gray, 2 RGB, 4 gray+alpha, 6 RGBA).
        colour_type: the PNG colour type.
    """
    height, width = samples.shape[:2]
    depth = samples.dtype.itemsize * 8
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    rows = samples.astype(samples.dtype.newbyteorder(">")).reshape(height, -1)
    raw = b"".join(b"\0" + row.tobytes() for row in rows)  # filter type 0 on every row
    body = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw))
    return PNG_SIGNATURE + body + png_chunk(b"IEND", b"")
