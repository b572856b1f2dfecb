"""What the training engine costs: bare `model.fit` versus a run through a worker process.

Both sides train simple_convnet on the embedded MNIST subset (8,000 training images, no
validation split) with the same batch size, input pipeline (pipeline.make_dataset) and
thread settings, each in a fresh process:

  bare    model.fit with one epoch-end clock callback;
  engine  jobs.start_run: worker process, queue, metrics log, status, checkpoints and
          TensorBoard files, while this process polls read_metrics / read_status every
          0.5 s like the live chart of the app.

The two alternate (bare, engine, bare, engine, ...) so that drifts of a shared machine
hit both alike. Speed is taken from the wall clock between the end of epoch 1 and the end
of the last epoch, so process start-up and the first epoch's tracing are left out, and
the engine's per-epoch checkpoint is counted in.

    python benchmarks/engine_overhead.py [--pairs 3] [--epochs 3] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cnn_core import settings  # noqa: E402 - after the path set-up
from cnn_core.models import zoo  # noqa: E402 - after the path set-up
from cnn_core.runs import jobs, metrics_log, run_config  # noqa: E402 - after the path set-up
from cnn_core.runs import status as run_status  # noqa: E402 - after the path set-up

MODEL = "simple_convnet"
POLL_S = 0.5  # the app's live chart polls about this often
TARGET_RATIO = 0.97


def bare_child(epochs: int, batch_size: int) -> None:
    """The bare side, run in its own process: prints the wall time at each epoch end."""
    import keras

    from cnn_core.data import datasets
    from cnn_core.runs import pipeline, training

    cfg = run_config.validate_config(
        run_config.RunConfig(model=MODEL, epochs=epochs, batch_size=batch_size)
    )
    pipeline.configure_threads(cfg.threads)
    if cfg.mixed_precision:  # as the worker does (bfloat16 where the CPU has it)
        keras.mixed_precision.set_dtype_policy(training.MIXED_POLICY)
    keras.utils.set_random_seed(cfg.seed)
    data = datasets.load_dataset("mnist", source="embedded")
    ds = pipeline.make_dataset(data.x_train, data.y_train, data.num_classes, batch_size,
                               shuffle_seed=cfg.seed)  # fmt: skip
    model = zoo.build_model(MODEL, data.input_shape, data.num_classes)
    training.compile_model(model, training.make_optimizer(cfg, epochs * len(ds)))
    ends: list[float] = []

    class EpochClock(keras.callbacks.Callback):  # epoch hooks only: Keras stays as fast
        def on_epoch_end(self, epoch, logs=None):
            ends.append(time.time())

    model.fit(ds, epochs=epochs, verbose=0, shuffle=False, callbacks=[EpochClock()])
    print(json.dumps({"ends": ends, "images": len(data.x_train)}))


def train_images() -> int:
    from cnn_core.data import datasets

    return len(datasets.load_dataset("mnist", source="embedded").x_train)


def run_bare(epochs: int, batch_size: int) -> float:
    child = subprocess.run(
        [sys.executable, __file__, "--bare-child", "--epochs", str(epochs),
         "--batch-size", str(batch_size)],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    if child.returncode:
        raise RuntimeError(f"the bare run failed:\n{child.stderr[-3000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    ends = result["ends"]
    return result["images"] * (len(ends) - 1) / (ends[-1] - ends[0])


def run_engine(epochs: int, batch_size: int) -> float:
    cfg = run_config.RunConfig(name="engine overhead", dataset="mnist", dataset_source="embedded",
                         model=MODEL, epochs=epochs, batch_size=batch_size,
                         validation_split=0.0)  # fmt: skip
    run_id = jobs.start_run(cfg)
    offset, records = 0, []
    while True:  # what a page's live chart does
        status = run_status.read_status(run_id)
        new, offset = metrics_log.read_metrics(run_id, offset)
        records += new
        if not status.active:
            break
        time.sleep(POLL_S)
    if status.state != "finished":
        raise RuntimeError(f"engine run {run_id} {status.state}: {status.message}")
    ends = [r["t"] for r in metrics_log.epoch_records(records)]
    return train_images() * (len(ends) - 1) / (ends[-1] - ends[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="per run; the first is warm-up")
    parser.add_argument("--batch-size", type=int, default=128)  # the run default
    parser.add_argument("--bare-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        bare_child(args.epochs, args.batch_size)
        return
    os.environ[settings.HOME_ENV] = tempfile.mkdtemp(prefix="cnn-lab-bench-")
    print(f"{MODEL} on embedded MNIST (8,000 images), batch {args.batch_size}, "
          f"{args.epochs} epochs a run (first one excluded), {os.cpu_count()} cores, "
          f"max_workers={settings.max_workers()}")  # fmt: skip
    speeds: dict[str, list[float]] = {"bare": [], "engine": []}
    for i in range(args.pairs):
        for mode, run in (("bare", run_bare), ("engine", run_engine)):
            ips = run(args.epochs, args.batch_size)
            speeds[mode].append(ips)
            print(f"pair {i + 1} {mode:6s} {ips:8.0f} images/s", flush=True)
    bare, engine = (statistics.mean(speeds[m]) for m in ("bare", "engine"))
    pair_ratios = [e / b for b, e in zip(speeds["bare"], speeds["engine"], strict=True)]
    print(f"mean   bare {bare:8.0f} images/s   engine {engine:8.0f} images/s")
    print(f"ratio engine/bare {engine / bare:.3f} (target >= {TARGET_RATIO}); median of the "
          f"pairs {statistics.median(pair_ratios):.3f}; per pair: "
          + ", ".join(f"{r:.3f}" for r in pair_ratios))  # fmt: skip


if __name__ == "__main__":
    main()
