"""Timings of the explanations, printed (they were print-only "tests" before):

    .venv/bin/python benchmarks/explain_timing.py

all feature maps of one input of the simple ConvNet (first call, then the median of four),
activation maximisation of conv2 for the default 60 steps once compiled, and the scores of
10,000 predictions (first call, then the best of two).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from cnn_core.explain.evaluation import evaluate_predictions  # noqa: E402
from cnn_core.explain.inspection import feature_maps  # noqa: E402
from cnn_core.explain.maximization import activation_maximization, maximize_activation  # noqa: E402
from devtools.explain_inputs import random_predictions, seeded_digit, small_convnet  # noqa: E402


def feature_maps_timing() -> None:
    digit = seeded_digit(5)
    model = small_convnet(seed=3)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        feature_maps(model, digit)
        times.append(time.perf_counter() - start)
    print(
        f"feature_maps, 5 layers of a 28×28 simple ConvNet: first {times[0] * 1000:.0f} ms, "
        f"then {np.median(times[1:]) * 1000:.1f} ms (median)"
    )


def activation_maximization_timing() -> None:
    convnet = small_convnet()
    maximize_activation(convnet, "conv2", 0, steps=1)
    start = time.perf_counter()
    activation_maximization(convnet, "conv2", 7)
    print(f"activation maximisation conv2, 60 steps: {time.perf_counter() - start:.2f} s")


def evaluation_timing() -> None:
    y, probs = random_predictions(10_000, 10)
    names = [str(i) for i in range(10)]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        evaluate_predictions(y, probs, names)
        times.append(time.perf_counter() - start)
    print(
        f"evaluate_predictions on 10,000 x 10 classes: first {times[0] * 1000:.0f} ms, "
        f"then {min(times[1:]) * 1000:.0f} ms"
    )


def main() -> int:
    feature_maps_timing()
    activation_maximization_timing()
    evaluation_timing()
    return 0


if __name__ == "__main__":
    sys.exit(main())
