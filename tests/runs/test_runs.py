"""The run directory: config validation, safe run ids, status liveness, metrics, checkpoints.

No worker process here; tests/runs/test_jobs.py drives real ones. The tiny saved dataset
("user:tiny", 12x12x1, 3 classes) and its config come from tests/factories.py.
"""

import json
import os
import re
import time
import zipfile

import pytest

from cnn_core import settings
from cnn_core.models import input_limits, layer_lists, zoo
from cnn_core.runs import checkpointing, metrics_log, run_config, run_folder, store
from cnn_core.runs import status as run_status
from tests.factories import tiny_config

# ---------------------------------------------------------------- config


def test_config_round_trips_through_json():
    cfg = tiny_config(augment_flip=True, lr_schedule="cosine", learning_rate=0.01)
    again = run_config.RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_config_json_from_before_zoom_and_label_smoothing_still_loads():
    old = run_config.RunConfig().to_dict()
    del old["augment_zoom"], old["label_smoothing"]
    cfg = run_config.RunConfig.from_dict(old)
    assert (cfg.augment_zoom, cfg.label_smoothing) == (0.0, 0.0)


def test_config_rejects_unknown_keys():
    with pytest.raises(run_config.ConfigError, match="Unknown config key.*learning_rte"):
        run_config.RunConfig.from_dict({**run_config.RunConfig().to_dict(), "learning_rte": 0.1})


def test_validate_fills_the_models_defaults(tiny):
    cfg = run_config.validate_config(run_config.RunConfig(dataset="mnist", model="resnet"))
    info = zoo.MODELS["resnet"]
    assert (cfg.optimizer, cfg.learning_rate) == (info.optimizer, info.learning_rate)
    assert cfg.momentum == run_config.DEFAULT_MOMENTUM
    assert cfg.display_name == "resnet on mnist"


@pytest.mark.parametrize(
    ("flags", "native"),
    [("fpu avx512f amx_bf16 amx_tile", True), ("sse avx512_bf16 avx512f", True),
     ("sse avx2 fma avx512f", False), (None, False)],
)  # fmt: skip
def test_bfloat16_is_the_default_only_where_the_cpu_has_it(tmp_path, monkeypatch, tiny, flags,
                                                           native):  # fmt: skip
    cpuinfo = tmp_path / "cpuinfo"
    if flags is not None:  # None: no /proc/cpuinfo (macOS, Windows)
        cpuinfo.write_text(f"processor : 0\nflags : {flags}\n")
    assert settings.fast_bfloat16(cpuinfo) is native

    monkeypatch.setattr(settings, "fast_bfloat16", lambda: native)
    assert (
        run_config.validate_config(run_config.RunConfig(dataset="mnist")).mixed_precision is native
    )
    for chosen in (True, False):  # an explicit choice wins
        cfg = run_config.RunConfig(dataset="mnist", mixed_precision=chosen)
        assert run_config.validate_config(cfg).mixed_precision is chosen


BAD_CONFIGS = [
    ({"learning_rate": 0.0}, ["learning_rate", "above 0"]),
    ({"learning_rate": 11.0}, ["learning_rate", "at most 10"]),
    ({"batch_size": 0}, ["batch_size", "1 to 4096"]),
    ({"batch_size": 5000}, ["batch_size", "4096"]),
    ({"epochs": 0}, ["epochs", "1 to 500"]),
    ({"epochs": 501}, ["epochs"]),
    ({"dataset": "imagenet"}, ["Unknown dataset", "mnist", "fashion_mnist", "user:tiny"]),
    ({"model": "alexnet", "layers": None}, ["Unknown model", "simple_convnet"]),
    ({"optimizer": "rmsprop"}, ["optimizer", "adam", "sgd"]),
    ({"validation_split": 0.5}, ["validation_split", "below 0.5"]),
    ({"validation_split": -0.1}, ["validation_split"]),
    ({"lr_schedule": "step"}, ["lr_schedule", "cosine"]),
    ({"momentum": 1.0, "optimizer": "sgd"}, ["momentum"]),
    ({"augment_rotate": 400.0}, ["augment_rotate", "degrees"]),
    ({"augment_zoom": 0.6}, ["augment_zoom", "0 to 0.5"]),
    ({"augment_zoom": -0.1}, ["augment_zoom"]),
    ({"label_smoothing": 0.6}, ["label_smoothing", "0 (none) to 0.5"]),
    ({"label_smoothing": float("nan")}, ["label_smoothing"]),
    ({"distribute": "horovod"}, ["distribute", "mirrored"]),
    ({"model": "simple_convnet"}, ["layers", "custom"]),
    ({"layers": None}, ["custom", "layer list"]),
    ({"batch_size": "32"}, ["batch_size", "whole number"]),
]


