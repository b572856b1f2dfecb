"""The classroom load script, small: 3 learners draw and upload while a run trains, then
5 training requests arrive at once."""

import json

import pytest

from benchmarks import classroom


@pytest.mark.browser
@pytest.mark.slow
def test_three_learners_get_predictions_while_a_run_trains_and_five_runs_queue(tmp_path):
    out = tmp_path / "classroom.json"
    args = ["--sessions", "3", "--seconds", "15", "--max-workers", "1", "--json-out", str(out)]
    status = classroom.main(args)
    figures = json.loads(out.read_text())
    assert figures["errors"] == 0, figures["error_samples"]
    assert figures["draws"] > 0 and figures["uploads"] > 0
    assert figures["predictions"] == figures["draws"] + figures["uploads"]
    # A stroke the browser never sent is drawn again, not an error; it must stay rare.
    assert figures["strokes_lost"] < figures["draws"]
    queue = figures["queue"]
    # The classroom run holds the only slot, so all five wait; one starts once it stops.
    assert queue["peak_training"] <= 1
    assert queue["queued"] == 5 and queue["running"] == 0
    assert queue["started_later"] and queue["ok"]
    assert status == 0
