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


# ---------------------------------------------------------------- photos of paper

PHOTO_SIZE = (4000, 3000)  # (width, height) of a 12-megapixel phone photo
PAPER_TINT = np.array([1.0, 0.97, 0.9])  # warm indoor light on white paper


def stamp(coverage: np.ndarray, size: tuple[int, int], box: tuple[float, float, float]):
    """Scale an ink coverage image (0..1) up into a page of `size` (width, height).

    Args:
        coverage: (h, w) floats, 1 where the pen covers the paper, e.g. an MNIST digit / 255.
        size: the page's (width, height) in pixels.
        box: (left, top, side) of the square the coverage fills, as fractions of the width,
            the height and the shorter side.

    Returns:
        (height, width) float32 coverage of the whole page.
    """
    width, height = size
    side = max(1, round(box[2] * min(width, height)))
    scaled = Image.fromarray(np.asarray(coverage, np.float32), "F").resize(
        (side, side), Image.Resampling.BICUBIC
    )
    page = np.zeros((height, width), np.float32)
    left, top = round(box[0] * width), round(box[1] * height)
    page[top : top + side, left : left + side] = np.clip(np.asarray(scaled), 0, 1)
    return page


def pen_strokes(points, width_fraction: float, size: tuple[int, int]) -> np.ndarray:
    """Coverage of a pen line through `points` (fractions of width and height)."""
    width, height = size
    image = Image.new("L", size, 0)
    pen = max(1, round(width_fraction * min(width, height)))
    xy = [(x * width, y * height) for x, y in points]
    ImageDraw.Draw(image).line(xy, fill=255, width=pen, joint="curve")
    return np.asarray(image, np.float32) / 255


def paper_photo(
    coverage: np.ndarray,
    *,
    paper: float = 225.0,
    ink: float = 35.0,
    shadow: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
) -> Image.Image:
    """An RGB photo of ink on paper as a phone takes it.

    The light falls off toward one corner; `shadow` darkens the far side of a soft edge
    across the page (a hand or a phone between the lamp and the sheet) by that fraction,
    ink and paper alike, since a shadow multiplies the light. Sensor noise is Gaussian.

    Args:
        coverage: (H, W) pen coverage 0..1 (from `stamp` or `pen_strokes`).
        paper: the lit paper's grey level.
        ink: the ink's grey level in the same light.
        shadow: 0 (none) to 1 (black) darkening of the shadowed side.
        noise: the sensor noise's standard deviation in grey levels.
        seed: for the noise.
    """
    height, width = coverage.shape
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, np.newaxis]
    cols = np.linspace(0, 1, width, dtype=np.float32)[np.newaxis, :]
    light = 1 - 0.15 * (rows + cols) / 2  # the lamp is nearer the top left
    if shadow:
        edge = (0.8 * cols + 0.6 * rows - 0.55) / 0.03  # a penumbra of ~3% of the page
        light = light * (1 - shadow / (1 + np.exp(-edge)))
    reflectance = 1 - coverage * (1 - ink / paper)
    grey = (paper * light * reflectance).astype(np.float32)
    pixels = grey[..., np.newaxis] * PAPER_TINT.astype(np.float32)
    if noise:
        rng = np.random.default_rng(seed)
        pixels += rng.normal(0, noise, pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def scribble(size: tuple[int, int], seed: int = 0, turns: int = 25) -> np.ndarray:
    """Coverage of a tangled zigzag of pen lines in the middle of the page."""
    rng = np.random.default_rng(seed)
    points = [tuple(p) for p in rng.uniform(0.3, 0.7, (turns, 2))]
    return pen_strokes(points, 0.006, size)


def speckle(size: tuple[int, int], seed: int = 0, count: int = 400) -> np.ndarray:
    """Coverage of many small blots of ink scattered over the whole page."""
    width, height = size
    rng = np.random.default_rng(seed)
    image = Image.new("L", size, 0)
    draw = ImageDraw.Draw(image)
    for x, y, r in zip(rng.uniform(0, width, count), rng.uniform(0, height, count),
                       rng.uniform(0.002, 0.006, count) * min(size), strict=True):  # fmt: skip
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    return np.asarray(image, np.float32) / 255


def ink_dot(size: tuple[int, int], diameter: float = 0.015, centre=(0.5, 0.5)) -> np.ndarray:
    """Coverage of one round dot of ink (`diameter` of the shorter side) on the page."""
    width, height = size
    radius = diameter * min(size) / 2
    x, y = centre[0] * width, centre[1] * height
    image = Image.new("L", size, 0)
    ImageDraw.Draw(image).ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
    return np.asarray(image, np.float32) / 255
