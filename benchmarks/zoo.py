"""Parameters, FLOPs and seconds per epoch of every zoo model, for the Train page's estimate.

    .venv/bin/python benchmarks/zoo.py [--seconds 6] [--only lenet5 vgg] [--no-save]

Each model trains on random images of 28×28×1 (60,000 a epoch, like MNIST and
Fashion-MNIST) and 32×32×3 (50,000, CIFAR-10's shape; CIFAR-10 itself is not available
offline) with the run defaults a new run gets on this machine (batch size, precision,
threads, the engine's input pipeline), for about --seconds after the first pass has
traced the graph; the epoch time is extrapolated from that rate. Speed does not depend on
what the images show. Saved to assets/benchmarks.json ("seconds_per_epoch"), where the
Train page reads its estimate, unless --no-save.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, measure_training  # noqa: E402

from cnn_core.models import layer_lists, summaries, zoo  # noqa: E402
from cnn_core.runs import pipeline, presets, run_config, training  # noqa: E402

SHAPES = (((28, 28, 1), 60_000), ((32, 32, 3), 50_000))
SAMPLE_IMAGES = 2048  # one pass over these traces the graph, then they repeat


def measure(key: str, shape: tuple[int, int, int], seconds: float) -> dict:
    """Images/s of one zoo model at the run defaults, in this process."""
    import keras

    def build(cfg: run_config.RunConfig) -> keras.Model:
        keras.utils.set_random_seed(0)
        model = zoo.build_model(key, shape, 10, layers=None)
        training.compile_model(model, training.make_optimizer(cfg, 1000))
        return model

    m = measure_training(build, shape, run_config.RunConfig(model=key), SAMPLE_IMAGES, seconds)
    model, cfg = m["model"], m["config"]
    flops = summaries.training_flops(model)[1]
    keras.backend.clear_session()
    return {"images_per_s": m["images_per_s"], "cpu_images_per_s": m["cpu_images_per_s"],
            "params": model.count_params(), "flops": flops, "batch_size": cfg.batch_size,
            "mixed_precision": cfg.mixed_precision}  # fmt: skip


def save(results: dict[str, dict[str, dict]]) -> None:
    path = presets.MEASUREMENTS
    data = json.loads(path.read_text()) if path.exists() else {}
    table = data.setdefault("seconds_per_epoch", {})
    for key, by_shape in results.items():
        table.setdefault(key, {}).update(by_shape)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds a model")
    parser.add_argument("--only", nargs="*", help="model keys (default: the whole zoo)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    pipeline.configure_threads()
    keys = [k for k in zoo.MODELS if k != layer_lists.CUSTOM and (not args.only or k in args.only)]
    print(machine())
    print("| model | params 28×28×1 | training MFLOP/image 28×28×1 | s/epoch 60,000×28×28×1 | "
          "s/epoch 50,000×32×32×3 | GFLOP/s 28×28×1 | "
          "CPU-time s/epoch 28×28×1 / 32×32×3 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    results: dict[str, dict[str, dict]] = {}
    for key in keys:
        cells = {}
        for shape, images in SHAPES:
            m = measure(key, shape, args.seconds)
            cells["x".join(map(str, shape))] = {
                "seconds": round(images / m["images_per_s"], 1),
                "cpu_seconds": round(images / m["cpu_images_per_s"], 1),
                "images": images,
                "batch_size": m["batch_size"],
                "mixed_precision": m["mixed_precision"],
                "gflops": round(m["images_per_s"] * m["flops"] / 1e9, 1),
                "measured": time.strftime("%Y-%m-%d"),
                "by": "benchmarks/zoo.py",
            }
            if shape == SHAPES[0][0]:
                first = m
        results[key] = cells
        mnist, cifar = cells["28x28x1"], cells["32x32x3"]
        print(f"| {key} | {first['params']:,} | {first['flops'] / 1e6:.1f} | "
              f"{mnist['seconds']:.0f} | {cifar['seconds']:.0f} | {mnist['gflops']:.0f} | "
              f"{mnist['cpu_seconds']:.0f} / {cifar['cpu_seconds']:.0f} |",
              flush=True)  # fmt: skip
    if not args.no_save:
        save(results)


if __name__ == "__main__":
    main()
