"""The run directory: the only contract between the app and a training worker.

A run lives in ``<runs_home>/<run_id>/``; a worker on another machine with the same
storage would need nothing else::

    config.json       the RunConfig, written once (atomically)
    status.json       state and progress, rewritten atomically by whoever changes it
    metrics.jsonl     append-only: one JSON line per batch window and one per epoch
    checkpoints/      epoch-0000.keras (the untrained network), epoch-0001.keras, ...; a stop
                      mid-epoch saves epoch-0003-batch-0017.keras (17 batches of epoch 3
                      trained) holding its running metric sums too. Each is saved to a temp
                      name, then renamed.
    evaluation.json   test loss / accuracy / mse, written when training finishes
    model.keras       the final model
    tensorboard/      event files: ``tensorboard --logdir <run>/tensorboard``
    worker.log        the worker's stdout and stderr
    worker.lock       flock'ed by the live worker for its whole life
    stop.request      present while a stop is asked for
    name.json         the learner's name for the run, once renamed

Liveness comes from the lock, never from a pid: the kernel drops a flock when its process
dies, however it dies, so a run whose status says "running" while nobody holds the lock
is reported as "interrupted" (and can be resumed).

This module imports neither TensorFlow nor Keras, so a queued worker stays small.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import math
import numbers
import os
import re
import secrets
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from cnn_core import paths

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
CHECKPOINT_RE = re.compile(r"^epoch-(\d{4,})\.keras$")
MID_EPOCH_CHECKPOINT_RE = re.compile(r"^epoch-(\d{4,})-batch-(\d{4,})\.keras$")
# A zip member the worker adds to each checkpoint: what a resume needs besides the model
# (the stopped epoch's metric sums, RNG states). Keras ignores members it does not know.
RESUME_STATE_MEMBER = "cnn_lab_resume.json"

STATES = ("queued", "running", "stopping", "finished", "stopped", "failed", "interrupted")
ACTIVE_STATES = ("queued", "running", "stopping")  # a worker is (or should be) alive
RESUMABLE_STATES = ("stopped", "interrupted", "failed")

OPTIMIZERS = ("adam", "adamax", "sgd")
LR_SCHEDULES = ("constant", "cosine")
DISTRIBUTE_STRATEGIES = ("mirrored",)
DEFAULT_MOMENTUM = 0.9  # the usual SGD momentum; Adam and Adamax ignore it
MAX_LEARNING_RATE = 10.0
MAX_BATCH_SIZE = 4096
MAX_EPOCHS = 500
MAX_VALIDATION_SPLIT = 0.5
MAX_SHIFT = 0.5  # a larger translation moves most objects out of the picture
MAX_ROTATE_DEGREES = 180.0
MAX_ZOOM = 0.5  # zooming in further crops most of the object away
MAX_LABEL_SMOOTHING = 0.5  # beyond it the wrong classes' targets approach the right one's
MAX_THREADS = 256
MAX_NAME_LENGTH = 100

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

METRICS_CSV_COLUMNS = (
    "kind", "epoch", "batch", "step", "loss", "accuracy", "mse", "val_loss", "val_accuracy",
    "val_mse", "seconds", "images_per_s", "lr", "partial", "t",
)  # fmt: skip


class RunError(Exception):
    """A run cannot be found, read or changed; the message says why and what to do."""


class ConfigError(ValueError):
    """A run configuration is invalid; the message names the field and what to fix."""


# ---------------------------------------------------------------- the configuration


@dataclass(frozen=True)
class RunConfig:
    """Everything a worker needs to train one run; stored as config.json.

    Only ``dataset`` and ``model`` matter to most users; every other field has a default
    that trains sensibly. ``validate_config`` fills the model-dependent defaults (None).
    """

    name: str = ""  # display name; "" = "<model> on <dataset>"
    dataset: str = "mnist"  # a key of datasets.list_datasets(), e.g. "user:flowers"
    dataset_source: str | None = None  # None = the first ready source, e.g. "embedded"
    # The version of a user dataset the run trains on (datasets.fingerprint), set by
    # jobs.start_run; the worker, Evaluate and Predict refuse other images under that name.
    dataset_fingerprint: str | None = None
    model: str = "simple_convnet"  # a key of models.MODELS
    layers: list[dict[str, Any]] | None = None  # the layer list, for model "custom" only
    optimizer: str | None = None  # "adam" | "adamax" | "sgd"; None = the model's choice
    learning_rate: float | None = None  # None = the model's recommended rate
    momentum: float | None = None  # SGD only; None = DEFAULT_MOMENTUM
    batch_size: int = 128  # on two AVX512 cores ~1.35x the images/s of 64 (BENCHMARKS.md)
    epochs: int = 5
    validation_split: float = 0.1  # fraction of the training images held out, 0 <= v < 0.5
    lr_schedule: str = "constant"  # "constant" | "cosine" (decays to 0 over all epochs)
    augment_shift: float = 0.0  # random translation, as a fraction of height and width
    augment_rotate: float = 0.0  # random rotation, up to this many degrees either way
    # Random zoom in or out, up to this fraction, for height and width independently.
    augment_zoom: float = 0.0
    # Random horizontal flips. Allowed everywhere, but they hurt on digits and letters
    # (a flipped 2 is not a 2): use them for photos such as CIFAR-10.
    augment_flip: bool = False
    # Cross-entropy against targets of 1 - s + s/classes for the true class, s/classes for
    # the others: a network that cannot become certain over-fits a small training set less.
    # The losses reported (training and test) are against these smoothed targets.
    label_smoothing: float = 0.0
    seed: int = 42  # seeds shuffling, the validation split, augmentation and weights
    metrics_every_batches: int = 0  # batch-window length of the live metrics; 0 = ~2 lines/s
    checkpoint_every_epochs: int = 1  # every checkpoint is kept (epoch replay needs them)
    # True = "mixed_bfloat16": bfloat16 arithmetic, float32 weights. None = on where the CPU
    # computes bfloat16 natively (fast_bfloat16), which trains about 1.7x faster there.
    mixed_precision: bool | None = None
    distribute: str | None = None  # None or "mirrored" (tf.distribute, several GPUs)
    threads: int = 0  # TensorFlow intra-op threads; 0 = cores / jobs.max_workers()

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-able values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Builds a config from a dict such as a parsed config.json.

        Raises:
            ConfigError: the dict is not a dict, or has keys RunConfig does not know.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"A run config must be a JSON object, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"Unknown config key(s): {', '.join(unknown)}. "
                f"Known keys: {', '.join(sorted(known))}."
            )
        return cls(**data)

    @property
    def display_name(self) -> str:
        """The name given at the start, else "<model> on <dataset>" (the registry's "user:"
        prefix is the lab's own word, never shown)."""
        return self.name or f"{self.model} on {self.dataset.removeprefix('user:')}"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_int(name: str, value: Any, low: int, high: int, hint: str = "") -> None:
    if not _is_int(value) or not low <= value <= high:
        raise ConfigError(
            f"{name} must be a whole number from {low} to {high}, got {value!r}.{hint}"
        )


def _check_choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"Unknown {name} {value!r}. Choose one of: {', '.join(options)}.")


