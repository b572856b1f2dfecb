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
import math
import os
import time
import traceback

import keras
import tensorflow as tf

from cnn_core.data import versions
from cnn_core.data.dataset import Dataset, DatasetError
from cnn_core.models import batchnorm, input_limits, test_time, zoo
from cnn_core.runs import checkpointing, metrics_log, run_config, run_folder, store
from cnn_core.runs import status as run_status
from cnn_core.runs.callbacks import (
    METRIC_KEYS,
    DivergenceGuard,
    EpochCheckpoint,
    EpochSummaries,
    EpochValidation,
    MetricsWriter,
    Progress,
    ProgressTracker,
    StopOnRequest,
)
from cnn_core.runs.checkpointing import (
    DiskFullError,
    _disk_full_message,
    load_checkpoint,
    restore_rng_states,
    save_checkpoint,
    save_model_atomic,
)
from cnn_core.runs.pipeline import (
    configure_threads,
    epoch_dataset,
    make_augmenter,
    make_dataset,
    split_validation,
)

EVAL_BATCH_SIZE = 256  # evaluation needs no gradients, so larger batches are cheap
MIXED_POLICY = "mixed_bfloat16"


# ---------------------------------------------------------------- model


# AdamW's decoupled weight decay: each step also shrinks every weight by learning rate ×
# this. A wide CIFAR-10 network trained with plain Adam reached 94.8% on its training photos
# but 84.8% on the held-out ones (BENCHMARKS.md); the decay is the usual cure in the fast
# published recipes, and 0.05 is the common choice for AdamW on images.
ADAMW_WEIGHT_DECAY = 0.05
# The same decoupled decay for SGD with Nesterov momentum. Its learning rates are about a
# hundred times Adam's, so the decay per unit of rate is ten times smaller: at a rate of 0.2
# each step shrinks every weight by 0.1%, the strength of the usual L2 penalty of 5e-4
# carried through a momentum of 0.9 (5e-4 / (1 - 0.9) = 5e-3).
NESTEROV_WEIGHT_DECAY = 5e-3


def make_optimizer(cfg: run_config.RunConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """The optimizer of the config, with its schedule spanning all epochs."""
    lr = learning_rate_schedule(cfg, total_steps)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=ADAMW_WEIGHT_DECAY)
    if cfg.optimizer == "adamax":
        return keras.optimizers.Adamax(lr)
    if cfg.optimizer == "nesterov":
        return keras.optimizers.SGD(
            lr, momentum=cfg.momentum, nesterov=True, weight_decay=NESTEROV_WEIGHT_DECAY
        )
    return keras.optimizers.SGD(lr, momentum=cfg.momentum)


