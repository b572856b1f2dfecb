"""A stop loses no training: a resume continues the stopped epoch at the next batch, with
the same images in the same order, the same augmentation and the optimizer's state.

The runs train in-process on the tiny dataset of tests/runs/test_runs.py (72 training images,
batches of 16: 5 per epoch). A stop is asked deterministically, right after a chosen batch,
by a wrapper around ProgressTracker that raises the stop flag the way the Stop button does.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from cnn_core import catalog
from cnn_core.runs import (
    callbacks,
    checkpointing,
    history,
    metrics_log,
    pipeline,
    run_config,
    run_folder,
    store,
    training,
)
from cnn_core.runs import status as run_status
from tests.factories import TINY_LAYERS, tiny_config

EPOCHS = 3
BATCHES = 5  # ceil(72 / 16)
# Augmentation and dropout too: both streams must go on as without the stop.
LAYERS = [*TINY_LAYERS[:3], {"type": "dropout", "rate": 0.25}, *TINY_LAYERS[3:]]
SETTINGS = dict(epochs=EPOCHS, layers=LAYERS, augment_shift=0.1, augment_rotate=10.0,
                metrics_every_batches=1, threads=1, seed=11)  # fmt: skip


@pytest.fixture
def deterministic():
    """Bit-reproducible TensorFlow ops, so two runs with the same seed can be compared."""
    tf.config.experimental.enable_op_determinism()
    yield
    tf_config.disable_op_determinism()


ORIGINAL_BATCH_END = callbacks.ProgressTracker.on_train_batch_end


class StopAt:
    """Records every (epoch, batch) trained and raises the stop flag after the chosen ones."""

    def __init__(self, monkeypatch, run_id: str, stops: set[tuple[int, int]]):
        self.trained: list[tuple[int, int]] = []
        original = ORIGINAL_BATCH_END  # not a wrapper of an earlier StopAt

        def on_train_batch_end(tracker, batch, logs=None):
            original(tracker, batch, logs)
            p = tracker.progress
            self.trained.append((p.epoch, p.batches))
            if (p.epoch, p.batches) in stops:
                run_status.request_stop(run_id)

        monkeypatch.setattr(callbacks.ProgressTracker, "on_train_batch_end", on_train_batch_end)


def train_until_finished(run_id: str) -> int:
    """Trains, and resumes after each stop as the Resume button does; returns the stops."""
    stops = 0
    while True:
        assert training.train_run(run_id) == 0, run_status.read_status(run_id).message
        status = run_status.read_status(run_id)
        if status.state == "finished":
            return stops
        assert status.state == "stopped", status.message
        stops += 1
        run_status.clear_stop_request(run_id)


def new_run(**changes) -> str:
    return store.create_run(run_config.validate_config(tiny_config(**{**SETTINGS, **changes})))


def records(run_id: str, kind: str) -> list[dict]:
    return [r for r in metrics_log.read_metrics(run_id)[0] if r["kind"] == kind]


def final_model(run_id: str) -> keras.Model:
    return keras.saving.load_model(run_folder.run_paths(run_id).model)


def test_stops_at_random_batches_lose_no_training(tiny, monkeypatch, deterministic):
    steps = np.random.default_rng(14).choice(np.arange(1, EPOCHS * BATCHES), 3, replace=False)
    stops = {(int(s - 1) // BATCHES + 1, int(s - 1) % BATCHES + 1) for s in steps}
    assert any(b < BATCHES for _, b in stops), stops  # at least one lands mid-epoch

    clean = new_run(name="uninterrupted")
    clean_batches = StopAt(monkeypatch, clean, set())
    assert train_until_finished(clean) == 0
    stopped = new_run(name="stopped")
    stopped_batches = StopAt(monkeypatch, stopped, stops)
    assert train_until_finished(stopped) == len(stops)

    every_batch = [(e, b) for e in range(1, EPOCHS + 1) for b in range(1, BATCHES + 1)]
    assert clean_batches.trained == every_batch
    assert stopped_batches.trained == every_batch  # each batch once, in order, none skipped
    model = final_model(stopped)
    assert int(model.optimizer.iterations) == EPOCHS * BATCHES
    # One complete epoch record per epoch, each with its validation.
    epochs = records(stopped, "epoch")
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert all(r["partial"] is False and r["val_accuracy"] is not None for r in epochs)
    assert [(r["epoch"], r["batch"]) for r in records(stopped, "batch")] == every_batch
    curve = history.overlay_frame({"stopped": metrics_log.read_metrics(stopped)[0]}, "accuracy")
    assert curve.index.tolist() == [1, 2, 3] and not curve.isna().any().any()  # no gap
    # The same training as without the stops: same batch losses, same epoch means (the two
    # parts of a stopped epoch weighted by their images), same final weights.
    for kind, keys in (("batch", ("loss", "accuracy")), ("epoch", callbacks.METRIC_KEYS)):
        for a, b in zip(records(clean, kind), records(stopped, kind), strict=True):
            for key in keys:
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (kind, key, a, b)
    for key in ("val_loss", "val_accuracy"):
        assert [r[key] for r in epochs] == pytest.approx([r[key] for r in records(clean, "epoch")])
    for a, b in zip(final_model(clean).get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert store.read_evaluation(stopped)["accuracy"] == store.read_evaluation(clean)["accuracy"]


def test_a_stop_mid_epoch_saves_where_it_was_and_resume_goes_on_from_there(tiny, monkeypatch):
    run_id = new_run(epochs=2)
    StopAt(monkeypatch, run_id, {(2, 3)})
    assert training.train_run(run_id) == 0
    status = run_status.read_status(run_id)
    assert status.state == "stopped"
    assert status.message == "Stopped at batch 3 of 5 in epoch 2; Resume continues with batch 4."
    # No record for the stopped part of epoch 2: it gets one when it is complete.
    assert [r["epoch"] for r in records(run_id, "epoch")] == [1]
    newest = checkpointing.latest_good_checkpoint(run_id)
    assert (newest.position, newest.path.name) == ((1, 3), "epoch-0002-batch-0003.keras")
    assert int(keras.saving.load_model(newest.path).optimizer.iterations) == BATCHES + 3
    state = checkpointing.checkpoint_state(newest.path)
    assert (state["epoch"], state["batch"]) == (2, 3) and state["seconds"] > 0
    # The running sums of the part trained: the batch windows' means times their images.
    part = [r for r in records(run_id, "batch") if r["epoch"] == 2]
    assert state["sums"]["loss"] == pytest.approx(16 * sum(r["loss"] for r in part), rel=1e-5)

    run_status.clear_stop_request(run_id)
    assert training.train_run(run_id) == 0
    assert run_status.read_status(run_id).state == "finished"
    assert [r["epoch"] for r in records(run_id, "epoch")] == [1, 2]
    assert run_status.read_status(run_id).history_rewrites == 0  # nothing was dropped
    # Once epoch 2 is complete its mid-epoch checkpoint is of no use: it is gone.
    assert [c.position for c in checkpointing.resume_points(run_id)] == [(0, 0), (1, 0), (2, 0)]


def test_a_resumed_epoch_record_combines_both_parts(tiny, monkeypatch):
    run_id = new_run(epochs=1)
    StopAt(monkeypatch, run_id, {(1, 2)})
    train_until_finished(run_id)
    lines = records(run_id, "batch")
    images = [16, 16, 16, 16, 8]  # 72 images in batches of 16
    (epoch,) = records(run_id, "epoch")
    for key in callbacks.METRIC_KEYS:
        mean = sum(r[key] * n for r, n in zip(lines, images, strict=True)) / 72
        assert epoch[key] == pytest.approx(mean, rel=1e-5)
    assert epoch["batches"] == BATCHES and epoch["seconds"] > 0


def test_a_stop_at_an_epoch_end_keeps_the_epoch_and_resume_starts_the_next(tiny, monkeypatch):
    run_id = new_run(epochs=2)
    recorder = StopAt(monkeypatch, run_id, {(1, BATCHES)})
    assert training.train_run(run_id) == 0
    assert run_status.read_status(run_id).message == "Stopped after epoch 1; resume to continue."
    assert [r["epoch"] for r in records(run_id, "epoch")] == [1]
    assert records(run_id, "epoch")[0]["val_loss"] is not None
    assert checkpointing.latest_good_checkpoint(run_id).position == (1, 0)
    train_until_finished(run_id)
    assert recorder.trained == [(e, b) for e in (1, 2) for b in range(1, BATCHES + 1)]


def test_the_untrained_network_is_kept_as_epoch_0_for_replay(tiny):
    run_id = new_run(epochs=2)
    train_until_finished(run_id)
    assert catalog.checkpoint_epochs(catalog.RUN_PREFIX + run_id) == [0, 1, 2]
    first = keras.saving.load_model(run_folder.run_paths(run_id).checkpoint(0))
    assert int(first.optimizer.iterations) == 0
    # The same weights as a fresh network built with the run's random seed.
    keras.utils.set_random_seed(SETTINGS["seed"])
    from cnn_core.models import zoo

    fresh = zoo.build_model("custom", (12, 12, 1), 3, LAYERS)
    for a, b in zip(fresh.get_weights(), first.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert checkpointing.latest_good_checkpoint(run_id).position == (2, 0)


def test_a_batch_is_augmented_the_same_from_the_start_or_after_a_resume():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 12, 12, 1)).astype(np.uint8)
    y = np.arange(40) % 3
    cfg = run_config.RunConfig(augment_shift=0.2, augment_rotate=20.0, augment_zoom=0.2,
                         augment_flip=True)  # fmt: skip

    def batches(epoch: int, first_batch: int = 0, augment=True):
        layers = pipeline.make_augmenter(cfg, ink_on_dark=True) if augment else None
        ds = pipeline.epoch_dataset(x, y, 3, 8, seed=5, epoch=epoch, first_batch=first_batch,
                                    augment=layers)  # fmt: skip
        return [(i.numpy(), lab.numpy()) for i, lab in ds]

    full = batches(2)
    assert len(full) == 5
    resumed = batches(2, first_batch=3)  # new layers, as in a new worker process
    assert len(resumed) == 2
    for (a, la), (b, lb) in zip(full[3:], resumed, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    plain = batches(2, augment=False)
    assert not np.allclose(full[3][0], plain[3][0])  # augmented, not passed through
    np.testing.assert_array_equal(full[3][1], plain[3][1])  # the same images, in order
    other_epoch = batches(3)
    assert not np.array_equal(full[0][1], other_epoch[0][1])  # each epoch its own order
    # Every image once per epoch: the order is a permutation.
    order = pipeline.epoch_order(40, 5, 2)
    assert sorted(order) == list(range(40))
    np.testing.assert_array_equal(plain[0][1].argmax(1), y[order[:8]])


def test_a_killed_worker_resumes_from_the_mid_epoch_checkpoint_and_drops_what_followed(
    tiny, monkeypatch
):
    run_id = new_run(epochs=2)
    recorder = StopAt(monkeypatch, run_id, {(1, 2)})
    assert training.train_run(run_id) == 0
    # As a worker killed after resuming leaves it: batches 3 and 4 logged, no checkpoint.
    with open(run_folder.run_paths(run_id).metrics, "ab") as f:
        for b in (3, 4):
            metrics_log.append_metrics(f, {"kind": "batch", "epoch": 1, "batch": b, "loss": 99.0})
    run_status.clear_stop_request(run_id)
    run_status.update_status(run_id, state="running", pid=1)
    assert run_status.read_status(run_id).state == "interrupted"

    assert training.train_run(run_id) == 0
    assert run_status.read_status(run_id).state == "finished"
    every_batch = [(e, b) for e in (1, 2) for b in range(1, BATCHES + 1)]
    assert recorder.trained == every_batch
    lines = records(run_id, "batch")
    assert [(r["epoch"], r["batch"]) for r in lines] == every_batch
    assert 99.0 not in [r["loss"] for r in lines]  # the killed worker's lines were dropped
    assert run_status.read_status(run_id).history_rewrites == 1