def _check_basic_fields(cfg: RunConfig) -> None:
    """The checks that need neither the dataset nor the model zoo."""
    if not isinstance(cfg.name, str) or len(cfg.name) > MAX_NAME_LENGTH:
        raise ConfigError(f"name must be text of at most {MAX_NAME_LENGTH} characters.")
    _check_choice("optimizer", cfg.optimizer, OPTIMIZERS)
    lr = cfg.learning_rate
    if not _is_number(lr) or not 0 < lr <= MAX_LEARNING_RATE:
        raise ConfigError(
            f"learning_rate must be a number above 0 and at most {MAX_LEARNING_RATE:g}, got "
            f"{lr!r}. Typical values: 0.001 for Adam, 0.01 to 0.1 for SGD."
        )
    if not _is_number(cfg.momentum) or not 0 <= cfg.momentum < 1:
        raise ConfigError(f"momentum must be from 0 to below 1 (e.g. 0.9), got {cfg.momentum!r}.")
    _check_int("batch_size", cfg.batch_size, 1, MAX_BATCH_SIZE, " Try 32, 64 or 128.")
    _check_int("epochs", cfg.epochs, 1, MAX_EPOCHS)
    v = cfg.validation_split
    if not _is_number(v) or not 0 <= v < MAX_VALIDATION_SPLIT:
        raise ConfigError(
            f"validation_split must be from 0 to below {MAX_VALIDATION_SPLIT} (e.g. 0.1 holds "
            f"out 10% of the training images), got {v!r}."
        )
    _check_choice("lr_schedule", cfg.lr_schedule, LR_SCHEDULES)
    if not _is_number(cfg.augment_shift) or not 0 <= cfg.augment_shift <= MAX_SHIFT:
        raise ConfigError(
            f"augment_shift is a fraction of the image size from 0 to {MAX_SHIFT} (e.g. 0.1), "
            f"got {cfg.augment_shift!r}."
        )
    if not _is_number(cfg.augment_rotate) or not 0 <= cfg.augment_rotate <= MAX_ROTATE_DEGREES:
        raise ConfigError(
            f"augment_rotate is in degrees, from 0 to {MAX_ROTATE_DEGREES:g} (e.g. 10), got "
            f"{cfg.augment_rotate!r}."
        )
    if not _is_number(cfg.augment_zoom) or not 0 <= cfg.augment_zoom <= MAX_ZOOM:
        raise ConfigError(
            f"augment_zoom is a fraction of the image size from 0 to {MAX_ZOOM} (e.g. 0.1 zooms "
            f"by up to 10% in or out), got {cfg.augment_zoom!r}."
        )
    ls = cfg.label_smoothing
    if not _is_number(ls) or not 0 <= ls <= MAX_LABEL_SMOOTHING:
        raise ConfigError(
            f"label_smoothing must be from 0 (none) to {MAX_LABEL_SMOOTHING} (e.g. 0.1), got "
            f"{ls!r}."
        )
    for name in ("augment_flip", "mixed_precision"):
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(f"{name} must be true or false, got {getattr(cfg, name)!r}.")
    _check_int("seed", cfg.seed, 0, 2**31 - 1)
    _check_int("metrics_every_batches", cfg.metrics_every_batches, 0, 1_000_000,
               " Use 0 for about two lines a second.")  # fmt: skip
    _check_int("checkpoint_every_epochs", cfg.checkpoint_every_epochs, 1, MAX_EPOCHS)
    _check_int("threads", cfg.threads, 0, MAX_THREADS, " Use 0 for automatic.")
    if cfg.distribute is not None:
        _check_choice("distribute", cfg.distribute, DISTRIBUTE_STRATEGIES)