@pytest.mark.parametrize("changes,words", BAD_CONFIGS)
def test_validate_says_what_to_fix(tiny, changes, words):
    with pytest.raises(run_config.ConfigError) as info:
        run_config.validate_config(tiny_config(**changes))
    for word in words:
        assert word in str(info.value), str(info.value)


def test_validate_checks_the_batch_against_the_training_set(tiny):
    with pytest.raises(
        run_config.ConfigError, match="batch_size 80 is larger than the 72 training"
    ):
        run_config.validate_config(tiny_config(batch_size=80), train_size=96)
    run_config.validate_config(tiny_config(batch_size=72), train_size=96)


def test_validate_surfaces_the_layer_list_problem(tiny):
    valid_conv = {"type": "conv", "filters": 8, "kernel": 5, "padding": "valid"}
    layers = [valid_conv] * 4  # 12 -> 8 -> 4 -> 0: no pixels left
    with pytest.raises(input_limits.ModelError) as direct:
        layer_lists.validate_layers(layers, (12, 12, 1))
    with pytest.raises(run_config.ConfigError) as info:
        run_config.validate_config(tiny_config(layers=layers))
    assert str(info.value) == str(direct.value)


def test_validate_reports_an_unavailable_dataset(tiny, no_embedded_cifar10):
    with pytest.raises(run_config.ConfigError, match="not available.*cifar-10-python.tar.gz"):
        run_config.validate_config(run_config.RunConfig(dataset="cifar10", model="allcnn"))


# ---------------------------------------------------------------- run ids


@pytest.mark.parametrize(
    "bad", ["../x", "a/b", "..", "", ".slots", "a..b", "x" * 101, "/etc", "run id", None, "a\n"]
)
def test_run_ids_cannot_escape_the_runs_folder(lab_home, bad):
    with pytest.raises(run_folder.RunError, match="not a run id"):
        run_folder.check_run_id(bad)
    calls = (run_status.read_status, store.read_config, store.delete_run, checkpointing.checkpoints)
    for call in calls:
        with pytest.raises(run_folder.RunError):
            call(bad)


def test_traversal_touches_nothing_outside(lab_home):
    victim = lab_home / "victim"
    victim.mkdir(parents=True)
    (victim / "config.json").write_text("{}")
    with pytest.raises(run_folder.RunError):
        store.delete_run("../victim")
    assert (victim / "config.json").exists()


# ---------------------------------------------------------------- creating, status, liveness


def test_create_run_writes_config_and_queued_status(tiny):
    cfg = run_config.validate_config(tiny_config())
    run_id = store.create_run(cfg)
    assert re.fullmatch(r"\d{8}-\d{6}-custom-[0-9a-f]{4}", run_id)
    assert store.read_config(run_id) == cfg
    status = run_status.read_status(run_id)
    assert status.state == "queued" and status.epochs == 2 and status.created > 0
    assert [r.id for r in store.list_runs()] == [run_id]
    assert metrics_log.read_metrics(run_id) == ([], 0)
    assert store.read_evaluation(run_id) is None


