"""The training loop inside a worker process: data pipeline, model, and the callbacks that
write the run directory (metrics, status, checkpoints, stop flag).

A stop loses no training: the order of an epoch's images is a pure function of (random seed,
epoch) and each batch's augmentation one of (seed, epoch, batch), so a stop at batch k saves
a mid-epoch checkpoint and a resume trains batches k+1... of the same epoch as if nothing
had happened. Each epoch is one ``model.fit`` call: Keras keeps the traced train step, so
this and the epoch's pipeline cost about 25 ms per epoch (a tiny model, 32 batches: 278
against 254 ms per epoch with one fit for all epochs).

``train_run(run_id)`` trains a run from scratch or resumes it from its newest intact
checkpoint, and always leaves a final status: finished, stopped or failed (with a message
for people and the traceback in worker.log). Callers hold the run's worker lock (see
``jobs.run_worker``); this module is imported only once a worker has its turn, because
importing TensorFlow costs hundreds of megabytes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import traceback
import zipfile
from dataclasses import dataclass, field
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


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the n training images in one epoch (from 1).

    A pure function of the run's random seed and the epoch, so a resumed epoch trains the
    batches it had left in the order it would have without the stop.
    """
    return np.random.default_rng([seed, epoch]).permutation(n)


def make_augmenter(cfg: runs.RunConfig, ink_on_dark: bool) -> list[keras.Layer]:
    """Keras preprocessing layers for the tf.data map (kept out of the model, so the saved
    model stays clean for inspection). Their randomness comes from ``make_dataset``."""
    # Ink-on-dark images (MNIST) are padded with black; photos reflect their own border.
    fill = "constant" if ink_on_dark else "reflect"
    layers: list[keras.Layer] = []
    if cfg.augment_shift:
        layers.append(
            keras.layers.RandomTranslation(
                cfg.augment_shift, cfg.augment_shift, fill_mode=fill, dtype="float32"
            )
        )
    if cfg.augment_rotate:
        layers.append(
            keras.layers.RandomRotation(cfg.augment_rotate / 360.0, fill_mode=fill, dtype="float32")
        )
    if cfg.augment_zoom:
        layers.append(
            keras.layers.RandomZoom(
                cfg.augment_zoom, cfg.augment_zoom, fill_mode=fill, dtype="float32"
            )
        )
    if cfg.augment_flip:
        layers.append(keras.layers.RandomFlip("horizontal", dtype="float32"))
    return layers  # fmt: skip


class _StatelessSeeds(keras.random.SeedGenerator):
    """Gives each random draw of a preprocessing layer a seed folded from one fixed seed.

    A layer's own SeedGenerator keeps a state variable, so its draws depend on how many
    batches came before it (and, in a parallel map, in which order); these depend on the
    seed given alone, which ``make_dataset`` derives from (seed, epoch, batch).
    """

    def __init__(self, seed: tf.Tensor):  # no super().__init__(): it would make a variable
        self._seed = seed
        self._draws = 0

    def next(self, ordered: bool = True) -> tf.Tensor:
        self._draws += 1  # counted while the map is traced: each draw gets its own seed
        return tf.random.experimental.stateless_fold_in(self._seed, self._draws)


def augment_batch(images: tf.Tensor, augment: list[keras.Layer], seed: tf.Tensor) -> tf.Tensor:
    """Applies the layers to a batch with transformations drawn from ``seed`` (shape [2])
    only, so the same seed always gives the same augmented batch."""
    for i, layer in enumerate(augment):
        seeds = _StatelessSeeds(tf.random.experimental.stateless_fold_in(seed, i))
        transformation = layer.get_random_transformation(images, training=True, seed=seeds)
        images = layer.transform_images(images, transformation, training=True)
    return images


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    augment: list[keras.Layer] | None = None,
    seed: int = 0,
    epoch: int = 0,
    first_batch: int = 0,
) -> tf.data.Dataset:
    """uint8 images and int labels -> batches of float32 images in [0, 1] and one-hot labels.

    One-hot labels let the same compiled model report MSE next to cross-entropy (as the
    report *Image Classification Using Convolutional Neural Network CNN* does). The map
    runs on whole batches, which costs one op call per batch, not per image. Batch b of
    the result is batch ``first_batch + b`` of the epoch: its augmentation is drawn from
    (seed, epoch, first_batch + b) alone.

    Args:
        shuffle_seed: shuffle with tf.data (the benchmarks' pipeline); training orders each
            epoch with ``epoch_order`` instead, which a resume can replay.
    """
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    epoch_seed = tf.constant([seed, epoch], tf.int64)

    def prepare(index, batch):
        images, labels = batch
        images = tf.cast(images, tf.float32) / 255.0
        if augment:
            batch_seed = tf.random.experimental.stateless_fold_in(epoch_seed, index)
            images = augment_batch(images, augment, batch_seed)
        return images, tf.one_hot(labels, num_classes)

    ds = ds.batch(batch_size).enumerate(start=first_batch)
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)  # deterministic order by default
    return ds.prefetch(tf.data.AUTOTUNE)