def _check_dataset(cfg: RunConfig) -> None:
    from cnn_core import datasets  # lazy: sklearn and numpy are slow to import

    if not isinstance(cfg.dataset, str) or cfg.dataset not in datasets.list_datasets():
        raise ConfigError(
            f"Unknown dataset {cfg.dataset!r}. Choose one of: "
            f"{', '.join(datasets.list_datasets())}."
        )
    sources = datasets.dataset_status(cfg.dataset)
    if cfg.dataset_source is not None:
        named = [s for s in sources if s.source == cfg.dataset_source]
        if not named:
            raise ConfigError(
                f"{cfg.dataset.removeprefix('user:')} has no source "
                f"{cfg.dataset_source!r}; its sources are: "
                f"{', '.join(s.source for s in sources)}."
            )
        sources = named
    if not any(s.available for s in sources):
        hints = "; or ".join(s.detail for s in sources)
        raise ConfigError(
            f"{cfg.dataset.removeprefix('user:')} is not available on this machine. "
            f"To get it: {hints}."
        )


def _load_facts(cfg: RunConfig) -> tuple[int, tuple[int, int, int]]:
    """Training-set size and image shape, read from the dataset itself."""
    from cnn_core import datasets

    try:
        data = datasets.load_dataset(cfg.dataset, source=cfg.dataset_source)
    except datasets.DatasetError as exc:
        raise ConfigError(str(exc)) from exc
    return len(data.x_train), data.input_shape


def _check_model(cfg: RunConfig, input_shape: tuple[int, int, int] | None) -> None:
    from cnn_core import models  # lazy: imports Keras

    info = models.MODELS[cfg.model]
    if cfg.model == models.CUSTOM:
        if not cfg.layers:
            raise ConfigError(
                "The 'custom' model needs a layer list, e.g. "
                '[{"type": "conv", "filters": 16}, {"type": "maxpool"}, {"type": "dense"}].'
            )
        if input_shape is not None:
            try:
                models.validate_layers(cfg.layers, input_shape)
            except models.ModelError as exc:
                raise ConfigError(str(exc)) from exc
    elif cfg.layers is not None:
        raise ConfigError(
            f"layers is only used by the 'custom' model; '{cfg.model}' has a fixed "
            "architecture. Remove layers, or choose model 'custom'."
        )
    side = info.min_input_side
    if input_shape is not None and min(input_shape[:2]) < side:
        raise ConfigError(
            f"'{cfg.model}' needs images of at least {side}×{side} pixels, but "
            f"{cfg.dataset.removeprefix('user:')} has "
            f"{input_shape[0]}×{input_shape[1]}. Choose another model."
        )


def _check_sizes(cfg: RunConfig, train_size: int) -> None:
    held_out = int(train_size * cfg.validation_split)
    if cfg.validation_split > 0 and held_out == 0:
        raise ConfigError(
            f"validation_split {cfg.validation_split} of {train_size} training images holds out "
            "no image. Raise it, or set it to 0."
        )
    left = train_size - held_out
    if cfg.batch_size > left:
        raise ConfigError(
            f"batch_size {cfg.batch_size} is larger than the {left} training images left after "
            f"the validation split. Use a batch size of at most {left}."
        )


