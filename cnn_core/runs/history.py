"""Training history as tables for charts: one run's live curves, and several runs compared.

Metrics records come from `metrics_log` (read whole, or as they come by a `MetricsReader`);
these functions only reshape them, so a page can hand the frames straight to a chart and a
test can check every number.
"""

from __future__ import annotations

import pandas as pd

from cnn_core.runs import metrics_log
from cnn_core.runs import status as run_status

CURVES = ("loss", "accuracy")


class LiveHistory:
    """The metrics of one run read incrementally, as a page polling each second needs.

    Keep one per run in the session; `refresh` reads only what was appended since the last
    call, and starts over when a resume rewrote the history.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.records: list[dict] = []
        self.reader = metrics_log.MetricsReader(run_id)

    def refresh(self, status: run_status.RunStatus) -> list[dict]:
        """Read new records; returns all records so far."""
        new = self.reader.read_new(status.history_rewrites)
        if self.reader.restarted:  # a resume rewrote the log: the reader began at the top
            self.records = []
        self.records.extend(new)
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


# Distinct hues (Tableau 10): two runs compared must never be two similar blues.
SERIES_COLOURS = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip


def curve_spec(frame: pd.DataFrame, y_title: str, *, whole_epochs: bool) -> dict:
    """A Vega-Lite line chart of a wide frame: the index on x, one line per column.

    Every point is drawn, so a one-epoch run shows its value instead of an empty chart; the
    y axis is zoomed to the data (not fixed at 0-1); epochs tick as whole numbers.

    Args:
        frame: index = epoch (or fractional epoch), one column per series.
        y_title: the y axis' title, e.g. "accuracy".
        whole_epochs: x holds epoch numbers (ticks 1, 2, 3), not fractions of epochs.
    """
    x_name = frame.index.name or "epoch"
    long = frame.reset_index().melt(id_vars=x_name, var_name="series", value_name="value")
    long = long.dropna(subset=["value"])
    values = [
        {"x": float(x), "series": str(s), "value": float(v)}
        for x, s, v in long[[x_name, "series", "value"]].itertuples(index=False)
    ]
    x_axis: dict = {"title": x_name}
    if whole_epochs:
        x_axis.update(format="d", tickMinStep=1)
    names = [str(c) for c in frame.columns]
    return {
        "data": {"values": values},
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": "x", "type": "quantitative", "axis": x_axis},
            "y": {"field": "value", "type": "quantitative", "title": y_title,
                  "scale": {"zero": False}},
            "color": {"field": "series", "type": "nominal", "title": None, "sort": names,
                      "scale": {"domain": names,
                                "range": list(SERIES_COLOURS[: max(len(names), 1)])},
                      "legend": {"orient": "bottom", "labelLimit": 400}},
        },
    }  # fmt: skip