def epoch_dataset(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    first_batch: int = 0,
    augment: list[keras.Layer] | None = None,
) -> tf.data.Dataset:
    """The training batches of one epoch (from 1), from batch ``first_batch`` (0-based: the
    number already trained) on; the same batches, augmented the same way, however reached."""
    order = epoch_order(len(x), seed, epoch)[first_batch * batch_size :]
    return make_dataset(x[order], y[order], num_classes, batch_size, augment=augment,
                        seed=seed, epoch=epoch, first_batch=first_batch)  # fmt: skip


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


def load_checkpoint(run_id: str) -> tuple[keras.Model, runs.Checkpoint] | None:
    """The newest checkpoint that loads (epoch-end or mid-epoch), with its optimizer state.

    Damaged checkpoints are renamed ``*.damaged`` (kept for inspection, no longer listed),
    and the one before is tried. Only our own checkpoint files are ever loaded here.
    """
    for ckpt in reversed(runs.resume_points(run_id)):
        path = ckpt.path
        if runs.checkpoint_ok(path):
            try:
                return keras.saving.load_model(path), ckpt
            except Exception as exc:  # any failure to load means the same: use an older one
                print(f"checkpoint {path.name} does not load ({exc}); trying the one before",
                      file=sys.stderr)  # fmt: skip
        else:
            print(f"checkpoint {path.name} is damaged; trying the one before", file=sys.stderr)
        os.replace(path, path.with_name(path.name + ".damaged"))
    return None


def _seed_states(model: keras.Model) -> list:
    """The state variables of the model's own random generators (dropout masks)."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


def rng_states(model: keras.Model) -> list[list[int]]:
    """The states of the model's random generators, which model.save leaves out."""
    return [[int(n) for n in np.asarray(v.numpy()).ravel()] for v in _seed_states(model)]


def restore_rng_states(model: keras.Model, states: list[list[int]] | None) -> None:
    """Puts back saved generator states, so dropout goes on as without the interruption."""
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
                z.writestr(runs.RESUME_STATE_MEMBER, json.dumps(state, allow_nan=False))
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
        save_model_atomic(model, runs.run_paths(run_id).checkpoint(epoch, batch), state)
    except OSError as exc:
        if exc.errno not in runs.FULL_DISK_ERRNOS:
            raise
        # The previous checkpoint is intact: say where a resume will pick up.
        kept = runs.latest_good_checkpoint(run_id)
        resume = _resume_point_words(kept.position) if kept else "from the first epoch"
        lost = (f"the checkpoint at batch {batch} of epoch {epoch + 1}" if batch
                else f"the checkpoint of epoch {epoch}")  # fmt: skip
        raise DiskFullError(_disk_full_message(exc, lost, resume)) from exc
    runs.remove_mid_epoch_checkpoints(run_id, before=(epoch, batch))


def _resume_point_words(position: tuple[int, int]) -> str:
    epoch, batch = position
    return f"with batch {batch + 1} of epoch {epoch + 1}" if batch else f"after epoch {epoch}"


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
        self.path = runs.run_paths(run_id).metrics
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
        runs.append_metrics(self.file, record)
        p.seconds += record["seconds"]
        val_acc = record["val_accuracy"]
        if val_acc is not None and (p.best_val_accuracy is None or val_acc > p.best_val_accuracy):
            p.best_val_accuracy = val_acc
        runs.update_status(self.run_id, epoch=p.epoch, batch=p.batches, seconds=p.seconds,
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
        runs.update_status(self.run_id, last_checkpoint=p.epoch)


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


def _prepare_model(
    run_id: str, cfg: runs.RunConfig, data: datasets.Dataset, steps: int
) -> tuple[keras.Model, runs.Checkpoint | None]:
    """The newest loadable checkpoint and its RNG states, or a fresh compiled model (None)."""
    _remove_stale_temps(run_id)
    with _strategy_scope(cfg):
        loaded = load_checkpoint(run_id)
        if loaded is not None:
            model, ckpt = loaded
            batchnorm.use_fused_batch_norm(model)  # a loaded model is plain Keras
            restore_rng_states(model, runs.checkpoint_state(ckpt.path).get("rng_states"))
            return model, ckpt
        model = models.build_model(cfg.model, data.input_shape, data.num_classes, cfg.layers)
        compile_model(model, make_optimizer(cfg, steps), cfg.label_smoothing)
        # Built now (as fit would at its first step), so the epoch-0 checkpoint holds the
        # optimizer's slots and a resume from it loads them without a warning.
        model.optimizer.build(model.trainable_variables)
        return model, None


def _resume_state(run_id: str, epoch: int, batch: int) -> tuple[float | None, float]:
    """Drops the records after the resume point; returns (best val accuracy, seconds) kept."""
    kept = runs.epoch_records(runs.truncate_metrics(run_id, epoch, batch))
    vals = [r["val_accuracy"] for r in kept if r.get("val_accuracy") is not None]
    return (max(vals) if vals else None), float(sum(r.get("seconds") or 0 for r in kept))


def _start_message(epoch: int, batch: int) -> str:
    if batch:
        return f"Resumed at batch {batch + 1} of epoch {epoch + 1}."
    return f"Resumed after epoch {epoch}." if epoch else "Training."


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
        EpochSummaries(runs.run_paths(run_id).tensorboard, progress),
    ]


