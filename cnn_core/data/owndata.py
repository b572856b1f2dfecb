"""The user's own images: a zip or a folder of class sub-folders, turned into a Dataset.

Zips come from browsers, so every member is checked before anything is written: no
absolute paths, no `..`, no links, a cap on the number of files and on the bytes actually
written (a zip can lie about its sizes). Non-images and nested archives are skipped and
reported; nothing is ever written outside the extraction folder.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageOps

from cnn_core.data import userdata
from cnn_core.data.dataset import SPLIT_SEED, Dataset, DatasetError
from cnn_core.data.decoding import ImageRejected, decode_image

MAX_FILES = 20_000
MAX_TOTAL_BYTES = 500 * 1024 * 1024
MAX_RATIO = 200  # deflate rarely beats 100:1 on images; far more is a zip bomb
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}
ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"}
MIN_TEST_PER_CLASS = 1


@dataclass
class ImportReport:
    """What an import kept and what it skipped, and why, for the Data page."""

    class_counts: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append((path, reason))


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member may not be extracted at all, or None when it may."""
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (parts and parts[0].endswith(":")):
        return "it has an absolute path"
    if ".." in parts:
        return "its path climbs out of the archive (..)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "it is a symbolic link"
    return None


def extract_zip(zip_path: Path, dest: Path, report: ImportReport) -> None:
    """Extract a zip of class folders into dest, safely.

    Raises:
        DatasetError: the archive is unreadable, holds a dangerous member (absolute path,
            `..`, link), too many files, or more bytes than allowed (a zip bomb).
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{zip_path.name}: not a readable zip file ({exc}).") from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        for info in members:
            problem = _member_problem(info)
            if problem:
                raise DatasetError(
                    f"{zip_path.name}: refused, because {info.filename!r} {problem}. "
                    "Zip only plain class folders of images."
                )
        if len(members) > MAX_FILES:
            raise DatasetError(
                f"{zip_path.name}: {len(members):,} files, over the {MAX_FILES:,} limit. "
                "Use fewer images per class."
            )
        declared = sum(m.file_size for m in members)
        if declared > MAX_TOTAL_BYTES:
            raise DatasetError(
                f"{zip_path.name}: {declared / 2**20:,.0f} MB uncompressed, over the "
                f"{MAX_TOTAL_BYTES / 2**20:,.0f} MB limit. Resize the images or use fewer."
            )
        written = 0
        for info in members:
            suffix = PurePosixPath(info.filename).suffix.lower()
            if suffix in ARCHIVE_SUFFIXES:
                report.skip(info.filename, "nested archives are not opened; unpack it first")
                continue
            if suffix not in IMAGE_SUFFIXES:
                report.skip(info.filename, "not an image file (PNG, JPEG, GIF, BMP or WebP)")
                continue
            ratio = info.file_size / info.compress_size if info.compress_size else 0
            if ratio > MAX_RATIO:
                raise DatasetError(
                    f"{zip_path.name}: {info.filename!r} expands {ratio:,.0f} times; that is "
                    "a zip bomb, not an image. Nothing was imported."
                )
            target = dest.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                # Count real bytes: the sizes in the directory are the archive's own claim.
                while chunk := src.read(1 << 16):
                    written += len(chunk)
                    if written > MAX_TOTAL_BYTES:
                        raise DatasetError(
                            f"{zip_path.name}: more than {MAX_TOTAL_BYTES / 2**20:,.0f} MB "
                            "once unpacked; nothing was imported."
                        )
                    out.write(chunk)


def _visible(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]


def _class_root(folder: Path) -> tuple[Path, bool]:
    """Skip single wrapper folders, as zips made by "compress folder" have one.

    Returns:
        The folder holding the class folders, and whether a wrapper was skipped.
    """
    skipped = False
    while True:
        entries = _visible(folder)
        dirs = [p for p in entries if p.is_dir()]
        if len(dirs) == 1 and len(entries) == 1:
            folder, skipped = dirs[0], True
        else:
            return folder, skipped


def _too_few_classes(root: Path, classes: list[str], skipped_wrapper: bool) -> str:
    """Why a folder cannot make a classifier's dataset, and how to fix it."""
    fix = (
        "A classifier needs at least two classes: put each class's images in its own "
        "sub-folder (e.g. cats/ and dogs/) and zip those folders together."
    )
    if classes:
        return f"Found one class only ({classes[0]}). {fix}"
    has_images = any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in _visible(root))
    if has_images and skipped_wrapper:
        # One folder of images: "compress folder" on a single class.
        return f"Found one class only ({root.name}). {fix}"
    if has_images:
        return f"The images are not in class folders. {fix}"
    return f"Found no class folders and no images. {fix}"


def _to_array(image: Image.Image, size: int, grayscale: bool) -> np.ndarray:
    # Crop the centre square, then resize: keeps proportions, as Teachable Machine does.
    fitted = ImageOps.fit(
        image.convert("L" if grayscale else "RGB"), (size, size), Image.Resampling.LANCZOS
    )
    pixels = np.asarray(fitted, dtype=np.uint8)
    return pixels[..., None] if grayscale else pixels


