"""Time to accuracy of the Train page's presets, trained through the real engine.

    .venv/bin/python benchmarks/presets.py [--only mnist-99 fashion-quick] [--no-save]
    .venv/bin/python benchmarks/presets.py --only cifar-best --home DIR --runs RUN_ID

The second form records runs of a preset that have already finished in the lab home DIR
(such as the one scripts/build_pretrained.py trained a shipped model with) instead of
training them again: the same figures, read from the same files.

Each preset runs as the app would run it (jobs.start_run: a worker process, its metrics
log and checkpoints) in a temporary lab home. Printed per preset: epochs, training
seconds (the sum of the epochs' own times, so process start-up and the final test
evaluation are left out), test accuracy, the share of CPU time the host stole meanwhile
(on a shared cloud machine, the reason a run took longer), the target and the seed's
figure. The figures are saved to assets/benchmarks.json ("presets"), which the Train page
shows beside each preset (unless --no-save).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import finished_run_figures, machine, run_to_end  # noqa: E402

from cnn_core.data import datasets  # noqa: E402
from cnn_core.runs import presets  # noqa: E402


def save(measured: dict[str, list[dict]]) -> None:
    """Merge the presets' measured runs into assets/benchmarks.json ("presets")."""
    path = presets.MEASUREMENTS
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("presets", {}).update(measured)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def steal(result: dict) -> str:
    """The host's stolen share of CPU time during the run, as a percentage or "—"."""
    return "—" if result["steal"] is None else f"{result['steal']:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="preset keys (default: all)")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--home", type=Path, help="the lab home of --runs")
    parser.add_argument("--runs", nargs="*", help="finished runs of --home, one per config "
                        "of the one preset given by --only, in its order")  # fmt: skip
    args = parser.parse_args()
    chosen = [p for p in presets.PRESETS if not args.only or p.key in args.only]
    recorded = iter(args.runs or ())
    if args.runs:
        if not args.home or len(chosen) != 1 or len(args.runs) != len(chosen[0].configs):
            parser.error("--runs needs --home and --only with one preset, a run per config")
        os.environ["CNN_LAB_HOME"] = str(args.home)
    else:
        os.environ["CNN_LAB_HOME"] = tempfile.mkdtemp(prefix="cnn-lab-bench-")
    print(machine())
    print("| preset | run | epochs | training s | test accuracy | CPU stolen by the host "
          "| target |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for preset in chosen:
        rows = []
        for cfg in preset.configs:
            if not datasets.is_available(cfg.dataset):
                name, target = cfg.display_name, preset.target
                print(f"| {preset.key} | {name} | — | — | needs the download | — | {target} |")
                continue
            run_id = next(recorded, None)
            if run_id:
                r = finished_run_figures(run_id, datasets.load_dataset(cfg.dataset))
                same = ("dataset", "model", "epochs", "batch_size", "learning_rate", "name")
                changed = [k for k in same if r["config"][k] != getattr(cfg, k)]
                if changed or r["epochs"] != cfg.epochs:
                    raise SystemExit(f"{run_id} is not a finished run of {preset.key}")
            else:
                r = run_to_end(cfg)
            rows.append({"name": cfg.display_name, "epochs": r["epochs"],
                         "seconds": round(r["seconds"], 1), "test_accuracy": r["test_accuracy"],
                         "measured": time.strftime("%Y-%m-%d"), "steal": r["steal"],
                         "config": cfg.to_dict()})  # fmt: skip
            print(f"| {preset.key} | {cfg.display_name} | {r['epochs']} | {r['seconds']:.0f} | "
                  f"{r['test_accuracy']:.2%} | {steal(r)} | {preset.target} |",
                  flush=True)  # fmt: skip
        if rows and len(rows) == len(preset.configs) and not args.no_save:
            save({preset.key: rows})  # each preset as it ends: a stopped run keeps the others


if __name__ == "__main__":
    main()