def test_a_dead_worker_shows_as_interrupted(tiny):
    run_id = store.create_run(run_config.validate_config(tiny_config()))
    run_status.update_status(run_id, state="running", pid=12345)
    assert run_status.read_status(run_id).state == "interrupted"
    lock = run_status.acquire_worker_lock(run_id)  # as a live worker would
    try:
        assert run_status.read_status(run_id).state == "running"
        assert run_status.worker_alive(run_id)
        with pytest.raises(run_folder.RunError, match="live worker"):
            run_status.acquire_worker_lock(run_id, retry_s=0.1)
        with pytest.raises(run_folder.RunError, match="stop it"):
            store.delete_run(run_id)
    finally:
        os.close(lock)
    assert run_status.read_status(run_id).state == "interrupted"
    store.delete_run(run_id)
    assert store.list_runs() == []


def test_a_queued_run_is_starting_until_the_grace_ends(tiny):
    run_id = store.create_run(run_config.validate_config(tiny_config()))
    assert run_status.read_status(run_id).state == "queued"  # its worker is still starting
    run_status.update_status(run_id, queued=time.time() - run_status.SPAWN_GRACE_S - 1)
    assert run_status.read_status(run_id).state == "interrupted"


def test_transition_is_compare_and_set(tiny):
    run_id = store.create_run(run_config.validate_config(tiny_config()))
    assert run_status.transition_status(run_id, ("queued",), state="stopped")
    assert not run_status.transition_status(run_id, ("queued",), state="running")
    assert run_status.read_status(run_id).state == "stopped"


def test_runs_home_problem(lab_home, monkeypatch):
    assert store.runs_home_problem() is None
    monkeypatch.setattr(store, "MIN_FREE_BYTES", 2**62)
    assert "free" in store.runs_home_problem()


def test_runs_home_problem_unwritable(lab_home):
    lab_home.mkdir(parents=True)
    # fails even as root
    run_folder.runs_home().write_text("a file where the runs folder should be")
    assert "not writable" in store.runs_home_problem()
    with pytest.raises(run_folder.RunError, match="not writable"):
        store.create_run(tiny_config())


# ---------------------------------------------------------------- metrics


def _line(**record) -> bytes:
    return (json.dumps(record) + "\n").encode()


def test_read_metrics_is_incremental_and_waits_for_whole_lines(tiny):
    run_id = store.create_run(run_config.validate_config(tiny_config()))
    path = run_folder.run_paths(run_id).metrics
    first = _line(kind="batch", epoch=1, batch=1, loss=1.0)
    half = _line(kind="epoch", epoch=1, loss=0.9)
    path.write_bytes(first + half[:10])
    records, offset = metrics_log.read_metrics(run_id)
    assert records == [json.loads(first)] and offset == len(first)
    assert metrics_log.read_metrics(run_id, offset) == ([], offset)
    with open(path, "ab") as f:
        f.write(half[10:])
    records, offset2 = metrics_log.read_metrics(run_id, offset)
    assert records == [json.loads(half)] and offset2 == len(first + half)
    assert metrics_log.read_metrics(run_id, offset2 + 1000)[0] == [
        json.loads(first),
        json.loads(half),
    ]


def test_truncate_metrics_drops_later_epochs(tiny):
    run_id = store.create_run(run_config.validate_config(tiny_config()))
    lines = [_line(kind=k, epoch=e, batch=b) for e in (1, 2, 3) for k, b in (("batch", 5),
             ("epoch", None))]  # fmt: skip
    run_folder.run_paths(run_id).metrics.write_bytes(b"".join(lines) + b'{"kind": "ba')
    kept = metrics_log.truncate_metrics(run_id, 2)
    assert [(r["kind"], r["epoch"]) for r in kept] == [
        ("batch", 1),
        ("epoch", 1),
        ("batch", 2),
        ("epoch", 2),
    ]
    assert metrics_log.read_metrics(run_id)[0] == kept
    assert run_status.read_status(run_id).history_rewrites == 1
    metrics_log.truncate_metrics(run_id, 2)  # nothing to drop: no rewrite
    assert run_status.read_status(run_id).history_rewrites == 1


