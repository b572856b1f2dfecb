"""Turn a canvas drawing or an uploaded image into model input, keeping every step.

Each path returns a frozen dataclass of its intermediate arrays, so a page can show the
learner exactly what the network receives:

- digits (the canvas, and uploads for MNIST-style models) follow the procedure that made
  MNIST: crop to the ink, fit it into a 20×20 box keeping the aspect ratio, then place it
  in a 28×28 field so that the centre of mass of the ink sits at the centre;
- other models get the whole image resized to their input size.

Uploaded bytes are untrusted: `decode_image` caps the bytes and the pixels before any
pixel is decoded and turns every failure into `ImageRejected`, whose message tells the
user what went wrong and what to do.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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
# Below this spread between the image's dark and bright ends (1st and 99th percentile)
# there is too little ink to judge from the range, so an absolute mid-grey decides.
MIN_RANGE_TO_JUDGE = 32
NOISE_SIGMAS = 3  # paper grain this far above the paper's level still counts as paper
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
        digit: MNIST-style only: the crop/fit/centre steps; `digit.raw` is the image as
            light ink on black after inversion and background removal. None otherwise.
        resized: other models only: the whole image resized to the model's (H, W).
            None for MNIST-style models.
        model_input: (H, W, C) float32 in [0, 1].
    """

    original: np.ndarray
    converted: np.ndarray
    inverted: bool
    digit: DigitSteps | None
    resized: np.ndarray | None
    model_input: np.ndarray

    @property
    def is_empty(self) -> bool:
        """True when an MNIST-style upload holds no ink at all."""
        return self.digit is not None and self.digit.is_empty


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
    """`gray` (2-D) centred on a black square as wide as its longer side, so a step such as
    the cropped or the fitted digit can be shown enlarged without stretching its shape."""
    height, width = gray.shape
    side = max(height, width)
    square = np.zeros((side, side), gray.dtype)
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = gray
    return square


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

    MNIST-style models get the digit procedure: a dark-on-light image (a digit on paper)
    is inverted, the paper's grey is removed, then the ink is cropped, fitted and centred
    like a canvas drawing. Other models get the whole image resized to (H, W) without
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
        inverted = is_dark_on_light(converted)
        ink = 255 - converted if inverted else converted
        digit = prepare_digit(remove_background(ink))
        return UploadSteps(original, converted, inverted, digit, None, digit.model_input)
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

    The background is the median of the border pixels. The image is dark on light when
    that background is nearer the bright end of the image's own range (1st to 99th
    percentile) than the dark end, which also holds for grey paper in a dim photo. When
    the range is too narrow to judge (very little ink), a background brighter than
    mid-grey decides.

    Args:
        gray: (H, W) uint8.

    Returns:
        True for dark on light, False for light on dark.
    """
    background = float(np.median(_border(gray)))
    dark, bright = np.percentile(gray, [1, 99])
    if bright - dark < MIN_RANGE_TO_JUDGE:
        return bool(background > 127)
    return bool(background > (dark + bright) / 2)


def remove_background(ink: np.ndarray) -> np.ndarray:
    """Map the background to black and the brightest ink to white.

    Photographed paper is grey, not white, so after inversion its background is not
    black; left as is, every pixel would count as ink and the crop would be the whole
    photo. The background level is the border's median plus three standard deviations
    of its grain (estimated robustly, from the median absolute deviation), so the
    paper's noise goes to black too. A clean light-on-black image comes out unchanged.

    Args:
        ink: (H, W) uint8, light ink on a darker background.

    Returns:
        (H, W) uint8 with the background at 0; all zeros when there is no ink.
    """
    border = _border(ink).astype(np.float32)
    median = float(np.median(border))
    grain = MAD_TO_SIGMA * float(np.median(np.abs(border - median)))
    background = median + NOISE_SIGMAS * grain
    peak = float(ink.max())
    if peak <= background:
        return np.zeros_like(ink)
    stretched = (ink.astype(np.float32) - background) * (255 / (peak - background))
    return np.rint(np.clip(stretched, 0, 255)).astype(np.uint8)


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])


def _resize_whole(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    # reducing_gap shrinks big photos by an integer factor first: fast, and the final
    # LANCZOS pass keeps the quality.
    resized = Image.fromarray(pixels).resize(
        (width, height), Image.Resampling.LANCZOS, reducing_gap=3.0
    )
    return np.asarray(resized)


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
