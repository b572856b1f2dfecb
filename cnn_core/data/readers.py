"""Readers of the real dataset formats (IDX, the CIFAR-10 pickle, the lab's npz) and the downloads.

Downloads happen only when asked, and fail within seconds when offline.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from cnn_core import settings
from cnn_core.data.dataset import SPLIT_SEED, DatasetError, ProgressFn

MNIST_ASSET = settings.ASSETS_DIR / "mnist_subset.npz"
MNIST_SUBSET_TEST_SIZE = 2_000
DOWNLOAD_TIMEOUT_S = 10.0
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
CIFAR10_ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}

# IDX type codes (third byte of the magic number) and their big-endian numpy types.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# ---------------------------------------------------------------- readers of real formats


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzip-compressed or not.

    Args:
        path: the `.gz` or raw IDX file.

    Returns:
        The array with the shape and type the header declares.

    Raises:
        DatasetError: the file is missing, truncated, or its header is not IDX.
    """
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path}: cannot be read ({exc}). Download the file again.") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DatasetError(
            f"{path}: not an IDX file (bad header {raw[:4].hex()}); expected the "
            "MNIST/Fashion-MNIST format. Replace it with the original file."
        )
    ndim, dtype = raw[3], np.dtype(IDX_DTYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: the IDX header is truncated. Download the file again.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path}: the header declares shape {shape} ({expected:,} bytes of data) but the "
            f"file holds {len(raw) - header:,}; it is truncated or corrupt. Download it again."
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batches, which hold only dicts, bytes, lists and numpy arrays.

    Anything else (the way a malicious pickle runs code) is refused.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's own signature
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module.replace("numpy.core", "numpy._core"), name)


def _read_cifar_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:  # any malformed batch is the same problem for the user
        raise DatasetError(
            f"{where}: not a valid CIFAR-10 batch ({exc}). Replace {CIFAR10_ARCHIVE} "
            "with the original archive."
        ) from exc
    if len(images) != len(labels):
        raise DatasetError(f"{where}: {len(images)} images but {len(labels)} labels.")
    return images.transpose(0, 2, 3, 1), labels


def read_cifar10(location: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read CIFAR-10 "python version" batches from the tar.gz archive or its extracted folder.

    Args:
        location: `cifar-10-python.tar.gz`, or a `cifar-10-batches-py` folder.

    Returns:
        x_train (50000, 32, 32, 3), y_train, x_test (10000, 32, 32, 3), y_test.

    Raises:
        DatasetError: a batch is missing or malformed, or the archive is truncated.
    """
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {}
    try:
        if location.is_dir():
            for n in names:
                batches[n] = (location / n).read_bytes()
        else:
            with tarfile.open(location, "r:gz") as archive:
                for member in archive.getmembers():
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and base in names:
                        batches[base] = archive.extractfile(member).read()  # type: ignore[union-attr]
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise DatasetError(
            f"{location}: cannot be read ({exc}); it is truncated or not a tar.gz. "
            f"Download {CIFAR10_ARCHIVE} again."
        ) from exc
    missing = [n for n in names if n not in batches]
    if missing:
        raise DatasetError(
            f"{location}: {', '.join(missing)} missing; this is not the CIFAR-10 python "
            f"archive. Provide the original {CIFAR10_ARCHIVE}."
        )
    train = [_read_cifar_batch(batches[n], f"{location}:{n}") for n in names[:5]]
    x_test, y_test = _read_cifar_batch(batches["test_batch"], f"{location}:test_batch")
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test


def _load_npz_mnist(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"{path}: not a readable Keras mnist.npz ({exc}). Delete it and download again."
        ) from exc
    return arrays[0][..., None], arrays[1], arrays[2][..., None], arrays[3]


def _load_idx_set(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    arrays = {key: read_idx(folder / fname) for key, fname in FASHION_FILES.items()}
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise DatasetError(
                f"{folder}: {split} images and labels differ in count "
                f"({len(arrays[f'x_{split}'])} vs {len(arrays[f'y_{split}'])})."
            )
    return (
        arrays["x_train"][..., None],
        arrays["y_train"],
        arrays["x_test"][..., None],
        arrays["y_test"],
    )


def load_mnist_subset(
    path: Path = MNIST_ASSET,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The embedded 10,000 MNIST images, split 8,000 / 2,000 stratified with a fixed seed."""
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = f["x"], f["y"].astype(np.int64)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"{path}: the embedded MNIST asset is missing or damaged ({exc}). Restore it "
            "with `git checkout assets/` or rebuild it with scripts/build_mnist_asset.py."
        ) from exc
    # Imported here: scikit-learn takes ~1.8 s to import, which the first page need not wait for.
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x[..., None], y, test_size=MNIST_SUBSET_TEST_SIZE, stratify=y, random_state=SPLIT_SEED
    )
    return x_train, y_train, x_test, y_test


# ---------------------------------------------------------------- downloads, only when asked


def _download(url: str, dest: Path, sha256: str | None, progress: ProgressFn | None) -> Path:
    """Fetch url into dest atomically, checking the SHA-256 when one is known."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
            open(part, "wb") as out,
        ):
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DatasetError(
            f"Could not download {url} ({reason}). This machine seems to be offline or "
            f"cannot reach that host. Place the file at {dest} yourself, or try again online."
        ) from exc
    if sha256 and digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise DatasetError(
            f"The download of {url} is damaged (SHA-256 {digest.hexdigest()[:12]}…, expected "
            f"{sha256[:12]}…); nothing was kept. Try again."
        )
    os.replace(part, dest)
    return dest


def _download_mnist(progress: ProgressFn | None) -> Path:
    dest = settings.keras_datasets_dir() / "mnist.npz"
    return _download(KERAS_ORIGIN + "mnist.npz", dest, MNIST_SHA256, progress)


def _download_fashion(progress: ProgressFn | None) -> Path:
    folder = settings.keras_datasets_dir() / "fashion-mnist"
    for fname in FASHION_FILES.values():
        _download(KERAS_ORIGIN + fname, folder / fname, None, progress)
    _load_idx_set(folder)  # no published hashes for these, so check they parse before use
    return folder


def _download_cifar10(progress: ProgressFn | None) -> Path:
    return _download(
        CIFAR10_ORIGIN, settings.data_dir() / CIFAR10_ARCHIVE, CIFAR10_SHA256, progress
    )
