"""The websocket classroom, small: 5 learners draw and upload through Streamlit's own
protocol while a run trains, then 5 training requests arrive at once."""

import json

import pytest

from benchmarks import classroom_ws

SESSIONS = 5


@pytest.mark.slow
def test_five_websocket_learners_get_predictions_while_a_run_trains_and_five_runs_queue(
    tmp_path,
):
    out = tmp_path / "classroom_ws.json"
    # 10 s of load, learners thinking 0.5–2 s: a few answers by each path. The rest of its
    # ~40 s is the server, the training worker and the queue check's workers loading TensorFlow.
    args = ["--sessions", str(SESSIONS), "--seconds", "10", "--think", "0.5", "2",
            "--max-workers", "1", "--json-out", str(out)]  # fmt: skip
    status = classroom_ws.main(args)
    figures = json.loads(out.read_text())
    assert figures["errors"] == 0, figures["error_samples"]
    # Every learner got answers by both paths: the canvas' widget value and an upload.
    assert figures["sessions_with_both"] == SESSIONS, figures["per_session"]
    assert figures["predictions"] == figures["draws"] + figures["uploads"]
    assert figures["draws"] >= SESSIONS and figures["uploads"] >= SESSIONS
    assert figures["other_reruns"] >= figures["uploads"]  # each upload was removed again
    queue = figures["queue"]
    # The classroom run holds the only slot, so all five wait; one starts once it stops.
    assert queue["peak_training"] <= 1
    assert queue["queued"] == 5 and queue["running"] == 0
    assert queue["started_later"] and queue["ok"]
    assert status == 0
