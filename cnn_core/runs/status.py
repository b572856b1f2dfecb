"""A run's status, its liveness and its locks: status.json, worker.lock, the stop flag.

Liveness comes from the lock, never from a pid: the kernel drops a flock when its process
dies, however it dies, so a run whose status says "running" while nobody holds the lock is
reported as "interrupted". status.json is changed under status.lock, so the app and the
worker never lose each other's changes.

This module imports neither TensorFlow nor Keras, so a queued worker stays small.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from cnn_core.runs import run_folder

STATES = ("queued", "running", "stopping", "finished", "stopped", "failed", "interrupted")
ACTIVE_STATES = ("queued", "running", "stopping")  # a worker is (or should be) alive
RESUMABLE_STATES = ("stopped", "interrupted", "failed")

# A worker needs a moment (Python start-up) before it takes its lock; a queued run without
# a lock and without a pid is "starting" rather than dead for this long.
SPAWN_GRACE_S = 30.0
LOCK_RETRY_S = 5.0  # a status probe may hold a worker lock for a few microseconds


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
        return {k: run_folder._finite(v) for k, v in asdict(self).items()}

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
    return _lock_is_held(run_folder.run_paths(run_id).lock)


def _read_raw_status(p: run_folder.RunPaths) -> RunStatus:
    data = run_folder._read_json(p.status)
    return RunStatus.from_dict(data) if isinstance(data, dict) else RunStatus(state="failed",
        message="status.json is missing or damaged.")  # fmt: skip


def _derive_state(p: run_folder.RunPaths, raw: RunStatus, now: float) -> RunStatus:
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
        run_folder.RunError: no such run.
    """
    p = run_folder._existing(run_id)
    return _derive_state(p, _read_raw_status(p), time.time())


@contextlib.contextmanager
def _status_lock(p: run_folder.RunPaths) -> Iterator[None]:
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
    p = run_folder.run_paths(run_id)
    with _status_lock(p):
        new = replace(_read_raw_status(p), updated=time.time(), **changes)
        run_folder.write_json_atomic(p.status, new.to_dict())
    return new


def transition_status(run_id: str, from_states: tuple[str, ...], **changes: Any) -> bool:
    """Applies changes only if the raw state is one of from_states (compare-and-set).

    Returns:
        True when the change was made.
    """
    p = run_folder.run_paths(run_id)
    with _status_lock(p):
        old = _read_raw_status(p)
        if old.state not in from_states:
            return False
        run_folder.write_json_atomic(
            p.status, replace(old, updated=time.time(), **changes).to_dict()
        )
    return True


def acquire_worker_lock(run_id: str, retry_s: float = LOCK_RETRY_S) -> int:
    """Takes the run's worker lock for the life of the calling process.

    Returns:
        The locked file descriptor; keep it open (the kernel releases it at exit).

    Raises:
        run_folder.RunError: another worker holds the lock.
    """
    p = run_folder._existing(run_id)
    fd = os.open(p.lock, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + retry_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise run_folder.RunError(f"Run {run_id} already has a live worker.") from None
            time.sleep(0.05)


# ---------------------------------------------------------------- stop flag


def request_stop(run_id: str) -> None:
    """Raises the stop flag that the worker checks after every batch."""
    run_folder.run_paths(run_id).stop.touch()


def stop_requested(run_id: str) -> bool:
    return run_folder.run_paths(run_id).stop.exists()


def clear_stop_request(run_id: str) -> None:
    run_folder.run_paths(run_id).stop.unlink(missing_ok=True)
