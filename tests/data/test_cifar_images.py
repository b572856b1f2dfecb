"""CIFAR-10 as image files: the embedded JPEG pack, class-folder copies, and the order in
which the registry tries CIFAR-10's sources. Every file is written here in its real format."""

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_core import settings
from cnn_core.data import cifar_images, datasets
from cnn_core.data.cifar_images import CIFAR10_CLASSES
from cnn_core.data.dataset import DatasetError


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.HOME_ENV, str(tmp_path / "lab"))
    monkeypatch.setenv(settings.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(settings.KERAS_HOME_ENV, str(tmp_path / "keras"))
    return tmp_path


def photo(seed: int) -> np.ndarray:
    """A 32×32 colour image with smooth parts and edges, as photos have (pure noise would
    make JPEG's errors large and the comparison weak)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    base = np.stack([xx * 8, yy * 8, (xx + yy) * 4], axis=-1) + rng.integers(0, 60, 3)
    base[rng.integers(0, 24) :, rng.integers(0, 24) :] //= 2
    return np.clip(base, 0, 255).astype(np.uint8)


def jpeg_bytes(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=75, subsampling=2)
    return out.getvalue()


def small_pack(path: Path, per_class: int = 5) -> tuple[list[bytes], np.ndarray]:
    files, labels = [], []
    for label in range(10):
        for k in range(per_class):
            files.append(jpeg_bytes(photo(100 * label + k)))
            labels.append(label)
    cifar_images.write_jpeg_pack(path, files, np.asarray(labels))
    return files, np.asarray(labels)


def write_folder(root: Path, per_class: int, fmt: str = "PNG", seed: int = 0) -> dict:
    """root/<class>/NNNN.<ext> for the ten classes; returns {path: pixels}."""
    written = {}
    for label, name in enumerate(CIFAR10_CLASSES):
        (root / name).mkdir(parents=True)
        for k in range(per_class):
            image = photo(seed + 100 * label + k)
            path = root / name / f"{k:04d}.{fmt.lower()}"
            Image.fromarray(image).save(path, format=fmt)
            written[path] = image
    return written


# ---------------------------------------------------------------- the JPEG pack


def test_a_pack_keeps_every_files_own_bytes_and_is_reproducible(tmp_path):
    files, labels = small_pack(tmp_path / "a.npz")
    small_pack(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    data, offsets, read_labels = cifar_images.read_jpeg_pack(tmp_path / "a.npz")
    stored = data.tobytes()
    assert [stored[offsets[i] : offsets[i + 1]] for i in range(len(files))] == files
    assert read_labels.tolist() == labels.tolist()
    assert not list(tmp_path.glob("*.part"))  # written atomically


def test_decoding_a_pack_gives_pillows_pixels(tmp_path):
    files, _ = small_pack(tmp_path / "a.npz")
    data, offsets, _ = cifar_images.read_jpeg_pack(tmp_path / "a.npz")
    decoded = cifar_images.decode_jpegs(data, offsets, "test")
    reference = np.stack([np.asarray(Image.open(io.BytesIO(f)).convert("RGB")) for f in files])
    assert decoded.shape == (50, 32, 32, 3) and decoded.dtype == np.uint8
    assert np.array_equal(decoded, reference)
    picked = cifar_images.decode_jpegs(data, offsets, "test", np.array([7, 3]))
    assert np.array_equal(picked, reference[[7, 3]])


def test_the_embedded_split_is_stratified_reproducible_and_disjoint(tmp_path):
    files, labels = small_pack(tmp_path / "a.npz", per_class=10)
    x_train, y_train, x_test, y_test = cifar_images.load_embedded(tmp_path / "a.npz")
    again = cifar_images.load_embedded(tmp_path / "a.npz")
    assert all(
        np.array_equal(a, b) for a, b in zip((x_train, y_train, x_test, y_test), again, strict=True)
    )
    assert np.bincount(y_test, minlength=10).tolist() == [2] * 10  # a fifth of each class
    assert np.bincount(y_train, minlength=10).tolist() == [8] * 10
    # Every image is in exactly one split, with its own label.
    reference = {
        np.asarray(Image.open(io.BytesIO(f)).convert("RGB")).tobytes(): int(label)
        for f, label in zip(files, labels, strict=True)
    }
    x_all, y_all = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
    seen = [(x.tobytes(), int(y)) for x, y in zip(x_all, y_all, strict=True)]
    assert sorted(seen) == sorted(reference.items())


def test_a_damaged_pack_is_a_clear_error(tmp_path):
    small_pack(tmp_path / "a.npz")
    raw = bytearray((tmp_path / "a.npz").read_bytes())
    with pytest.raises(DatasetError, match="damaged or changed.*git checkout assets/"):
        cifar_images.read_jpeg_pack(tmp_path / "a.npz", sha256="0" * 64)
    (tmp_path / "cut.npz").write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(DatasetError, match="not a CIFAR-10 JPEG pack"):
        cifar_images.read_jpeg_pack(tmp_path / "cut.npz")
    with pytest.raises(DatasetError, match="cannot be read"):
        cifar_images.read_jpeg_pack(tmp_path / "missing.npz")


def test_the_shipped_asset_holds_5000_images_per_class_and_its_checksum():
    path = cifar_images.CIFAR10_JPEG_ASSET
    assert hashlib.sha256(path.read_bytes()).hexdigest() == cifar_images.CIFAR10_JPEG_ASSET_SHA256
    data, offsets, labels = cifar_images.read_jpeg_pack(path)
    assert np.bincount(labels).tolist() == [5_000] * 10
    train, test = cifar_images.lab_split_indices(labels)
    assert (len(train), len(test)) == (40_000, 10_000)
    assert np.bincount(labels[test]).tolist() == [1_000] * 10
    assert not set(train.tolist()) & set(test.tolist())
    # The first images of each class decode as Pillow decodes them (the file's own bytes).
    firsts = np.searchsorted(labels, np.arange(10))
    decoded = cifar_images.decode_jpegs(data, offsets, "asset", firsts)
    buffer = data.tobytes()
    for row, i in enumerate(firsts):
        file = buffer[offsets[i] : offsets[i + 1]]
        assert file[:2] == b"\xff\xd8"
        assert np.array_equal(decoded[row], np.asarray(Image.open(io.BytesIO(file)).convert("RGB")))


# ---------------------------------------------------------------- class folders


def test_a_train_only_folder_copy_is_split_like_the_embedded_copy(isolated_home):
    written = write_folder(isolated_home / "data" / "cifar10" / "train", per_class=5)
    ds = datasets.load_dataset("cifar10")
    assert ds.source == "folder" and ds.title == "CIFAR-10 (your image folders)"
    assert (len(ds.y_train), len(ds.y_test)) == (40, 10)
    assert np.bincount(ds.y_test, minlength=10).tolist() == [1] * 10
    by_pixels = {
        image.tobytes(): CIFAR10_CLASSES.index(p.parent.name) for p, image in written.items()
    }
    for x, y in zip(
        np.concatenate([ds.x_train, ds.x_test]),
        np.concatenate([ds.y_train, ds.y_test]),
        strict=True,
    ):
        assert by_pixels[x.tobytes()] == y  # PNG is lossless: the very pixels, with their class


def test_a_folder_copy_with_test_folders_uses_them(isolated_home):
    root = isolated_home / "data" / "CIFAR-10-images"
    write_folder(root / "train", per_class=3, fmt="JPEG")
    test = write_folder(root / "test", per_class=2, fmt="PNG", seed=5000)
    ds = datasets.load_dataset("cifar10")
    assert ds.source == "folder"
    assert (len(ds.y_train), len(ds.y_test)) == (30, 20)
    assert np.array_equal(ds.x_test[0], test[root / "test" / "airplane" / "0000.png"])


def test_folder_copies_with_wrong_classes_or_sizes_say_what_to_fix(isolated_home):
    root = isolated_home / "data" / "cifar10" / "train"
    write_folder(root, per_class=1)
    (root / "dog").rename(root / "puppy")
    with pytest.raises(DatasetError, match="missing: dog; unknown: puppy"):
        datasets.load_dataset("cifar10", source="folder")
    (root / "puppy").rename(root / "Dog")  # folder names in any case
    Image.new("RGB", (64, 48)).save(root / "Dog" / "big.png")
    with pytest.raises(DatasetError, match=r"big\.png: the image is 64×48.*32×32"):
        datasets.load_dataset("cifar10", source="folder")
    (root / "Dog" / "big.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=r"big\.png: not a readable image"):
        datasets.load_dataset("cifar10", source="folder")


# ---------------------------------------------------------------- which source is used


def test_cifar10_sources_are_tried_official_then_folders_then_embedded(isolated_home):
    status = datasets.dataset_status("cifar10")
    assert [s.source for s in status] == ["data-dir", "keras-cache", "folder", "embedded"]
    assert [s.available for s in status] == [False, False, False, True]
    assert datasets.active_title("cifar10") == "CIFAR-10 (embedded lossy JPEG copy)"
    assert "lossy" in status[-1].description
    write_folder(isolated_home / "data" / "cifar10" / "train", per_class=1)
    assert datasets.active_source("cifar10").source == "folder"


def test_the_embedded_cifar10_loads_as_the_labs_dataset():
    ds = datasets.load_dataset("cifar10", source="embedded")
    assert ds.source == "embedded" and ds.x_train.shape == (40_000, 32, 32, 3)
    assert ds.x_test.shape == (10_000, 32, 32, 3) and ds.class_names == CIFAR10_CLASSES
    assert np.bincount(ds.y_train).tolist() == [4_000] * 10
    assert not ds.ink_on_dark
