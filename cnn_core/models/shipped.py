"""The models that ship with the lab, so the Predict and Inspect pages work before any training.

Each is a finished run of the lab's own engine (``python -m cnn_core train --preset ...``,
copied here by scripts/build_pretrained.py), stored as two files in assets/pretrained/:

- ``<name>.json``: the run's config (the RunConfig fields as JSON, a custom layer list
  included), the input shape, class names and ink style, the name of the weights file, and
  how it was made: the recipe (preset and exact command), the accuracy measured on which
  test split, epochs, training minutes, the kind of machine and the date;
- the weights file it names (weights only).

Loading rebuilds the architecture from the config with ``zoo.build_model``, the builder a
run's worker uses, and then reads the weights: no code is ever loaded from a file.

``TrainedModel`` is the one record of a usable trained model, shipped or a finished run
(cnn_core.catalog lists both); it lives here, below the catalog, because the shipped
models are read straight into it.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras

from cnn_core import settings
from cnn_core.models import test_time, zoo
from cnn_core.models.input_limits import ModelError

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
    description: str = ""  # how a shipped model was made and measured
    average_flips: bool = False  # answers from each image and its mirror (models.test_time)

    @property
    def shipped(self) -> bool:
        """True for a model that ships with the lab, False for a finished run."""
        return self.key.startswith(PRETRAINED_PREFIX)


def _read(meta_path: Path) -> TrainedModel:
    meta = read_description(meta_path)
    accuracy = float(meta["test_accuracy"])
    recipe = meta.get("recipe", {}).get("preset") or meta["config"]["model"]
    return TrainedModel(
        key=PRETRAINED_PREFIX + meta_path.stem,
        label=f"Pretrained {recipe} ({accuracy:.1%} test accuracy)",
        dataset=meta["dataset"],
        input_shape=tuple(meta["input_shape"]),
        class_names=tuple(meta["class_names"]),
        ink_on_dark=bool(meta["ink_on_dark"]),
        test_accuracy=accuracy,
        model=meta["config"]["model"],
        description=str(meta.get("description", "")),
        average_flips=test_time.averages_flips(meta["config"].get("augment_flip")),
    )


def read_description(meta_path: Path) -> dict:
    """A shipped model's JSON description (config, weights file, recipe, accuracy).

    Raises:
        PretrainedError: the file is missing, not JSON, or lacks the config.
    """
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta.get("config"), dict) or "model" not in meta["config"]:
            raise ValueError("it has no run config")
    except (OSError, ValueError, AttributeError) as exc:
        raise PretrainedError(f"{meta_path.name}: cannot be read ({exc}). {_RESTORE}") from exc
    return meta


_RESTORE = (
    "Restore assets/pretrained/ with `git checkout assets/`, or rebuild it with "
    "scripts/build_pretrained.py."
)


def list_pretrained(
    dataset: str | None = None, directory: Path | None = None
) -> list[TrainedModel]:
    """The shipped models, optionally only those trained on one dataset."""
    found = [_read(p) for p in sorted((directory or PRETRAINED_DIR).glob("*.json"))]
    return [p for p in found if dataset in (None, p.dataset)]


def description_path(info: TrainedModel, directory: Path | None = None) -> Path:
    """The JSON description of a shipped model."""
    return (directory or PRETRAINED_DIR) / f"{info.key.removeprefix(PRETRAINED_PREFIX)}.json"


def weights_path(info: TrainedModel, directory: Path | None = None) -> Path:
    """The weights file of a shipped model, as its description names it."""
    meta_path = description_path(info, directory)
    return meta_path.parent / read_description(meta_path)["weights"]


def load_pretrained(info: TrainedModel, directory: Path | None = None) -> keras.Model:
    """Rebuild a shipped model from its run config and load its weights.

    Raises:
        PretrainedError: the description or weights file is missing, or the weights do not
            fit the architecture.
    """
    meta = read_description(description_path(info, directory))
    config = meta["config"]
    try:
        model = zoo.build_model(
            config["model"], info.input_shape, len(info.class_names), config.get("layers")
        )
    except ModelError as exc:
        raise PretrainedError(f"{info.key}: its model cannot be built ({exc}). {_RESTORE}") from exc
    path = weights_path(info, directory)
    try:
        with warnings.catch_warnings():
            # Keras only warns when it skips weights it cannot place: for a shipped model
            # that means a damaged or mismatched file, which must fail, not half-load.
            warnings.simplefilter("error", UserWarning)
            model.load_weights(path)
    except (OSError, ValueError, UserWarning) as exc:
        raise PretrainedError(f"{path.name}: cannot be loaded ({exc}). {_RESTORE}") from exc
    return model
