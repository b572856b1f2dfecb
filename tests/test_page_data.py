"""The Data page: AppTest for its logic (every dataset state, reshuffle, zip import)."""

import io
import zipfile

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnn_core import datasets
from tests.conftest import open_page


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
def test_unavailable_dataset_says_how_to_get_it_without_crashing(isolated, name):
    at = open_page("data", name)
    assert not at.exception
    assert "not available on this machine" in at.warning[0].value
    assert not at.metric


def test_download_offline_fails_fast_with_a_message(isolated, monkeypatch):
    at = open_page("data", "cifar10")
    monkeypatch.setattr(datasets, "CIFAR10_ORIGIN", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    at.button(key="download").click().run()
    assert not at.exception
    assert "Could not download" in at.error[0].value


def zip_of_classes(per_class: int = 3, bad: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for c in ("left", "right"):
            for i in range(per_class):
                img = io.BytesIO()
                Image.new("RGB", (20, 20), (i * 50, 0, 0)).save(img, "PNG")
                z.writestr(f"{c}/{i}.png", img.getvalue())
        z.writestr("left/notes.txt", "hi")
        if bad:
            z.writestr("../evil.png", "x")
    return buf.getvalue()


def import_zip(at: AppTest, data: bytes, name: str = "arrows") -> AppTest:
    at.file_uploader[0].set_value(("arrows.zip", data, "application/zip"))
    at.text_input[0].set_value(name)
    at.button[-1].click()  # the form's Import button
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
    at.button[-1].click()
    at.run()
    assert "Choose a zip file first" in at.error[0].value
