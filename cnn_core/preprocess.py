"""Turn a canvas drawing or an uploaded image into model input, keeping every step.

Each path returns a frozen dataclass of its intermediate arrays, so a page can show the
learner exactly what the network receives:

- digits (the canvas, and uploads for MNIST-style models) follow the procedure that made
  MNIST: crop to the ink, fit it into a 20×20 box keeping the aspect ratio, then place it
  in a 28×28 field so that the centre of mass of the ink sits at the centre;
- uploads for digit models first separate the ink from the paper as a scanner would
  (lighting and shadows divided out, an Otsu threshold above the paper's grain), and an
  image without a digit (blank, a dot, a blob, a scribble) gets a typed `NoDigit`;
- other models get the whole image resized to their input size.

Uploaded bytes are untrusted: `decode_image` caps the bytes and the pixels before any
pixel is decoded and turns every failure into `ImageRejected`, whose message tells the
user what went wrong and what to do.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage  # installed with scikit-learn, which requires it

MAX_PIXELS = 40_000_000  # per image; below Pillow's own bomb limit (~89 million)
MAX_BYTES = 20 * 1024 * 1024
ACCEPTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
FORMAT_NAMES = "PNG, JPEG, GIF, BMP or WebP"
# Phones save multi-picture JPEGs, which Pillow's JPEG opener reports as "MPO".
FORMAT_ALIASES = {"MPO": "JPEG"}

INK_THRESHOLD = 25  # of 255: above antialiasing fringes and JPEG noise, below any stroke
MNIST_SIZE = 28  # side of the MNIST field
MNIST_BOX = 20  # longer side of the fitted digit: leaves a margin to shift it in
PAPER = 255  # transparent pixels are composited onto white paper
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as Pillow's "L"
SIXTEEN_BIT_MAX = 65535
# Ink's direction is judged on the image's detail (the image minus a blur this wide, of
# its shorter side); below this many grey levels of skew there is no ink to judge by.
DETAIL_SIDE = 256
DETAIL_BLUR = 0.05
MIN_DETAIL_TO_JUDGE = 1.0
MIN_SKEW = 0.7  # cube root of the third moment over the standard deviation; ink gives >1
MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation, for Gaussian noise

BBox = tuple[int, int, int, int]  # (top, left, bottom, right); bottom and right exclusive


class ImageRejected(ValueError):
    """An uploaded file that cannot be used; the message names it and says what to do."""


@dataclass(frozen=True, eq=False)
class DigitSteps:
    """Every step of the MNIST procedure, for display.

    Attributes:
        raw: (H, W) uint8, light ink on a dark background, as given.
        cropped: the bounding box of the ink cut out of `raw`; None when empty.
        fitted: `cropped` resized so its longer side is 20, aspect kept; None when empty.
        centered: (28, 28) uint8 with the ink's centre of mass at (14, 14); zeros when empty.
        model_input: (28, 28, 1) float32 in [0, 1]; zeros when empty.
        is_empty: nothing was drawn (no pixel above the threshold): show a hint instead
            of a prediction.
        bbox: (top, left, bottom, right) of the ink in `raw`, bottom/right exclusive;
            None when empty.
    """

    raw: np.ndarray
    cropped: np.ndarray | None
    fitted: np.ndarray | None
    centered: np.ndarray
    model_input: np.ndarray
    is_empty: bool
    bbox: BBox | None


@dataclass(frozen=True, eq=False)
class UploadSteps:
    """Every step from an uploaded image to model input, for display.

    Attributes:
        original: (H0, W0, 3) uint8 RGB, the decoded upload.
        converted: (H0, W0) uint8 grayscale or (H0, W0, 3) uint8 RGB, per the model's
            channels.
        inverted: MNIST-style only: the image was dark on light and was inverted.
        digit: MNIST-style only: the crop/fit/centre steps; `digit.raw` is the digit's
            ink, light on black, as `separate_ink` found it. None otherwise.
        resized: other models only: the whole image resized to the model's (H, W).
            None for MNIST-style models.
        model_input: (H, W, C) float32 in [0, 1]; zeros when no digit was found.
        paper: MNIST-style only: how the ink was separated from the paper. None otherwise.
    """

    original: np.ndarray
    converted: np.ndarray
    inverted: bool
    digit: DigitSteps | None
    resized: np.ndarray | None
    model_input: np.ndarray
    paper: InkSteps | None = None

    @property
    def no_digit(self) -> NoDigit | None:
        """Why an MNIST-style upload holds no digit; None when it holds one (or the model
        is not a digit model)."""
        return None if self.paper is None else self.paper.no_digit

    @property
    def is_empty(self) -> bool:
        """True when an MNIST-style upload holds no digit to predict."""
        return self.no_digit is not None or (self.digit is not None and self.digit.is_empty)


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


# ----------------------------------------------------------------------------- canvas


def canvas_to_gray(rgba: np.ndarray) -> np.ndarray:
    """Turn the drawable canvas' RGBA array into white-ink-on-black grayscale.

    Untouched canvas pixels are transparent (alpha 0), whatever their RGB, so the
    colour is composited onto black: ink = luminance × alpha.

    Args:
        rgba: (H, W, 4) RGBA as the canvas returns it; (H, W, 3) and (H, W) are also
            accepted. Values 0..255 (uint8, or any integer or float dtype).

    Returns:
        (H, W) uint8, white (high) ink on black (low) background.

    Raises:
        ValueError: the array is not an image of 1, 3 or 4 channels.
    """
    pixels = np.asarray(rgba)
    if pixels.ndim == 2:
        return np.rint(np.clip(pixels, 0, 255)).astype(np.uint8)
    if pixels.ndim != 3 or pixels.shape[-1] not in (3, 4):
        raise ValueError(
            f"The canvas image must be (H, W, 4) RGBA, (H, W, 3) or (H, W); got {pixels.shape}."
        )
    pixels = np.clip(pixels.astype(np.float32), 0, 255)
    gray = pixels[..., :3] @ LUMA
    if pixels.shape[-1] == 4:
        gray = gray * (pixels[..., 3] / 255)
    return np.rint(np.clip(gray, 0, 255)).astype(np.uint8)


# ------------------------------------------------------------------ MNIST-style digits


def prepare_digit(gray: np.ndarray, *, threshold: int = INK_THRESHOLD) -> DigitSteps:
    """Crop, fit and centre a digit the way MNIST was made.

    Args:
        gray: (H, W) uint8, white (high) ink on black (low) background.
        threshold: pixels above this value count as ink.

    Returns:
        The DigitSteps; `is_empty` when no pixel is above the threshold.

    Raises:
        ValueError: `gray` is not a 2-D uint8 array.
    """
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(
            f"prepare_digit needs a 2-D uint8 grayscale array (white ink on black); "
            f"got shape {gray.shape} and dtype {gray.dtype}. Use canvas_to_gray first."
        )
    bbox = _ink_bbox(gray, threshold)
    if bbox is None:
        blank = np.zeros((MNIST_SIZE, MNIST_SIZE), np.uint8)
        return DigitSteps(gray, None, None, blank, _to_model_input(blank), True, None)
    top, left, bottom, right = bbox
    cropped = gray[top:bottom, left:right]
    fitted = _fit_in_box(cropped, MNIST_BOX)
    centered = _center_by_mass(fitted, MNIST_SIZE)
    return DigitSteps(gray, cropped, fitted, centered, _to_model_input(centered), False, bbox)


def judge_drawing(gray: np.ndarray, *, threshold: int = INK_THRESHOLD) -> NoDigit | None:
    """Why a drawing (light ink on black, e.g. the canvas) cannot be a digit, or None.

    The same rules as for photos: a dot, a filled blob, a scribble of many loops or
    pieces, or a field covered in ink is not a digit, and enlarging it into 20×20 would
    give the model a shape it reads with false confidence (a dot becomes a disk, a "0").

    Args:
        gray: (H, W) uint8, white (high) ink on black (low) background.
        threshold: pixels above this value count as ink.

    Returns:
        The NoDigit, or None when the ink could be a digit (or there is none: the
        caller shows its own hint for an empty canvas).
    """
    mask = np.asarray(gray) > threshold
    if not mask.any():
        return None
    _, verdict = _find_digit(_ink_pieces(mask, min(mask.shape)), mask.shape)
    return verdict


def _ink_bbox(gray: np.ndarray, threshold: int) -> BBox | None:
    ink = gray > threshold
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _fit_in_box(cropped: np.ndarray, box: int) -> np.ndarray:
    """Resize so the longer side is exactly `box`, keeping the aspect ratio."""
    height, width = cropped.shape
    longer = max(height, width)
    new_height = box if height == longer else max(1, _round_half_up(height * box / longer))
    new_width = box if width == longer else max(1, _round_half_up(width * box / longer))
    # LANCZOS low-pass filters when shrinking (antialiasing), as MNIST's normalisation did.
    resized = Image.fromarray(cropped).resize((new_width, new_height), Image.Resampling.LANCZOS)
    return np.asarray(resized)


def _center_by_mass(fitted: np.ndarray, size: int) -> np.ndarray:
    """Place `fitted` in a size×size black field with its centre of mass at the centre."""
    height, width = fitted.shape
    if fitted.any():
        row, col = center_of_mass(fitted)
    else:  # resampling erased faint ink: centre the box instead
        row, col = (height - 1) / 2, (width - 1) / 2
    # The shift is clamped so the whole digit stays in the field; the centre of mass is
    # then within half a pixel of the centre unless the ink is very lopsided.
    top = min(max(_round_half_up(size / 2 - row), 0), size - height)
    left = min(max(_round_half_up(size / 2 - col), 0), size - width)
    field = np.zeros((size, size), np.uint8)
    field[top : top + height, left : left + width] = fitted
    return field


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """The intensity-weighted mean (row, column) of a 2-D image.

    Args:
        image: a 2-D array with a positive sum.

    Returns:
        (row, column) in pixel index coordinates.
    """
    weights = np.asarray(image, dtype=np.float64)
    total = weights.sum()
    row = weights.sum(axis=1) @ np.arange(weights.shape[0]) / total
    col = weights.sum(axis=0) @ np.arange(weights.shape[1]) / total
    return float(row), float(col)


def square_on_black(gray: np.ndarray) -> np.ndarray:
    """`gray` ((H, W) or (H, W, C)) centred on a black square as wide as its longer side, so
    a step such as the cropped or the fitted digit can be shown enlarged without stretching
    its shape."""
    height, width = gray.shape[:2]
    side = max(height, width)
    square = np.zeros((side, side, *gray.shape[2:]), gray.dtype)
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = gray
    return square


def thumbnail(pixels: np.ndarray, side: int) -> np.ndarray:
    """A copy of an (H, W) or (H, W, 3) uint8 image whose longer side is at most `side`,
    for display: a 12-megapixel photo is not sent to the browser to be shown 96 wide."""
    image = Image.fromarray(np.ascontiguousarray(pixels))
    image.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(image)


def _round_half_up(value: float) -> int:
    # Python's round() goes to even, which would bias half-pixel shifts one way or another.
    return int(np.floor(value + 0.5))


def _to_model_input(gray: np.ndarray) -> np.ndarray:
    return (gray.astype(np.float32) / 255)[..., np.newaxis]


# ------------------------------------------------------------------------------ uploads


def prepare_upload(
    image: Image.Image, input_shape: tuple[int, int, int], mnist_style: bool
) -> UploadSteps:
    """Turn a decoded upload into input for a model, keeping every step.

    MNIST-style models get the digit procedure: the ink is separated from the paper as a
    scanner would (`separate_ink`: lighting, shadows and grain removed, dark ink on light
    paper inverted), then cropped, fitted and centred like a canvas drawing. An image that
    holds no digit (blank, a dot, a blob, a scribble) gets `no_digit` and zero input.
    Other models get the whole image resized to (H, W) without
    keeping the aspect ratio: their training images (e.g. CIFAR-10) fill the frame, so a
    slightly squeezed picture is closer to what they saw than one with letterbox bars,
    which they never saw and which would shrink the object.

    Args:
        image: a Pillow image, e.g. from `decode_image` (any mode is accepted).
        input_shape: the model's (H, W, C) input, C being 1 or 3.
        mnist_style: use the MNIST procedure (needs a (28, 28, 1) input).

    Returns:
        The UploadSteps.

    Raises:
        ValueError: `input_shape` is not (H, W, 1|3), or `mnist_style` with a shape
            other than (28, 28, 1).
    """
    height, width, channels = _check_input_shape(input_shape, mnist_style)
    image = normalize_mode(image)
    original = np.asarray(image.convert("RGB"))
    converted = np.asarray(image.convert("L")) if channels == 1 else original
    if mnist_style:
        working = _shrink(converted, WORK_SIDE)  # first: every later step is per pixel
        inverted = is_dark_on_light(working)
        paper = separate_ink(working, inverted)
        digit = prepare_digit(paper.ink)
        return UploadSteps(original, converted, inverted, digit, None, digit.model_input, paper)
    resized = _resize_whole(converted, height, width)
    model_input = resized.astype(np.float32) / 255
    if channels == 1:
        model_input = model_input[..., np.newaxis]
    return UploadSteps(original, converted, False, None, resized, model_input)


def _check_input_shape(input_shape: tuple[int, ...], mnist_style: bool) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape[:2], default=0) < 1:
        raise ValueError(
            f"The model input must be (height, width, channels) with 1 or 3 channels; got {shape}."
        )
    if mnist_style and shape != (MNIST_SIZE, MNIST_SIZE, 1):
        raise ValueError(
            f"MNIST-style preprocessing makes (28, 28, 1) inputs, but the model expects "
            f"{shape}. Pass mnist_style=False for this model."
        )
    return int(shape[0]), int(shape[1]), int(shape[2])


def is_dark_on_light(gray: np.ndarray) -> bool:
    """Whether a grayscale image is dark ink on a light background.

    Ink is the minority of an image's pixels and stands out from the paper around it, so
    the sign of the third moment (skewness) of the image's detail, the image minus a blur
    of it, says which way the ink goes: a long dark tail for a pen on paper, a bright one
    for chalk on a board. A shadow or the fall-off of a lamp is removed with the blur, so
    it cannot swap paper and ink as a darker half of the page would for any brightness
    rule. With too little detail to judge (blank paper, or a shadow's edge alone), an
    image whose brightest part is lighter than mid-grey is taken as paper.

    Args:
        gray: (H, W) uint8.

    Returns:
        True for dark on light, False for light on dark.
    """
    detail = _detail(gray)
    third_moment = float(np.mean(detail**3))
    skew = abs(third_moment) ** (1 / 3)
    if skew < max(MIN_DETAIL_TO_JUDGE, MIN_SKEW * float(np.std(detail))):
        return bool(np.percentile(gray, 99) > 127)  # the best-lit paper, if any
    return third_moment < 0


def _detail(gray: np.ndarray) -> np.ndarray:
    """The image minus its slow changes (lighting, shadows), on a copy of at most
    DETAIL_SIDE pixels: block averages keep the mass of thin strokes."""
    height, width = gray.shape
    scale = min(1.0, DETAIL_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX), np.float64)
    sigma = max(1.0, DETAIL_BLUR * min(small.shape))
    return small - ndimage.gaussian_filter(small, sigma, mode="nearest")


def _resize_whole(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    # reducing_gap shrinks big photos by an integer factor first: fast, and the final
    # LANCZOS pass keeps the quality.
    resized = Image.fromarray(pixels).resize(
        (width, height), Image.Resampling.LANCZOS, reducing_gap=3.0
    )
    return np.asarray(resized)


# ------------------------------------------------------------------- photos of digits
#
# A photo of a digit on paper is not a canvas: the paper is grey and unevenly lit (a
# shadow across the page), the sensor adds noise, and the picture may hold no digit at all.
# `separate_ink` does what a scanner does before a digit is cut out: it estimates the
# paper's lighting, divides it out, thresholds the result (Otsu, never below the paper's
# noise), keeps the digit's strokes and refuses what cannot be a digit.

WORK_SIDE = 768  # longer side of the working copy: strokes survive, 12 MP photos stay fast
LIGHTING_KERNEL = 0.15  # closing window, of the shorter side: wider than any pen stroke
BLUR_FROM_SIDE = 200  # working copies this large are blurred by one pixel against grain
MIN_CONTRAST = 0.2  # ink is at least 20% darker than the paper around it
NOISE_FLOOR_SIGMAS = 6  # and further from the paper's level than its grain reaches (the
# grain is measured after a blur that correlates neighbours, which hides some of it)
SOFT_EDGE_SIGMAS = 3  # the strokes' soft edges start this far above the paper's grain
PAPER_PERCENTILE = 25  # of the contrast: paper covers more than this of any digit's photo
SPECK_SIDE = 0.01  # pieces smaller than (1% of the shorter side)² are dust, not ink
MIN_SPECK_PIXELS = 4
JOIN_MARGIN = 0.25  # a piece this near the digit (of its longer side) belongs to it
MIN_DIGIT_SIDE = 0.05  # of the image's shorter side; below it the ink is a dot
MIN_DIGIT_PIXELS = 6
MAX_BLOB_THICKNESS = 0.5  # a stroke thicker than half the digit's size is a blob
MAX_PIECES = 6  # a digit is written in at most a few strokes
MAX_INK_OUTSIDE = 0.5  # more ink elsewhere than in the digit: a page of scribbles or text
MAX_LOOPS = 2  # an 8 has two enclosed holes; a scribble has many
MIN_LOOP_AREA = 0.004  # of the digit's box: smaller holes are gaps in the ink, not loops
HOLE_RIM = 3  # at least this many pixels of paper around the digit are compared with it
MAX_INK_FRACTION = 0.4  # a digit leaves most of the picture to the paper
MNIST_STROKE = 0.15  # MNIST's median stroke is ~16% of the digit's longer side
THIN_STROKE = 0.11  # strokes thinner than this (a fine pen) are thickened to MNIST_STROKE
INK_LEVEL_PERCENTILE = 90  # of the strokes' contrast: mapped to full white


class NoDigitKind(StrEnum):
    """Why an image holds no digit a digit model could read."""

    NO_INK = "no ink"
    TOO_SMALL = "too small"
    BLOB = "a blob, not strokes"
    SCATTERED = "scattered"
    TOO_MUCH_INK = "too much ink"


NO_DIGIT_ADVICE = {
    NoDigitKind.NO_INK: (
        "the picture is blank paper, with nothing darker than the paper around it. "
        "Write the digit with a darker pen, or photograph it closer."
    ),
    NoDigitKind.TOO_SMALL: (
        "the only ink is a dot or specks, too small to be a digit. Write the digit larger, "
        "or photograph it so that it fills most of the frame."
    ),
    NoDigitKind.BLOB: (
        "the ink is one solid blob, not the strokes of a digit. Write the digit with a pen "
        "line, not a filled shape."
    ),
    NoDigitKind.SCATTERED: (
        "the ink is scattered over the picture in many pieces or loops (a scribble, text or "
        "a pattern), not one digit. Photograph one digit on plain paper, filling the frame."
    ),
    NoDigitKind.TOO_MUCH_INK: (
        "most of the picture is dark, so ink and paper cannot be told apart. Photograph a "
        "digit on plain, light paper (or draw it light on a dark background)."
    ),
}


DRAWING_ADVICE = {  # the same reasons, said to someone drawing on the canvas
    NoDigitKind.NO_INK: "nothing is drawn yet. Draw a digit on the black square.",
    NoDigitKind.TOO_SMALL: "the drawing is a dot, too small to be a digit. Draw the digit "
    "larger, filling most of the square.",
    NoDigitKind.BLOB: "the drawing is one solid blob, not the strokes of a digit. Draw the "
    "digit as a line (Clear, then draw again).",
    NoDigitKind.SCATTERED: "the drawing is a scribble of many pieces or loops, not one digit. "
    "Clear it and draw one digit.",
    NoDigitKind.TOO_MUCH_INK: "most of the square is covered in ink. Clear it and draw one "
    "digit with a thinner stroke.",
}


@dataclass(frozen=True)
class NoDigit:
    """A typed "no digit found": what is wrong and what to do, for the page to show.

    Attributes:
        kind: the reason, for code and tests.
        message: one sentence for the learner ("No digit found: …").
    """

    kind: NoDigitKind

    @property
    def message(self) -> str:
        """What to tell someone who uploaded a picture."""
        return f"No digit found: {NO_DIGIT_ADVICE[self.kind]}"

    @property
    def drawing_message(self) -> str:
        """What to tell someone drawing on the canvas."""
        return f"No digit found: {DRAWING_ADVICE[self.kind]}"


@dataclass(frozen=True, eq=False)
class InkSteps:
    """How the ink was separated from the paper of a photo, for display.

    Attributes:
        working: (h, w) uint8 grayscale, the upload shrunk to at most WORK_SIDE.
        paper_removed: (h, w) uint8, how much darker than the paper (or, for light ink on
            a dark ground, brighter than the ground) each pixel is; light on black.
        strokes: (h, w) bool, the pixels found to be the digit's ink (above the
            threshold, dust and stray marks left out); all False when no digit is found.
        ink: (h, w) uint8, the digit's strokes alone, light on black, thickened to
            MNIST's stroke width when they were thinner; all zeros when no digit is found.
        threshold: the contrast (0..1) above which a pixel counted as ink.
        no_digit: why no digit was found; None when one was.
    """

    working: np.ndarray
    paper_removed: np.ndarray
    strokes: np.ndarray
    ink: np.ndarray
    threshold: float
    no_digit: NoDigit | None


def separate_ink(gray: np.ndarray, dark_on_light: bool) -> InkSteps:
    """Separate a digit's ink from the paper of a photo, or say why there is no digit.

    Args:
        gray: (H, W) uint8 grayscale photo or scan, any size.
        dark_on_light: the ink is darker than its background (a pen on paper).

    Returns:
        The InkSteps; `ink` is ready for `prepare_digit` when `no_digit` is None.
    """
    working = _shrink(np.asarray(gray, np.uint8), WORK_SIDE)
    contrast, paper = _contrast_to_paper(working, dark_on_light)
    threshold = _ink_threshold(contrast)
    pieces = _ink_pieces(contrast > threshold, min(working.shape))
    digit, verdict = _find_digit(pieces, working.shape)
    if verdict is None and _paper_dips_under(digit, paper, dark_on_light):
        verdict = NoDigit(NoDigitKind.BLOB)
    paper_removed = _to_uint8(contrast)
    if verdict is not None:
        none = np.zeros(working.shape, bool)
        return InkSteps(working, paper_removed, none, np.zeros_like(working), threshold, verdict)
    ink = _stroke_image(contrast, digit)
    return InkSteps(working, paper_removed, _pen_edges(contrast, digit), ink, threshold, None)


def _paper_dips_under(digit: np.ndarray, paper: np.ndarray, dark_on_light: bool) -> bool:
    """Whether the paper's estimate under the digit is darker than anywhere around it, in a
    blob's shape: then a blob wider than the lighting's window was taken for paper, and only its rim
    was left as ink (which reads as a 0). A shadow across a digit also reaches the paper
    around it, so it does not dip under the digit alone.
    """
    rows, cols = np.nonzero(digit)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    rim = max(HOLE_RIM, round(0.1 * max(bottom - top, right - left)))
    around = np.zeros(paper.shape, bool)
    around[max(top - rim, 0) : bottom + rim, max(left - rim, 0) : right + rim] = True
    around[top:bottom, left:right] = False
    if not around.any():  # the digit fills the picture: nothing to compare with
        return False
    level = paper if dark_on_light else 255 - paper  # light ink: the ground rises instead
    darkest_around = float(np.percentile(level[around], 5))
    dip = level[top:bottom, left:right] < (1 - MIN_CONTRAST) * darkest_around
    if not dip.any():
        return False
    # The ink and the dip together are the blob: as thick as it is wide. A thick bar (a
    # marker's 1 filling the frame) dips too, but stays a stroke.
    shape = dip | digit[top:bottom, left:right]
    side = max(bottom - top, right - left)
    return stroke_thickness(shape, widest=True) > MAX_BLOB_THICKNESS * side


def _shrink(gray: np.ndarray, side: int) -> np.ndarray:
    height, width = gray.shape
    scale = side / max(height, width)
    if scale >= 1:
        return gray
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # reducing_gap first averages whole blocks (fast for 12 MP photos); the averaging keeps
    # thin strokes as fainter lines instead of skipping them.
    return np.asarray(
        Image.fromarray(gray).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    )


def _contrast_to_paper(gray: np.ndarray, dark_on_light: bool) -> tuple[np.ndarray, np.ndarray]:
    """0..1 float32: how far each pixel is from the local paper (or ground), toward ink;
    and the paper's estimated brightness.

    Paper's lighting multiplies its brightness (a shadow halves paper and ink alike), so a
    pen on paper is measured as 1 - pixel / paper. The paper is estimated by a grey closing
    (dilation, then erosion) with a window wider than any stroke: it removes the dark
    strokes and keeps the slow change of the lighting, as a scanner's background
    estimation does. Light ink on a dark ground uses an opening and a difference instead.
    """
    values = gray.astype(np.float32)
    if min(gray.shape) >= BLUR_FROM_SIDE:
        values = ndimage.gaussian_filter(values, 1.0)
    background = _background(values, closing=dark_on_light)
    if dark_on_light:
        contrast = 1 - values / np.maximum(background, 1)
    else:
        contrast = (values - background) / np.maximum(255 - background, 1)
    return np.clip(contrast, 0, 1).astype(np.float32), background


def _background(values: np.ndarray, closing: bool) -> np.ndarray:
    # At full working size, not on a shrunken copy: averaging cells first would turn
    # dense hatching or text into an even grey "paper". Square windows make the closing
    # two 1-D passes per direction, so it costs a few milliseconds.
    window = max(3, round(LIGHTING_KERNEL * min(values.shape)))
    morph = ndimage.grey_closing if closing else ndimage.grey_opening
    # Mirrored at the edges: a shadow's corner there keeps its width, and is not filled in
    # as if it were a stroke.
    return morph(values, size=(window, window), mode="reflect")


def _ink_threshold(contrast: np.ndarray) -> float:
    """Otsu's threshold on the contrast, but never within the paper's own grain."""
    floor = _paper_level(contrast) + max(MIN_CONTRAST, NOISE_FLOOR_SIGMAS * _grain(contrast))
    return max(otsu_threshold(contrast), floor)


def _paper_level(contrast: np.ndarray) -> float:
    # A low quantile rather than the median: a page of dense ink (which is then refused
    # as too much ink) must not move the paper's level up to the ink's.
    return float(np.percentile(contrast, PAPER_PERCENTILE))


def _grain(contrast: np.ndarray) -> float:
    """The paper's noise (standard deviation), from the differences of neighbouring
    pixels, which even areas of ink and the edges of strokes hardly change."""
    steps = np.abs(np.diff(contrast, axis=1))
    return MAD_TO_SIGMA * float(np.median(steps)) / np.sqrt(2) if steps.size else 0.0


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1]: the cut that maximises the between-class
    variance of the two sides.

    Args:
        values: an array of floats in [0, 1].
        bins: histogram bins.

    Returns:
        The threshold; values above it form the upper class. 1.0 for a constant image.
    """
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    counts = counts.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = sum_low / weight_low
        mean_high = (sum_low[-1] - sum_low) / weight_high
        between = weight_low * weight_high * (mean_low - mean_high) ** 2
    between = np.nan_to_num(between[:-1], nan=-1.0)
    if between.max(initial=-1.0) <= 0:
        return 1.0
    return float(edges[int(np.argmax(between)) + 1])


