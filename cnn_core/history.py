"""Training history as tables for charts: one run's live curves, and several runs compared.

Metrics records come from `runs.read_metrics`; these functions only reshape them, so a
page can hand the frames straight to a chart and a test can check every number.
"""

from __future__ import annotations

import pandas as pd

from cnn_core import runs

CURVES = ("loss", "accuracy")


class LiveHistory:
    """The metrics of one run read incrementally, as a page polling each second needs.

    Keep one per run in the session; `refresh` reads only what was appended since the last
    call, and starts over when a resume rewrote the history.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.records: list[dict] = []
        self.offset = 0
        self.rewrites = 0

    def refresh(self, status: runs.RunStatus) -> list[dict]:
        """Read new records; returns all records so far."""
        if status.history_rewrites != self.rewrites:
            self.records, self.offset, self.rewrites = [], 0, status.history_rewrites
        new, offset = runs.read_metrics(self.run_id, self.offset)
        if offset < self.offset:  # the file shrank, so read_metrics read it again from the top
            self.records = []
        self.records.extend(new)
        self.offset = offset
        return self.records


def batch_frame(records: list[dict], metric: str, batches_per_epoch: int) -> pd.DataFrame:
    """Per batch window: x = epochs done as a fraction (2.5 = half way through epoch 3)."""
    per_epoch = max(batches_per_epoch, 1)
    rows = [
        {"epoch": r["epoch"] - 1 + r["batch"] / per_epoch, metric: r[metric]}
        for r in records
        if r.get("kind") == "batch" and r.get(metric) is not None
    ]
    return pd.DataFrame(rows, columns=["epoch", metric]).set_index("epoch")


def epoch_frame(records: list[dict], metric: str) -> pd.DataFrame:
    """Per epoch: train and validation values of a metric, indexed by epoch number."""
    rows = [
        {"epoch": r["epoch"], "train": r.get(metric), "validation": r.get(f"val_{metric}")}
        for r in records
        if r.get("kind") == "epoch"
    ]
    frame = pd.DataFrame(rows, columns=["epoch", "train", "validation"]).set_index("epoch")
    return frame.dropna(axis=1, how="all")


def overlay_frame(histories: dict[str, list[dict]], metric: str) -> pd.DataFrame:
    """One column per run (its label), one row per epoch: the metric on the validation split
    when recorded, else on the training data."""
    columns = {}
    for label, records in histories.items():
        epochs = epoch_frame(records, metric)
        if not epochs.empty:
            columns[label] = epochs["validation"] if "validation" in epochs else epochs["train"]
    return pd.DataFrame(columns)


def compare_table(infos: list[runs.RunInfo]) -> pd.DataFrame:
    """The comparison table of runs: model, parameters, epochs, accuracies, time."""
    return pd.DataFrame(
        [
            {
                "run": info.config.display_name,
                "model": info.config.model,
                "parameters": info.params,
                "epochs": info.status.last_checkpoint or 0,
                "best val. accuracy": info.best_val_accuracy,
                "test accuracy": info.test_accuracy,
                "seconds": round(info.seconds, 1),
                "state": info.status.state,
                "id": info.id,
            }
            for info in infos
        ]
    )