def test_truncate_metrics_keeps_a_stopped_epoch_up_to_its_checkpoints_batch(tiny):
    run_id = store.create_run(run_config.validate_config(tiny_config()))
    lines = [_line(kind="batch", epoch=e, batch=b) for e in (1, 2) for b in (2, 4, 5)]
    lines.insert(3, _line(kind="epoch", epoch=1))
    run_folder.run_paths(run_id).metrics.write_bytes(b"".join(lines))
    # Resuming from the checkpoint at batch 4 of epoch 2: its batch 5 was trained after it.
    kept = metrics_log.truncate_metrics(run_id, 1, batches=4)
    assert [(r["kind"], r["epoch"], r.get("batch")) for r in kept] == [
        ("batch", 1, 2), ("batch", 1, 4), ("batch", 1, 5), ("epoch", 1, None),
        ("batch", 2, 2), ("batch", 2, 4),
    ]  # fmt: skip
    assert metrics_log.read_metrics(run_id)[0] == kept


def test_metrics_csv(tiny):
    run_id = store.create_run(run_config.validate_config(tiny_config()))
    with open(run_folder.run_paths(run_id).metrics, "ab") as f:
        metrics_log.append_metrics(
            f, {"kind": "epoch", "epoch": 1, "loss": float("nan"), "lr": 0.1}
        )
    rows = metrics_log.metrics_csv(run_id).splitlines()
    assert rows[0].startswith("kind,epoch,batch,step,loss,accuracy,mse")
    assert rows[1].startswith("epoch,1,,,,")  # NaN is written as an empty cell


# ---------------------------------------------------------------- checkpoints


def _fake_checkpoint(path, payload: bytes = b"x" * 5000) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", payload)


def test_latest_good_checkpoint_skips_a_damaged_last_one(tiny):
    run_id = store.create_run(run_config.validate_config(tiny_config()))
    p = run_folder.run_paths(run_id)
    for epoch in (0, 1, 2, 3):
        _fake_checkpoint(p.checkpoint(epoch))
    (p.checkpoints / ".epoch-0004.123.tmp.keras").write_bytes(b"half")  # not a checkpoint
    assert [e for e, _ in checkpointing.checkpoints(run_id)] == [0, 1, 2, 3]
    assert checkpointing.latest_good_checkpoint(run_id) == (3, p.checkpoint(3))
    data = p.checkpoint(3).read_bytes()
    p.checkpoint(3).write_bytes(data[: len(data) // 2])  # truncated, as by a full disk
    assert checkpointing.latest_good_checkpoint(run_id) == (2, p.checkpoint(2))
    flipped = bytearray(p.checkpoint(2).read_bytes())
    flipped[200] ^= 0xFF  # a flipped bit inside the weights fails the CRC
    p.checkpoint(2).write_bytes(bytes(flipped))
    assert checkpointing.latest_good_checkpoint(run_id) == (1, p.checkpoint(1))
    p.checkpoint(1).unlink()
    assert (
        checkpointing.latest_good_checkpoint(run_id) is None
    )  # the untrained network does not count


def test_mid_epoch_checkpoints_sort_by_the_training_in_them(tiny):
    run_id = store.create_run(run_config.validate_config(tiny_config()))
    p = run_folder.run_paths(run_id)
    for epoch, batch in ((0, 0), (1, 0), (1, 7), (1, 30), (2, 0), (2, 3)):
        _fake_checkpoint(p.checkpoint(epoch, batch))
    assert p.checkpoint(1, 7).name == "epoch-0002-batch-0007.keras"  # 7 batches of epoch 2
    (p.checkpoints / "epoch-0000-batch-0003.keras").write_bytes(b"")  # no epoch 0 to be in
    points = checkpointing.resume_points(run_id)
    assert [c.position for c in points] == [(0, 0), (1, 0), (1, 7), (1, 30), (2, 0), (2, 3)]
    assert [e for e, _ in checkpointing.checkpoints(run_id)] == [0, 1, 2]  # replay: epoch ends only
    assert checkpointing.latest_good_checkpoint(run_id) == (2, p.checkpoint(2, 3))
    checkpointing.remove_mid_epoch_checkpoints(run_id, before=(2, 0))
    assert [c.position for c in checkpointing.resume_points(run_id)] == [
        (0, 0),
        (1, 0),
        (2, 0),
        (2, 3),
    ]
    assert (
        checkpointing.checkpoint_state(p.checkpoint(2, 3)) == {}
    )  # a checkpoint without resume state
