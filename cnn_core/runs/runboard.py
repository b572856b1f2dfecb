"""Every run as people read it: the one source for the runs table, the live panel and the CLI.

A run's state, its place in the queue, its epochs and its figures are worked out here from
one reading of the run store, so the table, the panel beside it and ``python -m cnn_core
runs`` cannot contradict each other. A value that is not known yet reads as "—", never as
"None" or 0.

Like the run store, this module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from cnn_core import settings
from cnn_core.runs import run_config, run_folder, store
from cnn_core.runs import status as run_status

EMPTY = "—"  # what a value that is not known yet reads as
TRAINING_STATES = ("running", "stopping")


def fmt(value: Any, spec: str = "") -> str:
    """A value for people: "—" for None, NaN or infinity; else ``format(value, spec)``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return EMPTY
    return format(value, spec)


def fmt_percent(value: float | None) -> str:
    return fmt(None if value is None else value * 100, ".2f") + ("%" if value is not None else "")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def augmentation_text(cfg: run_config.RunConfig) -> str:
    """The random changes made to training images, e.g. "shift 0.1, flips"; "none"."""
    parts = []
    if cfg.augment_shift:
        parts.append(f"shift {cfg.augment_shift:g}")
    if cfg.augment_rotate:
        parts.append(f"rotate {cfg.augment_rotate:g}°")
    if cfg.augment_zoom:
        parts.append(f"zoom {cfg.augment_zoom:g}")
    if cfg.augment_flip:
        parts.append("flips")
    return ", ".join(parts) or "none"


def settings_that_differ(
    cfg: run_config.RunConfig, optimizer: str, learning_rate: float
) -> list[str]:
    """The settings of a run that are not the defaults, in a few words each.

    Args:
        cfg: the run's config.
        optimizer, learning_rate: the model's own recommendation (its defaults).
    """
    default = run_config.RunConfig()
    words = []
    if cfg.optimizer not in (None, optimizer):
        words.append(str(cfg.optimizer))
    if cfg.learning_rate is not None and not math.isclose(cfg.learning_rate, learning_rate):
        words.append(f"lr {cfg.learning_rate:g}")
    if cfg.batch_size != default.batch_size:
        words.append(f"batch {cfg.batch_size}")
    if cfg.lr_schedule != default.lr_schedule:
        words.append(cfg.lr_schedule)
    if cfg.validation_split != default.validation_split:
        words.append(f"validation {cfg.validation_split:g}")
    if augmentation_text(cfg) != "none":
        words.append(augmentation_text(cfg))
    if cfg.label_smoothing:
        words.append(f"smoothing {cfg.label_smoothing:g}")
    if cfg.seed != default.seed:
        words.append(f"random seed {cfg.seed}")
    return words


def default_name(cfg: run_config.RunConfig, now: float | None = None) -> str:
    """A readable name for a new run: model, dataset, epochs, what differs, and the time.

    E.g. "VGG-like · MNIST · 5 epochs, lr 0.003, flips · 14:05". Imports the model zoo
    (Keras), so call it where the config is validated anyway.
    """
    from cnn_core.data import datasets
    from cnn_core.models import zoo

    info = zoo.MODELS.get(cfg.model)
    title = info.title if info else cfg.model
    extra = settings_that_differ(cfg, info.optimizer, info.learning_rate) if info else []
    details = ", ".join([f"{cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}", *extra])
    clock = time.strftime("%H:%M", time.localtime(now if now is not None else time.time()))
    name = f"{title} · {datasets.dataset_title(cfg.dataset)} · {details}"
    if len(name) > run_config.MAX_NAME_LENGTH - 8:
        name = name[: run_config.MAX_NAME_LENGTH - 9] + "…"
    return f"{name} · {clock}"


@dataclass(frozen=True)
class RunRow:
    """One run as every view shows it: the store's listing plus what is worked out from
    all runs together (the state in words, the queue place)."""

    info: store.RunInfo
    state_text: str  # the state in words, with the queue place of a queued run
    queue_place: int | None = None  # 1 = the next to start; None unless queued

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def state(self) -> str:
        return self.info.status.state

    @property
    def status(self) -> run_status.RunStatus:
        return self.info.status

    @property
    def config(self) -> run_config.RunConfig:
        return self.info.config

    @property
    def active(self) -> bool:
        return self.info.status.active

    @property
    def epochs_text(self) -> str:
        return f"{epochs_done(self.status)}/{self.config.epochs}"


