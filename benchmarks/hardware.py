"""How much of this machine's arithmetic the training of the simple ConvNet uses.

Measures the float32 (and bfloat16) matrix-multiply peak of TensorFlow on this machine,
then the achieved training GFLOP/s of simple_convnet (forward and backward FLOPs counted
by `cnn_core.models.summaries.training_flops`) under different settings, each in a fresh process
because TensorFlow's thread pools are fixed at start:

  batch size      32 … 512, with the engine's own input pipeline (pipeline.make_dataset)
  input pipeline  the engine's (uint8 → shuffle → batch → map) vs float32 tensors in memory
  threads         intra-op / inter-op pool sizes
  data layout     channels-last (NHWC) vs channels-first (NCHW)
  precision       float32 vs mixed_bfloat16 (the second is compared with the bf16 peak too)

Settings alternate round by round (A, B, C, A, B, C, …) so drifts of a shared machine hit
all alike; the median of the rounds is printed.

    .venv/bin/python benchmarks/hardware.py [--rounds 2] [--seconds 4] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from common import machine, training_speed  # noqa: E402

MODEL = "simple_convnet"
SHAPE = (28, 28, 1)
TRAIN_IMAGES = 8192  # random images; speed does not depend on what they show
BASE = {"batch": 128, "pipeline": "engine", "intra": 0, "inter": 0, "layout": "nhwc",
        "precision": "float32"}  # fmt: skip


def settings() -> list[dict]:
    """The settings compared: the base with one knob turned at a time."""
    grid = [dict(BASE, batch=b) for b in (32, 64, 128, 256, 512)]
    grid.append(dict(BASE, pipeline="tensors"))
    grid += [dict(BASE, intra=1, inter=1), dict(BASE, intra=2, inter=1),
             dict(BASE, intra=2, inter=2)]  # fmt: skip
    grid.append(dict(BASE, layout="nchw"))
    grid += [dict(BASE, precision="mixed_bfloat16", batch=b) for b in (128, 256)]
    return grid


def label(s: dict) -> str:
    threads = "default" if not s["intra"] else f"{s['intra']}/{s['inter']}"
    return (f"batch {s['batch']}, {s['pipeline']} pipeline, threads {threads}, "
            f"{s['layout'].upper()}, {s['precision']}")  # fmt: skip


# ----------------------------------------------------------------- child side
def _threads(intra: int, inter: int) -> None:
    import tensorflow as tf

    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)


def matmul_child(n: int, seconds: float) -> dict:
    """GFLOP/s of an n×n float32 and bfloat16 matmul with TensorFlow's default threads."""
    import tensorflow as tf

    out = {}
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.cast(tf.random.normal((n, n)), dtype)
        b = tf.cast(tf.random.normal((n, n)), dtype)
        f = tf.function(lambda a=a, b=b: tf.matmul(a, b))
        f().numpy()
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            f().numpy()
            reps += 1
        out[dtype.name] = 2 * n**3 * reps / (time.perf_counter() - start) / 1e9
    return out


def train_child(s: dict, seconds: float) -> dict:
    """Images/s and GFLOP/s of simple_convnet training steps under one setting."""
    _threads(s["intra"], s["inter"])
    import keras
    import numpy as np
    import tensorflow as tf

    from cnn_core.models import summaries, zoo
    from cnn_core.runs import pipeline, training

    keras.mixed_precision.set_dtype_policy(s["precision"])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (TRAIN_IMAGES, *SHAPE), dtype=np.uint8)
    y = rng.integers(0, 10, TRAIN_IMAGES)
    shape = SHAPE
    if s["layout"] == "nchw":
        keras.config.set_image_data_format("channels_first")
        x, shape = x.transpose(0, 3, 1, 2).copy(), (SHAPE[2], SHAPE[0], SHAPE[1])
    # The builder itself: build_model's shape check reads (height, width, channels).
    model = zoo.MODELS[MODEL].builder(shape, 10)
    training.compile_model(model, keras.optimizers.Adam(1e-3))
    if s["pipeline"] == "engine":
        ds = pipeline.make_dataset(x, y, 10, s["batch"], shuffle_seed=0)
    else:
        xs = tf.constant(x.astype(np.float32) / 255.0)
        ds = tf.data.Dataset.from_tensor_slices((xs, tf.one_hot(y, 10))).batch(s["batch"])
        ds = ds.cache().prefetch(tf.data.AUTOTUNE)
    ips, cpu_ips = training_speed(model, ds, TRAIN_IMAGES, seconds)
    flops = summaries.training_flops(model)[1]
    return {"images_per_s": ips, "gflops": ips * flops / 1e9,
            "cpu_images_per_s": cpu_ips, "cpu_gflops": cpu_ips * flops / 1e9}  # fmt: skip


def child(kind: str, arg: str, seconds: float) -> dict:
    """Runs one measurement in a fresh Python process and returns its JSON result."""
    cmd = [sys.executable, __file__, "--child", kind, arg, "--seconds", str(seconds)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:160]}
    return json.loads(lines[-1])


# ---------------------------------------------------------------- parent side
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds a setting")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, arg = args.child
        if kind == "matmul":
            print(json.dumps(matmul_child(int(arg), args.seconds)))
        else:
            print(json.dumps(train_child(json.loads(arg), args.seconds)))
        return

    grid = settings()
    peaks: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    results: list[list[dict]] = [[] for _ in grid]
    for r in range(args.rounds):
        for n in (1024, 2048, 4096):
            m = child("matmul", str(n), args.seconds / 2)
            for dtype in peaks:
                if dtype in m:
                    peaks[dtype].append(m[dtype])
        for i, s in enumerate(grid):
            results[i].append(child("train", json.dumps(s), args.seconds))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    peak = {k: max(v) for k, v in peaks.items() if v}
    print(machine())
    print(f"matmul peak float32 {peak['float32']:.0f} GFLOP/s, bfloat16 {peak['bfloat16']:.0f} "
          "GFLOP/s (best of n = 1024, 2048, 4096)\n")  # fmt: skip
    print("| setting | images/s | training GFLOP/s | of float32 peak | of bf16 peak "
          "| CPU-time images/s | CPU-time GFLOP/s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    rows = []
    for s, rs in zip(grid, results, strict=True):
        ok = [x for x in rs if "error" not in x]
        if not ok:
            print(f"| {label(s)} | fails: {rs[0]['error']} | | | | | |")
            rows.append({"setting": s, "error": rs[0]["error"]})
            continue
        ips = statistics.median(x["images_per_s"] for x in ok)
        gf = statistics.median(x["gflops"] for x in ok)
        bf = f"{gf / peak['bfloat16']:.0%}" if s["precision"] != "float32" else "—"
        cpu_ips = statistics.median(x["cpu_images_per_s"] for x in ok)
        cpu_gf = statistics.median(x["cpu_gflops"] for x in ok)
        print(f"| {label(s)} | {ips:.0f} | {gf:.1f} | {gf / peak['float32']:.0%} | {bf} "
              f"| {cpu_ips:.0f} | {cpu_gf:.1f} |")  # fmt: skip
        rows.append({"setting": s, "images_per_s": ips, "gflops": gf,
                     "cpu_images_per_s": cpu_ips, "cpu_gflops": cpu_gf})  # fmt: skip
    if args.json_out:
        args.json_out.write_text(json.dumps({"peak_gflops": peak, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
