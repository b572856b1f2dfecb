"""Which images a run used: a dataset's version, and loading that very version again.

A user dataset's version is its fingerprint; a built-in dataset's is the source a run read
("source:embedded"), so a later download does not swap a run's test set.
"""

from __future__ import annotations

from cnn_core.data import datasets
from cnn_core.data.dataset import (
    USER_PREFIX,
    Dataset,
    DatasetGone,
    DatasetUnavailable,
)
from cnn_core.data.userdata import file_version, user_dataset_info, user_slug

SOURCE_VERSION = "source:"  # a built-in dataset's version is the source a run read


def dataset_fingerprint(name: str) -> str | None:
    """The version a run on this dataset trains on now: a user dataset's fingerprint, or
    for a built-in dataset the source in use ("source:embedded"): a download makes another
    source the first, but a run keeps the images it trained on (the 10,000-digit subset is
    not full MNIST). None when no source is ready."""
    if not name.startswith(USER_PREFIX):
        source = datasets.active_source(name)
        return SOURCE_VERSION + source.source if source else None
    return user_dataset_info(name).fingerprint


def dataset_version(name: str) -> str:
    """A cheap token that changes whenever load_dataset(name) would return other data, for
    cache keys: the file's identity for a user dataset (every save is a new file), the
    source in use for a built-in one (a download switches it)."""
    if name.startswith(USER_PREFIX):
        return file_version(name)
    source = datasets.active_source(name)
    return source.source if source else "missing"


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
        return datasets.load_dataset(name, source=source)
    title = datasets.dataset_title(name)
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
    return datasets.load_dataset(name, source=source)


def _load_builtin_version(name: str, source: str) -> Dataset:
    ready = {s.source: s for s in datasets.dataset_status(name)}
    if source in ready and not ready[source].available:
        raise DatasetGone(
            f"The images this run trained on ({datasets.dataset_title(name)}: "
            f"{ready[source].description}) are no longer on this machine. To bring them back: "
            f"{ready[source].detail}."
        )
    return datasets.load_dataset(name, source=source if source in ready else None)
