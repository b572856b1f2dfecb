"""The run store: a run's folder, its status and lock, creating, listing, renaming, deleting.

A run lives in ``<runs_home>/<run_id>/``; that folder is the only contract between the app
and a training worker (ARCHITECTURE.md lists its files). Liveness comes from the lock, never
from a pid: the kernel drops a flock when its process dies, however it dies, so a run whose
status says "running" while nobody holds the lock is reported as "interrupted".

This module imports neither TensorFlow nor Keras, so a queued worker stays small.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from cnn_core import settings
from cnn_core.runs.run_config import MAX_NAME_LENGTH, ConfigError, RunConfig

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

STATES = ("queued", "running", "stopping", "finished", "stopped", "failed", "interrupted")
ACTIVE_STATES = ("queued", "running", "stopping")  # a worker is (or should be) alive
RESUMABLE_STATES = ("stopped", "interrupted", "failed")

# A worker needs a moment (Python start-up) before it takes its lock; a queued run without
# a lock and without a pid is "starting" rather than dead for this long.
SPAWN_GRACE_S = 30.0
LOCK_RETRY_S = 5.0  # a status probe may hold a worker lock for a few microseconds
MIN_FREE_BYTES = 200 * 1024 * 1024  # checkpoints of the larger zoo models are megabytes each
# A write that fails with one of these means no space (the disk, a quota, a file size limit).
FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

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


def new_run_id(cfg: RunConfig, now: float | None = None) -> str:
    """A fresh id such as ``20261122-013045-simple_convnet-a1b2`` (local time)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    model = re.sub(r"[^A-Za-z0-9_]+", "_", cfg.model)[:40] or "model"
    return f"{stamp}-{model}-{secrets.token_hex(2)}"


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


# ---------------------------------------------------------------- status and liveness


