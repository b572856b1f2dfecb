"""A run's checkpoints: written atomically, listed, checked, loaded, the last good one found.

``checkpoints/epoch-0000.keras`` is the untrained network, ``epoch-0003.keras`` the network
after epoch 3, ``epoch-0003-batch-0017.keras`` a stop 17 batches into epoch 4 (with its
running metric sums). Each is saved to a temp name, then renamed. Listing and checking need
no TensorFlow; saving and loading import Keras when called.
"""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from cnn_core.runs import run_folder, store

if TYPE_CHECKING:  # saving and loading import Keras when called, never at import
    import keras

CHECKPOINT_RE = re.compile(r"^epoch-(\d{4,})\.keras$")
MID_EPOCH_CHECKPOINT_RE = re.compile(r"^epoch-(\d{4,})-batch-(\d{4,})\.keras$")
# A zip member the worker adds to each checkpoint: what a resume needs besides the model
# (the stopped epoch's metric sums, RNG states). Keras ignores members it does not know.
RESUME_STATE_MEMBER = "cnn_lab_resume.json"


# ---------------------------------------------------------------- checkpoints


class Checkpoint(NamedTuple):
    """One checkpoint file: the model after ``epoch`` complete epochs (0 = untrained) and,
    for one saved at a stop mid-epoch, ``batch`` batches of the next epoch."""

    epoch: int
    path: Path

    @property
    def batch(self) -> int:
        m = MID_EPOCH_CHECKPOINT_RE.fullmatch(self.path.name)
        return int(m.group(2)) if m else 0

    @property
    def position(self) -> tuple[int, int]:
        """(complete epochs, batches of the next): orders checkpoints by training done."""
        return self.epoch, self.batch


def _parse_checkpoint(path: Path) -> Checkpoint | None:
    m = CHECKPOINT_RE.fullmatch(path.name)
    if m:
        return Checkpoint(int(m.group(1)), path)
    m = MID_EPOCH_CHECKPOINT_RE.fullmatch(path.name)
    if m and int(m.group(1)) >= 1 and int(m.group(2)) >= 1:
        return Checkpoint(int(m.group(1)) - 1, path)
    return None


def resume_points(run_id: str) -> list[Checkpoint]:
    """Every checkpoint of the run, epoch-end and mid-epoch, least training first."""
    folder = run_folder.run_paths(run_id).checkpoints
    if not folder.is_dir():
        return []
    found = [c for c in map(_parse_checkpoint, folder.iterdir()) if c is not None]
    return sorted(found, key=lambda c: c.position)


def checkpoints(run_id: str) -> list[tuple[int, Path]]:
    """The run's epoch-end checkpoints, oldest first, as (epoch, path); epoch 0 is the
    untrained network. Mid-epoch ones (saved at a stop) are in ``resume_points``."""
    return [(c.epoch, c.path) for c in resume_points(run_id) if not c.batch]


def checkpoint_ok(path: Path) -> bool:
    """Cheap integrity check of a .keras file: a complete zip whose members pass their CRC.

    A truncated or overwritten file fails this without TensorFlow being imported.
    """
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            return "config.json" in names and z.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False


def checkpoint_state(path: Path) -> dict[str, Any]:
    """The resume state stored in a checkpoint by the worker; {} when it has none (older
    runs) or it cannot be read."""
    try:
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read(RESUME_STATE_MEMBER))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return {}
    return data if isinstance(data, dict) else {}


def latest_good_checkpoint(run_id: str) -> Checkpoint | None:
    """The newest intact checkpoint with training in it (mid-epoch ones included), skipping
    damaged ones; None if there is none (the untrained epoch-0 one does not count)."""
    for ckpt in reversed(resume_points(run_id)):
        if ckpt.position != (0, 0) and checkpoint_ok(ckpt.path):
            return ckpt
    return None


def remove_mid_epoch_checkpoints(run_id: str, before: tuple[int, int]) -> None:
    """Deletes the mid-epoch checkpoints older than a newer one just saved at ``before``
    (a position): a resume would never choose them again."""
    for ckpt in resume_points(run_id):
        if ckpt.batch and ckpt.position < before:
            ckpt.path.unlink(missing_ok=True)


