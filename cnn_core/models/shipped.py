"""The models that ship with the lab, so the Predict and Inspect pages work before any training.

Each is stored as the lab's own description (zoo name, input shape, class names) plus a
weights-only file: loading rebuilds the architecture from the zoo and then reads the
weights, so no code is ever loaded from a file.

``TrainedModel`` is the one record of a usable trained model, shipped or a finished run
(cnn_core.catalog lists both); it lives here, below the catalog, because the shipped
models are read straight into it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras

from cnn_core import settings
from cnn_core.models import zoo

PRETRAINED_DIR = settings.ASSETS_DIR / "pretrained"
PRETRAINED_PREFIX = "pretrained:"
RUN_PREFIX = "run:"


class PretrainedError(Exception):
    """A shipped model is missing or damaged; the message says how to rebuild it."""


@dataclass(frozen=True)
class TrainedModel:
    """What a page needs to know about a trained model before loading it.

    ``key`` is "pretrained:<name>" for a shipped model, "run:<run id>" for a finished run.
    """

    key: str
    label: str
    dataset: str
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    ink_on_dark: bool
    test_accuracy: float | None
    dataset_fingerprint: str | None = None  # the version of a user dataset a run trained on
    model: str = ""  # the zoo architecture ("" when a run's config does not say)

    @property
    def shipped(self) -> bool:
        """True for a model that ships with the lab, False for a finished run."""
        return self.key.startswith(PRETRAINED_PREFIX)


def _read(meta_path: Path) -> TrainedModel:
    meta = json.loads(meta_path.read_text())
    accuracy = float(meta["test_accuracy"])
    return TrainedModel(
        key=PRETRAINED_PREFIX + meta_path.stem,
        label=f"Pretrained {meta['model']} ({accuracy:.1%} test accuracy)",
        dataset=meta["dataset"],
        input_shape=tuple(meta["input_shape"]),
        class_names=tuple(meta["class_names"]),
        ink_on_dark=bool(meta["ink_on_dark"]),
        test_accuracy=accuracy,
        model=meta["model"],
    )


def list_pretrained(dataset: str | None = None) -> list[TrainedModel]:
    """The shipped models, optionally only those trained on one dataset."""
    found = [_read(p) for p in sorted(PRETRAINED_DIR.glob("*.json"))]
    return [p for p in found if dataset in (None, p.dataset)]


def weights_path(info: TrainedModel) -> Path:
    """The weights file of a shipped model."""
    return PRETRAINED_DIR / f"{info.key.removeprefix(PRETRAINED_PREFIX)}.weights.h5"


def load_pretrained(info: TrainedModel) -> keras.Model:
    """Rebuild a shipped model from the zoo and load its weights.

    Raises:
        PretrainedError: the weights file is missing or does not fit the architecture.
    """
    model = zoo.build_model(info.model, info.input_shape, len(info.class_names))
    path = weights_path(info)
    try:
        model.load_weights(path)
    except (OSError, ValueError) as exc:
        raise PretrainedError(
            f"{path.name}: cannot be loaded ({exc}). Restore assets/pretrained/ "
            "with `git checkout assets/`, or rebuild it with scripts/build_pretrained.py."
        ) from exc
    return model
