"""The run store: creating runs, reading their config, listing, renaming and deleting them.

A run's folder and its files are in `run_folder`; its status, liveness and locks in
`status`. This module imports neither TensorFlow nor Keras, so a queued worker stays small.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_core import settings
from cnn_core.runs import run_folder
from cnn_core.runs import status as run_status
from cnn_core.runs.run_config import MAX_NAME_LENGTH, ConfigError, RunConfig

MIN_FREE_BYTES = 200 * 1024 * 1024  # checkpoints of the larger zoo models are megabytes each
# A write that fails with one of these means no space (the disk, a quota, a file size limit).
FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def new_run_id(cfg: RunConfig, now: float | None = None) -> str:
    """A fresh id such as ``20261122-013045-simple_convnet-a1b2`` (local time)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    model = re.sub(r"[^A-Za-z0-9_]+", "_", cfg.model)[:40] or "model"
    return f"{stamp}-{model}-{secrets.token_hex(2)}"


# ---------------------------------------------------------------- creating and reading runs


def runs_home_problem() -> str | None:
    """Why runs cannot be stored right now (unwritable or full runs folder), or None.

    Checked before a run is created, so the user sees a message instead of a half-written run.
    """
    home = run_folder.runs_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".write-test-") as f:
            f.write(b"ok")
            f.flush()
        free = shutil.disk_usage(home).free
    except OSError as exc:
        return _storage_problem(home, exc)
    if free < MIN_FREE_BYTES:
        return (
            f"The disk holding {home} has only {free / 2**20:.0f} MB free; training needs at "
            f"least {MIN_FREE_BYTES // 2**20} MB for checkpoints. Delete old runs or free space."
        )
    return None


def _storage_problem(home: Path, exc: OSError) -> str:
    if exc.errno in FULL_DISK_ERRNOS:
        return (
            f"There is no room to save runs in {home} ({exc.strerror}). Delete old runs or "
            "free space on that disk, then start again."
        )
    return (
        f"The runs folder {home} is not writable ({exc.strerror or exc}). Set "
        f"{settings.HOME_ENV} to a folder you can write to."
    )


def create_run(cfg: RunConfig) -> str:
    """Creates the run directory with a queued status and config.json.

    A run is complete or absent: config.json, which makes a folder a run for every reader,
    is written last, and a failed write (a full disk) removes the folder again.

    The caller should have passed cfg through ``validate_config``.

    Returns:
        The new run id.

    Raises:
        run_folder.RunError: the runs folder is unwritable or full.
    """
    problem = runs_home_problem()
    if problem:
        raise run_folder.RunError(problem)
    now = time.time()
    for _ in range(20):  # the random suffix collides only within the same second
        run_id = new_run_id(cfg, now)
        p = run_folder.run_paths(run_id)
        try:
            p.root.mkdir()
        except FileExistsError:
            continue
        status = run_status.RunStatus(state="queued", message="Waiting for a free training slot.",
                           epochs=cfg.epochs, created=now, queued=now, updated=now)  # fmt: skip
        try:
            p.checkpoints.mkdir()
            run_folder.write_json_atomic(p.status, status.to_dict())
            run_folder.write_json_atomic(p.config, cfg.to_dict())
        except OSError as exc:
            shutil.rmtree(p.root, ignore_errors=True)
            raise run_folder.RunError(_storage_problem(run_folder.runs_home(), exc)) from exc
        return run_id
    raise run_folder.RunError("Could not find a free run id; try again in a second.")


def read_config(run_id: str) -> RunConfig:
    """The run's config.

    Raises:
        run_folder.RunError: no such run, or config.json is damaged.
    """
    p = run_folder._existing(run_id)
    try:
        return RunConfig.from_dict(run_folder._read_json(p.config))
    except (ConfigError, TypeError) as exc:
        raise run_folder.RunError(f"{p.config} is not a valid run config ({exc}).") from exc


def read_evaluation(run_id: str) -> dict[str, Any] | None:
    """The test-set evaluation written at the end of training, or None before that."""
    data = run_folder._read_json(run_folder._existing(run_id).evaluation)
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------- listing and deleting


@dataclass(frozen=True)
class RunInfo:
    """One row of the runs table."""

    id: str
    config: RunConfig
    status: run_status.RunStatus
    best_val_accuracy: float | None = None
    test_accuracy: float | None = None
    params: int | None = None
    seconds: float = 0.0
    renamed: str | None = None  # the learner's own name, from name.json

    @property
    def name(self) -> str:
        return self.renamed or self.config.display_name


def _read_name(p: run_folder.RunPaths) -> str | None:
    data = run_folder._read_json(p.name)
    name = data.get("name") if isinstance(data, dict) else None
    return name.strip() or None if isinstance(name, str) else None


def run_name(run_id: str) -> str:
    """The run's name: the learner's own, else the one given at the start.

    Raises:
        run_folder.RunError: no such run.
    """
    p = run_folder._existing(run_id)
    return _read_name(p) or read_config(run_id).display_name


def rename_run(run_id: str, name: str) -> str:
    """Gives a run the learner's own name (any time, even while it trains).

    Returns:
        The name as stored (stripped).

    Raises:
        run_folder.RunError: no such run, or the name is empty or too long.
    """
    p = run_folder._existing(run_id)
    name = " ".join(str(name).split())
    if not name:
        raise run_folder.RunError(
            "A run's name cannot be empty: type a few words that tell it apart."
        )
    if len(name) > MAX_NAME_LENGTH:
        raise run_folder.RunError(
            f"A run's name has at most {MAX_NAME_LENGTH} characters; this has {len(name)}."
        )
    run_folder.write_json_atomic(p.name, {"name": name})
    return name


def list_runs() -> list[RunInfo]:
    """Every readable run, newest first. Folders without a valid config are skipped."""
    home = run_folder.runs_home()
    if not home.is_dir():
        return []
    now = time.time()
    out = []
    for root in home.iterdir():
        if (
            not run_folder.RUN_ID_RE.fullmatch(root.name)
            or not (root / run_folder.CONFIG_FILE).is_file()
        ):
            continue
        try:
            cfg = read_config(root.name)
            p = run_folder.RunPaths(root)
            status = run_status._derive_state(p, run_status._read_raw_status(p), now)
            evaluation = run_folder._read_json(p.evaluation) or {}
        except run_folder.RunError:
            continue
        out.append(RunInfo(
            id=root.name, config=cfg, status=status,
            best_val_accuracy=status.best_val_accuracy,
            test_accuracy=evaluation.get("accuracy"), params=status.params,
            seconds=status.seconds, renamed=_read_name(p),
        ))  # fmt: skip
    return sorted(out, key=lambda r: (r.status.created, r.id), reverse=True)


def delete_run(run_id: str) -> None:
    """Deletes a run's folder.

    Raises:
        run_folder.RunError: no such run, or its worker is alive or about to start (stop it first).
    """
    p = run_folder._existing(run_id)
    if run_status.read_status(run_id).active:
        raise run_folder.RunError(
            f"Run {run_id} is still training or queued: stop it before deleting."
        )
    fd = os.open(p.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # Holding the lock while deleting keeps a resumed worker from starting halfway.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise run_folder.RunError(
            f"Run {run_id} has a live worker: stop it before deleting."
        ) from None
    try:
        shutil.rmtree(p.root)
    finally:
        os.close(fd)
