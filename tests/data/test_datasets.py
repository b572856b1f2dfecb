"""Every dataset source and every failure, on files in the real formats written here."""

import gzip
import io
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from cnn_core import settings
from cnn_core.data import cifar_images, datasets, readers
from cnn_core.data.dataset import Dataset, DatasetError, DatasetUnavailable

MNIST_SUBSET_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Point the lab, its data folder and the Keras cache at empty folders, and hide Debian's
    Fashion-MNIST unless a test puts it back."""
    monkeypatch.setenv(settings.HOME_ENV, str(tmp_path / "lab"))
    monkeypatch.setenv(settings.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(settings.KERAS_HOME_ENV, str(tmp_path / "keras"))
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_DIR", tmp_path / "no-debian")
    return tmp_path


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    raw = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_fashion(folder: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, fname in readers.FASHION_FILES.items():
        write_idx(folder / fname, arrays[key])
    return arrays


def cifar_batch_bytes(images: np.ndarray, labels: list[int]) -> bytes:
    # The real batches are pickles of a dict with byte-string keys (protocol 3 keeps bytes
    # native, as Python 2 strings load under encoding="bytes").
    batch = {b"batch_label": b"test", b"labels": labels, b"data": images.reshape(len(images), -1)}
    return pickle.dumps(batch, protocol=3)


def write_cifar_archive(path: Path, per_batch: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    first = None
    with tarfile.open(path, "w:gz") as archive:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            chw = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
            first = chw if first is None else first
            data = cifar_batch_bytes(chw, [int(v) for v in rng.integers(0, 10, per_batch)])
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return first


# ---------------------------------------------------------------- MNIST


def test_embedded_mnist_asset_holds_the_first_10000_with_known_label_counts():
    with np.load(readers.MNIST_ASSET, allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    assert x.shape == (10_000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y, minlength=10).tolist() == MNIST_SUBSET_COUNTS
    # 0 and 255 both occur: the asset is whole grey levels, not rescaled floats.
    assert x.min() == 0 and x.max() == 255


def test_embedded_mnist_split_is_stratified_and_reproducible():
    a = datasets.load_dataset("mnist", source="embedded")
    b = datasets.load_dataset("mnist", source="embedded")
    assert a.x_train.shape == (8_000, 28, 28, 1) and a.x_test.shape == (2_000, 28, 28, 1)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    test_share = np.bincount(a.y_test, minlength=10) / np.array(MNIST_SUBSET_COUNTS)
    assert np.all(np.abs(test_share - 0.2) < 0.01), test_share
    assert a.input_shape == (28, 28, 1) and a.num_classes == 10 and a.ink_on_dark


def test_mnist_prefers_the_full_keras_cache_and_says_which_is_in_use(isolated_home):
    status = datasets.dataset_status("mnist")
    assert [s.source for s in status] == ["keras-cache", "embedded"]
    assert not status[0].available and "download" in status[0].detail
    assert datasets.load_dataset("mnist").source == "embedded"
    assert datasets.active_title("mnist") == "MNIST (embedded 10,000 subset)"

    rng = np.random.default_rng(1)
    cache = isolated_home / "keras" / "datasets" / "mnist.npz"
    cache.parent.mkdir(parents=True)
    np.savez(
        cache,
        x_train=rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        y_train=np.arange(12) % 10,
        x_test=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        y_test=np.arange(5),
    )
    full = datasets.load_dataset("mnist")
    assert full.source == "keras-cache" and "70,000" in full.title
    assert datasets.active_title("mnist") == full.title
    assert full.x_train.shape == (12, 28, 28, 1) and full.y_test.tolist() == [0, 1, 2, 3, 4]


def test_damaged_keras_mnist_cache_is_a_clear_error(isolated_home):
    cache = isolated_home / "keras" / "datasets" / "mnist.npz"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="download again"):
        datasets.load_dataset("mnist", source="keras-cache")


def test_download_fails_fast_and_cleanly_offline(isolated_home, monkeypatch):
    monkeypatch.setattr(readers, "KERAS_ORIGIN", "http://127.0.0.1:9/")  # discard port: refused
    started = time.monotonic()
    with pytest.raises(DatasetError, match="offline"):
        datasets.download_dataset("mnist")
    assert time.monotonic() - started < 5
    assert not list((isolated_home / "keras").rglob("*.part")), "a partial download was left"


def test_download_checks_the_sha256_and_keeps_nothing_on_mismatch(isolated_home, monkeypatch):
    served = isolated_home / "served" / "mnist.npz"
    served.parent.mkdir()
    served.write_bytes(b"not the real mnist")
    monkeypatch.setattr(readers, "KERAS_ORIGIN", served.parent.as_uri() + "/")
    seen = []
    with pytest.raises(DatasetError, match="damaged"):
        datasets.download_dataset("mnist", progress=lambda done, total: seen.append(done))
    assert seen and seen[-1] == len(b"not the real mnist")
    assert not (isolated_home / "keras" / "datasets" / "mnist.npz").exists()


def test_download_with_the_right_hash_lands_in_the_keras_cache(isolated_home, monkeypatch):
    served = isolated_home / "served" / "mnist.npz"
    served.parent.mkdir()
    buf = io.BytesIO()
    np.savez(buf, x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.array([3, 4]),
             x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.array([5]))  # fmt: skip
    served.write_bytes(buf.getvalue())
    import hashlib

    monkeypatch.setattr(readers, "KERAS_ORIGIN", served.parent.as_uri() + "/")
    monkeypatch.setattr(readers, "MNIST_SHA256", hashlib.sha256(buf.getvalue()).hexdigest())
    datasets.download_dataset("mnist")
    assert datasets.load_dataset("mnist").y_train.tolist() == [3, 4]


# ---------------------------------------------------------------- IDX and Fashion-MNIST


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips_uint8_and_int32(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(
        readers.read_idx(write_idx(tmp_path / "a", images, compress)), images
    )
    ints = np.array([-7, 1 << 20, 3], dtype=">i4")
    np.testing.assert_array_equal(
        readers.read_idx(write_idx(tmp_path / "b", ints, compress)), [-7, 1 << 20, 3]
    )


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x12\x34\x08\x01\x00\x00\x00\x02ab", "not an IDX"),
        (b"\x00\x00\x08\x03\x00\x00", "header is truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05ab", "truncated or corrupt"),
        (b"", "not an IDX"),
    ],
)
def test_read_idx_rejects_bad_headers_and_truncation(tmp_path, raw, message):
    path = tmp_path / "bad-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(raw))
    with pytest.raises(DatasetError, match=message):
        readers.read_idx(path)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x04abcd")[:12])
    with pytest.raises(DatasetError, match="again"):
        readers.read_idx(path)


def test_fashion_sources_in_order_data_dir_then_debian_then_keras(isolated_home, monkeypatch):
    assert not datasets.is_available("fashion_mnist")
    with pytest.raises(DatasetUnavailable, match="apt-get install dataset-fashion-mnist"):
        datasets.load_dataset("fashion_mnist")

    debian = isolated_home / "debian"
    write_fashion(debian, seed=1)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_DIR", debian)
    ds = datasets.load_dataset("fashion_mnist")
    assert ds.source == "debian" and ds.x_train.shape == (30, 28, 28, 1)
    assert ds.class_names[9] == "Ankle boot"

    arrays = write_fashion(isolated_home / "data" / "fashion-mnist", n_train=7, seed=2)
    ds = datasets.load_dataset("fashion_mnist")
    assert ds.source == "data-dir"
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"])


def test_fashion_with_mismatched_counts_is_a_clear_error(isolated_home):
    folder = isolated_home / "data" / "fashion-mnist"
    write_fashion(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(DatasetError, match="differ in count"):
        datasets.load_dataset("fashion_mnist")


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists(),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install it)",
)
def test_debian_fashion_mnist_is_the_full_60000_10000(monkeypatch):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_DIR", Path("/usr/share/datasets/fashion-mnist"))
    ds = datasets.load_dataset("fashion_mnist", source="debian")
    assert ds.x_train.shape == (60_000, 28, 28, 1) and ds.x_test.shape == (10_000, 28, 28, 1)
    assert np.bincount(ds.y_train).tolist() == [6_000] * 10
    assert np.bincount(ds.y_test).tolist() == [1_000] * 10


# ---------------------------------------------------------------- CIFAR-10


def test_cifar10_without_its_embedded_copy_names_the_exact_file(isolated_home, monkeypatch):
    monkeypatch.setattr(cifar_images, "CIFAR10_JPEG_ASSET", isolated_home / "gone.npz")
    status_dir, status_keras, status_folder, status_embedded = datasets.dataset_status("cifar10")
    assert not status_dir.available and "cifar-10-python.tar.gz" in status_dir.detail
    assert not status_embedded.available and "git checkout assets/" in status_embedded.detail
    with pytest.raises(DatasetUnavailable, match="cifar-10-python.tar.gz"):
        datasets.load_dataset("cifar10")


def test_cifar10_archive_in_the_data_dir_loads_channels_last(isolated_home):
    first = write_cifar_archive(isolated_home / "data" / "cifar-10-python.tar.gz")
    ds = datasets.load_dataset("cifar10")
    assert ds.source == "data-dir"
    assert ds.x_train.shape == (20, 32, 32, 3) and ds.x_test.shape == (4, 32, 32, 3)
    # CHW in the file, HWC in the lab: pixel (row 5, col 7) of channel 2 must land at [5, 7, 2].
    assert ds.x_train[0, 5, 7, 2] == first[0, 2, 5, 7]
    assert ds.class_names[0] == "airplane"


def test_cifar10_extracted_keras_folder_loads(isolated_home):
    archive = isolated_home / "tmp.tar.gz"
    write_cifar_archive(archive, per_batch=2)
    target = isolated_home / "keras" / "datasets" / "cifar-10-batches-py-target"
    target.mkdir(parents=True)
    with tarfile.open(archive) as t:
        t.extractall(target, filter="data")
    assert datasets.load_dataset("cifar10").source == "keras-cache"


def test_cifar10_refuses_a_pickle_that_would_run_code(isolated_home):
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    path = isolated_home / "data" / "cifar-10-python.tar.gz"
    path.parent.mkdir(parents=True)
    evil = pickle.dumps({b"data": Exploit(), b"labels": [1]}, protocol=3)
    with tarfile.open(path, "w:gz") as archive:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(evil)
            archive.addfile(info, io.BytesIO(evil))
    with pytest.raises(DatasetError, match="refusing to load builtins.print"):
        datasets.load_dataset("cifar10")


@pytest.mark.parametrize("damage", ["truncated", "missing-batch", "not-tar"])
def test_damaged_cifar10_archives_are_clear_errors(isolated_home, damage):
    path = isolated_home / "data" / "cifar-10-python.tar.gz"
    write_cifar_archive(path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "not-tar":
        path.write_bytes(b"hello")
    else:
        with tarfile.open(path, "w:gz") as archive:
            data = cifar_batch_bytes(np.zeros((1, 3, 32, 32), np.uint8), [0])
            info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    with pytest.raises(DatasetError, match="CIFAR-10|again|original"):
        datasets.load_dataset("cifar10")


# ---------------------------------------------------------------- registry edges


def test_unknown_dataset_names_the_valid_ones():
    with pytest.raises(DatasetError, match="mnist, fashion_mnist, cifar10"):
        datasets.load_dataset("imagenet")


def test_unknown_source_names_the_valid_ones():
    with pytest.raises(DatasetError, match="keras-cache, embedded"):
        datasets.load_dataset("mnist", source="floppy")


def test_status_never_raises_for_any_known_dataset():
    for name in datasets.list_datasets():
        assert datasets.dataset_status(name)


def test_dataset_stats_match_numpy_on_a_hand_made_dataset():
    x = np.zeros((4, 2, 2, 1), np.uint8)
    x[0] = 255  # mean over all 16 pixels = 4 * 255 / 16
    ds = Dataset("t", "t", x, np.array([0, 1, 1, 2]), x[:1], np.array([2]),
                          ("a", "b", "c"), "test", "test")  # fmt: skip
    stats = datasets.dataset_stats(ds)
    assert stats.train_per_class == (1, 2, 1) and stats.test_per_class == (0, 0, 1)
    assert stats.pixel_mean == pytest.approx(63.75)
    assert stats.pixel_std == pytest.approx(np.std([255] * 4 + [0] * 12))
    assert stats.image_shape == (2, 2, 1)


def test_sample_indices_are_reproducible_and_distinct():
    ds = datasets.load_dataset("mnist", source="embedded")
    a, b = datasets.sample_indices(ds, 24, 7), datasets.sample_indices(ds, 24, 7)
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == 24
    assert not np.array_equal(a, datasets.sample_indices(ds, 24, 8))
