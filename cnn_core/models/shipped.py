"""The models that ship with the lab, so the Predict and Inspect pages work before any training.

Each is stored as the lab's own description (zoo name, input shape, class names) plus a
weights-only file: loading rebuilds the architecture from the zoo and then reads the
weights, so no code is ever loaded from a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras

from cnn_core import settings
from cnn_core.models import zoo

PRETRAINED_DIR = settings.ASSETS_DIR / "pretrained"


class PretrainedError(Exception):
    """A shipped model is missing or damaged; the message says how to rebuild it."""


@dataclass(frozen=True)
class Pretrained:
    """One shipped model and what it was trained on."""

    key: str
    dataset: str
    model: str
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    ink_on_dark: bool
    test_accuracy: float
    description: str
    weights_path: Path


def _read(meta_path: Path) -> Pretrained:
    meta = json.loads(meta_path.read_text())
    return Pretrained(
        key=meta_path.stem,
        dataset=meta["dataset"],
        model=meta["model"],
        input_shape=tuple(meta["input_shape"]),
        class_names=tuple(meta["class_names"]),
        ink_on_dark=bool(meta["ink_on_dark"]),
        test_accuracy=float(meta["test_accuracy"]),
        description=meta["description"],
        weights_path=meta_path.with_suffix(".weights.h5"),
    )


def list_pretrained(dataset: str | None = None) -> list[Pretrained]:
    """The shipped models, optionally only those trained on one dataset."""
    found = [_read(p) for p in sorted(PRETRAINED_DIR.glob("*.json"))]
    return [p for p in found if dataset in (None, p.dataset)]


def load_pretrained(info: Pretrained) -> keras.Model:
    """Rebuild a shipped model from the zoo and load its weights.

    Raises:
        PretrainedError: the weights file is missing or does not fit the architecture.
    """
    model = zoo.build_model(info.model, info.input_shape, len(info.class_names))
    try:
        model.load_weights(info.weights_path)
    except (OSError, ValueError) as exc:
        raise PretrainedError(
            f"{info.weights_path.name}: cannot be loaded ({exc}). Restore assets/pretrained/ "
            "with `git checkout assets/`, or rebuild it with scripts/build_pretrained.py."
        ) from exc
    return model
