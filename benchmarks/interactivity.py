"""How quickly the lab answers a learner: canvas → probabilities, confusion matrix, feature
maps, and Inspect's whole-network view (overview of a new image, one unit explained).

    .venv/bin/python benchmarks/interactivity.py [--repeats 100]

Uses the shipped MNIST model. Prints median and p95 of each step in milliseconds, and the
targets from the issue (canvas ≤ 20 ms, confusion matrix on 10,000 < 3 s, all feature
maps of one input < 300 ms). Figures, never asserts: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnn_core.data import datasets  # noqa: E402
from cnn_core.explain import (  # noqa: E402
    evaluation,
    inference,
    inspection,
    network_pictures,
    preprocess,
    units,
)
from cnn_core.models import shipped  # noqa: E402

CANVAS = 280


def timed(fn, repeats: int) -> list[float]:
    fn()  # the first call traces and compiles; a learner pays it once per model
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def stroke_canvas(seed: int) -> np.ndarray:
    """An RGBA canvas with a random thick stroke, like a drawn digit."""
    rng = np.random.default_rng(seed)
    rgba = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    x0, y0 = rng.integers(60, 220, 2)
    for t in np.linspace(0, 1, 60):
        x, y = int(x0 + 80 * np.sin(3 * t)), int(y0 - 100 + 200 * t)
        rgba[max(y - 10, 0) : y + 10, max(x - 10, 0) : x + 10] = 255
    return rgba


def row(name: str, samples: list[float], target: str) -> str:
    p95 = float(np.percentile(samples, 95))
    return f"| {name} | {statistics.median(samples):.1f} | {p95:.1f} | {target} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    info = shipped.list_pretrained("mnist")[0]
    model = shipped.load_pretrained(info)
    predictor = inference.Predictor(model)
    canvases = [stroke_canvas(i) for i in range(8)]
    counter = iter(range(10**9))

    def canvas_to_probs() -> None:
        rgba = canvases[next(counter) % len(canvases)]
        steps = preprocess.prepare_digit(preprocess.canvas_to_gray(rgba))
        predictor.predict_proba(steps.model_input)

    ds = datasets.load_dataset("mnist", source="embedded")
    x10k = np.concatenate([ds.x_train, ds.x_test])[:10_000]
    y10k = np.concatenate([ds.y_train, ds.y_test])[:10_000]

    def confusion_10k() -> None:
        probs = inference.predict_in_batches(predictor, x10k)
        evaluation.evaluate_predictions(y10k, probs, ds.class_names)

    one = ds.x_test[0].astype(np.float32) / 255.0
    print("| step | median ms | p95 ms | target |")
    print("|---|---|---|---|")
    print(row("canvas image → probabilities (preprocess + predict)",
              timed(canvas_to_probs, args.repeats), "≤ 20 ms"))  # fmt: skip
    print(row("model.predict on one image (for comparison)",
              timed(lambda: model.predict(one[None], verbose=0), 20), "—"))  # fmt: skip
    maps = timed(lambda: inspection.feature_maps(model, one), 30)
    print(row("all feature maps of one input", maps, "< 300 ms"))
    print(
        row(
            "predict + confusion matrix + report, 10,000 images",
            timed(confusion_10k, 5),
            "< 3,000 ms",
        )
    )
    for key in ("mnist", "cifar10"):
        explain_rows(key, args.repeats // 5 or 1)


def explain_rows(key: str, repeats: int) -> None:
    """Inspect's whole-network tab: the overview of a new image (every layer's output and
    its pictures) and one unit's explanation, for a shipped model."""
    info = shipped.list_pretrained(key)[0]
    model = shipped.load_pretrained(info)
    images = datasets.load_dataset(key).x_test[:16].astype(np.float32) / 255.0
    counter = iter(range(10**9))

    def overview() -> dict:
        trace = units.trace_layers(model, images[next(counter) % len(images)])
        for values in trace.values():
            if values.ndim == 3:
                network_pictures.maps_strip(values, 0, 8, 64)
            else:
                network_pictures.vector_strip(values, 8)
        return trace

    trace = overview()
    image = images[(next(counter) - 1) % len(images)]
    convs = [layer.name for layer in model.layers if type(layer).__name__ == "Conv2D"]
    dense = model.layers[-1].name
    print(row(f"{key}: overview of a new image (all layers traced and drawn)",
              timed(overview, repeats), "≤ 1,000 ms"))  # fmt: skip
    for layer, unit in ((convs[-1], (1, 1, 0)), (dense, (0,))):
        samples = timed(
            lambda layer=layer, unit=unit: units.explain_unit(
                model, image, layer, unit, trace=trace
            ),
            repeats,
        )
        print(row(f"{key}: explain one unit of {layer}", samples, "≤ 300 ms"))


if __name__ == "__main__":
    main()
