"""Chart tables from metrics records, incremental reading, and the presets' configs."""

import json

import pandas as pd
import pytest

from cnn_core.runs import history, presets, run_config, run_folder, store
from cnn_core.runs import status as run_status


def epoch(e, loss, acc, val_loss=None, val_acc=None):
    return {"kind": "epoch", "epoch": e, "loss": loss, "accuracy": acc, "val_loss": val_loss,
            "val_accuracy": val_acc}  # fmt: skip


def test_epoch_frame_has_train_and_validation_by_epoch():
    frame = history.epoch_frame(
        [epoch(1, 0.9, 0.6, 1.0, 0.5), epoch(2, 0.5, 0.8, 0.7, 0.7)], "loss"
    )
    assert frame.index.tolist() == [1, 2]
    assert frame["train"].tolist() == [0.9, 0.5] and frame["validation"].tolist() == [1.0, 0.7]


def test_epoch_frame_drops_validation_when_none_was_held_out():
    frame = history.epoch_frame([epoch(1, 0.9, 0.6)], "accuracy")
    assert list(frame.columns) == ["train"]


def test_batch_frame_places_windows_at_fractional_epochs():
    records = [
        {"kind": "batch", "epoch": 1, "batch": 50, "loss": 2.0},
        {"kind": "batch", "epoch": 2, "batch": 25, "loss": 1.0},
        epoch(1, 1.5, 0.5),
    ]
    frame = history.batch_frame(records, "loss", batches_per_epoch=100)
    assert frame.index.tolist() == [0.5, 1.25] and frame["loss"].tolist() == [2.0, 1.0]


def test_overlay_frame_prefers_validation_and_aligns_epochs():
    frame = history.overlay_frame(
        {"a": [epoch(1, 1, 0.5, 1, 0.4), epoch(2, 1, 0.6, 1, 0.45)], "b": [epoch(1, 1, 0.7)]},
        "accuracy",
    )
    assert frame["a"].tolist() == [0.4, 0.45]
    assert frame["b"].iloc[0] == 0.7 and pd.isna(frame["b"].iloc[1])


def test_live_history_reads_only_new_lines_and_restarts_after_a_rewrite(lab_home):
    run_id = store.create_run(run_config.RunConfig(dataset="mnist", model="simple_convnet"))
    path = run_folder.run_paths(run_id).metrics
    live = history.LiveHistory(run_id)
    status = run_status.read_status(run_id)
    assert live.refresh(status) == []
    path.write_text(json.dumps(epoch(1, 1, 0.5)) + "\n" + '{"kind": "ep')  # last line unfinished
    assert [r["epoch"] for r in live.refresh(status)] == [1]
    with open(path, "a") as f:
        f.write('och", "epoch": 2}\n')
    assert [r["epoch"] for r in live.refresh(status)] == [1, 2]
    path.write_text(json.dumps(epoch(1, 1, 0.5)) + "\n")  # a resume dropped epoch 2
    rewritten = run_status.RunStatus(history_rewrites=status.history_rewrites + 1)
    assert [r["epoch"] for r in live.refresh(rewritten)] == [1]
    with open(path, "a") as f:
        f.write(json.dumps(epoch(2, 1, 0.6)) + "\n")
    assert [r["epoch"] for r in live.refresh(rewritten)] == [1, 2]
    path.write_text(json.dumps(epoch(1, 1, 0.5)) + "\n")  # shrunk, no rewrite count
    assert [r["epoch"] for r in live.refresh(rewritten)] == [1]  # read again, not appended


@pytest.mark.parametrize("preset", presets.PRESETS, ids=lambda p: p.key)
def test_every_preset_config_is_valid(preset):
    for cfg in preset.configs:
        shape = (28, 28, 1)
        train = 8_000 if cfg.dataset == "mnist" else 60_000
        run_config.validate_config(cfg, train_size=train, input_shape=shape)


def test_overfitting_preset_differs_only_in_dropout():
    a, b = presets.get_preset("overfitting").configs
    assert (a.model, b.model) == ("fashion_cnn", "fashion_cnn_dropout")
    assert {k: v for k, v in a.to_dict().items() if k not in ("model", "name")} == {
        k: v for k, v in b.to_dict().items() if k not in ("model", "name")
    }


def test_seconds_per_epoch_scales_the_measurement(tmp_path, monkeypatch):
    table = {"seconds_per_epoch": {"lenet5": {"28x28x1": {"seconds": 30.0, "images": 60000}}}}
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps(table))
    monkeypatch.setattr(presets, "MEASUREMENTS", path)
    assert presets.seconds_per_epoch("lenet5", (28, 28, 1), 8000) == pytest.approx(4.0)
    assert presets.seconds_per_epoch("lenet5", (32, 32, 3), 8000) is None
    monkeypatch.setattr(presets, "MEASUREMENTS", tmp_path / "missing.json")
    assert presets.seconds_per_epoch("lenet5", (28, 28, 1), 8000) is None


def test_measured_presets_come_from_the_benchmark_file(tmp_path, monkeypatch):
    row = {"name": "Fashion quick", "epochs": 3, "seconds": 52.0, "test_accuracy": 0.9123,
           "measured": "2026-11-22"}  # fmt: skip
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps({"presets": {"fashion-quick": [row]}}))
    monkeypatch.setattr(presets, "MEASUREMENTS", path)
    assert presets.measured("fashion-quick") == [row]
    assert presets.measured("mnist-99") is None
    path.write_text("{not json")
    assert presets.measured("fashion-quick") is None


@pytest.mark.parametrize("key", [p.key for p in presets.PRESETS])
def test_every_preset_has_a_measurement_of_its_own_config(key):
    # benchmarks/presets.py writes these; changing a preset without measuring it fails.
    rows = presets.measured(key)
    configs = presets.get_preset(key).configs
    assert rows and len(rows) == len(configs)
    assert all(0 < r["test_accuracy"] <= 1 and r["seconds"] > 0 for r in rows)
    # A config measured before a field was added still matches: it loads with the default.
    assert [run_config.RunConfig.from_dict(r.get("config") or {}) for r in rows] == list(configs)
