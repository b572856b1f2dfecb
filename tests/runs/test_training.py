"""The training loop, run in-process on tiny data: artefacts, NaN, damaged checkpoints,
resume with the optimizer state, and the input pipeline."""

import json
import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnn_core import settings
from cnn_core.data import versions
from cnn_core.runs import (
    checkpointing,
    metrics_log,
    pipeline,
    run_config,
    run_folder,
    store,
    training,
)
from cnn_core.runs import status as run_status
from tests.factories import tiny_config

LINEAR_LAYERS = [  # no activation to bound the weights: SGD at lr 10 overflows in 5 batches
    {"type": "dense", "units": 32, "activation": "linear"},
    {"type": "dense", "units": 32, "activation": "linear"},
]
BATCH_KEYS = {"kind", "epoch", "batch", "step", "loss", "accuracy", "mse", "images_per_s", "t"}
EPOCH_KEYS = {"kind", "epoch", "loss", "accuracy", "mse", "val_loss", "val_accuracy", "val_mse",
              "seconds", "images_per_s", "lr", "partial"}  # fmt: skip


def new_run(**changes) -> str:
    return store.create_run(run_config.validate_config(tiny_config(**changes)))


def records_of(run_id: str, kind: str) -> list[dict]:
    return [r for r in metrics_log.read_metrics(run_id)[0] if r["kind"] == kind]


def event_tags(folder) -> set[str]:
    tags = set()
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(v.tag for v in event.summary.value)
    return tags


def test_a_run_trains_to_the_end_and_leaves_its_artefacts(tiny):
    run_id = new_run(epochs=2, metrics_every_batches=2)
    assert training.train_run(run_id) == 0
    status = run_status.read_status(run_id)
    assert status.state == "finished", status.message
    assert status.last_checkpoint == 2 and status.params > 0 and status.seconds > 0
    epochs, batches = records_of(run_id, "epoch"), records_of(run_id, "batch")
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all(set(r) >= EPOCH_KEYS and r["partial"] is False for r in epochs)
    assert all(set(r) >= BATCH_KEYS for r in batches)
    # 72 training images / 16 = 5 batches; windows of 2 close at batches 2, 4 and 5.
    assert [(r["epoch"], r["batch"]) for r in batches] == [
        (e, b) for e in (1, 2) for b in (2, 4, 5)
    ]
    assert [r["step"] for r in batches] == [2, 4, 5, 7, 9, 10]
    # Each line holds its window's mean: weighted by the window's images, they make the
    # epoch's mean (windows of 32, 32 and 8 images).
    for epoch in epochs:
        lines = [r for r in batches if r["epoch"] == epoch["epoch"]]
        mean = sum(r["loss"] * n for r, n in zip(lines, (32, 32, 8), strict=True)) / 72
        assert mean == pytest.approx(epoch["loss"], rel=1e-4)
    assert all(0 <= r["accuracy"] <= 1 and math.isfinite(r["loss"]) for r in batches)
    evaluation = store.read_evaluation(run_id)
    assert {"loss", "accuracy", "mse", "test_images"} <= set(evaluation)
    assert evaluation["test_images"] == 48
    assert [e for e, _ in checkpointing.checkpoints(run_id)] == [
        0,
        1,
        2,
    ]  # 0: the untrained network
    model = keras.saving.load_model(run_folder.run_paths(run_id).model)
    assert model.layers[-1].name == "predictions"
    tb = run_folder.run_paths(run_id).tensorboard
    assert {"epoch_loss", "epoch_accuracy", "epoch_mse", "epoch_learning_rate"} <= event_tags(
        tb / "train"
    )
    assert {"epoch_loss", "epoch_accuracy"} <= event_tags(tb / "validation")


def test_a_nan_loss_fails_the_run_with_advice(tiny):
    run_id = new_run(layers=LINEAR_LAYERS, optimizer="sgd", learning_rate=10.0, momentum=0.9,
                     batch_size=4, epochs=3)  # fmt: skip
    assert training.train_run(run_id) == 1
    status = run_status.read_status(run_id)
    assert status.state == "failed"
    assert re.match(
        r"The loss became (NaN|infinite) at epoch 1, batch \d+\. The learning rate "
        r"10 is probably too high: try 1 or lower\.",
        status.message,
    ), status.message
    assert [e for e, _ in checkpointing.checkpoints(run_id)] == [0]  # NaN weights are never saved
    assert records_of(run_id, "epoch") == []


def test_a_failure_reaches_the_status(tiny):
    run_id = new_run()
    (settings.lab_home() / "datasets" / "tiny.npz").unlink()
    assert training.train_run(run_id) == 1
    status = run_status.read_status(run_id)
    assert status.state == "failed" and "No saved dataset named 'tiny'" in status.message


def test_a_stop_asked_before_the_start_trains_nothing(tiny):
    run_id = new_run()
    run_status.request_stop(run_id)
    assert training.train_run(run_id) == 0
    assert run_status.read_status(run_id).state == "stopped"
    assert metrics_log.read_metrics(run_id) == ([], 0)


