"""What every model accepts: image sizes, channels and class counts, each checked clearly."""

from __future__ import annotations

import numbers
from typing import Any

# --- Input limits -------------------------------------------------------------------------
MIN_INPUT_SIDE = 8  # every model accepts at least 8x8 images unless its pooling needs more
MAX_INPUT_SIDE = 512  # beyond this a two-core classroom machine cannot train in useful time
MAX_CHANNELS = 4  # grey, colour, or colour with alpha; more means channels came first
MAX_CLASSES = 1000


class ModelError(ValueError):
    """A model cannot be built from the given name, shape or class count."""


def _check_input_shape(input_shape: Any, key: str, min_input_side: int) -> tuple[int, int, int]:
    """Checks (height, width, channels) against the model's limits; returns it as a tuple."""
    example = "e.g. (28, 28, 1) for MNIST or (32, 32, 3) for CIFAR-10"
    dims = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else ()
    if len(dims) != 3 or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1 for d in dims
    ):
        raise ModelError(
            f"input_shape must be three positive whole numbers (height, width, channels), "
            f"{example}; got {input_shape!r}."
        )
    height, width, channels = (int(d) for d in dims)
    if channels > MAX_CHANNELS:
        raise ModelError(
            f"input_shape has {channels} channels, but images have 1 (grey), 3 (colour) "
            f"or {MAX_CHANNELS} (with alpha). Put the channels last: (height, width, channels)."
        )
    low, high = min_input_side, MAX_INPUT_SIDE
    if not (low <= height <= high and low <= width <= high):
        raise ModelError(
            f"'{key}' needs images from {low}×{low} to {high}×{high} pixels, got "
            f"{height}×{width}. Resize the images, or choose another model (smaller images "
            "run out of pixels in its pooling layers)."
        )
    return height, width, channels


def _check_num_classes(num_classes: Any) -> None:
    """A classifier needs at least two classes to choose between."""
    if (
        not isinstance(num_classes, numbers.Integral)
        or isinstance(num_classes, bool)
        or not 2 <= num_classes <= MAX_CLASSES
    ):
        raise ModelError(
            f"num_classes must be a whole number from 2 to {MAX_CLASSES} (one output per "
            f"class), got {num_classes!r}."
        )