@dataclass(frozen=True)
class RunStatus:
    """The contents of status.json. Times are Unix seconds (time.time())."""

    state: str = "queued"  # one of STATES
    message: str = ""  # one sentence for people, e.g. the reason of a failure
    epoch: int = 0  # the epoch in progress or last done, from 1
    batch: int = 0  # batches done in that epoch
    batches_per_epoch: int = 0
    epochs: int = 0  # epochs asked for (copied from the config)
    images_per_s: float | None = None  # training speed over the last batch window
    eta_s: float | None = None  # estimated seconds until training ends
    created: float = 0.0
    queued: float = 0.0  # when it last entered the queue (creation or resume): queue order
    started: float | None = None  # when the current (or last) worker began training
    updated: float = 0.0
    finished: float | None = None
    pid: int | None = None  # the worker's pid, for people; liveness comes from worker.lock
    last_checkpoint: int | None = None  # epoch of the newest checkpoint
    params: int | None = None  # the model's parameter count
    best_val_accuracy: float | None = None
    seconds: float = 0.0  # training time of all epochs in the metrics log
    history_rewrites: int = 0  # bumped when a resume drops an unfinished epoch's records

    def to_dict(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunStatus:
        known = {f.name for f in fields(cls)}
        # Unknown keys come from a newer worker; ignoring them keeps old pages working.
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def _lock_is_held(path: Path) -> bool:
    """True when some process holds an exclusive flock on path (a live worker)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        # A shared probe: concurrent probes do not disturb one another.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(fd)  # closing also releases the probe's own lock
    return False


def worker_alive(run_id: str) -> bool:
    """True while a worker process holds the run's lock."""
    return _lock_is_held(run_paths(run_id).lock)


def _read_raw_status(p: RunPaths) -> RunStatus:
    data = _read_json(p.status)
    return RunStatus.from_dict(data) if isinstance(data, dict) else RunStatus(state="failed",
        message="status.json is missing or damaged.")  # fmt: skip


def _derive_state(p: RunPaths, raw: RunStatus, now: float) -> RunStatus:
    if not raw.active or _lock_is_held(p.lock):
        return raw
    starting = raw.state == "queued" and raw.pid is None and now - raw.queued < SPAWN_GRACE_S
    if starting:
        return raw
    return replace(
        raw,
        state="interrupted",
        message="The worker stopped unexpectedly (killed, or the machine restarted). "
        "Resume to continue from the last checkpoint.",
    )


def read_status(run_id: str) -> RunStatus:
    """The run's status, with a dead worker's queued/running/stopping shown as interrupted.

    Raises:
        RunError: no such run.
    """
    p = _existing(run_id)
    return _derive_state(p, _read_raw_status(p), time.time())


@contextlib.contextmanager
def _status_lock(p: RunPaths) -> Iterator[None]:
    """Serializes read-modify-write of status.json between the app and the worker."""
    fd = os.open(p.status_lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update_status(run_id: str, **changes: Any) -> RunStatus:
    """Changes some status fields atomically (``updated`` is set to now).

    Returns:
        The new raw status.
    """
    p = run_paths(run_id)
    with _status_lock(p):
        new = replace(_read_raw_status(p), updated=time.time(), **changes)
        write_json_atomic(p.status, new.to_dict())
    return new


def transition_status(run_id: str, from_states: tuple[str, ...], **changes: Any) -> bool:
    """Applies changes only if the raw state is one of from_states (compare-and-set).

    Returns:
        True when the change was made.
    """
    p = run_paths(run_id)
    with _status_lock(p):
        old = _read_raw_status(p)
        if old.state not in from_states:
            return False
        write_json_atomic(p.status, replace(old, updated=time.time(), **changes).to_dict())
    return True


def acquire_worker_lock(run_id: str, retry_s: float = LOCK_RETRY_S) -> int:
    """Takes the run's worker lock for the life of the calling process.

    Returns:
        The locked file descriptor; keep it open (the kernel releases it at exit).

    Raises:
        RunError: another worker holds the lock.
    """
    p = _existing(run_id)
    fd = os.open(p.lock, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + retry_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise RunError(f"Run {run_id} already has a live worker.") from None
            time.sleep(0.05)


# ---------------------------------------------------------------- stop flag


def request_stop(run_id: str) -> None:
    """Raises the stop flag that the worker checks after every batch."""
    run_paths(run_id).stop.touch()


def stop_requested(run_id: str) -> bool:
    return run_paths(run_id).stop.exists()


def clear_stop_request(run_id: str) -> None:
    run_paths(run_id).stop.unlink(missing_ok=True)


# ---------------------------------------------------------------- creating and reading runs


def runs_home_problem() -> str | None:
    """Why runs cannot be stored right now (unwritable or full runs folder), or None.

    Checked before a run is created, so the user sees a message instead of a half-written run.
    """
    home = runs_home()
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
        RunError: the runs folder is unwritable or full.
    """
    problem = runs_home_problem()
    if problem:
        raise RunError(problem)
    now = time.time()
    for _ in range(20):  # the random suffix collides only within the same second
        run_id = new_run_id(cfg, now)
        p = run_paths(run_id)
        try:
            p.root.mkdir()
        except FileExistsError:
            continue
        status = RunStatus(state="queued", message="Waiting for a free training slot.",
                           epochs=cfg.epochs, created=now, queued=now, updated=now)  # fmt: skip
        try:
            p.checkpoints.mkdir()
            write_json_atomic(p.status, status.to_dict())
            write_json_atomic(p.config, cfg.to_dict())
        except OSError as exc:
            shutil.rmtree(p.root, ignore_errors=True)
            raise RunError(_storage_problem(runs_home(), exc)) from exc
        return run_id
    raise RunError("Could not find a free run id; try again in a second.")


def read_config(run_id: str) -> RunConfig:
    """The run's config.

    Raises:
        RunError: no such run, or config.json is damaged.
    """
    p = _existing(run_id)
    try:
        return RunConfig.from_dict(_read_json(p.config))
    except (ConfigError, TypeError) as exc:
        raise RunError(f"{p.config} is not a valid run config ({exc}).") from exc


def read_evaluation(run_id: str) -> dict[str, Any] | None:
    """The test-set evaluation written at the end of training, or None before that."""
    data = _read_json(_existing(run_id).evaluation)
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------- listing and deleting


@dataclass(frozen=True)
class RunInfo:
    """One row of the runs table."""

    id: str
    config: RunConfig
    status: RunStatus
    best_val_accuracy: float | None = None
    test_accuracy: float | None = None
    params: int | None = None
    seconds: float = 0.0
    renamed: str | None = None  # the learner's own name, from name.json

    @property
    def name(self) -> str:
        return self.renamed or self.config.display_name


def _read_name(p: RunPaths) -> str | None:
    data = _read_json(p.name)
    name = data.get("name") if isinstance(data, dict) else None
    return name.strip() or None if isinstance(name, str) else None


def run_name(run_id: str) -> str:
    """The run's name: the learner's own, else the one given at the start.

    Raises:
        RunError: no such run.
    """
    p = _existing(run_id)
    return _read_name(p) or read_config(run_id).display_name


def rename_run(run_id: str, name: str) -> str:
    """Gives a run the learner's own name (any time, even while it trains).

    Returns:
        The name as stored (stripped).

    Raises:
        RunError: no such run, or the name is empty or too long.
    """
    p = _existing(run_id)
    name = " ".join(str(name).split())
    if not name:
        raise RunError("A run's name cannot be empty: type a few words that tell it apart.")
    if len(name) > MAX_NAME_LENGTH:
        raise RunError(f"A run's name has at most {MAX_NAME_LENGTH} characters; this has "
                       f"{len(name)}.")  # fmt: skip
    write_json_atomic(p.name, {"name": name})
    return name


def list_runs() -> list[RunInfo]:
    """Every readable run, newest first. Folders without a valid config are skipped."""
    home = runs_home()
    if not home.is_dir():
        return []
    now = time.time()
    out = []
    for root in home.iterdir():
        if not RUN_ID_RE.fullmatch(root.name) or not (root / CONFIG_FILE).is_file():
            continue
        try:
            cfg = read_config(root.name)
            p = RunPaths(root)
            status = _derive_state(p, _read_raw_status(p), now)
            evaluation = _read_json(p.evaluation) or {}
        except RunError:
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
        RunError: no such run, or its worker is alive or about to start (stop it first).
    """
    p = _existing(run_id)
    if read_status(run_id).active:
        raise RunError(f"Run {run_id} is still training or queued: stop it before deleting.")
    fd = os.open(p.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # Holding the lock while deleting keeps a resumed worker from starting halfway.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RunError(f"Run {run_id} has a live worker: stop it before deleting.") from None
    try:
        shutil.rmtree(p.root)
    finally:
        os.close(fd)
