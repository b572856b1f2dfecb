"""The worker's Keras callbacks: progress and ETA, stops, divergence, metrics, checkpoints."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from cnn_core.runs import metrics_log, run_folder, status
from cnn_core.runs.checkpointing import save_checkpoint

AUTO_WINDOW_S = 0.5  # metrics_every_batches=0: close a batch window every half second
ETA_SMOOTHING = 0.3  # weight of the newest window in the images/s average behind the ETA
METRIC_KEYS = ("loss", "accuracy", "mse")


def current_learning_rate(model: keras.Model) -> float:
    """The learning rate the optimizer uses now (a schedule's value at this step)."""
    return float(tf.convert_to_tensor(model.optimizer.learning_rate))


# ---------------------------------------------------------------- callbacks


@dataclass
class Progress:
    """What the callbacks share about the epoch in progress."""

    batches_per_epoch: int
    train_size: int
    batch_size: int
    epochs: int
    epoch: int = 0  # 1-based
    batches: int = 0  # done in this epoch
    epoch_t0: float = 0.0
    last_batch_t: float = 0.0
    stopping: bool = False
    failure: str | None = None
    best_val_accuracy: float | None = None
    seconds: float = 0.0  # all epochs in the metrics log
    # A resumed epoch: batches a stopped worker trained before this part, the sums of each
    # metric times images over them, and their training time (from the checkpoint).
    first_batch: int = 0
    prior_sums: dict[str, float] = field(default_factory=dict)
    prior_seconds: float = 0.0

    @property
    def partial(self) -> bool:
        return self.batches < self.batches_per_epoch

    def seen(self, batches: int) -> int:
        """Images seen after that many batches of an epoch (the last batch may be short)."""
        return min(batches * self.batch_size, self.train_size)

    def start_part(self, first_batch: int = 0, state: dict | None = None) -> None:
        """Sets where the next fit starts in its epoch and what was trained there before."""
        state = state or {}
        self.first_batch = first_batch
        self.prior_sums = dict(state.get("sums") or {}) if first_batch else {}
        self.prior_seconds = float(state.get("seconds") or 0.0) if first_batch else 0.0

    def epoch_sums(self, logs: dict) -> dict[str, float]:
        """Each metric times images over all batches of the epoch trained so far; Keras'
        logs hold means over this part of it only."""
        n = self.seen(self.batches) - self.seen(self.first_batch)
        before = self.seen(self.first_batch)  # a sum the checkpoint lacks: this part's mean
        return {k: self.prior_sums.get(k, float(logs[k]) * before) + float(logs[k]) * n
                for k in METRIC_KEYS if logs.get(k) is not None}  # fmt: skip

    def train_seconds(self) -> float:
        """Training time of the epoch so far, both parts of a resumed one."""
        return self.prior_seconds + self.last_batch_t - self.epoch_t0


class ProgressTracker(keras.callbacks.Callback):
    """Counts batches and times the epoch; first in the list so the others can rely on it."""

    def __init__(self, progress: Progress):
        super().__init__()
        self.progress = progress

    def on_epoch_begin(self, epoch, logs=None):
        p = self.progress
        p.epoch, p.batches = epoch + 1, p.first_batch
        p.epoch_t0 = p.last_batch_t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.progress.batches = self.progress.first_batch + batch + 1
        self.progress.last_batch_t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        # A resumed epoch ends with means over its second part: make them the epoch's own,
        # for every callback after this one (the log, TensorBoard).
        p = self.progress
        if p.first_batch and not p.partial and logs and not p.failure:
            total = p.seen(p.batches)
            logs.update({k: s / total for k, s in p.epoch_sums(logs).items()})


class StopOnRequest(keras.callbacks.Callback):
    """Ends training after the current batch once stop.request exists."""

    def __init__(self, run_id: str, progress: Progress):
        super().__init__()
        self.flag = run_folder.run_paths(run_id).stop
        self.run_id = run_id
        self.progress = progress

    def _check(self) -> None:
        if not self.progress.stopping and self.flag.exists():
            self.progress.stopping = True
            self.model.stop_training = True
            status.update_status(self.run_id, state="stopping", message="Saving a checkpoint.")

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()  # a stop asked during validation must not start another epoch


class DivergenceGuard(keras.callbacks.Callback):
    """Stops at the first batch whose loss is NaN or infinite, with advice for people."""

    def __init__(self, progress: Progress, learning_rate: float):
        super().__init__()
        self.progress = progress
        self.learning_rate = learning_rate

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            return
        what = "NaN" if math.isnan(loss) else "infinite"
        p, lr = self.progress, self.learning_rate
        p.failure = (
            f"The loss became {what} at epoch {p.epoch}, batch {p.batches}. The learning rate "
            f"{lr:g} is probably too high: try {lr / 10:g} or lower."
        )
        self.model.stop_training = True


class EpochValidation(keras.callbacks.Callback):
    """Evaluates the held-out split at each complete epoch and adds val_* to the logs.

    Done here rather than by fit(validation_data=...) so that a stop skips it and takes
    effect within seconds even with a large validation set.
    """

    def __init__(self, val_ds: tf.data.Dataset | None, progress: Progress):
        super().__init__()
        self.val_ds = val_ds
        self.progress = progress

    def on_epoch_end(self, epoch, logs=None):
        p = self.progress
        if self.val_ds is None or p.failure or p.partial or logs is None:
            return
        result = self.model.evaluate(self.val_ds, verbose=0, return_dict=True)
        logs.update({f"val_{k}": float(v) for k, v in result.items()})


class MetricsWriter(keras.callbacks.Callback):
    """Appends batch-window and epoch lines to metrics.jsonl and keeps status.json current.

    Keras reports running means since the epoch began; a window's mean is recovered from
    two running means weighted by the images seen, so each line shows the last window.
    """

    def __init__(self, run_id: str, progress: Progress, every: int):
        super().__init__()
        self.run_id = run_id
        self.progress = progress
        self.every = every
        self.path = run_folder.run_paths(run_id).metrics
        self.file = None
        self._ips_avg: float | None = None

    def on_train_begin(self, logs=None):
        if self.file is None:  # one fit per epoch: stays open until close()
            self.file = open(self.path, "ab")  # noqa: SIM115 - closed in close()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def on_epoch_begin(self, epoch, logs=None):
        start = self.progress.first_batch  # Keras' running means start there, not at 0
        self._w_batches, self._w_t0, self._w_sums = start, time.perf_counter(), {}

    def _window_due(self, now: float) -> bool:
        p = self.progress
        if not p.partial or p.stopping:
            return True
        if self.every:
            return p.batches - self._w_batches >= self.every
        return now - self._w_t0 >= AUTO_WINDOW_S

    def on_train_batch_end(self, batch, logs=None):
        p, now = self.progress, time.perf_counter()
        if p.failure or not logs or not self._window_due(now):
            return
        seen = p.seen(p.batches)
        n = seen - p.seen(self._w_batches)
        part = seen - p.seen(p.first_batch)
        sums = {k: float(logs[k]) * part for k in METRIC_KEYS if k in logs}
        record = {"kind": "batch", "epoch": p.epoch, "batch": p.batches,
                  "step": (p.epoch - 1) * p.batches_per_epoch + p.batches}  # fmt: skip
        record.update({k: (s - self._w_sums.get(k, 0.0)) / n for k, s in sums.items()})
        ips = n / max(now - self._w_t0, 1e-9)
        record.update(images_per_s=ips, t=time.time())
        metrics_log.append_metrics(self.file, record)
        self._w_batches, self._w_t0, self._w_sums = p.batches, now, sums
        self._update_status(ips)

    def _update_status(self, ips: float) -> None:
        p = self.progress
        avg = self._ips_avg
        self._ips_avg = ips if avg is None else (1 - ETA_SMOOTHING) * avg + ETA_SMOOTHING * ips
        left = (p.batches_per_epoch - p.batches) + (p.epochs - p.epoch) * p.batches_per_epoch
        status.update_status(
            self.run_id, epoch=p.epoch, batch=p.batches, batches_per_epoch=p.batches_per_epoch,
            images_per_s=ips, eta_s=left * p.batch_size / max(self._ips_avg, 1e-9),
        )  # fmt: skip

    def on_epoch_end(self, epoch, logs=None):
        p = self.progress
        if p.failure or logs is None or p.partial:
            return  # a stopped epoch gets its one record when a resume completes it
        now = time.perf_counter()
        train_s = max(p.train_seconds(), 1e-9)
        record: dict[str, Any] = {"kind": "epoch", "epoch": p.epoch}
        for k in METRIC_KEYS:
            record[k] = logs.get(k)
            record[f"val_{k}"] = logs.get(f"val_{k}")
        record.update(
            seconds=p.prior_seconds + now - p.epoch_t0, images_per_s=p.seen(p.batches) / train_s,
            lr=current_learning_rate(self.model),
            partial=p.partial, batches=p.batches, t=time.time(),
        )  # fmt: skip
        metrics_log.append_metrics(self.file, record)
        p.seconds += record["seconds"]
        val_acc = record["val_accuracy"]
        if val_acc is not None and (p.best_val_accuracy is None or val_acc > p.best_val_accuracy):
            p.best_val_accuracy = val_acc
        status.update_status(self.run_id, epoch=p.epoch, batch=p.batches, seconds=p.seconds,
                            best_val_accuracy=p.best_val_accuracy)  # fmt: skip


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model with its optimizer state at epoch end, atomically; a stop mid-epoch
    saves a mid-epoch checkpoint with the epoch's running metric sums, to go on from."""

    def __init__(self, run_id: str, progress: Progress, every: int):
        super().__init__()
        self.run_id = run_id
        self.progress = progress
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        p = self.progress
        if p.failure:
            return  # the weights may be NaN: the previous checkpoint is the one to keep
        if p.partial:  # only a stop ends an epoch early
            state = {"epoch": p.epoch, "batch": p.batches, "sums": p.epoch_sums(logs or {}),
                     "seconds": p.train_seconds()}  # fmt: skip
            save_checkpoint(self.run_id, self.model, p.epoch - 1, p.batches, state)
            return
        if p.epoch % self.every and p.epoch != p.epochs and not p.stopping:
            return
        save_checkpoint(self.run_id, self.model, p.epoch)
        status.update_status(self.run_id, last_checkpoint=p.epoch)


class EpochSummaries(keras.callbacks.Callback):
    """TensorBoard event files, one point per epoch: ``tensorboard --logdir <run>/tensorboard``.

    The layout and tags are those of keras.callbacks.TensorBoard (train/ and validation/,
    "epoch_loss", ...), but written with TensorFlow's own tf.summary.write: Keras' callback
    needs the separate `tensorboard` package, which tensorflow-cpu does not install (it is
    only needed to view the files), and it calls tf.summary on every batch even when
    logging per epoch.
    """

    def __init__(self, log_dir: Path, progress: Progress):
        super().__init__()
        self.log_dir = log_dir
        self.progress = progress
        self.writers: dict[str, Any] = {}
        self.metadata = summary_pb2.SummaryMetadata()
        self.metadata.plugin_data.plugin_name = "scalars"  # what TensorBoard plots as a chart

    def _writer(self, split: str):
        if split not in self.writers:
            self.writers[split] = tf.summary.create_file_writer(str(self.log_dir / split))
        return self.writers[split]

    def _write(self, split: str, values: dict[str, float], step: int) -> None:
        with self._writer(split).as_default():
            for name, value in values.items():
                tensor = tf.constant(value, tf.float32)
                tf.summary.write(f"epoch_{name}", tensor, step=step, metadata=self.metadata)

    def on_epoch_end(self, epoch, logs=None):
        if self.progress.partial or self.progress.failure:
            return  # one point per complete epoch, written when a resume completes it
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_") and v is not None}
        train["learning_rate"] = current_learning_rate(self.model)
        self._write("train", train, epoch)
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_") and v is not None}
        if val:
            self._write("validation", val, epoch)
        for writer in self.writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}
