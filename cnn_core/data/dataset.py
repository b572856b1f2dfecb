"""The Dataset value every room passes around, and the data room's errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SPLIT_SEED = 20_240_601  # fixed, so every machine gets the same embedded split
USER_PREFIX = "user:"

ProgressFn = Callable[[int, int | None], None]  # (bytes done, total bytes or None)


class DatasetError(Exception):
    """A dataset could not be read; the message says what to do about it."""


class DatasetUnavailable(DatasetError):
    """No source of the dataset is ready on this machine."""


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays of one dataset, with where they came from.

    Attributes:
        name: registry key, e.g. "mnist" or "user:flowers".
        title: name for people, e.g. "MNIST (embedded 10,000-image subset)".
        x_train, x_test: uint8 images shaped (N, H, W, C).
        y_train, y_test: int64 labels shaped (N,).
        class_names: one name per label.
        source: the source id used, e.g. "embedded".
        source_description: one sentence on the provenance, for the app.
        ink_on_dark: True when objects are light on a black background (MNIST-style),
            so uploads of dark-on-light pictures must be inverted.
        fingerprint: a saved user dataset's version (see `fingerprint`); None otherwise.
    """

    name: str
    title: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    source_description: str
    ink_on_dark: bool = False
    fingerprint: str | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class DatasetExists(DatasetError):
    """A user dataset of that name holds other images; replace it or choose another name."""


class DatasetInUse(DatasetError):
    """The user dataset cannot be replaced or deleted: runs trained or train on it."""


class DatasetGone(DatasetUnavailable):
    """The images a run trained on were replaced or deleted since."""
