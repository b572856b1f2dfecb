"""This machine's calibration step: timed once, cached in the lab home, and the scale that
turns the benchmark machine's seconds into seconds here."""

import json
import math

import pytest

from cnn_core import settings
from cnn_core.runs import calibration, estimates, presets
from cnn_core.runs.calibration import start_calibration as real_start_calibration
from devtools.browser import poll_until

FLOAT32, BFLOAT16 = calibration.FLOAT32, calibration.BFLOAT16


def write_table(tmp_path, monkeypatch, **entry) -> None:
    """A benchmark table with lenet5 measured over 60,000 28×28 images."""
    path = tmp_path / "benchmarks.json"
    entry = {"seconds": 20.0, "images": 60000, "mixed_precision": False, **entry}
    path.write_text(json.dumps({"seconds_per_epoch": {"lenet5": {"28x28x1": entry}}}))
    monkeypatch.setattr(presets, "MEASUREMENTS", path)


class FakeMeasure:
    """Seconds per step by precision, counting the calls."""

    def __init__(self, **seconds):
        self.seconds, self.calls = seconds, []

    def __call__(self, precision: str) -> float:
        self.calls.append(precision)
        return self.seconds[precision]


@pytest.fixture
def cpu_without_bfloat16(monkeypatch):
    monkeypatch.setattr(settings, "fast_bfloat16", lambda: False)


@pytest.fixture
def cpu_with_bfloat16(monkeypatch):
    monkeypatch.setattr(settings, "fast_bfloat16", lambda: True)


# ---------------------------------------------------------------- the arithmetic


def test_time_steps_is_the_median_block_mean_after_the_warm_up():
    # Each step advances a fake clock by the next duration; the warm-up ones are not timed.
    durations = iter([9.0, 9.0] + [1.0, 1.0] + [2.0, 2.0] + [1.0, 3.0] + [50.0, 50.0] + [1.0, 1.0])
    now = [0.0]

    def step():
        now[0] += next(durations)

    seconds = calibration.time_steps(step, warmup=2, steps=10, blocks=5, clock=lambda: now[0])
    # Block means 1, 2, 2, 50, 1: the median is 2 (the 50 s stall does not count).
    assert seconds == 2.0


def test_the_epoch_scales_by_this_machines_step_over_the_reference(
    tmp_path, monkeypatch, lab_home, cpu_without_bfloat16
):
    write_table(tmp_path, monkeypatch, calibration_step_s=0.05)
    calibration.calibrate(FakeMeasure(float32=0.08))
    est = estimates.epoch_estimate("lenet5", "mnist", (28, 28, 1), 6000)
    # By hand: 20 s for 60,000 images is 2 s for 6,000 there; 0.08 / 0.05 = 1.6 times as
    # slow here: 3.2 s, up to 1.5 times that with validation and checkpoints.
    assert est.low_s == pytest.approx(3.2)
    assert est.high_s == pytest.approx(4.8)
    assert est.text() == "about 3–5 s per epoch (float32 on this CPU, calibrated)"


def test_a_cpu_with_bfloat16_scales_a_float32_figure_by_its_bfloat16_step(
    tmp_path, monkeypatch, lab_home, cpu_with_bfloat16
):
    write_table(tmp_path, monkeypatch, calibration_step_s=0.05)
    calibration.calibrate(FakeMeasure(float32=0.04, mixed_bfloat16=0.02))
    est = estimates.epoch_estimate("lenet5", "mnist", (28, 28, 1), 60000)
    assert est.low_s == pytest.approx(20.0 * 0.02 / 0.05)  # a run here trains in bfloat16
    assert "bfloat16 on this CPU, calibrated" in est.text()


def test_scale_to_this_machine_refuses_a_step_of_no_time():
    assert estimates.scale_to_this_machine(30.0, 0.1, 0.25) == pytest.approx(75.0)
    with pytest.raises(ValueError, match="must take some time"):
        estimates.scale_to_this_machine(30.0, 0.0, 0.25)


