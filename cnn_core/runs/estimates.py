"""How long an epoch will take on this machine, said honestly.

The first choice is this machine's own experience: earlier runs of the same model on the
same dataset, whose epoch records hold the seconds they took (validation included). Only
without one does the lab fall back on the benchmark table in assets/benchmarks.json, which
was measured on another machine of this kind, perhaps with bfloat16 arithmetic that this
CPU lacks; the estimate then says so and widens to a range.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from cnn_core import settings
from cnn_core.runs import metrics_log, presets, store

# Mixed bfloat16 trained 2.3x faster than float32 by CPU time where the CPU has it
# (BENCHMARKS.md, benchmarks/hardware.py); a figure measured that way is too optimistic
# for a CPU without it.
BFLOAT16_SPEEDUP = 2.3
# The benchmark times training alone; an epoch of a run also validates and checkpoints,
# and a shared host is slower: the upper end of the range.
OVERHEAD_FACTOR = 1.5


@dataclass(frozen=True)
class EpochEstimate:
    low_s: float
    high_s: float
    basis: str  # where the figure comes from, for people

    def text(self) -> str:
        figure = span(self.low_s, self.high_s)
        about = "" if figure.startswith("under") else "about "
        return f"{about}{figure} per epoch ({self.basis})"


def seconds_text(seconds: float) -> str:
    """Seconds for people: "under 1 s" rather than "0 s", minutes past 90 s."""
    if seconds < 1:
        return "under 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def span(low: float, high: float) -> str:
    a, b = seconds_text(low), seconds_text(high)
    if a == b:
        return a
    if low < 1:
        return f"under {b}"
    if a.endswith(" s") and b.endswith(" s") and a[0].isdigit():
        return f"{a[:-2]}–{b}"
    return f"{a} to {b}"


def _past_seconds_per_image(model: str, dataset: str) -> list[float]:
    """Seconds per training image of an epoch (validation included) in this machine's
    earlier runs of the model on the dataset: an epoch's time grows with its images."""
    found = []
    for info in store.list_runs():
        cfg, status = info.config, info.status
        if cfg.model != model or cfg.dataset != dataset or not status.batches_per_epoch:
            continue
        records, _ = metrics_log.read_metrics(info.id)
        seconds = [r["seconds"] for r in metrics_log.epoch_records(records)
                   if r.get("seconds") and not r.get("partial")]  # fmt: skip
        if seconds:  # the last batch may be short: an upper bound on the images, close enough
            found.append(statistics.median(seconds) / (status.batches_per_epoch * cfg.batch_size))
    return found


def epoch_estimate(
    model: str, dataset: str, input_shape: tuple[int, int, int], train_images: int
) -> EpochEstimate | None:
    """The seconds one epoch of `model` on `train_images` images will take here, or None.

    Args:
        model: a zoo key.
        dataset: the registry key (earlier runs are matched on it).
        input_shape: the images' shape (the benchmark table is per shape).
        train_images: images in one epoch.
    """
    past = _past_seconds_per_image(model, dataset)
    if past:
        values = [per_image * train_images for per_image in past]
        n = len(values)
        basis = f"your {n} earlier run{'s' if n != 1 else ''} of it on this machine"
        return EpochEstimate(min(values), max(values), basis)
    measured = presets.seconds_per_epoch(model, input_shape, train_images)
    if measured is None:
        return None
    entry_bf16 = presets.measured_with_bfloat16(model, input_shape)
    if entry_bf16 and not settings.fast_bfloat16():
        low = measured * BFLOAT16_SPEEDUP
        basis = ("measured with bfloat16 on a CPU that has it; this CPU computes in float32, "
                 "about 2× slower")  # fmt: skip
    else:
        low = measured
        basis = "measured on this kind of machine"
    return EpochEstimate(low, low * OVERHEAD_FACTOR, basis)
