"""How long an epoch will take on this machine, said honestly.

The first choice is this machine's own experience: earlier runs of the same model on the
same dataset in the same arithmetic, whose epoch records hold the seconds they took
(validation included). Without one the lab falls back on the benchmark table in
assets/benchmarks.json, measured on another machine, scaled by how fast this machine
runs the calibration step (cnn_core.runs.calibration) against how fast the benchmark
machine ran it in the same benchmark run. Until this machine is calibrated (the first
estimate starts the measurement in the background) the estimate says "uncalibrated" and
stands on the benchmark machine's figure.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from cnn_core.runs import calibration, metrics_log, presets, store

# Mixed bfloat16 trained 2.3x faster than float32 by CPU time where the CPU has it
# (BENCHMARKS.md, benchmarks/hardware.py): how an uncalibrated figure measured in the other
# arithmetic is carried over. A calibrated one needs no such guess.
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


def _past_seconds_per_image(model: str, dataset: str, mixed_precision: bool) -> list[float]:
    """Seconds per training image of an epoch (validation included) in this machine's
    earlier runs of the model on the dataset in the same arithmetic: an epoch's time grows
    with its images."""
    found = []
    for info in store.list_runs():
        cfg, status = info.config, info.status
        if (cfg.model != model or cfg.dataset != dataset or not status.batches_per_epoch
                or bool(cfg.mixed_precision) != mixed_precision):  # fmt: skip
            continue
        records, _ = metrics_log.read_metrics(info.id)
        seconds = [r["seconds"] for r in metrics_log.epoch_records(records)
                   if r.get("seconds") and not r.get("partial")]  # fmt: skip
        if seconds:  # the last batch may be short: an upper bound on the images, close enough
            found.append(statistics.median(seconds) / (status.batches_per_epoch * cfg.batch_size))
    return found


def a_run_is_training() -> bool:
    """Whether a worker trains now: a calibration step timed beside it would be too slow."""
    return any(info.status.state == "running" for info in store.list_runs())


def scale_to_this_machine(figure_s: float, reference_step_s: float, here_step_s: float) -> float:
    """The benchmark machine's seconds carried over by the calibration step: a machine
    that runs the step k times as long trains k times as long.

    Args:
        figure_s: the benchmark's seconds for the epoch, in its precision.
        reference_step_s: the calibration step on the benchmark machine, in the same run
            and precision as the figure.
        here_step_s: the calibration step on this machine, in the precision the run will
            use (so a change of arithmetic is measured too, not guessed).
    """
    if reference_step_s <= 0 or here_step_s <= 0:
        raise ValueError(
            f"Calibration steps must take some time; got {reference_step_s} s on the "
            f"benchmark machine and {here_step_s} s here."
        )
    return figure_s * here_step_s / reference_step_s


def _uncalibrated_low(figure_s: float, figure_precision: str, precision: str) -> float:
    if figure_precision == precision:
        return figure_s
    if precision == calibration.FLOAT32:  # the figure had bfloat16, this CPU has not
        return figure_s * BFLOAT16_SPEEDUP
    return figure_s / BFLOAT16_SPEEDUP


def _uncalibrated_basis(figure_precision: str, precision: str, measuring: str) -> str:
    words = calibration.precision_words(precision)
    if figure_precision == precision:
        source = "the benchmark machine's figure"
    elif precision == calibration.FLOAT32:
        source = "measured with bfloat16 on a CPU that has it, taken as about 2× slower here"
    else:
        source = "measured in float32, taken as about 2× faster here in bfloat16"
    return f"{words} on this CPU, uncalibrated: {source}; {measuring}"


def _measuring_words(start: bool) -> str:
    """What the uncalibrated estimate says about the measurement of this CPU."""
    if calibration.measuring_now():
        return "this CPU is being measured now"
    if a_run_is_training():
        return "this CPU is measured once no run is training"
    if start and calibration.start_calibration():
        return "this CPU is being measured now"
    return "this CPU is not measured yet"


def epoch_estimate(
    model: str,
    dataset: str,
    input_shape: tuple[int, int, int],
    train_images: int,
    *,
    calibrate: bool = True,
) -> EpochEstimate | None:
    """The seconds one epoch of `model` on `train_images` images will take here, or None.

    Args:
        model: a zoo key.
        dataset: the registry key (earlier runs are matched on it).
        input_shape: the images' shape (the benchmark table is per shape).
        train_images: images in one epoch.
        calibrate: start this machine's calibration in the background when it is missing
            (never waited for; the estimate says "uncalibrated" meanwhile).
    """
    precision = calibration.run_precision()
    words = calibration.precision_words(precision)
    past = _past_seconds_per_image(model, dataset, precision == calibration.BFLOAT16)
    if past:
        values = [per_image * train_images for per_image in past]
        n = len(values)
        basis = f"{words}, your {n} earlier run{'s' if n != 1 else ''} of it on this machine"
        return EpochEstimate(min(values), max(values), basis)
    figure = presets.seconds_per_epoch(model, input_shape, train_images)
    if figure is None:
        return None
    entry = presets.measured_entry(model, input_shape) or {}
    figure_precision = calibration.BFLOAT16 if entry.get("mixed_precision") else calibration.FLOAT32
    reference = entry.get("calibration_step_s")
    here = calibration.cached_step(precision)
    if here and isinstance(reference, int | float) and reference > 0:
        low = scale_to_this_machine(figure, reference, here)
        basis = f"{words} on this CPU, calibrated"
    else:
        low = _uncalibrated_low(figure, figure_precision, precision)
        basis = _uncalibrated_basis(figure_precision, precision, _measuring_words(calibrate))
    return EpochEstimate(low, low * OVERHEAD_FACTOR, basis)