@dataclass(frozen=True)
class _Pieces:
    """The connected pieces of ink after the dust is removed."""

    labels: np.ndarray  # (h, w) int32, 0 for paper
    areas: np.ndarray  # area of piece i + 1
    boxes: list[BBox]  # bounding box of piece i + 1
    had_ink: bool  # some ink was found, perhaps only dust


def _ink_pieces(mask: np.ndarray, shorter_side: int) -> _Pieces:
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    speck = max(MIN_SPECK_PIXELS, (SPECK_SIDE * shorter_side) ** 2)
    keep = np.flatnonzero(areas >= speck) + 1
    relabel = np.zeros(count + 1, np.int32)
    relabel[keep] = np.arange(1, keep.size + 1)
    labels = relabel[labels]
    slices = ndimage.find_objects(labels)
    boxes = [(s[0].start, s[1].start, s[0].stop, s[1].stop) for s in slices]
    return _Pieces(labels, areas[keep - 1], boxes, bool(count))


def _find_digit(pieces: _Pieces, shape: tuple[int, int]) -> tuple[np.ndarray, NoDigit | None]:
    """The digit's mask (the largest piece and the pieces near it), or why there is none."""
    empty = np.zeros(shape, bool)
    if not pieces.boxes:
        return empty, NoDigit(NoDigitKind.TOO_SMALL if pieces.had_ink else NoDigitKind.NO_INK)
    if pieces.areas.sum() > MAX_INK_FRACTION * shape[0] * shape[1]:
        return empty, NoDigit(NoDigitKind.TOO_MUCH_INK)
    members = _digit_members(pieces)
    digit = np.isin(pieces.labels, np.asarray(members) + 1)
    box = _union_box([pieces.boxes[i] for i in members])
    side = max(box[2] - box[0], box[3] - box[1])
    verdict = _judge_digit(digit[box[0] : box[2], box[1] : box[3]], side, min(shape))
    inside = pieces.areas[members].sum()
    if verdict is None and (
        len(members) > MAX_PIECES or pieces.areas.sum() - inside > MAX_INK_OUTSIDE * inside
    ):
        verdict = NoDigit(NoDigitKind.SCATTERED)
    return digit, verdict