def test_without_a_calibration_the_estimate_says_uncalibrated(
    tmp_path, monkeypatch, lab_home, cpu_without_bfloat16
):
    write_table(tmp_path, monkeypatch, calibration_step_s=0.05)
    est = estimates.epoch_estimate("lenet5", "mnist", (28, 28, 1), 6000, calibrate=False)
    assert est.low_s == pytest.approx(2.0)  # the benchmark machine's own figure
    assert "float32 on this CPU, uncalibrated" in est.text()
    assert "not measured yet" in est.text()


def test_a_figure_without_a_reference_step_stays_uncalibrated(
    tmp_path, monkeypatch, lab_home, cpu_without_bfloat16
):
    write_table(tmp_path, monkeypatch, mixed_precision=True)  # the old AMX table had none
    calibration.calibrate(FakeMeasure(float32=0.08))
    est = estimates.epoch_estimate("lenet5", "mnist", (28, 28, 1), 6000)
    assert est.low_s == pytest.approx(2.0 * estimates.BFLOAT16_SPEEDUP)
    assert "uncalibrated" in est.text() and "bfloat16" in est.text()


def test_the_page_starts_the_calibration_and_says_so(
    tmp_path, monkeypatch, lab_home, cpu_without_bfloat16
):
    write_table(tmp_path, monkeypatch, calibration_step_s=0.05)
    started = []
    monkeypatch.setattr(calibration, "start_calibration", lambda: started.append(1) or True)
    est = estimates.epoch_estimate("lenet5", "mnist", (28, 28, 1), 6000)
    assert started == [1]
    assert "uncalibrated" in est.text() and "being measured now" in est.text()


def test_uncalibrated_bfloat16_here_takes_a_float32_figure_as_faster(
    tmp_path, monkeypatch, lab_home, cpu_with_bfloat16
):
    write_table(tmp_path, monkeypatch, calibration_step_s=0.05)
    est = estimates.epoch_estimate("lenet5", "mnist", (28, 28, 1), 6000, calibrate=False)
    assert est.low_s == pytest.approx(2.0 / estimates.BFLOAT16_SPEEDUP)
    assert "bfloat16 on this CPU, uncalibrated: measured in float32" in est.text()


def test_no_calibration_starts_beside_a_training_run(
    tmp_path, monkeypatch, lab_home, cpu_without_bfloat16
):
    write_table(tmp_path, monkeypatch, calibration_step_s=0.05)
    started = []
    monkeypatch.setattr(calibration, "start_calibration", lambda: started.append(1) or True)
    monkeypatch.setattr(estimates, "a_run_is_training", lambda: True)
    est = estimates.epoch_estimate("lenet5", "mnist", (28, 28, 1), 6000)
    assert started == [] and "once no run is training" in est.text()


# ---------------------------------------------------------------- the cache


def test_the_step_is_measured_once_and_then_read_from_the_lab_home(lab_home, cpu_without_bfloat16):
    measure = FakeMeasure(float32=0.07)
    assert calibration.calibrate(measure) == {FLOAT32: 0.07}
    assert calibration.calibrate(measure) == {FLOAT32: 0.07}
    assert measure.calls == [FLOAT32]
    (entry,) = json.loads((lab_home / "calibration.json").read_text())["entries"]
    assert entry["machine"] == calibration.machine_key() and entry["seconds_per_step"] == 0.07
    assert calibration.cached_step(FLOAT32) == 0.07


def test_a_cpu_with_bfloat16_measures_both_arithmetics(lab_home, cpu_with_bfloat16):
    measure = FakeMeasure(float32=0.07, mixed_bfloat16=0.03)
    assert calibration.calibrate(measure) == {FLOAT32: 0.07, BFLOAT16: 0.03}
    assert sorted(measure.calls) == [FLOAT32, BFLOAT16]


@pytest.mark.parametrize("damage", ["{not json", "[]", '{"entries": 3}', ""])
def test_a_damaged_cache_is_measured_again(lab_home, cpu_without_bfloat16, damage):
    lab_home.mkdir(parents=True, exist_ok=True)
    (lab_home / "calibration.json").write_text(damage)
    assert calibration.cached_step(FLOAT32) is None
    measure = FakeMeasure(float32=0.07)
    assert calibration.calibrate(measure) == {FLOAT32: 0.07}
    assert measure.calls == [FLOAT32]
    json.loads((lab_home / "calibration.json").read_text())  # whole again


