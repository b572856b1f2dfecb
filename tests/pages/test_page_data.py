"""The Data page: AppTest for its logic (every dataset state, reshuffle, zip import)."""

import io
import zipfile

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnn_core.data import datasets, readers, userdata, versions
from tests.factories import open_page


@pytest.fixture
def isolated(lab_home, monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_DIR", tmp_path / "none")
    monkeypatch.setenv("CNN_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return lab_home


def test_mnist_page_shows_provenance_stats_samples_and_balance(isolated):
    at = open_page("data")
    assert not at.exception
    assert "MNIST (embedded 10,000 subset)" in at.info[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Training images"] == "8,000" and metrics["Test images"] == "2,000"
    assert metrics["Image size"] == "28×28"
    images_before = [img.captions[0] for img in at.get("image")]
    assert len(images_before) == 24 and set(images_before) <= set("0123456789")
    at.button(key="reshuffle").click().run()
    assert at.session_state["sample_seed"] == 1
    assert len(at.get("image")) == 24


@pytest.mark.parametrize("name", ["fashion_mnist", "cifar10"])
def test_unavailable_dataset_says_how_to_get_it_without_crashing(
    isolated, no_embedded_cifar10, name
):
    at = open_page("data", name)
    assert not at.exception
    assert "not available on this machine" in at.warning[0].value
    assert not at.metric


def test_download_offline_fails_fast_with_a_message(isolated, no_embedded_cifar10, monkeypatch):
    at = open_page("data", "cifar10")
    monkeypatch.setattr(readers, "CIFAR10_ORIGIN", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    at.button(key="download").click().run()
    assert not at.exception
    assert "Could not download" in at.error[0].value


def zip_of_classes(
    per_class: int = 3, bad: bool = False, classes: tuple[str, ...] = ("left", "right")
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, c in enumerate(classes):
            for i in range(per_class):
                img = io.BytesIO()
                Image.new("RGB", (20, 20), (i * 50, k * 60, 0)).save(img, "PNG")
                z.writestr(f"{c}/{i}.png", img.getvalue())
        z.writestr("left/notes.txt", "hi")
        if bad:
            z.writestr("../evil.png", "x")
    return buf.getvalue()


def import_zip(
    at: AppTest, data: bytes, name: str = "arrows", filename: str = "arrows.zip"
) -> AppTest:
    at.file_uploader[0].set_value((filename, data, "application/zip"))
    at.text_input[0].set_value(name)
    at.button(key="import_submit").click()
    return at.run()


def test_importing_a_zip_reports_classes_and_skipped_files(isolated):
    at = import_zip(open_page("data"), zip_of_classes())
    assert not at.exception
    assert "Imported 6 images in 2 classes" in at.success[0].value
    assert "notes.txt" in at.dataframe[-1].value.to_string()
    assert "user:arrows" in datasets.list_datasets()


def test_a_hostile_zip_is_refused_with_a_message(isolated):
    at = import_zip(open_page("data"), zip_of_classes(bad=True), name="evil")
    assert not at.exception
    assert "refused" in at.error[0].value
    assert "user:evil" not in datasets.list_datasets()


def test_import_without_a_file_asks_for_one(isolated):
    at = open_page("data")
    at.button(key="import_submit").click()
    at.run()
    assert "Choose a zip file first" in at.error[0].value


# ---------------------------------------------------------------- a taken name asks (issue 14)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_a_taken_name_asks_and_replace_shows_the_new_facts_at_once(isolated):
    at = import_zip(open_page("data"), zip_of_classes())
    at.session_state["dataset"] = "user:arrows"
    at.run()
    assert metric(at, "Training images") == "4" and "6 in 2 classes" in at.info[0].value
    at = import_zip(at, zip_of_classes(classes=("left", "right", "up")))
    assert not at.exception
    assert "A dataset named **arrows** already exists: 6 images in 2 classes" in at.warning[0].value
    assert datasets.load_dataset("user:arrows").num_classes == 2  # nothing replaced yet
    radio = at.radio(key="import_how")
    assert radio.options == ["Replace arrows", "Keep both: save the new images as arrows-2"]
    radio.set_value("replace")
    at.button(key="import_save").click().run()
    assert not at.exception
    assert "Imported 9 images in 3 classes as **Own images: arrows**" in at.success[0].value
    # The facts of the dataset as it is now, not a cached copy of the old one.
    assert metric(at, "Training images") == "6" and "9 in 3 classes" in at.info[0].value
    assert userdata.list_user_datasets() == ["arrows"]


def test_a_dataset_runs_trained_on_offers_only_keep_both(isolated):
    from tests.factories import run_on

    import_zip(open_page("data"), zip_of_classes())
    key = "user:arrows"
    run_id = run_on(key, versions.dataset_fingerprint(key))
    at = import_zip(open_page("data"), zip_of_classes(classes=("left", "right", "up")))
    assert not at.exception
    assert "cannot be replaced" in at.info[-1].value and run_id in at.info[-1].value
    assert "user:" not in at.info[-1].value
    radio = at.radio(key="import_how")
    assert radio.options == ["Keep both: save the new images as arrows-2"]
    at.button(key="import_save").click().run()
    assert "as **Own images: arrows-2**" in at.success[0].value
    assert datasets.load_dataset("user:arrows").num_classes == 2
    assert datasets.load_dataset("user:arrows-2").num_classes == 3


def test_cancel_saves_nothing(isolated):
    at = import_zip(open_page("data"), zip_of_classes())
    at = import_zip(at, zip_of_classes(classes=("left", "right", "up")))
    at.button(key="import_cancel").click().run()
    assert not at.exception and not at.radio
    assert userdata.list_user_datasets() == ["arrows"]
    assert datasets.load_dataset("user:arrows").num_classes == 2


def test_without_a_name_the_zips_name_is_used_and_never_collides(isolated):
    at = import_zip(open_page("data"), zip_of_classes(), name="", filename="Field Trip.zip")
    assert "as **Own images: field-trip** (named after the zip)" in at.success[0].value
    at = import_zip(at, zip_of_classes(per_class=4), name="", filename="Field Trip.zip")
    assert not at.radio, "a name the lab chose is free: nothing to ask"
    assert "as **Own images: field-trip-2**" in at.success[0].value
    assert userdata.list_user_datasets() == ["field-trip", "field-trip-2"]


def test_errors_name_the_uploaded_file_and_a_one_class_zip(isolated):
    at = import_zip(open_page("data"), b"not a zip at all", filename="holiday.zip")
    assert "holiday.zip: not a readable zip" in at.error[0].value
    assert "upload.zip" not in at.error[0].value
    at = import_zip(at, zip_of_classes(classes=("cats",)), filename="cats.zip")
    assert "Found one class only (cats)" in at.error[0].value
    assert "at least two classes" in at.error[0].value


def test_delete_says_which_runs_used_it(isolated):
    from tests.factories import run_on

    import_zip(open_page("data"), zip_of_classes())
    run_id = run_on("user:arrows", versions.dataset_fingerprint("user:arrows"))
    at = open_page("data", "user:arrows")
    assert any("1 run(s) trained on it" in m.value and run_id in m.value for m in at.markdown)
    at.button(key="delete_dataset").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Deleted Own images: arrows.")
    assert run_id in at.success[0].value and "user:" not in at.success[0].value
    assert userdata.list_user_datasets() == []
    assert at.session_state["dataset"] == "mnist"  # the sidebar falls back to a dataset that exists


def test_embedded_cifar10_page_says_it_is_a_lossy_copy(isolated):
    at = open_page("data", "cifar10")
    assert not at.exception
    assert "CIFAR-10 (embedded lossy JPEG copy)" in at.info[0].value
    assert "slightly lossy" in at.info[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Training images"] == "40,000" and metrics["Test images"] == "10,000"
    assert metrics["Image size"] == "32×32"
