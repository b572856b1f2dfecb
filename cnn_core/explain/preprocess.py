"""Turn a canvas drawing or an uploaded image into model input, keeping every step.

Each path returns a frozen dataclass of its intermediate arrays, so a page can show the
learner exactly what the network receives:

- digits (the canvas, and uploads for MNIST-style models) follow the procedure that made
  MNIST: crop to the ink, fit it into a 20×20 box keeping the aspect ratio, then place it
  in a 28×28 field so that the centre of mass of the ink sits at the centre;
- uploads for digit models first separate the ink from the paper as a scanner would
  (lighting and shadows divided out, an Otsu threshold above the paper's grain: see
  `cnn_core.explain.photos`), and an image without a digit (blank, a dot, a blob, a
  scribble) gets a typed `NoDigit`;
- other models get the whole image resized to their input size.

Uploaded bytes are untrusted: `cnn_core.data.decoding.decode_image` caps the bytes and
the pixels before any pixel is decoded and turns every failure into `ImageRejected`, whose
message tells the user what went wrong and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage  # installed with scikit-learn, which requires it

from cnn_core.data import datasets
from cnn_core.data.decoding import LUMA, normalize_mode
from cnn_core.explain.photos import (
    WORK_SIDE,
    BBox,
    InkSteps,
    NoDigit,
    _find_digit,
    _ink_pieces,
    _shrink,
    separate_ink,
)

INK_THRESHOLD = 25  # of 255: above antialiasing fringes and JPEG noise, below any stroke
MNIST_SIZE = 28  # side of the MNIST field
MNIST_BOX = 20  # longer side of the fitted digit: leaves a margin to shift it in
# Ink's direction is judged on the image's detail (the image minus a blur this wide, of
# its shorter side); below this many grey levels of skew there is no ink to judge by.
DETAIL_SIDE = 256
DETAIL_BLUR = 0.05
MIN_DETAIL_TO_JUDGE = 1.0
MIN_SKEW = 0.7  # cube root of the third moment over the standard deviation; ink gives >1


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
        inverted: the image was dark on light and was inverted (MNIST-style models, and
            whole-picture models of light objects on black).
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
    image: Image.Image,
    input_shape: tuple[int, int, int],
    mnist_style: bool,
    *,
    light_on_dark: bool = False,
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
        light_on_dark: a whole-picture grayscale model trained on light objects on black
            (Fashion-MNIST): a dark-on-light upload (a shoe photographed on a white table)
            is inverted first, as `has_light_background` judges it.

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
    inverted = light_on_dark and channels == 1 and has_light_background(converted)
    if inverted:
        converted = 255 - converted
    resized = _resize_whole(converted, height, width)
    model_input = resized.astype(np.float32) / 255
    if channels == 1:
        model_input = model_input[..., np.newaxis]
    return UploadSteps(original, converted, inverted, None, resized, model_input)


def reads_digits(model) -> bool:
    """Whether a trained model (a catalog `TrainedModel`) reads drawings and uploads as
    MNIST reads a digit: a 28×28 light-on-dark model of a dataset of digits."""
    return (
        bool(model.ink_on_dark)
        and tuple(model.input_shape) == (MNIST_SIZE, MNIST_SIZE, 1)
        and datasets.holds_digits(model.dataset)
    )


def prepare_upload_for(image: Image.Image, model) -> UploadSteps:
    """`prepare_upload` with the procedure a trained model (a `TrainedModel`) needs: the
    Predict page's Upload tab and `python -m cnn_core explain` both use it."""
    return prepare_upload(
        image, tuple(model.input_shape), reads_digits(model), light_on_dark=model.ink_on_dark
    )


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


def has_light_background(gray: np.ndarray) -> bool:
    """Whether a whole picture (an object filling much of the frame) stands on a light
    background: the median of its outermost rows and columns is above mid-grey. Unlike
    `is_dark_on_light`, it does not need the object to be a thin minority of the pixels."""
    edges = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return bool(np.median(edges) > 127)


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
