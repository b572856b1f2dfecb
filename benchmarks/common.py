"""What the benchmark scripts share: the machine line, a model's training speed on random
images, and a run trained through the engine."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cnn_core.data import datasets  # noqa: E402
from cnn_core.runs import jobs, metrics_log, run_config, store  # noqa: E402
from cnn_core.runs import status as run_status  # noqa: E402

if TYPE_CHECKING:
    import keras

POLL_S = 1.0
TIMEOUT_S = 3600


def machine() -> str:
    """Cores, CPU model, Python and TensorFlow versions, for the head of a printed table."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    from importlib.metadata import version

    tf = next((version(d) for d in ("tensorflow-cpu", "tensorflow") if _has(d)), "?")
    return (f"{os.cpu_count()} cores of {cpu}, Python {platform.python_version()}, "
            f"TensorFlow {tf}, Keras {version('keras')}, {time.strftime('%Y-%m-%d')}")  # fmt: skip


def machine_cpu_ticks() -> list[int]:
    """The whole machine's CPU ticks since boot, /proc/stat's first line: user, nice,
    system, idle, iowait, irq, softirq, steal, … Raises OSError where there is none."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def cpu_times() -> tuple[int, int] | None:
    """(all, stolen) CPU ticks since boot; None where /proc/stat is missing or unreadable.

    Stolen ticks are those the hypervisor gave to other machines on the same host: on a
    shared cloud machine they, not the lab, explain a training run that took longer."""
    try:
        fields = machine_cpu_ticks()
    except (OSError, ValueError):
        return None
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of the CPU time between two cpu_times() readings that was stolen."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    return (after[1] - before[1]) / (after[0] - before[0])


def _has(dist: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(dist)
    except PackageNotFoundError:
        return False
    return True


def training_speed(model, ds, images_per_pass: int, seconds: float) -> tuple[float, float]:
    """Images/s of `model.fit` over `ds`, timed for about `seconds` after one pass that
    traces the graph (a learner pays that once per run).

    Returns:
        (wall-clock images/s, CPU-time images/s): the second divides the images by this
        process's CPU seconds over the cores, what the loop would reach with the machine to
        itself; on a shared machine it is the steadier figure of the two.
    """
    model.fit(ds, epochs=1, verbose=0, shuffle=False)
    images, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        model.fit(ds, epochs=1, verbose=0, shuffle=False)
        images += images_per_pass
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return images / wall, images / (cpu / (os.cpu_count() or 1))


def measure_training(
    build_model: Callable[[run_config.RunConfig], keras.Model],
    shape: tuple[int, int, int],
    config: run_config.RunConfig,
    images: int,
    seconds: float,
) -> dict:
    """Images/s of training one model on random images at the run defaults, in this process.

    Sets TensorFlow's threads (before its first op) and the dtype policy as a run of
    `config` would, then calls `build_model` with the validated config for a compiled
    model, and times it with `training_speed` on `images` random uint8 images of `shape`
    (10 classes) fed through the engine's `pipeline.make_dataset`.

    Returns:
        {"model", "config" (validated), "images_per_s", "cpu_images_per_s"}.
    """
    import keras
    import numpy as np

    from cnn_core.runs import pipeline, training

    pipeline.configure_threads()
    cfg = run_config.validate_config(config)
    keras.mixed_precision.set_dtype_policy(
        training.MIXED_POLICY if cfg.mixed_precision else "float32"
    )
    model = build_model(cfg)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, *shape), dtype=np.uint8)
    y = rng.integers(0, 10, images)
    ds = pipeline.make_dataset(x, y, 10, cfg.batch_size, shuffle_seed=0)
    wall, cpu = training_speed(model, ds, images, seconds)
    return {"model": model, "config": cfg, "images_per_s": wall, "cpu_images_per_s": cpu}


def run_to_end(cfg: run_config.RunConfig) -> dict:
    """Trains one config as the app would (worker process, metrics log, checkpoints) and
    returns its epochs, training seconds (the sum of the epochs' own times: process start
    and the final test evaluation are left out), test accuracy, the share of CPU time the
    host stole meanwhile (None where unknown) and the resolved config."""
    ds = datasets.load_dataset(cfg.dataset, source=cfg.dataset_source)
    ticks = cpu_times()
    run_id = jobs.start_run(cfg, train_size=len(ds.y_train), input_shape=ds.input_shape)
    deadline = time.monotonic() + TIMEOUT_S
    while (status := run_status.read_status(run_id)).state not in (
        "finished",
        "failed",
        "interrupted",
    ):
        if time.monotonic() > deadline:
            jobs.stop_run(run_id)
            raise TimeoutError(f"{run_id} did not finish within {TIMEOUT_S} s")
        time.sleep(POLL_S)
    if status.state != "finished":
        raise RuntimeError(f"{run_id} ended {status.state}: {status.message}")
    return finished_run_figures(run_id, ds, steal_share(ticks, cpu_times()))


def finished_run_figures(run_id: str, ds, steal: float | None = None) -> dict:
    """run_to_end's figures of a finished run of the current lab home (CNN_LAB_HOME), whose
    dataset `ds` is; `steal` is the host's share of CPU time during it, where measured."""
    cfg = store.read_config(run_id)
    epochs = metrics_log.epoch_records(metrics_log.read_metrics(run_id)[0])
    evaluation = store.read_evaluation(run_id) or {}
    return {
        "model": cfg.model,
        "shape": "x".join(str(v) for v in ds.input_shape),
        "images": len(ds.y_train) - int(len(ds.y_train) * cfg.validation_split),
        "epochs": len(epochs),
        "seconds": sum(e["seconds"] for e in epochs),
        "test_accuracy": evaluation.get("accuracy"),
        "steal": steal,
        "config": cfg.to_dict(),
    }