def load_checkpoint(run_id: str) -> tuple[keras.Model, Checkpoint] | None:
    """The newest checkpoint that loads (epoch-end or mid-epoch), with its optimizer state.

    Damaged checkpoints are renamed ``*.damaged`` (kept for inspection, no longer listed),
    and the one before is tried. Only our own checkpoint files are ever loaded here.
    """
    import keras

    for ckpt in reversed(resume_points(run_id)):
        path = ckpt.path
        if checkpoint_ok(path):
            try:
                return keras.saving.load_model(path), ckpt
            except Exception as exc:  # any failure to load means the same: use an older one
                print(f"checkpoint {path.name} does not load ({exc}); trying the one before",
                      file=sys.stderr)  # fmt: skip
        else:
            print(f"checkpoint {path.name} is damaged; trying the one before", file=sys.stderr)
        os.replace(path, path.with_name(path.name + ".damaged"))
    return None


def load_epoch(run_id: str, epoch: int) -> keras.Model:
    """The network as it was at the end of one epoch (0: before training), for a replay:
    weights only matter there, so it loads without its optimizer (compile=False). Only
    this lab's own checkpoint files are loaded, and safe_mode stays on, so even a tampered
    run folder cannot run code through a Lambda layer.

    Raises:
        OSError, ValueError: the checkpoint is missing or cannot be read.
    """
    import keras

    path = run_folder.run_paths(run_id).checkpoint(epoch)
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def _seed_states(model: keras.Model) -> list:
    """The state variables of the model's own random generators (dropout masks)."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


def rng_states(model: keras.Model) -> list[list[int]]:
    """The states of the model's random generators, which model.save leaves out."""
    import numpy as np

    return [[int(n) for n in np.asarray(v.numpy()).ravel()] for v in _seed_states(model)]


def restore_rng_states(model: keras.Model, states: list[list[int]] | None) -> None:
    """Puts back saved generator states, so dropout goes on as without the interruption."""
    import numpy as np

    variables = _seed_states(model)
    if states and len(states) == len(variables):
        for variable, state in zip(variables, states, strict=True):
            variable.assign(np.asarray(state, dtype=variable.dtype))


def save_model_atomic(model: keras.Model, dest: Path, state: dict | None = None) -> None:
    """Saves a .keras file under a temp name, syncs it, then renames: never half-written.

    ``state`` (JSON) goes into the same zip, so a checkpoint and its resume state are one
    file that is either complete or absent.
    """
    tmp = dest.with_name(f".{dest.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        if state is not None:
            with zipfile.ZipFile(tmp, "a") as z:
                z.writestr(RESUME_STATE_MEMBER, json.dumps(state, allow_nan=False))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)  # on a full disk, a partial file would keep the space
        raise


class DiskFullError(Exception):
    """A checkpoint could not be saved for lack of space; the message says what to do."""


def _disk_full_message(exc: OSError, lost: str, resume: str) -> str:
    return (
        f"The disk is full ({exc.strerror}): {lost} could not be saved. Free space (delete old "
        f"runs), then Resume: training continues {resume}."
    )


def save_checkpoint(run_id: str, model: keras.Model, epoch: int, batch: int = 0,
                    state: dict | None = None) -> None:  # fmt: skip
    """Saves the checkpoint after ``epoch`` epochs and ``batch`` batches of the next, with its
    resume state, and deletes the mid-epoch checkpoints it supersedes.

    Raises:
        DiskFullError: no space; the message says where a resume will pick up.
    """
    state = {**(state or {}), "rng_states": rng_states(model)}
    try:
        save_model_atomic(model, run_folder.run_paths(run_id).checkpoint(epoch, batch), state)
    except OSError as exc:
        if exc.errno not in store.FULL_DISK_ERRNOS:
            raise
        # The previous checkpoint is intact: say where a resume will pick up.
        kept = latest_good_checkpoint(run_id)
        resume = _resume_point_words(kept.position) if kept else "from the first epoch"
        lost = (f"the checkpoint at batch {batch} of epoch {epoch + 1}" if batch
                else f"the checkpoint of epoch {epoch}")  # fmt: skip
        raise DiskFullError(_disk_full_message(exc, lost, resume)) from exc
    remove_mid_epoch_checkpoints(run_id, before=(epoch, batch))


def _resume_point_words(position: tuple[int, int]) -> str:
    epoch, batch = position
    return f"with batch {batch + 1} of epoch {epoch + 1}" if batch else f"after epoch {epoch}"