def _digit_members(pieces: _Pieces) -> list[int]:
    """The largest piece, grown by every piece whose box comes near the digit's box."""
    members = [int(np.argmax(pieces.areas))]
    grown = True
    while grown:
        box = _union_box([pieces.boxes[i] for i in members])
        margin = JOIN_MARGIN * max(box[2] - box[0], box[3] - box[1])
        near = [
            i for i, other in enumerate(pieces.boxes)
            if i not in members and _boxes_near(box, other, margin)
        ]  # fmt: skip
        members += near
        grown = bool(near)
    return members


def _boxes_near(box: BBox, other: BBox, margin: float) -> bool:
    return (
        other[0] < box[2] + margin and other[2] > box[0] - margin
        and other[1] < box[3] + margin and other[3] > box[1] - margin
    )  # fmt: skip


def _union_box(boxes: list[BBox]) -> BBox:
    return (
        min(b[0] for b in boxes), min(b[1] for b in boxes),
        max(b[2] for b in boxes), max(b[3] for b in boxes),
    )  # fmt: skip


def _judge_digit(digit: np.ndarray, side: int, shorter_side: int) -> NoDigit | None:
    """Whether the ink cut out to its box could be a digit; None when it could."""
    if side < max(MIN_DIGIT_PIXELS, MIN_DIGIT_SIDE * shorter_side):
        return NoDigit(NoDigitKind.TOO_SMALL)
    if stroke_thickness(digit, widest=True) > MAX_BLOB_THICKNESS * side:
        return NoDigit(NoDigitKind.BLOB)
    if count_loops(digit, MIN_LOOP_AREA * digit.size) > MAX_LOOPS:
        return NoDigit(NoDigitKind.SCATTERED)
    return None


