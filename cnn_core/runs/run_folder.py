"""A run's folder: its id, its files, and JSON written atomically.

A run lives in ``<runs_home>/<run_id>/``; that folder is the only contract between the app
and a training worker (ARCHITECTURE.md lists its files). This is the lowest module of the
run store: `status` (status.json and the locks) and `store` (creating, listing, deleting
runs) are built on it.

This module imports neither TensorFlow nor Keras, so a queued worker stays small.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_core import settings

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
EVALUATION_FILE = "evaluation.json"
MODEL_FILE = "model.keras"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
LOG_FILE = "worker.log"
LOCK_FILE = "worker.lock"
STATUS_LOCK_FILE = "status.lock"
STOP_FILE = "stop.request"
NAME_FILE = "name.json"  # the learner's own name for the run (config.json is written once)


class RunError(Exception):
    """A run cannot be found, read or changed; the message says why and what to do."""


# ---------------------------------------------------------------- run ids and paths


@dataclass(frozen=True)
class RunPaths:
    """Every file of one run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def status(self) -> Path:
        return self.root / STATUS_FILE

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def evaluation(self) -> Path:
        return self.root / EVALUATION_FILE

    @property
    def model(self) -> Path:
        return self.root / MODEL_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINT_DIR

    @property
    def tensorboard(self) -> Path:
        return self.root / TENSORBOARD_DIR

    @property
    def log(self) -> Path:
        return self.root / LOG_FILE

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def status_lock(self) -> Path:
        return self.root / STATUS_LOCK_FILE

    @property
    def name(self) -> Path:
        return self.root / NAME_FILE

    @property
    def stop(self) -> Path:
        return self.root / STOP_FILE

    def checkpoint(self, epoch: int, batch: int = 0) -> Path:
        """The checkpoint after ``epoch`` complete epochs and ``batch`` batches of the next."""
        if batch:
            return self.checkpoints / f"epoch-{epoch + 1:04d}-batch-{batch:04d}.keras"
        return self.checkpoints / f"epoch-{epoch:04d}.keras"


def runs_home() -> Path:
    """The folder holding one sub-folder per run (``$CNN_LAB_HOME/runs``)."""
    return settings.runs_dir()


def check_run_id(run_id: Any) -> str:
    """Returns run_id if it is a safe run id, so no id can reach outside the runs home.

    Raises:
        RunError: the id is not 1-100 letters, digits, '_', '.', '-' (starting with a
            letter or digit), or contains "..".
    """
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id) or ".." in run_id:
        raise RunError(
            f"{run_id!r} is not a run id: run ids are letters, digits, '_', '.' and '-', "
            "such as 20261122-013045-simple_convnet-a1b2."
        )
    return run_id


def run_paths(run_id: str) -> RunPaths:
    """The files of a run (which may not exist yet), after checking the id."""
    home = runs_home()
    root = home / check_run_id(run_id)
    if root.resolve().parent != home.resolve():
        raise RunError(f"{run_id!r} resolves outside the runs folder {home}.")
    return RunPaths(root)


def _existing(run_id: str) -> RunPaths:
    p = run_paths(run_id)
    if not p.config.is_file():
        raise RunError(f"There is no run {run_id!r} in {runs_home()}.")
    return p


# ---------------------------------------------------------------- atomic files and JSON


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null, which every reader accepts."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: Path, obj: Any) -> None:
    """Writes JSON so a reader sees the old or the new file, never a half-written one."""
    data = json.dumps(obj, indent=2, allow_nan=False, default=str).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RunError(f"{path} cannot be read ({exc}).") from exc
