"""Parameters and a rough seconds per epoch of every zoo model from a few plain
`train_on_batch` steps at batch 128 (it was the measurement at the end of
tests/models/test_models.py; benchmarks/zoo.py measures the run defaults instead):

    .venv/bin/python benchmarks/zoo_train_step.py

Times a few ``train_on_batch`` steps after a warm-up and extrapolates to 60,000
28×28×1 images (MNIST, Fashion-MNIST) and 50,000 32×32×3 images (CIFAR-10). Wall time
is noisy on a shared machine; "cpu/2" (process CPU time over two cores) estimates an
idle two-core machine.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cnn_core.models.layer_lists import default_custom_layers  # noqa: E402
from cnn_core.models.zoo import MODELS, build_model  # noqa: E402

ZOO = [key for key in MODELS if key != "custom"]
NUM_CLASSES = 10


def measure_epoch_seconds(steps: int = 5) -> None:
    """Prints parameters and a rough seconds/epoch per zoo model at batch 128."""
    rng = np.random.default_rng(0)
    print(f"{'model':20} {'params 28x28x1':>15} {'params 32x32x3':>15}  s/epoch (wall | cpu/2)")
    for key in ZOO:
        cells = []
        for shape, images in (((28, 28, 1), 60_000), ((32, 32, 3), 50_000)):
            layers = default_custom_layers() if key == "custom" else None
            model = build_model(key, shape, NUM_CLASSES, layers)
            info = MODELS[key]
            optimizer = keras.optimizers.get(info.optimizer)  # by name, as the engine does
            optimizer.learning_rate = info.learning_rate
            model.compile(optimizer, "sparse_categorical_crossentropy")
            x = rng.random((128, *shape), dtype=np.float32)
            y = rng.integers(0, NUM_CLASSES, 128)
            for _ in range(2):
                model.train_on_batch(x, y)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                model.train_on_batch(x, y)
            batches = math.ceil(images / 128)
            wall = (time.perf_counter() - wall) / steps * batches
            cpu = (time.process_time() - cpu) / steps * batches / 2
            cells.append((model.count_params(), wall, cpu))
            keras.backend.clear_session()
        (p28, w28, c28), (p32, w32, c32) = cells
        print(
            f"{key:20} {p28:>15,} {p32:>15,}  MNIST {w28:4.0f} | {c28:4.0f}"
            f"   CIFAR {w32:4.0f} | {c32:4.0f}",
            flush=True,
        )


if __name__ == "__main__":
    measure_epoch_seconds()
