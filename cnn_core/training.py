"""The training loop inside a worker process: data pipeline, model, and the callbacks that
write the run directory (metrics, status, checkpoints, stop flag).

``train_run(run_id)`` trains a run from scratch or resumes it from its newest intact
checkpoint, and always leaves a final status: finished, stopped or failed (with a message
for people and the traceback in worker.log). Callers hold the run's worker lock (see
``jobs.run_worker``); this module is imported only once a worker has its turn, because
importing TensorFlow costs hundreds of megabytes.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from cnn_core import batchnorm, datasets, jobs, models, runs

AUTO_WINDOW_S = 0.5  # metrics_every_batches=0: close a batch window every half second
EVAL_BATCH_SIZE = 256  # evaluation needs no gradients, so larger batches are cheap
ETA_SMOOTHING = 0.3  # weight of the newest window in the images/s average behind the ETA
METRIC_KEYS = ("loss", "accuracy", "mse")
MIXED_POLICY = "mixed_bfloat16"


# ---------------------------------------------------------------- data


def configure_threads(threads: int = 0) -> int:
    """Sets TensorFlow's thread pools before its first op; returns the intra-op count.

    With several workers sharing the machine, each gets its share of the cores instead of
    all of them, so they do not fight over caches.
    """
    n = threads or max(1, (os.cpu_count() or 1) // jobs.max_workers())
    with contextlib.suppress(RuntimeError):  # already initialized (a second run in-process)
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    return n


def split_validation(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Holds out a seeded random fraction of the training set, the same on every resume.

    Returns:
        x_train, y_train, x_val, y_val (the validation arrays are empty when fraction is 0).
    """
    n_val = int(len(x) * fraction)
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return x[train], y[train], x[val], y[val]


def make_augmenter(cfg: runs.RunConfig, ink_on_dark: bool, seed: int) -> list[keras.Layer]:
    """Keras preprocessing layers for the tf.data map (kept out of the model, so the saved
    model stays clean for inspection)."""
    # Ink-on-dark images (MNIST) are padded with black; photos reflect their own border.
    fill = "constant" if ink_on_dark else "reflect"
    layers: list[keras.Layer] = []
    if cfg.augment_shift:
        layers.append(
            keras.layers.RandomTranslation(
                cfg.augment_shift, cfg.augment_shift, fill_mode=fill, seed=seed, dtype="float32"
            )
        )
    if cfg.augment_rotate:
        layers.append(
            keras.layers.RandomRotation(
                cfg.augment_rotate / 360.0, fill_mode=fill, seed=seed + 1, dtype="float32"
            )
        )
    if cfg.augment_zoom:
        layers.append(
            keras.layers.RandomZoom(
                cfg.augment_zoom, cfg.augment_zoom, fill_mode=fill, seed=seed + 3, dtype="float32"
            )
        )
    if cfg.augment_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 2, dtype="float32"))
    return layers  # fmt: skip


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    augment: list[keras.Layer] | None = None,
) -> tf.data.Dataset:
    """uint8 images and int labels -> batches of float32 images in [0, 1] and one-hot labels.

    One-hot labels let the same compiled model report MSE next to cross-entropy (seed 002).
    The map runs on whole batches, which costs one op call per batch, not per image.
    """
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)

    def prepare(images, labels):
        images = tf.cast(images, tf.float32) / 255.0
        for layer in augment or ():
            images = layer(images, training=True)
        return images, tf.one_hot(labels, num_classes)

    ds = ds.batch(batch_size).map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------- model


def make_optimizer(cfg: runs.RunConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """The optimizer of the config, with the cosine schedule spanning all epochs if asked."""
    lr: float | keras.optimizers.schedules.LearningRateSchedule = cfg.learning_rate
    if cfg.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, max(1, total_steps))
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    if cfg.optimizer == "adamax":
        return keras.optimizers.Adamax(lr)
    return keras.optimizers.SGD(lr, momentum=cfg.momentum)


