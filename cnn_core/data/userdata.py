"""The user's own datasets: saved once under the lab home, immutable, each with a fingerprint.

Saving the same images again under their name changes nothing; other images under a taken
name are refused unless replacing is asked for and no run used the saved version.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn_core import settings
from cnn_core.data.dataset import (
    USER_PREFIX,
    Dataset,
    DatasetError,
    DatasetExists,
    DatasetInUse,
    DatasetUnavailable,
)

# ---------------------------------------------------------------- the user's own datasets
#
# A saved dataset is one file, datasets/<slug>.npz, written once (temp file + os.replace)
# and never changed in place while a run trained on it: a second import under a taken name
# is refused unless the caller asks to replace it, and replacing is refused while any run
# used that version. Each file holds its fingerprint (SHA-256 of the arrays and the class
# names), so a run can record the exact images it trained on and check them later.

MAX_SLUG_LENGTH = 40
USER_LOCK = ".lock"


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
        return user_title(self.key)


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


def user_title(key: str) -> str:
    """A user dataset's human name ("Own images: pets")."""
    return f"Own images: {user_slug(key)}"


def file_version(name: str) -> str:
    """A cheap token that changes with every save of a user dataset (each save is a new
    file): the file's identity, or "missing"."""
    try:
        st = _user_dataset_path(name).stat()
    except (OSError, DatasetError):
        return "missing"
    return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"


def _user_dir() -> Path:
    return settings.lab_home() / "datasets"


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
        version = file_version(path.stem)
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


def save_user_dataset(
    dataset: Dataset,
    name: str,
    *,
    replace: bool = False,
    users_of: Callable[[str, str | None], list[str]] | None = None,
) -> str:
    """Save an imported dataset under the lab home so training workers can load it by name.

    Saving the same images again under their name changes nothing. Other images under a
    taken name are refused unless replace is True, and replacing is refused while a run
    (of any state) trained on the saved version, as its evaluation needs those images.

    Args:
        dataset: the images, e.g. from owndata.import_images.
        name: the dataset's name; it is saved under its slug ("My Photos" -> "my-photos").
        replace: overwrite a saved dataset of that name that no run used.
        users_of: (key, fingerprint) -> the runs ("id (name)") that used that version;
            needed to replace (cnn_core.runs.dataset_use passes the run store's answer).

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
            if users_of is None:
                raise TypeError("replacing a saved dataset needs users_of")
            users = users_of(key, old.fingerprint)
            if users:
                raise DatasetInUse(
                    f"{user_title(key)} cannot be replaced: {len(users)} run(s) trained on "
                    f"it ({', '.join(users)}) and their evaluation needs those images. Save "
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


def delete_user_dataset(name: str, *, active_users_of: Callable[[str], list[str]]) -> None:
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
        active = active_users_of(key)
        if active:
            raise DatasetInUse(
                f"{user_title(key)} cannot be deleted while {', '.join(active)} trains on "
                "it. Stop that run first, or wait until it ends."
            )
        path.unlink()


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
        title=user_title(key),
        x_train=arrays["x_train"],
        y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"],
        y_test=arrays["y_test"].astype(np.int64),
        class_names=tuple(str(c) for c in arrays["class_names"]),
        source="user",
        source_description=meta.get("source_description", "your own images"),
        fingerprint=meta.get("fingerprint"),
    )