def read_image_folder(
    root: Path, *, image_size: int = 32, grayscale: bool = False, report: ImportReport | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], ImportReport]:
    """Read every image below root, one class per sub-folder.

    Returns:
        images (N, S, S, C) uint8, labels (N,), class names (sorted), and the report.

    Raises:
        DatasetError: fewer than 2 class folders, or a class with no readable image.
    """
    report = report or ImportReport()
    if not 8 <= image_size <= 128:
        raise DatasetError(f"Image size {image_size} is out of range: choose 8 to 128 pixels.")
    root, skipped_wrapper = _class_root(root)
    classes = sorted(p.name for p in _visible(root) if p.is_dir())
    if len(classes) < 2:
        raise DatasetError(_too_few_classes(root, classes, skipped_wrapper))
    images, labels = [], []
    for label, name in enumerate(classes):
        count = 0
        for path in sorted(p for p in (root / name).rglob("*") if p.is_file()):
            rel = str(path.relative_to(root))
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                report.skip(rel, "not an image file (PNG, JPEG, GIF, BMP or WebP)")
                continue
            try:
                image = decode_image(path.read_bytes(), rel)
            except ImageRejected as exc:
                report.skip(rel, str(exc))
                continue
            images.append(_to_array(image, image_size, grayscale))
            labels.append(label)
            count += 1
        if count == 0:
            raise DatasetError(
                f"Class {name!r} has no readable image. Add images or remove the folder."
            )
        report.class_counts[name] = count
    for path in root.iterdir():
        if path.is_file():
            report.skip(path.name, "outside any class folder")
    return np.stack(images), np.asarray(labels, dtype=np.int64), tuple(classes), report


def split_dataset(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    class_names: tuple[str, ...],
    *,
    test_fraction: float = 0.2,
) -> Dataset:
    """Split images into train/test, stratified when every class has enough images."""
    if not 0.05 <= test_fraction <= 0.5:
        raise DatasetError(f"Test fraction {test_fraction} is out of range: choose 0.05 to 0.5.")
    counts = np.bincount(y, minlength=len(class_names))
    stratify = y if counts.min() >= 2 else None
    n_test = (
        max(len(class_names) * MIN_TEST_PER_CLASS, round(len(y) * test_fraction))
        if stratify is not None
        else None
    )
    if n_test is not None and n_test >= len(y):
        stratify, n_test = None, None
    # Imported here: scikit-learn takes ~1.8 s to import, which the first page need not wait for.
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=n_test or test_fraction, stratify=stratify, random_state=SPLIT_SEED
    )
    return Dataset(
        name=name,
        title=f"Own images: {name}",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=class_names,
        source="user",
        source_description=(
            f"your own images: {len(y):,} in {len(class_names)} classes, "
            f"split {len(y_train):,} train / {len(y_test):,} test with a fixed seed"
        ),
    )


def import_images(
    source: Path,
    name: str,
    *,
    image_size: int = 32,
    grayscale: bool = False,
    test_fraction: float = 0.2,
) -> tuple[Dataset, ImportReport]:
    """Import a zip file or a folder of class sub-folders as a Dataset (not yet saved).

    Args:
        source: a `.zip` file or a folder.
        name: the dataset's name.
        image_size: every image becomes image_size × image_size (centre crop + resize).
        grayscale: one channel instead of three.
        test_fraction: share of images held out for testing.

    Returns:
        The Dataset and the report of what was kept and skipped.

    Raises:
        DatasetError: with a message that says what to fix.
    """
    report = ImportReport()
    if source.is_dir():
        x, y, classes, report = read_image_folder(
            source, image_size=image_size, grayscale=grayscale, report=report
        )
    else:
        workdir = Path(tempfile.mkdtemp(prefix="cnn-lab-import-"))
        try:
            extract_zip(source, workdir, report)
            x, y, classes, report = read_image_folder(
                workdir, image_size=image_size, grayscale=grayscale, report=report
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return split_dataset(name, x, y, classes, test_fraction=test_fraction), report


# ---------------------------------------------------------------- uploads and their names

DEFAULT_NAME = "my-images"
FALLBACK_FILE_NAME = "upload.zip"
MAX_FILE_NAME = 200
NEW, REPLACE, KEEP_BOTH = "new", "replace", "keep-both"


def _safe_file_name(filename: str) -> str:
    """The uploaded file's own base name, safe to create in a temporary folder."""
    base = PurePosixPath(filename.replace("\\", "/")).name[:MAX_FILE_NAME]
    return base if base not in ("", ".", "..") and "\0" not in base else FALLBACK_FILE_NAME


def default_name(filename: str) -> str:
    """A free dataset name from a zip's file name: "Cats and Dogs.zip" -> "cats-and-dogs",
    or "cats-and-dogs-2" when that is taken, so two students never collide."""
    stem = PurePosixPath(_safe_file_name(filename)).stem
    try:
        base = userdata.user_slug(stem)
    except DatasetError:  # a name of punctuation only
        base = DEFAULT_NAME
    return userdata.unique_user_name(base)


def import_upload(
    data: bytes,
    filename: str,
    name: str,
    *,
    image_size: int = 32,
    grayscale: bool = False,
    test_fraction: float = 0.2,
) -> tuple[Dataset, ImportReport]:
    """Import an uploaded zip (its bytes and the file name the browser gave) as a Dataset.

    Error messages name the file as the user knows it, not a temporary name.

    Raises:
        DatasetError: as import_images.
    """
    with tempfile.TemporaryDirectory(prefix="cnn-lab-upload-") as tmp:
        path = Path(tmp) / _safe_file_name(filename)
        path.write_bytes(data)
        return import_images(
            path, name, image_size=image_size, grayscale=grayscale, test_fraction=test_fraction
        )