def test_resume_skips_a_damaged_checkpoint_and_keeps_the_optimizer_state(tiny):
    run_id = new_run(epochs=3, lr_schedule="cosine", learning_rate=0.01)
    assert training.train_run(run_id) == 0
    p = run_folder.run_paths(run_id)
    steps_per_epoch = run_status.read_status(run_id).batches_per_epoch
    # Pretend the worker died during epoch 3 after writing a truncated checkpoint 2.
    p.checkpoint(3).unlink()
    p.model.unlink()
    p.evaluation.unlink()
    data = p.checkpoint(2).read_bytes()
    p.checkpoint(2).write_bytes(data[: len(data) // 3])
    stale = p.checkpoints / ".epoch-0003.999.tmp.keras"  # killed while saving epoch 3
    stale.write_bytes(data[:100])
    run_status.update_status(run_id, state="running", pid=1)
    assert run_status.read_status(run_id).state == "interrupted"
    assert checkpointing.latest_good_checkpoint(run_id)[0] == 1

    assert training.train_run(run_id) == 0
    assert run_status.read_status(run_id).state == "finished"
    assert [r["epoch"] for r in records_of(run_id, "epoch")] == [1, 2, 3]
    batch_keys = [(r["epoch"], r["batch"]) for r in records_of(run_id, "batch")]
    assert len(batch_keys) == len(set(batch_keys))
    assert run_status.read_status(run_id).history_rewrites == 1
    assert (p.checkpoints / "epoch-0002.keras.damaged").exists() and not stale.exists()
    model = keras.saving.load_model(p.model)
    # Continued from checkpoint 1's optimizer: one epoch's steps before, two after...
    assert int(model.optimizer.iterations) == 3 * steps_per_epoch
    # ...so the cosine schedule went on where it was, reaching 0 at the last step.
    expected = [0.005 * (1 + math.cos(math.pi * e / 3)) for e in (1, 2, 3)]
    lrs = [r["lr"] for r in records_of(run_id, "epoch")]
    assert lrs == pytest.approx(expected, abs=1e-6)


# ---------------------------------------------------------------- the input pipeline


def test_split_validation_is_seeded_and_disjoint():
    x = np.arange(100).reshape(100, 1, 1, 1).astype(np.uint8)
    y = np.arange(100)
    a = pipeline.split_validation(x, y, 0.2, seed=3)
    b = pipeline.split_validation(x, y, 0.2, seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert len(a[2]) == 20 and not set(a[1]) & set(a[3])
    assert set(a[1]) | set(a[3]) == set(range(100))


def test_make_dataset_scales_one_hots_and_augments():
    x = np.full((10, 12, 12, 1), 255, np.uint8)
    y = np.arange(10) % 3
    cfg = run_config.RunConfig(augment_shift=0.2, augment_rotate=15.0, augment_flip=True)
    augment = pipeline.make_augmenter(cfg, ink_on_dark=True)
    assert len(augment) == 3
    ds = pipeline.epoch_dataset(x, y, 3, 4, seed=1, epoch=1, augment=augment)
    images, labels = next(iter(ds))
    assert images.shape == (4, 12, 12, 1) and images.dtype == tf.float32
    assert float(tf.reduce_max(images)) <= 1.0 and float(tf.reduce_min(images)) >= 0.0
    assert float(tf.reduce_min(images)) < 1.0  # shifted in black borders
    assert labels.shape == (4, 3) and np.allclose(tf.reduce_sum(labels, axis=1), 1.0)


def test_zoom_changes_the_size_of_the_ink():
    x = np.zeros((8, 12, 12, 1), np.uint8)
    x[:, 4:8, 4:8] = 255  # a white square on black, like a digit
    cfg = run_config.RunConfig(augment_zoom=0.3)
    augment = pipeline.make_augmenter(cfg, ink_on_dark=True)
    assert [type(layer) for layer in augment] == [keras.layers.RandomZoom]
    images, _ = next(iter(pipeline.make_dataset(x, np.zeros(8, int), 3, 8, augment=augment)))
    ink = tf.reduce_sum(images, axis=(1, 2, 3)).numpy()
    assert np.ptp(ink) > 1.0 and not np.allclose(ink, 16.0, atol=0.5)


def test_label_smoothing_is_in_the_loss_of_the_saved_model(tiny):
    run_id = new_run(epochs=1, label_smoothing=0.2)
    assert training.train_run(run_id) == 0, run_status.read_status(run_id).message
    model = keras.saving.load_model(run_folder.run_paths(run_id).model)
    certain = tf.constant([[1.0, 0.0, 0.0]])
    # Smoothed targets are 0.8667 / 0.0667 / 0.0667: even a certain, right answer costs.
    assert float(model.loss(certain, certain)) > 1.0
    plain = keras.losses.CategoricalCrossentropy()
    assert float(plain(certain, certain)) < 1e-3


def test_json_metrics_never_hold_nan(tiny):
    run_id = new_run()
    with open(run_folder.run_paths(run_id).metrics, "ab") as f:
        metrics_log.append_metrics(f, {"kind": "batch", "epoch": 1, "loss": float("inf")})
    line = run_folder.run_paths(run_id).metrics.read_text()
    assert json.loads(line)["loss"] is None and "Infinity" not in line


def test_mixed_precision_with_augmentation_trains_and_leaves_the_policy(tiny):
    run_id = new_run(epochs=1, mixed_precision=True, augment_shift=0.1, augment_rotate=10.0,
                     augment_flip=True)  # fmt: skip
    assert training.train_run(run_id) == 0, run_status.read_status(run_id).message
    model = keras.saving.load_model(run_folder.run_paths(run_id).model)
    assert model.get_layer("conv1").dtype_policy.name == "mixed_bfloat16"
    assert model.layers[-1].dtype_policy.name == "float32"  # softmax stays precise
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored for this process


def test_adamw_shrinks_each_weight_by_learning_rate_times_its_decay():
    cfg = run_config.RunConfig(optimizer="adamw", learning_rate=0.01)
    optimizer = training.make_optimizer(cfg, total_steps=10)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    weight = keras.Variable(np.full((3,), 2.0, dtype="float32"))
    optimizer.apply_gradients([(keras.ops.zeros((3,)), weight)])
    # A zero gradient moves Adam by nothing: what is left is the decoupled decay alone.
    expected = 2.0 * (1 - 0.01 * training.ADAMW_WEIGHT_DECAY)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(weight), expected, rtol=1e-6)


def test_a_run_trained_with_flips_is_scored_on_each_image_and_its_mirror(tiny):
    run_id = new_run(epochs=1, augment_flip=True)
    assert training.train_run(run_id) == 0
    evaluation = store.read_evaluation(run_id)
    assert evaluation["test_time_flips"] is True
    model = keras.saving.load_model(run_folder.run_paths(run_id).model, compile=False)
    cfg = store.read_config(run_id)
    data = versions.load_dataset_version(cfg.dataset, cfg.dataset_fingerprint)
    probs = (model.predict(data.x_test / 255, verbose=0) +
             model.predict(data.x_test[:, :, ::-1] / 255, verbose=0)) / 2  # fmt: skip
    assert evaluation["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == data.y_test))
    single = model.predict(data.x_test / 255, verbose=0).argmax(1)
    assert evaluation["single_view_accuracy"] == pytest.approx(np.mean(single == data.y_test))
    assert "test_time_flips" not in store.read_evaluation(train_plain_run())


def train_plain_run() -> str:
    run_id = new_run(epochs=1)
    assert training.train_run(run_id) == 0
    return run_id


def test_nesterov_is_sgd_with_nesterov_momentum_and_a_decoupled_decay():
    cfg = run_config.RunConfig(optimizer="nesterov", learning_rate=0.2, momentum=0.9)
    optimizer = training.make_optimizer(cfg, total_steps=10)
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.nesterov
    weight = keras.Variable(np.full((3,), 2.0, dtype="float32"))
    optimizer.apply_gradients([(keras.ops.zeros((3,)), weight)])
    # A zero gradient leaves the momentum at zero: what is left is the decay alone.
    expected = 2.0 * (1 - 0.2 * training.NESTEROV_WEIGHT_DECAY)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(weight), expected, rtol=1e-6)
    # Then a gradient of 1, by hand in Keras' form: the velocity becomes
    # momentum * velocity - lr * g, and the weight moves by momentum * velocity - lr * g,
    # after the decay has shrunk it.
    optimizer = training.make_optimizer(cfg, total_steps=10)
    weight = keras.Variable(np.zeros((1,), dtype="float32"))
    steps = []
    for _ in range(2):
        before = float(keras.ops.convert_to_numpy(weight)[0])
        optimizer.apply_gradients([(keras.ops.ones((1,)), weight)])
        decayed = before * (1 - 0.2 * training.NESTEROV_WEIGHT_DECAY)
        steps.append(float(keras.ops.convert_to_numpy(weight)[0]) - decayed)
    velocity_1 = -0.2 * 1.0
    np.testing.assert_allclose(steps[0], 0.9 * velocity_1 - 0.2, rtol=1e-5)
    velocity_2 = 0.9 * velocity_1 - 0.2
    np.testing.assert_allclose(steps[1], 0.9 * velocity_2 - 0.2, rtol=1e-5)


def test_warmup_cosine_climbs_over_the_first_fifth_then_decays_to_zero():
    cfg = run_config.RunConfig(lr_schedule="warmup_cosine", learning_rate=0.5)
    schedule = training.learning_rate_schedule(cfg, total_steps=100)

    def rate(step):
        return float(keras.ops.convert_to_numpy(schedule(step)))

    # By hand: 0.1 at the start, linear to 0.5 at step 20, then 0.5 * (1 + cos(pi * t)) / 2
    # over the remaining 80 steps.
    assert rate(0) == pytest.approx(0.1)
    assert rate(10) == pytest.approx(0.3)
    assert rate(20) == pytest.approx(0.5)
    assert rate(60) == pytest.approx(0.25, abs=1e-6)
    assert rate(100) == pytest.approx(0.0, abs=1e-7)
    constant = training.learning_rate_schedule(run_config.RunConfig(learning_rate=0.5), 100)
    assert constant == 0.5
