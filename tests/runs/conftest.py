"""The runs room's tests never start this machine's calibration in the background: a
TensorFlow process per test's lab home would slow the suite and time nothing useful
(tests/runs/test_calibration.py starts the real one once, on purpose)."""

import pytest


@pytest.fixture(autouse=True)
def no_background_calibration(monkeypatch):
    from cnn_core.runs import calibration

    monkeypatch.setattr(calibration, "start_calibration", lambda: False)