def fast_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bfloat16 instructions (AMX or AVX512_BF16).

    There mixed precision trains the zoo's models about 1.7x faster than float32 at the
    same accuracy (benchmarks/hardware.py, BENCHMARKS.md); elsewhere bfloat16 is emulated
    and slower, so runs stay float32.
    """
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return re.search(r"\b(amx_bf16|avx512_bf16)\b", flags) is not None


def validate_config(
    cfg: RunConfig,
    *,
    train_size: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
) -> RunConfig:
    """Checks a config before any worker starts and fills the model's defaults.

    Args:
        cfg: the config as the user set it.
        train_size: number of training images, when the caller has the dataset at hand;
            enables the batch-size-versus-data check.
        input_shape: (height, width, channels) of the images, when known. For the custom
            model it is read from the dataset when not given, to check the layer list.

    Returns:
        The config with optimizer, learning_rate, momentum and mixed_precision filled in.

    Raises:
        ConfigError: the message names the field and what to fix.
    """
    from cnn_core import models

    if not isinstance(cfg.model, str) or cfg.model not in models.MODELS:
        raise ConfigError(
            f"Unknown model {cfg.model!r}. Choose one of: {', '.join(models.MODELS)}."
        )
    info = models.MODELS[cfg.model]
    cfg = replace(
        cfg,
        optimizer=cfg.optimizer or info.optimizer,
        learning_rate=info.learning_rate if cfg.learning_rate is None else cfg.learning_rate,
        momentum=DEFAULT_MOMENTUM if cfg.momentum is None else cfg.momentum,
        mixed_precision=fast_bfloat16() if cfg.mixed_precision is None else cfg.mixed_precision,
    )
    _check_basic_fields(cfg)
    _check_dataset(cfg)
    if cfg.model == models.CUSTOM and input_shape is None and cfg.layers:
        train_size, input_shape = _load_facts(cfg)
    _check_model(cfg, input_shape)
    if train_size is not None:
        _check_sizes(cfg, train_size)
    return cfg


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
    return paths.runs_dir()


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
        f"{paths.HOME_ENV} to a folder you can write to."
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


def _parse_lines(chunk: bytes) -> list[dict[str, Any]]:
    records = []
    for line in chunk.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a damaged line (e.g. a crash mid-write before a resume) is skipped
        if isinstance(rec, dict):
            records.append(rec)
    return records


def read_metrics(run_id: str, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Reads the metrics records appended since ``offset``, for a page polling each second.

    A last line still being written is left for the next call. A resume that drops an
    unfinished epoch rewrites the file and bumps ``RunStatus.history_rewrites``: a poller
    that sees that number change starts again from offset 0. An offset past the end of the
    file (it was rewritten) also restarts from 0.

    Args:
        run_id: the run.
        offset: the ``new_offset`` of the previous call, or 0.

    Returns:
        (records, new_offset): the complete records after offset, in order, and the
        offset to pass next time.
    """
    path = _existing(run_id).metrics
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if offset > size:
                offset = 0
            f.seek(offset)
            chunk = f.read()
    except FileNotFoundError:
        return [], 0
    end = chunk.rfind(b"\n") + 1
    return _parse_lines(chunk[:end]), offset + end


def epoch_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The epoch lines among metrics records."""
    return [r for r in records if r.get("kind") == "epoch"]


def truncate_metrics(run_id: str, last_epoch: int, batches: int = 0) -> list[dict[str, Any]]:
    """Drops every metrics record after a checkpoint's position (atomically).

    Used by a resume from the checkpoint after ``last_epoch`` complete epochs and
    ``batches`` batches of the next one, so that the appended history has no gap and no
    duplicate. Of that next epoch only the batch records up to ``batches`` stay.

    Returns:
        The records kept.
    """
    p = run_paths(run_id)
    records, _ = read_metrics(run_id)
    kept = [r for r in records if _before_position(r, last_epoch, batches)]
    data = "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept).encode()
    if p.metrics.exists() and data != p.metrics.read_bytes():
        fd, tmp = tempfile.mkstemp(prefix=".metrics.", suffix=".tmp", dir=p.root)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p.metrics)
        update_status(run_id, history_rewrites=_read_raw_status(p).history_rewrites + 1)
    return kept


def _before_position(record: dict[str, Any], last_epoch: int, batches: int) -> bool:
    epoch = int(record.get("epoch", 0))
    if epoch <= last_epoch:
        return True
    in_next = epoch == last_epoch + 1 and record.get("kind") == "batch"
    return in_next and int(record.get("batch") or 0) <= batches


def append_metrics(f: BinaryIO, record: dict[str, Any]) -> None:
    """Appends one record to metrics.jsonl opened with ``open(path, "ab")``.

    One write per line, so a poller sees whole lines or a tail it waits for.
    """
    line = json.dumps({k: _finite(v) for k, v in record.items()}, allow_nan=False) + "\n"
    f.write(line.encode())
    f.flush()


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
    folder = run_paths(run_id).checkpoints
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


def metrics_csv(run_id: str) -> str:
    """The whole metrics log as CSV (one row per record, a "kind" column), for download."""
    records, _ = read_metrics(run_id)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=METRICS_CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()