def _fit(run_id: str, cfg: runs.RunConfig, data: datasets.Dataset) -> int:
    x_tr, y_tr, x_val, y_val = split_validation(
        data.x_train, data.y_train, cfg.validation_split, cfg.seed
    )
    batches_per_epoch = math.ceil(len(x_tr) / cfg.batch_size)
    model, ckpt = _prepare_model(run_id, cfg, data, cfg.epochs * batches_per_epoch)
    done, first_batch = ckpt.position if ckpt else (0, 0)
    state = runs.checkpoint_state(ckpt.path) if ckpt and first_batch else {}
    best, seconds = _resume_state(run_id, done, first_batch)
    progress = Progress(batches_per_epoch, len(x_tr), cfg.batch_size, cfg.epochs,
                        epoch=done, best_val_accuracy=best, seconds=seconds)  # fmt: skip
    runs.update_status(
        run_id, epoch=done + 1 if first_batch else done, batch=first_batch,
        batches_per_epoch=batches_per_epoch, params=int(model.count_params()),
        last_checkpoint=done or None, best_val_accuracy=best, seconds=seconds,
        message=_start_message(done, first_batch),
    )  # fmt: skip
    if runs.stop_requested(run_id):
        runs.update_status(run_id, state="stopped", message="Stopped before training started.",
                           finished=time.time())  # fmt: skip
        return 0
    if ckpt is None:  # the untrained network, for replay ("filters start as noise")
        save_checkpoint(run_id, model, 0)
    augment = make_augmenter(cfg, data.ink_on_dark)
    val_ds = make_dataset(x_val, y_val, data.num_classes, EVAL_BATCH_SIZE) if len(x_val) else None
    writer = MetricsWriter(run_id, progress, cfg.metrics_every_batches)
    callbacks = _callbacks(run_id, cfg, progress, val_ds, writer)
    try:
        for epoch in range(done, cfg.epochs):  # 0-based, as Keras counts
            progress.start_part(first_batch if epoch == done else 0, state)
            train_ds = epoch_dataset(
                x_tr, y_tr, data.num_classes, cfg.batch_size, seed=cfg.seed, epoch=epoch + 1,
                first_batch=progress.first_batch, augment=augment,
            )  # fmt: skip
            model.fit(train_ds, epochs=epoch + 1, initial_epoch=epoch, verbose=0, shuffle=False,
                      callbacks=callbacks)  # fmt: skip
            if progress.stopping or progress.failure:
                break
    finally:
        for callback in callbacks:
            if hasattr(callback, "close"):
                callback.close()
    return _finish(run_id, model, data, progress)


def _finish(run_id: str, model: keras.Model, data: datasets.Dataset, progress: Progress) -> int:
    if progress.failure:
        runs.update_status(run_id, state="failed", message=progress.failure,
                           finished=time.time(), eta_s=None)  # fmt: skip
        return 1
    if progress.stopping:
        p = progress
        where = (f"at batch {p.batches} of {p.batches_per_epoch} in epoch {p.epoch}; Resume "
                 f"continues with batch {p.batches + 1}" if p.partial
                 else f"after epoch {p.epoch}; resume to continue")  # fmt: skip
        runs.update_status(run_id, state="stopped", finished=time.time(), eta_s=None,
                           message=f"Stopped {where}.")  # fmt: skip
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
