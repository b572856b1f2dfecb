"""Own datasets are never replaced silently: unique names, fingerprints, replace and delete
refused while runs need the images, and runs that train and evaluate on the exact version
they recorded (issue 14, section 1)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_core import catalog
from cnn_core.cli import main
from cnn_core.data import datasets, owndata, userdata, versions
from cnn_core.data.dataset import (
    Dataset,
    DatasetError,
    DatasetExists,
    DatasetGone,
    DatasetInUse,
    DatasetUnavailable,
)
from cnn_core.runs import checkpointing, dataset_use, jobs, run_config, run_folder, store
from cnn_core.runs import status as run_status
from tests.factories import TINY_LAYERS, run_on


def small_dataset(classes: int = 2, n: int = 24, seed: int = 0) -> Dataset:
    """Random 12×12 grey images with balanced labels, split 3:1."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 12, 12, 1), dtype=np.uint8)
    y = np.arange(n, dtype=np.int64) % classes
    cut = n * 3 // 4
    names = tuple("abcdefgh"[:classes])
    return Dataset("d", "d", x[:cut], y[:cut], x[cut:], y[cut:], names, "user", "test")


def class_zip(classes: tuple[str, ...], per_class: int = 6, seed: int = 0) -> bytes:
    """A zip of class folders of small PNGs that differ by class and image, as a browser sends."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for c, name in enumerate(classes):
            for i in range(per_class):
                pixels = rng.integers(0, 60, (16, 16, 3), dtype=np.uint8)
                pixels[:, c * 4 : c * 4 + 4] = 230  # a bright band per class
                png = io.BytesIO()
                Image.fromarray(pixels).save(png, "PNG")
                z.writestr(f"{name}/{i}.png", png.getvalue())
    return buffer.getvalue()


# ---------------------------------------------------------------- names and fingerprints


def test_the_default_name_comes_from_the_zip_and_is_unique(lab_home):
    assert owndata.default_name("Cats and Dogs.zip") == "cats-and-dogs"
    assert owndata.default_name("C:\\Users\\me\\photos.zip") == "photos"
    userdata.save_user_dataset(small_dataset(), "cats-and-dogs")
    assert owndata.default_name("cats-and-dogs.zip") == "cats-and-dogs-2"
    userdata.save_user_dataset(small_dataset(seed=1), "cats-and-dogs-2")
    assert owndata.default_name("cats-and-dogs.zip") == "cats-and-dogs-3"
    assert owndata.default_name("!!!.zip") == owndata.DEFAULT_NAME


def test_the_fingerprint_changes_with_any_pixel_label_or_class_name(lab_home):
    ds = small_dataset()
    base = userdata.fingerprint(ds)
    assert userdata.fingerprint(small_dataset()) == base  # the same images: the same version
    pixel = ds.x_train.copy()
    pixel[0, 0, 0, 0] ^= 1
    label = ds.y_test.copy()
    label[0] = 1 - label[0]
    from dataclasses import replace

    others = [replace(ds, x_train=pixel), replace(ds, y_test=label),
              replace(ds, class_names=("a", "z"))]  # fmt: skip
    assert len({base, *map(userdata.fingerprint, others)}) == 4
    key = userdata.save_user_dataset(ds, "v")
    info = userdata.user_dataset_info(key)
    assert info.fingerprint == base and info.imported is not None
    assert (info.train_count, info.test_count, info.class_names) == (18, 6, ("a", "b"))
    assert datasets.load_dataset(key).fingerprint == base


def test_saving_other_images_under_a_taken_name_is_refused(lab_home):
    first = small_dataset(2)
    key = userdata.save_user_dataset(first, "pets")
    assert userdata.save_user_dataset(first, "Pets") == key  # the same images: no change
    with pytest.raises(DatasetExists, match="pets-2"):
        userdata.save_user_dataset(small_dataset(3), "pets")
    assert datasets.load_dataset(key).num_classes == 2
    assert userdata.save_user_dataset_as_new(small_dataset(3), "pets") == "user:pets-2"
    assert datasets.load_dataset("user:pets").num_classes == 2
    assert datasets.load_dataset("user:pets-2").num_classes == 3


@pytest.mark.parametrize("state", ["finished", "stopped", "running", "queued", "failed"])
def test_replace_is_refused_while_any_run_used_that_version(lab_home, state):
    key = userdata.save_user_dataset(small_dataset(2), "pets")
    run_id = run_on(key, versions.dataset_fingerprint(key), state)
    choice = dataset_use.name_choice(small_dataset(3), "pets")
    assert choice.taken and not choice.can_replace
    assert choice.options == (owndata.KEEP_BOTH,) and choice.keep_both_slug == "pets-2"
    assert any(run_id in label for label in choice.users)
    with pytest.raises(DatasetInUse, match=run_id):
        dataset_use.save_import(small_dataset(3), "pets", owndata.REPLACE)
    assert datasets.load_dataset(key).num_classes == 2


def test_replace_is_allowed_when_no_run_used_it(lab_home):
    key = userdata.save_user_dataset(small_dataset(2), "pets")
    run_on(key, "another version's fingerprint")  # a run on an earlier, deleted version
    choice = dataset_use.name_choice(small_dataset(3), "pets")
    assert choice.can_replace and choice.options == (owndata.REPLACE, owndata.KEEP_BOTH)
    assert dataset_use.save_import(small_dataset(3), "pets", owndata.REPLACE) == key
    assert datasets.load_dataset(key).num_classes == 3


def test_delete_is_refused_while_a_run_trains_on_it_and_names_the_runs_after(lab_home):
    key = userdata.save_user_dataset(small_dataset(), "pets")
    done = run_on(key, versions.dataset_fingerprint(key))
    active = run_on(key, versions.dataset_fingerprint(key), state="running")
    p = run_folder.run_paths(active)
    import fcntl
    import os

    fd = os.open(p.lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a live worker holds its run's lock
    try:
        with pytest.raises(DatasetInUse, match=f"while {active}"):
            dataset_use.delete_dataset("pets")
        assert key in datasets.list_datasets()
    finally:
        os.close(fd)
    run_status.update_status(active, state="stopped")
    used = dataset_use.delete_dataset("pets")
    assert {label.split()[0] for label in used} == {done, active}
    assert key not in datasets.list_datasets()
    with pytest.raises(DatasetUnavailable, match="nothing was deleted"):
        dataset_use.delete_dataset("pets")


def test_the_cli_deletes_a_dataset_and_says_which_runs_used_it(lab_home, capsys):
    key = userdata.save_user_dataset(small_dataset(), "pets")
    run_id = run_on(key, versions.dataset_fingerprint(key))
    assert main(["datasets", "delete", "pets"]) == 0
    out = capsys.readouterr().out
    assert "Deleted Own images: pets." in out and run_id in out and "user:" not in out
    assert main(["datasets", "delete", "pets"]) == 1
    assert "No saved dataset named 'pets'" in capsys.readouterr().err


# ---------------------------------------------------------------- runs use their version


def test_a_run_records_the_version_it_trains_on(lab_home, monkeypatch, tmp_path):
    monkeypatch.setattr(jobs, "spawn_worker", lambda run_id: None)  # no process: only the record
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no full MNIST downloaded
    key = userdata.save_user_dataset(small_dataset(), "pets")
    cfg = run_config.RunConfig(
        dataset=key, model="custom", layers=TINY_LAYERS, batch_size=4, epochs=1
    )
    run_id = jobs.start_run(cfg)
    assert store.read_config(run_id).dataset_fingerprint == versions.dataset_fingerprint(key)
    mnist_run = jobs.start_run(run_config.RunConfig(dataset="mnist", epochs=1))
    # A built-in dataset's version is its source: a download must not swap the images.
    assert store.read_config(mnist_run).dataset_fingerprint == "source:embedded"


def test_a_download_does_not_swap_the_images_of_a_run_on_a_built_in_dataset(
    lab_home, monkeypatch, tmp_path
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    version = versions.dataset_fingerprint("mnist")
    assert version == "source:embedded"
    # The full MNIST arrives in the Keras cache (a small stand-in in the real format).
    cache = tmp_path / "keras" / "datasets"
    cache.mkdir(parents=True)
    images = np.zeros((6, 28, 28), np.uint8)
    labels = np.arange(6) % 10
    np.savez(cache / "mnist.npz", x_train=images, y_train=labels, x_test=images, y_test=labels)
    assert versions.dataset_fingerprint("mnist") == "source:keras-cache"
    assert len(datasets.load_dataset("mnist").x_train) == 6  # new runs use the download
    assert len(versions.load_dataset_version("mnist", version).x_train) == 8000  # old ones not
    (cache / "mnist.npz").unlink()
    with pytest.raises(DatasetGone, match="no longer on this machine"):
        versions.load_dataset_version("mnist", "source:keras-cache")


def test_loading_a_runs_version_says_plainly_when_it_is_gone(lab_home):
    key = userdata.save_user_dataset(small_dataset(2), "pets")
    version = versions.dataset_fingerprint(key)
    assert versions.load_dataset_version(key, version).num_classes == 2
    assert versions.load_dataset_version(key, None).num_classes == 2  # an older run
    dataset_use.delete_user_dataset(key)
    with pytest.raises(DatasetGone, match="this run trained on .* were deleted"):
        versions.load_dataset_version(key, version)
    userdata.save_user_dataset(small_dataset(3), "pets")
    with pytest.raises(DatasetGone, match=r"were replaced.*\(24 in 3 classes\)"):
        versions.load_dataset_version(key, version)


def test_the_worker_refuses_a_changed_dataset(lab_home):
    from cnn_core.runs import training

    key = userdata.save_user_dataset(small_dataset(2), "pets")
    cfg = run_config.RunConfig(dataset=key, dataset_fingerprint="0" * 64, model="custom",
                         layers=TINY_LAYERS, batch_size=4, epochs=1)  # fmt: skip
    run_id = store.create_run(cfg)
    assert training.train_run(run_id) == 1
    status = run_status.read_status(run_id)
    assert status.state == "failed"
    assert "The images this run trained on were replaced" in status.message
    assert not checkpointing.checkpoints(run_id)  # not one batch on the wrong images


def test_the_cache_key_changes_when_a_dataset_changes(lab_home):
    key = userdata.save_user_dataset(small_dataset(2), "pets")
    before = versions.dataset_version(key)
    assert versions.dataset_version(key) == before
    dataset_use.delete_user_dataset(key)
    assert versions.dataset_version(key) == "missing"
    userdata.save_user_dataset(small_dataset(3), "pets")
    assert versions.dataset_version(key) not in (before, "missing")


def test_the_teachers_steps_keep_the_first_runs_two_classes(teachers_run):
    """Import a 2-class zip as bad-wrapped, train on it, import a 3-class zip under the same
    name: both versions exist and the run still evaluates on its own two classes."""
    key, run_id, three = teachers_run
    choice = dataset_use.name_choice(three, "bad-wrapped")
    assert choice.options == (owndata.KEEP_BOTH,), "a trained-on dataset is never replaced"
    two = datasets.load_dataset(key)
    new_key = dataset_use.save_import(three, "bad-wrapped", owndata.KEEP_BOTH)
    assert new_key == "user:bad-wrapped-2"
    assert datasets.load_dataset(new_key).num_classes == 3

    (model,) = [t for t in catalog.list_trained(key) if t.key == f"run:{run_id}"]
    data = versions.load_dataset_version(model.dataset, model.dataset_fingerprint)
    assert data.class_names == ("cat", "dog") == model.class_names
    assert np.array_equal(data.x_test, two.x_test)
    # And the worker resumes on the same images: the version is still there.
    assert versions.load_dataset_version(key, store.read_config(run_id).dataset_fingerprint)


def test_an_uploaded_file_is_named_by_its_own_name_in_errors(tmp_path):
    with pytest.raises(DatasetError, match="holiday.zip: not a readable zip"):
        owndata.import_upload(b"plain text", "holiday.zip", "x")
    with pytest.raises(DatasetError, match="upload.zip"):
        owndata.import_upload(b"plain text", "..", "x")  # a name that cannot be a file


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"cats/1.png", "cats/2.png"}, r"Found one class only \(cats\)"),
        ({"photos/cats/1.png", "photos/cats/2.png"}, r"Found one class only \(cats\)"),
        ({"1.png", "2.png"}, "not in class folders"),
        ({"notes.txt"}, "no class folders and no images"),
    ],
)
def test_a_zip_without_two_classes_says_what_it_has(tmp_path, members, message):
    png = io.BytesIO()
    Image.new("RGB", (10, 10), (200, 0, 0)).save(png, "PNG")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name in members:
            z.writestr(name, png.getvalue() if name.endswith(".png") else b"hi")
    with pytest.raises(DatasetError, match=message) as caught:
        owndata.import_upload(buffer.getvalue(), "one.zip", "one")
    assert "at least two classes" in str(caught.value)
    assert "0 class" not in str(caught.value)


def test_no_half_written_dataset_is_left_when_saving_fails(lab_home, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError):
        userdata.save_user_dataset(small_dataset(), "pets")
    folder = Path(lab_home) / "datasets"
    assert [p.name for p in folder.iterdir() if p.name != userdata.USER_LOCK] == []


# ---------------------------------------------------------------- the pages, after a restart


@pytest.fixture
def teachers_run(lab_home, monkeypatch, tmp_path):
    """A run trained on a 2-class "bad-wrapped", then a 3-class zip imported under that name."""
    from cnn_core.runs import training

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(jobs, "spawn_worker", lambda run_id: None)
    two, _ = owndata.import_upload(class_zip(("cat", "dog")), "a.zip", "bad-wrapped",
                                   image_size=12, grayscale=True)  # fmt: skip
    key = dataset_use.save_import(two, "bad-wrapped", owndata.NEW)
    cfg = run_config.RunConfig(dataset=key, model="custom", layers=TINY_LAYERS, batch_size=4,
                         epochs=1, validation_split=0.2)  # fmt: skip
    run_id = jobs.start_run(cfg)
    assert training.train_run(run_id) == 0
    three, _ = owndata.import_upload(class_zip(("cat", "dog", "ship"), seed=1), "b.zip",
                                     "bad-wrapped", image_size=12, grayscale=True)  # fmt: skip
    return key, run_id, three


def test_evaluate_after_a_restart_uses_the_runs_own_two_classes(teachers_run):
    from tests.factories import open_page

    key, run_id, three = teachers_run
    assert dataset_use.save_import(three, "bad-wrapped", owndata.KEEP_BOTH) == "user:bad-wrapped-2"
    at = open_page("evaluate", key)  # a fresh AppTest: nothing cached, as after a restart
    assert not at.error and not at.warning, [m.value for m in (*at.error, *at.warning)]
    shown = " ".join(str(frame.value) for frame in at.dataframe)
    assert "cat" in shown and "dog" in shown and "ship" not in shown


def test_evaluate_and_the_gallery_say_plainly_that_the_images_are_gone(teachers_run):
    from tests.factories import open_page

    key, run_id, three = teachers_run
    dataset_use.delete_dataset(key)  # allowed: the run has finished
    assert dataset_use.save_import(three, "bad-wrapped", owndata.NEW) == key  # the name is free
    at = open_page("evaluate", key)
    assert not at.exception and not at.dataframe
    (warning,) = [w.value for w in at.warning if "trained on" in w.value]
    assert "The images this run trained on were replaced" in warning
    assert "(18 in 3 classes)" in warning
    at = open_page("predict", key)
    assert not at.exception
    assert any("The images this run trained on were replaced" in i.value for i in at.info)


def test_a_dataset_saved_before_versions_gets_its_fingerprint_from_its_images(lab_home):
    """Files of older labs hold no fingerprint in their meta; runs on them hold none either."""
    import json

    ds = small_dataset()
    folder = Path(lab_home) / "datasets"
    folder.mkdir(parents=True)
    np.savez_compressed(folder / "old.npz", x_train=ds.x_train, y_train=ds.y_train,
                        x_test=ds.x_test, y_test=ds.y_test,
                        class_names=np.array(ds.class_names, dtype=str),
                        meta=np.array(json.dumps({"source_description": "old"})))  # fmt: skip
    info = userdata.user_dataset_info("old")
    assert info.fingerprint == userdata.fingerprint(ds) and info.imported is None
    assert versions.load_dataset_version("user:old", info.fingerprint).num_classes == 2
    run_id = run_on("user:old", None)  # a run from before runs recorded a version
    choice = dataset_use.name_choice(small_dataset(3), "old")
    assert not choice.can_replace and run_id in choice.users[0]