def learning_rate_schedule(
    cfg: run_config.RunConfig, total_steps: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The config's learning rate over the run's steps: a constant, or Keras' own cosine
    decay to 0 (with its linear warm-up for "warmup_cosine"), saved with the optimizer so
    that a resumed run continues the same curve."""
    total_steps = max(1, total_steps)
    if cfg.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, total_steps)
    if cfg.lr_schedule == "warmup_cosine":
        warmup = max(1, round(run_config.WARMUP_SHARE * total_steps))
        return keras.optimizers.schedules.CosineDecay(
            run_config.WARMUP_START * cfg.learning_rate,
            decay_steps=max(1, total_steps - warmup),
            warmup_target=cfg.learning_rate,
            warmup_steps=warmup,
        )
    return cfg.learning_rate


def compile_model(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, label_smoothing: float = 0.0
) -> None:
    """Compiles for training; batch norm then trains with the fused kernel (batchnorm.py).
    The loss is saved with the model, so a resumed run keeps its label smoothing."""
    batchnorm.use_fused_batch_norm(model)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy", "mse"])


# ---------------------------------------------------------------- the run


def _strategy_scope(cfg: run_config.RunConfig):
    if cfg.distribute == "mirrored":
        return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()


def _failure_message(exc: BaseException) -> str:
    if isinstance(
        exc, (run_config.ConfigError, DatasetError, input_limits.ModelError, DiskFullError)
    ):
        return str(exc)
    if isinstance(exc, (MemoryError, tf.errors.ResourceExhaustedError)):
        return "Out of memory: try a smaller batch size or a smaller model."
    if isinstance(exc, OSError) and exc.errno in store.FULL_DISK_ERRNOS:
        return _disk_full_message(exc, "a file of the run", "after the last checkpoint")
    return f"{type(exc).__name__}: {exc} (the traceback is in worker.log)."


def _remove_stale_temps(run_id: str) -> None:
    """Deletes half-written checkpoints of a worker that was killed while saving."""
    for tmp in run_folder.run_paths(run_id).checkpoints.glob(".*.tmp.keras"):
        tmp.unlink(missing_ok=True)


def _prepare_model(
    run_id: str, cfg: run_config.RunConfig, data: Dataset, steps: int
) -> tuple[keras.Model, checkpointing.Checkpoint | None]:
    """The newest loadable checkpoint and its RNG states, or a fresh compiled model (None)."""
    _remove_stale_temps(run_id)
    with _strategy_scope(cfg):
        loaded = load_checkpoint(run_id)
        if loaded is not None:
            model, ckpt = loaded
            batchnorm.use_fused_batch_norm(model)  # a loaded model is plain Keras
            restore_rng_states(model, checkpointing.checkpoint_state(ckpt.path).get("rng_states"))
            return model, ckpt
        model = zoo.build_model(cfg.model, data.input_shape, data.num_classes, cfg.layers)
        compile_model(model, make_optimizer(cfg, steps), cfg.label_smoothing)
        # Built now (as fit would at its first step), so the epoch-0 checkpoint holds the
        # optimizer's slots and a resume from it loads them without a warning.
        model.optimizer.build(model.trainable_variables)
        return model, None


def _resume_state(run_id: str, epoch: int, batch: int) -> tuple[float | None, float]:
    """Drops the records after the resume point; returns (best val accuracy, seconds) kept."""
    kept = metrics_log.epoch_records(metrics_log.truncate_metrics(run_id, epoch, batch))
    vals = [r["val_accuracy"] for r in kept if r.get("val_accuracy") is not None]
    return (max(vals) if vals else None), float(sum(r.get("seconds") or 0 for r in kept))


def _start_message(epoch: int, batch: int) -> str:
    if batch:
        return f"Resumed at batch {batch + 1} of epoch {epoch + 1}."
    return f"Resumed after epoch {epoch}." if epoch else "Training."


def _evaluate(
    run_id: str, model: keras.Model, data: Dataset, epoch: int, *, average_flips: bool
) -> dict:
    t0 = time.perf_counter()
    test_ds = make_dataset(data.x_test, data.y_test, data.num_classes, EVAL_BATCH_SIZE)
    result = model.evaluate(test_ds, verbose=0, return_dict=True)
    evaluation = {k: float(result[k]) for k in METRIC_KEYS if k in result}
    if average_flips:  # the accuracy every page and the CLI will show for this model
        evaluation.update(single_view_accuracy=evaluation.get("accuracy"),
                          accuracy=_flip_averaged_accuracy(model, test_ds),
                          test_time_flips=True)  # fmt: skip
    evaluation.update(test_images=len(data.x_test), epoch=epoch,
                      seconds=time.perf_counter() - t0, t=time.time(),
                      # what a page needs to list and use the model without loading the data
                      input_shape=list(data.input_shape), class_names=list(data.class_names),
                      ink_on_dark=data.ink_on_dark)  # fmt: skip
    run_folder.write_json_atomic(run_folder.run_paths(run_id).evaluation, evaluation)
    return evaluation


def _flip_averaged_accuracy(model: keras.Model, test_ds: tf.data.Dataset) -> float:
    """Accuracy when each test image's answer averages it and its mirror (test_time)."""
    forward = tf.function(lambda x: test_time.outputs(model, x, average_flips=True))
    correct = total = 0
    for images, one_hot in test_ds:
        right = tf.argmax(forward(images), axis=-1) == tf.argmax(one_hot, axis=-1)
        correct += int(tf.reduce_sum(tf.cast(right, tf.int32)))
        total += int(images.shape[0])
    return correct / total if total else float("nan")


def _callbacks(
    run_id: str, cfg: run_config.RunConfig, progress: Progress, val_ds, writer: MetricsWriter
) -> list:
    # Order matters: validation adds val_* to the logs that the writers after it record.
    return [
        ProgressTracker(progress),
        StopOnRequest(run_id, progress),
        DivergenceGuard(progress, cfg.learning_rate),
        EpochValidation(val_ds, progress),
        writer,
        EpochCheckpoint(run_id, progress, cfg.checkpoint_every_epochs),
        EpochSummaries(run_folder.run_paths(run_id).tensorboard, progress),
    ]


def _fit(run_id: str, cfg: run_config.RunConfig, data: Dataset) -> int:
    x_tr, y_tr, x_val, y_val = split_validation(
        data.x_train, data.y_train, cfg.validation_split, cfg.seed
    )
    batches_per_epoch = math.ceil(len(x_tr) / cfg.batch_size)
    model, ckpt = _prepare_model(run_id, cfg, data, cfg.epochs * batches_per_epoch)
    done, first_batch = ckpt.position if ckpt else (0, 0)
    state = checkpointing.checkpoint_state(ckpt.path) if ckpt and first_batch else {}
    best, seconds = _resume_state(run_id, done, first_batch)
    progress = Progress(batches_per_epoch, len(x_tr), cfg.batch_size, cfg.epochs,
                        epoch=done, best_val_accuracy=best, seconds=seconds)  # fmt: skip
    run_status.update_status(
        run_id, epoch=done + 1 if first_batch else done, batch=first_batch,
        batches_per_epoch=batches_per_epoch, params=int(model.count_params()),
        last_checkpoint=done or None, best_val_accuracy=best, seconds=seconds,
        message=_start_message(done, first_batch),
    )  # fmt: skip
    if run_status.stop_requested(run_id):
        run_status.update_status(run_id, state="stopped", finished=time.time(),
                                 message="Stopped before training started.")  # fmt: skip
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
    return _finish(run_id, model, data, progress, test_time.averages_flips(cfg.augment_flip))


def _finish(
    run_id: str, model: keras.Model, data: Dataset, progress: Progress, average_flips: bool
) -> int:
    if progress.failure:
        run_status.update_status(run_id, state="failed", message=progress.failure,
                                finished=time.time(), eta_s=None)  # fmt: skip
        return 1
    if progress.stopping:
        p = progress
        where = (f"at batch {p.batches} of {p.batches_per_epoch} in epoch {p.epoch}; Resume "
                 f"continues with batch {p.batches + 1}" if p.partial
                 else f"after epoch {p.epoch}; resume to continue")  # fmt: skip
        run_status.update_status(run_id, state="stopped", finished=time.time(), eta_s=None,
                                message=f"Stopped {where}.")  # fmt: skip
        return 0
    run_status.update_status(run_id, message="Evaluating on the test images.", eta_s=None)
    evaluation = _evaluate(run_id, model, data, progress.epoch, average_flips=average_flips)
    save_model_atomic(model, run_folder.run_paths(run_id).model)
    run_status.update_status(
        run_id, state="finished", finished=time.time(),
        message=f"Finished: test accuracy {evaluation.get('accuracy', float('nan')):.2%}.",
    )  # fmt: skip
    return 0


def train_run(run_id: str) -> int:
    """Trains a run from scratch, or resumes it after its newest intact checkpoint.

    Resuming drops the metrics of any epoch after that checkpoint first, so the history
    continues without a gap or a duplicate. The caller should hold the run's worker lock.

    Args:
        run_id: a run created by ``store.create_run``.

    Returns:
        The worker's exit code: 0 when finished or stopped, 1 when failed. Every outcome
        is also written to status.json; a failure's traceback goes to stderr (worker.log).
    """
    run_status.update_status(run_id, state="running", pid=os.getpid(), started=time.time(),
                            finished=None, message="Loading the data and the model.")  # fmt: skip
    policy = keras.mixed_precision.dtype_policy()
    try:
        cfg = store.read_config(run_id)
        configure_threads(cfg.threads)
        if cfg.mixed_precision:
            keras.mixed_precision.set_dtype_policy(MIXED_POLICY)
        keras.utils.set_random_seed(cfg.seed)
        # The config was validated before it was written (jobs.start_runs); what can have
        # changed since is the data: gone, or replaced by other images (a DatasetError).
        data = versions.load_dataset_version(
            cfg.dataset, cfg.dataset_fingerprint, source=cfg.dataset_source
        )
        return _fit(run_id, cfg, data)
    except Exception as exc:  # any failure must reach status.json, never die silently
        traceback.print_exc()
        run_status.update_status(run_id, state="failed", message=_failure_message(exc),
                                finished=time.time(), eta_s=None)  # fmt: skip
        return 1
    finally:
        keras.mixed_precision.set_dtype_policy(policy)  # matters when called in-process
