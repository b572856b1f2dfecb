"""Sharing a run: weights plus the lab's own config out, a rebuilt model in; nothing else."""

import errno
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from cnn_core import catalog
from cnn_core.models import zoo
from cnn_core.runs import metrics_log, run_config, run_folder, sharing, status, store

LAYERS = [{"type": "conv", "filters": 4, "kernel": 3}, {"type": "maxpool", "size": 2}]
SHAPE = (12, 12, 1)
NAMES = ["a", "b", "c"]


@pytest.fixture
def finished_run(lab_home):
    """A finished run made by hand (no worker needed): model, evaluation and one epoch line."""
    cfg = run_config.RunConfig(
        name="shared", dataset="user:tiny", model="custom", layers=LAYERS, epochs=1
    )
    run_id = store.create_run(cfg)
    paths = run_folder.run_paths(run_id)
    model = zoo.build_model("custom", SHAPE, 3, LAYERS)
    model.save(paths.model)
    evaluation = {"accuracy": 0.5, "loss": 1.0, "input_shape": list(SHAPE), "class_names": NAMES}
    run_folder.write_json_atomic(paths.evaluation, evaluation)
    paths.metrics.write_text(json.dumps({"kind": "epoch", "epoch": 1, "loss": 1.0}) + "\n")
    status.update_status(run_id, state="finished", seconds=3.0)
    return run_id, model


def test_export_then_import_gives_the_same_predictions(finished_run):
    run_id, model = finished_run
    data = sharing.export_run(run_id)
    assert set(zipfile.ZipFile(io.BytesIO(data)).namelist()) == {
        "run.json",
        "model.weights.h5",
        "metrics.jsonl",
    }
    new_id = sharing.import_run(data)
    assert new_id != run_id and status.read_status(new_id).state == "finished"
    x = np.random.default_rng(0).random((4, *SHAPE), dtype=np.float32)
    again = catalog.load_trained(f"run:{new_id}")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert [r["epoch"] for r in metrics_log.epoch_records(metrics_log.read_metrics(new_id)[0])] == [
        1
    ]
    listed = [t for t in catalog.list_trained("user:tiny") if t.key == f"run:{new_id}"]
    assert listed and listed[0].class_names == tuple(NAMES)


def test_an_imported_run_does_not_keep_the_other_machines_dataset_version(lab_home):
    cfg = run_config.RunConfig(
        dataset="mnist",
        model="custom",
        layers=LAYERS,
        epochs=1,
        dataset_fingerprint="source:keras-cache",
    )  # full MNIST over there
    run_id = store.create_run(cfg)
    paths = run_folder.run_paths(run_id)
    zoo.build_model("custom", SHAPE, 3, LAYERS).save(paths.model)
    run_folder.write_json_atomic(paths.evaluation, {"accuracy": 0.5, "input_shape": list(SHAPE),
                                              "class_names": NAMES})  # fmt: skip
    status.update_status(run_id, state="finished")
    imported = sharing.import_run(sharing.export_run(run_id))
    assert store.read_config(imported).dataset_fingerprint is None


def rewrite(data: bytes, **members: bytes) -> bytes:
    old = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in old.namelist():
            if name not in members:
                z.writestr(name, old.read(name))
        for name, content in members.items():
            if content is not None:
                z.writestr(name, content)
    return out.getvalue()


def test_a_pickle_or_a_full_model_inside_is_refused(finished_run):
    data = sharing.export_run(finished_run[0])
    with pytest.raises(sharing.SharingError, match="not a shared CNN Lab run"):
        sharing.import_run(rewrite(data, **{"evil.pkl": pickle.dumps(print)}))
    with pytest.raises(sharing.SharingError, match="not a shared CNN Lab run"):
        sharing.import_run(rewrite(data, **{"model.keras": b"PK"}))


def test_unknown_config_keys_and_impossible_layers_are_refused(finished_run):
    data = sharing.export_run(finished_run[0])
    meta = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("run.json"))
    meta["config"]["exec"] = "import os"
    with pytest.raises(sharing.SharingError, match="Unknown config key"):
        sharing.import_run(rewrite(data, **{"run.json": json.dumps(meta).encode()}))
    meta["config"].pop("exec")
    meta["config"]["layers"] = [{"type": "maxpool", "size": 2}] * 6
    with pytest.raises(sharing.SharingError, match="cannot be built"):
        sharing.import_run(rewrite(data, **{"run.json": json.dumps(meta).encode()}))


def test_weights_of_another_architecture_are_refused(finished_run):
    data = sharing.export_run(finished_run[0])
    meta = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("run.json"))
    meta["config"]["layers"] = [{"type": "conv", "filters": 9, "kernel": 5}]
    with pytest.raises(sharing.SharingError, match="do not fit"):
        sharing.import_run(rewrite(data, **{"run.json": json.dumps(meta).encode()}))
    assert len(store.list_runs()) == 1  # nothing half-imported


def test_not_a_zip_and_unfinished_runs_are_clear_errors(lab_home):
    with pytest.raises(sharing.SharingError, match="not a zip"):
        sharing.import_run(b"hello")
    run_id = store.create_run(run_config.RunConfig(dataset="mnist", model="simple_convnet"))
    with pytest.raises(sharing.SharingError, match="only a finished run"):
        sharing.export_run(run_id)


def test_a_zip_of_photos_is_named_in_one_sentence_not_listed(lab_home):
    """A zip of 453 photos once printed all 453 names in the error box."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for i in range(453):
            z.writestr(f"ships/ship_{i:03d}.png", b"x")
    with pytest.raises(sharing.SharingError) as caught:
        sharing.import_run(buffer.getvalue())
    message = str(caught.value)
    assert message == (
        "This zip (453 files) is not a shared CNN Lab run: a shared run is the .cnnlab.zip "
        'that "Share" downloads for a finished run on the Train page, and it holds only '
        "run.json, model.weights.h5 and metrics.jsonl."
    )
    assert store.list_runs() == []


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("failing_write", ["unpack the weights", "save the model",
                                           "update the status"])  # fmt: skip
def test_a_disk_that_fills_during_an_import_leaves_no_run(finished_run, monkeypatch, failing_write):
    data = sharing.export_run(finished_run[0])
    message = (
        r"There is no room to save the run in .* \(No space left on device\), so it was "
        r"not imported\. Delete old runs or free space on that disk, then import it again\."
    )
    if failing_write == "unpack the weights":  # into the system's temporary folder
        monkeypatch.setattr(Path, "write_bytes", no_space)
        message = r"The weights could not be unpacked .* Free space on that disk"
    elif failing_write == "save the model":
        monkeypatch.setattr(keras.Model, "save", no_space)
    else:  # the last write: everything else of the run is on disk by then
        monkeypatch.setattr(status, "update_status", no_space)
    with pytest.raises(sharing.SharingError, match=message):
        sharing.import_run(data)
    assert [p.name for p in run_folder.runs_home().iterdir() if p.is_dir()] == [finished_run[0]]