def test_another_machine_is_measured_again_and_the_first_is_kept(
    lab_home, cpu_without_bfloat16, monkeypatch
):
    calibration.calibrate(FakeMeasure(float32=0.07))
    first = calibration.machine_key()
    # Four workers at once give each worker a quarter of the cores: another step time.
    monkeypatch.setenv(settings.MAX_WORKERS_ENV, "4")
    assert calibration.machine_key() != first
    assert calibration.cached_step(FLOAT32) is None
    measure = FakeMeasure(float32=0.2)
    assert calibration.calibrate(measure) == {FLOAT32: 0.2}
    assert measure.calls == [FLOAT32]
    assert calibration.cached_step(FLOAT32, first) == 0.07


def test_another_tensorflow_is_another_key(monkeypatch):
    first = calibration.machine_key()
    monkeypatch.setattr(calibration, "_package_version", lambda *names: "9.9.9")
    assert calibration.machine_key()["tensorflow"] == "9.9.9" != first["tensorflow"]


def test_the_key_holds_the_cpu_model_and_its_speed_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Some Xeon\nflags\t\t: fpu sse avx2 amx_bf16 avx512f\n")
    assert calibration._cpu_model_and_flags(cpuinfo) == ("Some Xeon", ["amx_bf16", "avx2",
                                                                     "avx512f"])  # fmt: skip


def test_a_failed_measurement_is_recorded_and_tried_again_later(lab_home, cpu_without_bfloat16):
    def broken(precision):
        raise RuntimeError("no kernels")

    clock = [1000.0]
    assert calibration.calibrate(broken, now=lambda: clock[0]) == {}
    (entry,) = json.loads((lab_home / "calibration.json").read_text())["entries"]
    assert "no kernels" in entry["error"]
    assert calibration.missing_precisions(now=clock[0] + 60) == []  # not on every page view
    clock[0] += calibration.RETRY_S + 1
    assert calibration.calibrate(FakeMeasure(float32=0.07), now=lambda: clock[0]) == {FLOAT32: 0.07}


# ---------------------------------------------------------------- the background process


class FakePopen:
    started: list = []

    def __init__(self, args, **kwargs):
        FakePopen.started.append(args)

    def wait(self):
        return 0


@pytest.fixture
def fake_popen(monkeypatch):
    """start_calibration's process replaced by FakePopen, with nothing started before."""
    monkeypatch.setattr(calibration.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(calibration, "_spawned", {})
    FakePopen.started = []


def test_the_background_process_is_started_once(lab_home, cpu_without_bfloat16, fake_popen):
    assert real_start_calibration() is True
    assert real_start_calibration() is False  # started a moment ago: not again
    assert FakePopen.started[0][-2:] == ["-m", "cnn_core.runs.calibration"]
    assert len(FakePopen.started) == 1


def test_switched_off_it_starts_nothing(lab_home, cpu_without_bfloat16, fake_popen, monkeypatch):
    monkeypatch.setenv(settings.CALIBRATION_ENV, "off")
    assert real_start_calibration() is False and FakePopen.started == []
    monkeypatch.setenv(settings.CALIBRATION_ENV, "")
    assert real_start_calibration() is True and len(FakePopen.started) == 1


def test_a_calibrated_machine_starts_nothing(lab_home, cpu_without_bfloat16, fake_popen):
    calibration.calibrate(FakeMeasure(float32=0.07))
    assert real_start_calibration() is False and FakePopen.started == []


def test_the_real_step_is_measured_in_the_background_and_cached(lab_home, monkeypatch):
    """The one test that times the real network: the process the page starts."""
    monkeypatch.setattr(calibration, "_spawned", {})
    assert real_start_calibration() is True
    log = lab_home / "calibration.log"

    def ended() -> bool:
        done = not calibration.missing_precisions() and not calibration.measuring_now()
        return done or (log.exists() and "Traceback" in log.read_text())

    poll_until(ended, 180, "the calibration process to finish", interval=0.5)
    for precision in calibration.precisions_to_measure():
        seconds = calibration.cached_step(precision)
        assert seconds is not None, log.read_text()
        assert math.isfinite(seconds) and 0 < seconds < 60
