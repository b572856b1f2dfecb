"""Time to accuracy of the Train page's presets, trained through the real engine.

    .venv/bin/python benchmarks/presets.py [--only mnist-99 fashion-quick] [--no-save]

Each preset runs as the app would run it (jobs.start_run: a worker process, its metrics
log and checkpoints) in a temporary lab home. Printed per preset: epochs, training
seconds (the sum of the epochs' own times, so process start-up and the final test
evaluation are left out), test accuracy, the target and the seed's figure. The measured
seconds per epoch are saved to assets/benchmarks.json, where the Train page reads its
time estimates (unless --no-save).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cnn_core import datasets, jobs, presets, runs  # noqa: E402

POLL_S = 1.0
TIMEOUT_S = 3600


def run_to_end(cfg: runs.RunConfig) -> dict:
    ds = datasets.load_dataset(cfg.dataset, source=cfg.dataset_source)
    run_id = jobs.start_run(cfg, train_size=len(ds.y_train), input_shape=ds.input_shape)
    deadline = time.monotonic() + TIMEOUT_S
    while (status := runs.read_status(run_id)).state not in ("finished", "failed", "interrupted"):
        if time.monotonic() > deadline:
            jobs.stop_run(run_id)
            raise TimeoutError(f"{run_id} did not finish within {TIMEOUT_S} s")
        time.sleep(POLL_S)
    if status.state != "finished":
        raise RuntimeError(f"{run_id} ended {status.state}: {status.message}")
    epochs = runs.epoch_records(runs.read_metrics(run_id)[0])
    evaluation = runs.read_evaluation(run_id) or {}
    return {
        "model": cfg.model,
        "shape": "x".join(str(v) for v in ds.input_shape),
        "images": len(ds.y_train) - int(len(ds.y_train) * cfg.validation_split),
        "epochs": len(epochs),
        "seconds": sum(e["seconds"] for e in epochs),
        "test_accuracy": evaluation.get("accuracy"),
    }


def save_epoch_times(results: list[dict]) -> None:
    """Merge the measured seconds per epoch into assets/benchmarks.json."""
    path = presets.MEASUREMENTS
    data = json.loads(path.read_text()) if path.exists() else {}
    table = data.setdefault("seconds_per_epoch", {})
    for r in results:
        table.setdefault(r["model"], {})[r["shape"]] = {
            "seconds": round(r["seconds"] / r["epochs"], 2),
            "images": r["images"],
            "measured": time.strftime("%Y-%m-%d"),
            "by": "benchmarks/presets.py",
        }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="preset keys (default: all)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    chosen = [p for p in presets.PRESETS if not args.only or p.key in args.only]
    os.environ["CNN_LAB_HOME"] = tempfile.mkdtemp(prefix="cnn-lab-bench-")
    results = []
    print("| preset | run | epochs | training s | test accuracy | target |")
    print("|---|---|---|---|---|---|")
    for preset in chosen:
        for cfg in preset.configs:
            if not datasets.is_available(cfg.dataset):
                name, target = cfg.display_name, preset.target
                print(f"| {preset.key} | {name} | — | — | needs the download | {target} |")
                continue
            r = run_to_end(cfg)
            results.append(r)
            print(f"| {preset.key} | {cfg.display_name} | {r['epochs']} | {r['seconds']:.0f} | "
                  f"{r['test_accuracy']:.2%} | {preset.target} |", flush=True)  # fmt: skip
    if results and not args.no_save:
        save_epoch_times(results)


if __name__ == "__main__":
    main()
