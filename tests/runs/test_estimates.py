"""Epoch time estimates: this machine's own runs first, else the benchmark table, said honestly."""

import json
import statistics

import pytest

from cnn_core import settings
from cnn_core.runs import estimates, metrics_log, presets, store
from cnn_core.runs import status as run_status


@pytest.fixture
def table(tmp_path, monkeypatch):
    """A benchmark table with one model measured in bfloat16 on 60,000 28×28 images."""
    path = tmp_path / "benchmarks.json"
    entry = {"seconds": 20.0, "images": 60000, "mixed_precision": True}
    path.write_text(json.dumps({"seconds_per_epoch": {"lenet5": {"28x28x1": entry}}}))
    monkeypatch.setattr(presets, "MEASUREMENTS", path)


def test_a_figure_measured_in_bfloat16_is_scaled_for_a_cpu_without_it(table, lab_home, monkeypatch):
    monkeypatch.setattr(settings, "fast_bfloat16", lambda: False)
    est = estimates.epoch_estimate("lenet5", "mnist", (28, 28, 1), 6000)
    assert est.low_s == pytest.approx(2.0 * estimates.BFLOAT16_SPEEDUP)
    assert est.high_s == pytest.approx(est.low_s * estimates.OVERHEAD_FACTOR)
    assert "float32" in est.text() and "bfloat16" in est.text()
    monkeypatch.setattr(settings, "fast_bfloat16", lambda: True)
    assert estimates.epoch_estimate("lenet5", "mnist", (28, 28, 1), 6000).low_s == 2.0


def test_this_machines_own_runs_come_first(table, lab_home):
    from tests.factories import train_tiny_run

    run_id = train_tiny_run(epochs=2)
    cfg = store.read_config(run_id)
    records = metrics_log.epoch_records(metrics_log.read_metrics(run_id)[0])
    est = estimates.epoch_estimate(cfg.model, cfg.dataset, (12, 12, 1), 72)
    median = statistics.median(r["seconds"] for r in records)
    status = run_status.read_status(run_id)
    trained_images = status.batches_per_epoch * cfg.batch_size
    assert est.low_s == est.high_s == pytest.approx(median * 72 / trained_images)
    tenfold = estimates.epoch_estimate(cfg.model, cfg.dataset, (12, 12, 1), 720)
    assert tenfold.low_s == pytest.approx(10 * est.low_s)  # ten times the images
    assert "earlier run" in est.text() and "this machine" in est.text()


def test_a_tiny_epoch_reads_under_a_second_not_zero():
    assert estimates.seconds_text(0.3) == "under 1 s"
    assert estimates.span(3.4, 5.2) == "3–5 s"
    assert estimates.span(0.2, 0.4) == "under 1 s"
    assert estimates.span(0.4, 2.2) == "under 2 s"
    assert estimates.EpochEstimate(0.4, 2.2, "x").text() == "under 2 s per epoch (x)"
    assert estimates.seconds_text(300) == "5 min"


def test_no_figure_no_estimate(table, lab_home):
    assert estimates.epoch_estimate("resnet", "cifar10", (32, 32, 3), 40000) is None