def stroke_thickness(mask: np.ndarray, widest: bool = False) -> float:
    """The width of the strokes of a binary image, in pixels.

    From the distance of each ink pixel to the paper: along a stroke's middle line it is
    half the stroke's width.

    Args:
        mask: (h, w) bool, the ink.
        widest: the widest place (a blob's diameter) instead of the typical stroke.

    Returns:
        The width; 0 for no ink.
    """
    if not mask.any():
        return 0.0
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))
    if widest:
        return 2 * float(distance.max())
    ridge = (distance == ndimage.maximum_filter(distance, size=3)) & (distance > 0)
    # A middle-line pixel's distance reaches the first paper pixel, half a pixel past the
    # stroke's edge on each side for odd widths and none for even ones: -0.5 on average.
    return 2 * float(np.median(distance[ridge])) - 0.5


def count_loops(mask: np.ndarray, min_area: float) -> int:
    """How many holes of at least `min_area` pixels the ink encloses (an 8 has two)."""
    paper, count = ndimage.label(~np.pad(mask, 1))  # 4-connected paper around 8-connected ink
    areas = np.bincount(paper.ravel(), minlength=count + 1)
    outside = paper[0, 0]
    return int(sum(1 for i in range(1, count + 1) if i != outside and areas[i] >= min_area))


