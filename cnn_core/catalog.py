"""Every trained model a page can use: the shipped pretrained ones and the finished runs.

A choice is named by a key, "pretrained:<name>" or "run:<run id>", so a page can keep it
in the session and reload the model from a cache.
"""

from __future__ import annotations

import keras

from cnn_core.data import versions
from cnn_core.data.dataset import DatasetError
from cnn_core.models import shipped, test_time
from cnn_core.runs import checkpointing, run_folder, store

PRETRAINED_PREFIX = shipped.PRETRAINED_PREFIX
RUN_PREFIX = shipped.RUN_PREFIX
TrainedModel = shipped.TrainedModel  # the one record type; defined below the catalog


class TrainedModelError(Exception):
    """A trained model cannot be found or loaded; the message says what to do."""


def list_trained(dataset: str | None = None) -> list[TrainedModel]:
    """Finished runs first (newest first), then the shipped models, for one dataset or all."""
    return _finished_runs(dataset) + shipped.list_pretrained(dataset)


def _finished_runs(dataset: str | None) -> list[TrainedModel]:
    out = []
    for info in store.list_runs():
        cfg = info.config
        if info.status.state != "finished" or dataset not in (None, cfg.dataset):
            continue
        if not run_folder.run_paths(info.id).model.is_file():
            continue
        meta = _run_meta(info.id)
        if meta is None:
            continue
        accuracy = f", {info.test_accuracy:.1%} test accuracy" if info.test_accuracy else ""
        out.append(
            TrainedModel(
                key=RUN_PREFIX + info.id,
                label=f"Your run: {info.name}{accuracy}",  # renamed on the Train page
                dataset=cfg.dataset,
                input_shape=meta[0],
                class_names=meta[1],
                ink_on_dark=meta[2],
                test_accuracy=info.test_accuracy,
                dataset_fingerprint=cfg.dataset_fingerprint,
                model=cfg.model,
                average_flips=test_time.averages_flips(cfg.augment_flip),
            )
        )
    return out


def _run_meta(run_id: str) -> tuple[tuple[int, int, int], tuple[str, ...], bool] | None:
    """Input shape, class names and ink style of a run, from the run's own files."""
    evaluation = store.read_evaluation(run_id) or {}
    cfg = store.read_config(run_id)
    shape, names = evaluation.get("input_shape"), evaluation.get("class_names")
    if shape and names:
        return tuple(shape), tuple(names), bool(evaluation.get("ink_on_dark", False))
    try:  # older runs: ask the dataset (cheap for the built-in ones: no pixels are kept)
        ds = versions.load_dataset_version(
            cfg.dataset, cfg.dataset_fingerprint, source=cfg.dataset_source
        )
    except DatasetError:
        return None
    return ds.input_shape, ds.class_names, ds.ink_on_dark


def load_trained(key: str) -> keras.Model:
    """Load the model behind a key (read-only use: predictions and inspection).

    Raises:
        TrainedModelError: unknown key, or a missing/damaged file.
    """
    if key.startswith(PRETRAINED_PREFIX):
        for info in shipped.list_pretrained():
            if info.key == key:
                try:
                    return shipped.load_pretrained(info)
                except shipped.PretrainedError as exc:
                    raise TrainedModelError(str(exc)) from exc
    if key.startswith(RUN_PREFIX):
        return _load_run_file(run_folder.run_paths(key[len(RUN_PREFIX) :]).model)
    raise TrainedModelError(f"No trained model {key!r}: choose one from the list.")


def averages_flips(key: str) -> bool:
    """Whether the model behind a key answers from each image and its mirror image
    (`cnn_core.models.test_time`): the Predictor of every page asks this."""
    if key.startswith(RUN_PREFIX):
        try:
            cfg = store.read_config(key[len(RUN_PREFIX) :])
        except run_folder.RunError:
            return False
        return test_time.averages_flips(cfg.augment_flip)
    return any(info.average_flips for info in shipped.list_pretrained() if info.key == key)


def load_checkpoint(key: str, epoch: int) -> keras.Model:
    """The model of a run as it was at the end of one epoch, or before training for epoch 0
    (for replaying training)."""
    run_id = key[len(RUN_PREFIX) :]
    try:
        return checkpointing.load_epoch(run_id, epoch)
    except (OSError, ValueError) as exc:
        raise TrainedModelError(
            f"{run_id}: the checkpoint of epoch {epoch} cannot be loaded ({exc})."
        ) from exc


def checkpoint_epochs(key: str) -> list[int]:
    """Epochs with a checkpoint, for a run key; empty for shipped models.

    Epoch 0 is the untrained network, saved before the first batch, so a replay can show
    filters that start as noise. Mid-epoch checkpoints (saved at a stop, to resume from)
    are not replay points.
    """
    if not key.startswith(RUN_PREFIX):
        return []
    return [epoch for epoch, _ in checkpointing.checkpoints(key[len(RUN_PREFIX) :])]


def _load_run_file(path) -> keras.Model:
    # Only files this lab's own worker wrote are loaded this way, never uploads; safe_mode
    # stays on so even a tampered run folder cannot run code through a Lambda layer.
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (OSError, ValueError) as exc:
        raise TrainedModelError(f"{path}: cannot be loaded ({exc}).") from exc
