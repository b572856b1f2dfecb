"""Parameters, FLOPs and seconds per epoch of every zoo model, for the Train page's estimate.

    .venv/bin/python benchmarks/zoo.py [--seconds 6] [--only lenet5 vgg] [--no-save]

Each model trains on random images of 28×28×1 (60,000 a epoch, like MNIST and
Fashion-MNIST) and 32×32×3 (50,000, CIFAR-10's shape; CIFAR-10 itself is not available
offline) with the run defaults a new run gets on this machine (batch size, precision,
threads, the engine's input pipeline), for about --seconds after the first pass has
traced the graph; the epoch time is extrapolated from that rate. Speed does not depend on
what the images show. Saved to assets/benchmarks.json ("seconds_per_epoch"), where the
Train page reads its estimate, unless --no-save.

The same run times cnn_core.runs.calibration's small calibration step, before the first
model and after the last (their mean is the reference; the two say how steady the host
was), in float32 and, where the CPU has bfloat16, in mixed bfloat16. Each figure keeps
the reference step of its own precision ("calibration_step_s"), and "calibration" holds
the reference with the machine: a machine that times the step twice as slow is taken to
train the zoo twice as slow.
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
from cnn_core.runs import calibration, pipeline, presets, run_config, training  # noqa: E402

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


def measure_reference() -> dict[str, float]:
    """Seconds of one calibration step in this process, by precision."""
    return {p: calibration.measure_step(p) for p in calibration.precisions_to_measure()}


def reference_record(before: dict[str, float], after: dict[str, float]) -> dict[str, dict]:
    """The "calibration" key: per precision, the mean of the two timings, both timings,
    and the machine they were measured on."""
    key, date = calibration.machine_key(), time.strftime("%Y-%m-%d")
    return {p: {"seconds_per_step": round((before[p] + after[p]) / 2, 5),
                "before_after": [round(before[p], 5), round(after[p], 5)],
                "batch_size": calibration.BATCH, "shape": list(calibration.SHAPE),
                "machine": key, "machine_words": machine(), "measured": date,
                "by": "benchmarks/zoo.py"} for p in before}  # fmt: skip


def precision_of(m: dict) -> str:
    return calibration.BFLOAT16 if m["mixed_precision"] else calibration.FLOAT32


def save(results: dict[str, dict[str, dict]], reference: dict[str, dict]) -> None:
    path = presets.MEASUREMENTS
    data = json.loads(path.read_text()) if path.exists() else {}
    table = data.setdefault("seconds_per_epoch", {})
    for key, by_shape in results.items():
        table.setdefault(key, {}).update(by_shape)
    data["calibration"] = reference
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
    before = measure_reference()
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
                "calibration_precision": precision_of(m),
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
    after = measure_reference()
    reference = reference_record(before, after)
    for precision, ref in reference.items():
        print(f"calibration step, {precision}: {ref['seconds_per_step'] * 1000:.1f} ms "
              f"(before the models {before[precision] * 1000:.1f}, after "
              f"{after[precision] * 1000:.1f})")  # fmt: skip
    for cells in results.values():
        for cell in cells.values():
            ref = reference[cell.pop("calibration_precision")]
            cell["calibration_step_s"] = ref["seconds_per_step"]
    if not args.no_save:
        save(results, reference)


if __name__ == "__main__":
    main()
