"""The Train page's time estimate says which arithmetic it assumes and whether this
machine's calibration stands behind it."""

import json

import pytest

from cnn_core import settings
from cnn_core.data import datasets
from cnn_core.runs import calibration, presets, run_config
from tests.factories import open_page


@pytest.fixture
def table(tmp_path, monkeypatch):
    """simple_convnet (the page's first model) measured at 20 s for one epoch of the
    embedded MNIST's training images, beside a calibration step of 50 ms, on a CPU
    without bfloat16."""
    ds = datasets.load_dataset("mnist")
    trained = int(len(ds.y_train) * (1 - run_config.RunConfig.validation_split))
    entry = {"seconds": 20.0, "images": trained, "mixed_precision": False,
             "calibration_step_s": 0.05}  # fmt: skip
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps({"seconds_per_epoch": {"simple_convnet": {"28x28x1": entry}}}))
    monkeypatch.setattr(presets, "MEASUREMENTS", path)
    monkeypatch.setattr(settings, "fast_bfloat16", lambda: False)


def time_caption(at) -> str:
    (text,) = [c.value for c in at.caption if c.value.startswith("Time:")]
    return text


def test_an_uncalibrated_machine_is_told_so(lab_home, table):
    text = time_caption(open_page("train", "mnist"))
    assert "about 20–30 s per epoch" in text  # the benchmark machine's own figure
    assert "float32 on this CPU, uncalibrated" in text


def test_a_calibrated_machine_gets_the_scaled_figure(lab_home, table):
    calibration.calibrate(lambda precision: 0.1)  # twice the reference step's 50 ms
    text = time_caption(open_page("train", "mnist"))
    # By hand: 20 s × 0.1 / 0.05 = 40 s, and up to 1.5 times that with validation.
    assert text == "Time: about 40–60 s per epoch (float32 on this CPU, calibrated)."


def test_on_a_cpu_with_bfloat16_the_estimate_says_bfloat16(lab_home, table, monkeypatch):
    monkeypatch.setattr(settings, "fast_bfloat16", lambda: True)
    calibration.calibrate(lambda precision: {"float32": 0.1, "mixed_bfloat16": 0.025}[precision])
    text = time_caption(open_page("train", "mnist"))
    # By hand: 20 s × 0.025 / 0.05 = 10 s, up to 15 s.
    assert text == "Time: about 10–15 s per epoch (bfloat16 on this CPU, calibrated)."