def compile_model(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, label_smoothing: float = 0.0
) -> None:
    """Compiles for training; batch norm then trains with the fused kernel (batchnorm.py).
    The loss is saved with the model, so a resumed run keeps its label smoothing."""
    batchnorm.use_fused_batch_norm(model)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy", "mse"])


def current_learning_rate(model: keras.Model) -> float:
    """The learning rate the optimizer uses now (a schedule's value at this step)."""
    return float(tf.convert_to_tensor(model.optimizer.learning_rate))


def load_checkpoint(run_id: str) -> tuple[keras.Model, int] | None:
    """The newest checkpoint that loads, with its optimizer state, and its epoch.

    Damaged checkpoints are renamed ``*.damaged`` (kept for inspection, no longer listed),
    and the one before is tried. Only our own checkpoint files are ever loaded here.
    """
    for epoch, path in reversed(runs.checkpoints(run_id)):
        if runs.checkpoint_ok(path):
            try:
                return keras.saving.load_model(path), epoch
            except Exception as exc:  # any failure to load means the same: use an older one
                print(f"checkpoint {path.name} does not load ({exc}); trying the one before",
                      file=sys.stderr)  # fmt: skip
        else:
            print(f"checkpoint {path.name} is damaged; trying the one before", file=sys.stderr)
        os.replace(path, path.with_name(path.name + ".damaged"))
    return None


