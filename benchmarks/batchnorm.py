"""Batch norm's cost: the presets' VGG without it, with Keras' layer, and with the fused kernel.

    .venv/bin/python benchmarks/batchnorm.py [--rounds 2] [--seconds 12]

Each variant trains the presets' network (cnn_core.runs.presets.VGG_BN_LAYERS: 4 convs and a
dense layer, each followed by batch norm) on 4,096 random 28×28×1 images at the run
defaults (batch 128, mixed bfloat16 where the CPU has it), in a fresh process, the
variants alternating round by round. Prints wall-clock and CPU-time images/s and the ratio
to Keras' own layer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, measure_training  # noqa: E402

from cnn_core.runs import presets  # noqa: E402

VARIANTS = ("none", "keras", "fused")
IMAGES = 4096


def child(variant: str, seconds: float) -> dict:
    """Images/s of one variant, in this process."""
    import keras

    from cnn_core.models import layer_lists, zoo
    from cnn_core.runs import run_config, training

    def build(cfg: run_config.RunConfig) -> keras.Model:
        layers = [ly for ly in presets.VGG_BN_LAYERS
                  if variant != "none" or ly["type"] != "batchnorm"]  # fmt: skip
        model = zoo.build_model(layer_lists.CUSTOM, (28, 28, 1), 10, [dict(ly) for ly in layers])
        if variant == "fused":
            training.compile_model(model, keras.optimizers.Adam(1e-3))  # fuses batch norm
        else:  # the same compile without the fusing
            model.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss="categorical_crossentropy",
                metrics=["accuracy", "mse"],
            )
        return model

    # The run defaults (batch, precision) of a plain config: custom would need layers.
    m = measure_training(build, (28, 28, 1), run_config.RunConfig(dataset="mnist"), IMAGES, seconds)
    return {"images_per_s": m["images_per_s"], "cpu_images_per_s": m["cpu_images_per_s"]}


def run_child(variant: str, seconds: float) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--seconds", str(seconds)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"{variant}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.seconds)))
        return
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for variant in VARIANTS:
            results[variant].append(run_child(variant, args.seconds))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(machine())
    print(
        "| batch norm | images/s (each round) | CPU-time images/s (each round) | vs Keras' layer |"
    )
    print("|---|---|---|---|")
    base = statistics.median(x["cpu_images_per_s"] for x in results["keras"])
    for variant in VARIANTS:
        rs = results[variant]
        wall = " / ".join(f"{x['images_per_s']:,.0f}" for x in rs)
        cpu = " / ".join(f"{x['cpu_images_per_s']:,.0f}" for x in rs)
        ratio = statistics.median(x["cpu_images_per_s"] for x in rs) / base
        print(f"| {variant} | {wall} | {cpu} | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
