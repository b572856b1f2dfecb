"""runboard.progress: how far a run has come, as the Train page's progress bar shows it."""

import pytest

from cnn_core.runs import runboard
from cnn_core.runs import status as run_status


def status(**fields) -> run_status.RunStatus:
    return run_status.RunStatus(**{"epochs": 4, "batches_per_epoch": 10, **fields})


def test_a_queued_run_has_not_started():
    assert runboard.progress(run_status.RunStatus(state="queued", epochs=5)) == (
        0.0, "not started yet · 5 epochs",
    )  # fmt: skip


def test_a_running_run_shows_its_share_speed_and_time_left():
    share, text = runboard.progress(
        status(state="running", epoch=2, batch=5, images_per_s=1234.4, eta_s=125.0)
    )
    assert share == pytest.approx((1 + 5 / 10) / 4)
    assert text == "epoch 2/4 · batch 5/10 · 1,234 images/s · time left 2 min 05 s"


def test_an_unknown_speed_and_time_left_read_as_a_dash():
    _, text = runboard.progress(status(state="running", epoch=1, batch=1))
    assert text == "epoch 1/4 · batch 1/10 · — · time left —"


@pytest.mark.parametrize("state", ["stopping", "stopped", "interrupted", "failed"])
def test_a_run_not_training_shows_no_speed_or_time_left(state):
    share, text = runboard.progress(
        status(state=state, epoch=3, batch=10, images_per_s=900.0, eta_s=30.0)
    )
    assert share == pytest.approx(3 / 4)
    assert text == "epoch 3/4 · batch 10/10"


def test_a_finished_run_is_full():
    share, _ = runboard.progress(status(state="finished", epoch=4, batch=7))
    assert share == 1.0


def test_the_share_stays_between_0_and_1():
    assert runboard.progress(status(state="running", epoch=0, batch=0))[0] == 0.0
    assert runboard.progress(status(state="running", epoch=9, batch=10))[0] == 1.0