def save_model_atomic(model: keras.Model, dest: Path) -> None:
    """Saves a .keras file under a temp name, syncs it, then renames: never half-written."""
    tmp = dest.with_name(f".{dest.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
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

    @property
    def partial(self) -> bool:
        return self.batches < self.batches_per_epoch

    def seen(self, batches: int) -> int:
        """Images seen after that many batches of an epoch (the last batch may be short)."""
        return min(batches * self.batch_size, self.train_size)


class ProgressTracker(keras.callbacks.Callback):
    """Counts batches and times the epoch; first in the list so the others can rely on it."""

    def __init__(self, progress: Progress):
        super().__init__()
        self.progress = progress

    def on_epoch_begin(self, epoch, logs=None):
        p = self.progress
        p.epoch, p.batches = epoch + 1, 0
        p.epoch_t0 = p.last_batch_t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.progress.batches = batch + 1
        self.progress.last_batch_t = time.perf_counter()


class StopOnRequest(keras.callbacks.Callback):
    """Ends training after the current batch once stop.request exists."""

    def __init__(self, run_id: str, progress: Progress):
        super().__init__()
        self.flag = runs.run_paths(run_id).stop
        self.run_id = run_id
        self.progress = progress

    def _check(self) -> None:
        if not self.progress.stopping and self.flag.exists():
            self.progress.stopping = True
            self.model.stop_training = True
            runs.update_status(self.run_id, state="stopping", message="Saving a checkpoint.")

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
            f"The loss became {what} at epoch {p.epoch}, batch {batch + 1}. The learning rate "
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
        self.path = runs.run_paths(run_id).metrics
        self.file = None
        self._ips_avg: float | None = None

    def on_train_begin(self, logs=None):
        self.file = open(self.path, "ab")  # noqa: SIM115 - closed in on_train_end / close()

    def on_train_end(self, logs=None):
        self.close()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def on_epoch_begin(self, epoch, logs=None):
        self._w_batches, self._w_t0, self._w_sums = 0, time.perf_counter(), {}

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
        sums = {k: float(logs[k]) * seen for k in METRIC_KEYS if k in logs}
        record = {"kind": "batch", "epoch": p.epoch, "batch": p.batches,
                  "step": (p.epoch - 1) * p.batches_per_epoch + p.batches}  # fmt: skip
        record.update({k: (s - self._w_sums.get(k, 0.0)) / n for k, s in sums.items()})
        ips = n / max(now - self._w_t0, 1e-9)
        record.update(images_per_s=ips, t=time.time())
        runs.append_metrics(self.file, record)
        self._w_batches, self._w_t0, self._w_sums = p.batches, now, sums
        self._update_status(ips)

    def _update_status(self, ips: float) -> None:
        p = self.progress
        avg = self._ips_avg
        self._ips_avg = ips if avg is None else (1 - ETA_SMOOTHING) * avg + ETA_SMOOTHING * ips
        left = (p.batches_per_epoch - p.batches) + (p.epochs - p.epoch) * p.batches_per_epoch
        runs.update_status(
            self.run_id, epoch=p.epoch, batch=p.batches, batches_per_epoch=p.batches_per_epoch,
            images_per_s=ips, eta_s=left * p.batch_size / max(self._ips_avg, 1e-9),
        )  # fmt: skip

    def on_epoch_end(self, epoch, logs=None):
        p = self.progress
        if p.failure or logs is None:
            return
        now = time.perf_counter()
        train_s = max(p.last_batch_t - p.epoch_t0, 1e-9)
        record: dict[str, Any] = {"kind": "epoch", "epoch": p.epoch}
        for k in METRIC_KEYS:
            record[k] = logs.get(k)
            record[f"val_{k}"] = logs.get(f"val_{k}")
        record.update(
            seconds=now - p.epoch_t0, images_per_s=p.seen(p.batches) / train_s,
            lr=current_learning_rate(self.model),
            partial=p.partial, batches=p.batches, t=time.time(),
        )  # fmt: skip
        runs.append_metrics(self.file, record)
        p.seconds += record["seconds"]
        val_acc = record["val_accuracy"]
        if val_acc is not None and (p.best_val_accuracy is None or val_acc > p.best_val_accuracy):
            p.best_val_accuracy = val_acc
        runs.update_status(self.run_id, epoch=p.epoch, batch=p.batches, seconds=p.seconds,
                           best_val_accuracy=p.best_val_accuracy)  # fmt: skip


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model with its optimizer state at epoch end (and at a stop), atomically."""

    def __init__(self, run_id: str, progress: Progress, every: int):
        super().__init__()
        self.run_id = run_id
        self.paths = runs.run_paths(run_id)
        self.progress = progress
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        p = self.progress
        if p.failure:
            return  # the weights may be NaN: the previous checkpoint is the one to keep
        if p.epoch % self.every and p.epoch != p.epochs and not p.stopping:
            return
        try:
            save_model_atomic(self.model, self.paths.checkpoint(p.epoch))
        except OSError as exc:
            if exc.errno not in runs.FULL_DISK_ERRNOS:
                raise
            # The previous checkpoint is intact: say where a resume will pick up.
            kept = runs.read_status(self.run_id).last_checkpoint
            resume = f"after epoch {kept}" if kept else "from the first epoch"
            lost = f"the checkpoint of epoch {p.epoch}"
            raise DiskFullError(_disk_full_message(exc, lost, resume)) from exc
        runs.update_status(self.run_id, last_checkpoint=p.epoch)


class EpochSummaries(keras.callbacks.Callback):
    """TensorBoard event files, one point per epoch: ``tensorboard --logdir <run>/tensorboard``.

    The layout and tags are those of keras.callbacks.TensorBoard (train/ and validation/,
    "epoch_loss", ...), but written with TensorFlow's own tf.summary.write: Keras' callback
    needs the separate `tensorboard` package, which tensorflow-cpu does not install (it is
    only needed to view the files), and it calls tf.summary on every batch even when
    logging per epoch.
    """

    def __init__(self, log_dir: Path):
        super().__init__()
        self.log_dir = log_dir
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
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_") and v is not None}
        train["learning_rate"] = current_learning_rate(self.model)
        self._write("train", train, epoch)
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_") and v is not None}
        if val:
            self._write("validation", val, epoch)
        for writer in self.writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        self.close()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}


# ---------------------------------------------------------------- the run


def _strategy_scope(cfg: runs.RunConfig):
    if cfg.distribute == "mirrored":
        return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()


def _failure_message(exc: BaseException) -> str:
    if isinstance(exc, (runs.ConfigError, datasets.DatasetError, models.ModelError, DiskFullError)):
        return str(exc)
    if isinstance(exc, (MemoryError, tf.errors.ResourceExhaustedError)):
        return "Out of memory: try a smaller batch size or a smaller model."
    if isinstance(exc, OSError) and exc.errno in runs.FULL_DISK_ERRNOS:
        return _disk_full_message(exc, "a file of the run", "after the last checkpoint")
    return f"{type(exc).__name__}: {exc} (the traceback is in worker.log)."


def _remove_stale_temps(run_id: str) -> None:
    """Deletes half-written checkpoints of a worker that was killed while saving."""
    for tmp in runs.run_paths(run_id).checkpoints.glob(".*.tmp.keras"):
        tmp.unlink(missing_ok=True)


def _prepare_model(run_id: str, cfg: runs.RunConfig, data: datasets.Dataset, steps: int):
    """A fresh compiled model, or the newest loadable checkpoint; returns (model, epoch)."""
    _remove_stale_temps(run_id)
    with _strategy_scope(cfg):
        loaded = load_checkpoint(run_id)
        if loaded is not None:
            batchnorm.use_fused_batch_norm(loaded[0])  # a loaded model is plain Keras
            return loaded
        model = models.build_model(cfg.model, data.input_shape, data.num_classes, cfg.layers)
        compile_model(model, make_optimizer(cfg, steps), cfg.label_smoothing)
        return model, 0


def _resume_state(run_id: str, initial_epoch: int) -> tuple[float | None, float]:
    """Drops the records of unfinished epochs; returns (best val accuracy, seconds) kept."""
    kept = runs.epoch_records(runs.truncate_metrics(run_id, initial_epoch))
    vals = [r["val_accuracy"] for r in kept if r.get("val_accuracy") is not None]
    return (max(vals) if vals else None), float(sum(r.get("seconds") or 0 for r in kept))


def _evaluate(run_id: str, model: keras.Model, data: datasets.Dataset, epoch: int) -> dict:
    t0 = time.perf_counter()
    test_ds = make_dataset(data.x_test, data.y_test, data.num_classes, EVAL_BATCH_SIZE)
    result = model.evaluate(test_ds, verbose=0, return_dict=True)
    evaluation = {k: float(result[k]) for k in METRIC_KEYS if k in result}
    evaluation.update(test_images=len(data.x_test), epoch=epoch,
                      seconds=time.perf_counter() - t0, t=time.time(),
                      # what a page needs to list and use the model without loading the data
                      input_shape=list(data.input_shape), class_names=list(data.class_names),
                      ink_on_dark=data.ink_on_dark)  # fmt: skip
    runs.write_json_atomic(runs.run_paths(run_id).evaluation, evaluation)
    return evaluation


def _callbacks(
    run_id: str, cfg: runs.RunConfig, progress: Progress, val_ds, writer: MetricsWriter
) -> list:
    # Order matters: validation adds val_* to the logs that the writers after it record.
    return [
        ProgressTracker(progress),
        StopOnRequest(run_id, progress),
        DivergenceGuard(progress, cfg.learning_rate),
        EpochValidation(val_ds, progress),
        writer,
        EpochCheckpoint(run_id, progress, cfg.checkpoint_every_epochs),
        EpochSummaries(runs.run_paths(run_id).tensorboard),
    ]


def _fit(run_id: str, cfg: runs.RunConfig, data: datasets.Dataset) -> int:
    x_tr, y_tr, x_val, y_val = split_validation(
        data.x_train, data.y_train, cfg.validation_split, cfg.seed
    )
    batches_per_epoch = math.ceil(len(x_tr) / cfg.batch_size)
    model, initial_epoch = _prepare_model(run_id, cfg, data, cfg.epochs * batches_per_epoch)
    best, seconds = _resume_state(run_id, initial_epoch)
    progress = Progress(batches_per_epoch, len(x_tr), cfg.batch_size, cfg.epochs,
                        epoch=initial_epoch, best_val_accuracy=best, seconds=seconds)  # fmt: skip
    runs.update_status(
        run_id, epoch=initial_epoch, batch=0, batches_per_epoch=batches_per_epoch,
        params=int(model.count_params()), last_checkpoint=initial_epoch or None,
        best_val_accuracy=best, seconds=seconds,
        message=f"Resumed after epoch {initial_epoch}." if initial_epoch else "Training.",
    )  # fmt: skip
    if runs.stop_requested(run_id):
        runs.update_status(run_id, state="stopped", message="Stopped before training started.",
                           finished=time.time())  # fmt: skip
        return 0
    # A resume reseeds so that it does not replay the first epochs' shuffles and augmentations.
    seed = cfg.seed + initial_epoch
    keras.utils.set_random_seed(seed)
    augment = make_augmenter(cfg, data.ink_on_dark, seed)
    train_ds = make_dataset(x_tr, y_tr, data.num_classes, cfg.batch_size,
                            shuffle_seed=seed, augment=augment)  # fmt: skip
    val_ds = make_dataset(x_val, y_val, data.num_classes, EVAL_BATCH_SIZE) if len(x_val) else None
    writer = MetricsWriter(run_id, progress, cfg.metrics_every_batches)
    try:
        model.fit(
            train_ds, epochs=cfg.epochs, initial_epoch=initial_epoch, verbose=0, shuffle=False,
            callbacks=_callbacks(run_id, cfg, progress, val_ds, writer),
        )  # fmt: skip
    finally:
        writer.close()
    return _finish(run_id, model, data, progress)


def _finish(run_id: str, model: keras.Model, data: datasets.Dataset, progress: Progress) -> int:
    if progress.failure:
        runs.update_status(run_id, state="failed", message=progress.failure,
                           finished=time.time(), eta_s=None)  # fmt: skip
        return 1
    if progress.stopping:
        part = " (part of it)" if progress.partial else ""
        runs.update_status(
            run_id, state="stopped", finished=time.time(), eta_s=None,
            message=f"Stopped after epoch {progress.epoch}{part}; resume to continue.",
        )  # fmt: skip
        return 0
    runs.update_status(run_id, message="Evaluating on the test images.", eta_s=None)
    evaluation = _evaluate(run_id, model, data, progress.epoch)
    save_model_atomic(model, runs.run_paths(run_id).model)
    runs.update_status(
        run_id, state="finished", finished=time.time(),
        message=f"Finished: test accuracy {evaluation.get('accuracy', float('nan')):.2%}.",
    )  # fmt: skip
    return 0


def train_run(run_id: str) -> int:
    """Trains a run from scratch, or resumes it after its newest intact checkpoint.

    Resuming drops the metrics of any epoch after that checkpoint first, so the history
    continues without a gap or a duplicate. The caller should hold the run's worker lock.

    Args:
        run_id: a run created by ``runs.create_run``.

    Returns:
        The worker's exit code: 0 when finished or stopped, 1 when failed. Every outcome
        is also written to status.json; a failure's traceback goes to stderr (worker.log).
    """
    runs.update_status(run_id, state="running", pid=os.getpid(), started=time.time(),
                       finished=None, message="Loading the data and the model.")  # fmt: skip
    policy = keras.mixed_precision.dtype_policy()
    try:
        cfg = runs.read_config(run_id)
        configure_threads(cfg.threads)
        if cfg.mixed_precision:
            keras.mixed_precision.set_dtype_policy(MIXED_POLICY)
        keras.utils.set_random_seed(cfg.seed)
        data = datasets.load_dataset_version(
            cfg.dataset, cfg.dataset_fingerprint, source=cfg.dataset_source
        )
        cfg = runs.validate_config(cfg, train_size=len(data.x_train), input_shape=data.input_shape)
        return _fit(run_id, cfg, data)
    except Exception as exc:  # any failure must reach status.json, never die silently
        traceback.print_exc()
        runs.update_status(run_id, state="failed", message=_failure_message(exc),
                           finished=time.time(), eta_s=None)  # fmt: skip
        return 1
    finally:
        keras.mixed_precision.set_dtype_policy(policy)  # matters when called in-process