def _stroke_image(contrast: np.ndarray, digit: np.ndarray) -> np.ndarray:
    """The digit alone, light on black, with strokes as wide as MNIST's when thinner.

    The contrast is kept (its soft edges are the antialiasing) within a pixel of the
    chosen strokes, so the rest of the page is black; a fine pen's strokes are widened,
    since a network trained on MNIST never saw a digit drawn in hairlines.
    """
    rows, cols = np.nonzero(digit)
    side = max(np.ptp(rows), np.ptp(cols)) + 1
    level = _ink_level(contrast, digit)
    # The paper's grain is taken off, so the pixels around a stroke stay black.
    paper = _paper_level(contrast) + SOFT_EDGE_SIGMAS * _grain(contrast)
    soft = np.clip((contrast - paper) / max(level - paper, 1e-6), 0, 1)
    near = ndimage.binary_dilation(digit, structure=np.ones((3, 3), bool))
    ink = soft * near
    width = stroke_thickness(digit)
    if width < THIN_STROKE * side:
        radius = (MNIST_STROKE * side - max(width, 1)) / 2
        widened = ndimage.distance_transform_edt(~digit) <= radius
        ink = np.maximum(ink, widened)
    return _to_uint8(ink)


def _pen_edges(contrast: np.ndarray, digit: np.ndarray) -> np.ndarray:
    """The digit's pieces cut at half the ink's contrast, where a pen covers half of a
    pixel (Otsu's cut, made for finding the pieces, lies nearer the paper)."""
    half = (_paper_level(contrast) + _ink_level(contrast, digit)) / 2
    return digit & (contrast >= half)


def _ink_level(contrast: np.ndarray, digit: np.ndarray) -> float:
    return float(np.percentile(contrast[digit], INK_LEVEL_PERCENTILE))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8)


# ------------------------------------------------------------------------------ display


def image_from_array(x: np.ndarray) -> Image.Image:
    """Make a Pillow image for display from a model-style or uint8 array.

    Args:
        x: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); uint8 (0..255) or float in [0, 1]
            (clipped). Other integer dtypes are clipped to 0..255.

    Returns:
        An "L", "RGB" or "RGBA" image.

    Raises:
        ValueError: the shape is not one of the above.
    """
    array = np.asarray(x)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(
            f"An image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {np.shape(x)}."
        )
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        array = np.rint(np.clip(np.nan_to_num(array), 0, 1) * 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))