def epochs_done(status: run_status.RunStatus) -> int:
    """Complete epochs: a finished run has trained all of them."""
    if status.state == "finished":
        return status.epochs
    complete = status.batches_per_epoch and status.batch >= status.batches_per_epoch
    return max(status.epoch if complete else status.epoch - 1, 0)


def progress(status: run_status.RunStatus) -> tuple[float, str]:
    """How far a run has come, for a progress bar: (share done, from 0 to 1; one line).

    E.g. (0.35, "epoch 2/4 · batch 40/100 · 1,200 images/s · time left 45 s"). Speed and
    time left are shown only while the run trains: they mean nothing once it has ended.
    """
    done = (status.epoch - 1 + status.batch / max(status.batches_per_epoch, 1)) / max(
        status.epochs, 1
    )
    if status.state == "finished":
        done = 1.0
    if not status.batches_per_epoch:  # a queued run has no batches yet: nothing to count
        return 0.0, f"not started yet · {status.epochs} epochs"
    text = f"epoch {status.epoch}/{status.epochs} · batch {status.batch}/{status.batches_per_epoch}"
    if status.state == "running":
        speed = f"{status.images_per_s:,.0f} images/s" if status.images_per_s else EMPTY
        text += f" · {speed} · time left {fmt_duration(status.eta_s)}"
    return min(max(done, 0.0), 1.0), text


def _queue_text(place: int, training: int, slots: int) -> str:
    line = "next in line" if place == 1 else f"{_ordinal(place)} in line"
    if training >= slots:
        busy = f"{training} run{'s' if training != 1 else ''} training"
        return f"queued: {line}, waiting while {busy} ({slots} at a time)"
    return f"queued: {line}, starting"


def board(infos: list[store.RunInfo] | None = None) -> list[RunRow]:
    """Every run, newest first, with queue places worked out from the same reading.

    Args:
        infos: the run store's listing, when the caller has just read it.
    """
    infos = store.list_runs() if infos is None else infos
    queued = sorted((i for i in infos if i.status.state == "queued"), key=lambda i: i.status.queued)
    places = {info.id: n for n, info in enumerate(queued, start=1)}
    training = sum(1 for i in infos if i.status.state in TRAINING_STATES)
    slots = settings.max_workers()
    rows = []
    for info in infos:
        place = places.get(info.id)
        text = _queue_text(place, training, slots) if place else info.status.state
        rows.append(RunRow(info, text, place))
    return rows


def row(run_id: str, rows: list[RunRow] | None = None) -> RunRow:
    """One run's row (its queue place needs the others, so the whole board is read).

    Raises:
        run_folder.RunError: no such run.
    """
    for r in board() if rows is None else rows:
        if r.id == run_id:
            return r
    run_folder.check_run_id(run_id)
    raise run_folder.RunError(f"No run {run_id} in {run_folder.runs_home()}.")


TABLE_COLUMNS = (
    "name", "state", "epochs", "test accuracy", "best val. accuracy", "optimizer",
    "learning rate", "batch", "augmentation", "time", "parameters",
)  # fmt: skip


def fmt_duration(seconds: float | None) -> str:
    """A duration as "2 min 05 s" or "45 s"; "—" when not known."""
    if seconds is None or not math.isfinite(seconds):
        return EMPTY
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def table_record(r: RunRow) -> dict[str, str]:
    """The row as text, the same for the page's table and the CLI's."""
    cfg, info = r.config, r.info
    return {
        "name": r.name,
        "state": r.state_text,
        "epochs": r.epochs_text,
        "test accuracy": fmt_percent(info.test_accuracy),
        "best val. accuracy": fmt_percent(info.best_val_accuracy),
        "optimizer": fmt(cfg.optimizer),
        "learning rate": fmt(cfg.learning_rate, "g"),
        "batch": str(cfg.batch_size),
        "augmentation": augmentation_text(cfg),
        "time": fmt_duration(info.seconds) if info.seconds else EMPTY,
        "parameters": fmt(info.params, ","),
    }
