"""One reading of every run: the Train page's table, its live panel and `python -m cnn_core runs`
must say the same thing about a run's state, its place in the queue and its figures."""

import os
import time

import pandas as pd
import pytest

from cnn_core.cli import main
from cnn_core.runs import history, run_config, runboard, store
from cnn_core.runs import status as run_status
from tests.factories import tiny_config


@pytest.fixture
def tiny(tiny, monkeypatch):
    """The shared tiny dataset (tests/conftest.py), with one worker at a time."""
    monkeypatch.setenv("CNN_LAB_MAX_WORKERS", "1")
    return tiny


def new_run(**changes) -> str:
    return store.create_run(run_config.validate_config(tiny_config(**changes)))


def cli_rows(capsys) -> dict[str, str]:
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    return {line.split()[0]: line for line in lines}


def test_a_queued_run_behind_a_training_one_is_told_so_the_same_everywhere(tiny, capsys):
    training = new_run()
    lock = run_status.acquire_worker_lock(training)  # a live worker, as far as any reader can tell
    try:
        run_status.update_status(training, state="running", epoch=1, batch=3, batches_per_epoch=5)
        first, second = new_run(), new_run()
        run_status.update_status(second, queued=time.time() + 1)  # later in the queue
        rows = {r.id: r for r in runboard.board()}
        assert rows[training].state_text.startswith("running")
        assert rows[first].queue_place == 1 and rows[second].queue_place == 2
        # Not "0 runs ahead" while another trains: the wait is named.
        assert rows[first].state_text == (
            "queued: next in line, waiting while 1 run training (1 at a time)"
        )
        assert rows[second].state_text.startswith("queued: 2nd in line")
        printed = cli_rows(capsys)
        for run_id, r in rows.items():
            assert runboard.row(run_id).state_text == r.state_text  # the live panel's reading
            assert r.state_text in printed[run_id]  # the CLI's
            assert runboard.table_record(r)["state"] == r.state_text  # the table's
    finally:
        os.close(lock)


def test_a_queued_run_with_a_free_slot_is_starting(tiny):
    run_id = new_run()
    assert runboard.row(run_id).state_text == "queued: next in line, starting"


def test_values_not_known_yet_read_as_a_dash_never_none(tiny, capsys):
    run_id = new_run()
    record = runboard.table_record(runboard.row(run_id))
    for column in ("best val. accuracy", "test accuracy", "time", "parameters"):
        assert record[column] == runboard.EMPTY, column
    assert record["epochs"] == "0/2"
    assert "None" not in " ".join(record.values())
    assert "None" not in cli_rows(capsys)[run_id]


def test_the_table_shows_the_settings_that_tell_runs_apart(tiny):
    run_id = new_run(optimizer="sgd", learning_rate=0.05, batch_size=32, augment_shift=0.1,
                     augment_flip=True)  # fmt: skip
    record = runboard.table_record(runboard.row(run_id))
    assert record["optimizer"] == "sgd" and record["learning rate"] == "0.05"
    assert record["batch"] == "32" and record["augmentation"] == "shift 0.1, flips"
    assert list(record) == list(runboard.TABLE_COLUMNS)


@pytest.mark.parametrize(
    ("status", "done"),
    [
        (dict(state="running", epoch=2, batch=5, batches_per_epoch=10), 1),
        (dict(state="running", epoch=2, batch=10, batches_per_epoch=10), 2),
        (dict(state="stopped", epoch=1, batch=0, batches_per_epoch=10), 0),
        (dict(state="finished", epoch=0, batch=0, batches_per_epoch=0, epochs=3), 3),
    ],
)
def test_epochs_done_counts_complete_epochs(status, done):
    assert runboard.epochs_done(run_status.RunStatus(**status)) == done


def test_an_imported_run_shows_the_epochs_it_was_trained_for(tiny):
    from cnn_core.runs import sharing
    from tests.factories import train_tiny_run

    shared = sharing.export_run(train_tiny_run(epochs=2))
    imported = sharing.import_run(shared)
    assert runboard.table_record(runboard.row(imported))["epochs"] == "2/2"


def test_a_new_run_gets_a_readable_name_with_what_differs(tiny):
    plain = runboard.default_name(run_config.validate_config(tiny_config()), now=0)
    changed = runboard.default_name(
        run_config.validate_config(tiny_config(learning_rate=0.01, augment_flip=True)), now=0
    )
    assert "user:" not in plain and "Own images: tiny" in plain
    assert "2 epochs" in plain and plain != changed
    assert "lr 0.01" in changed and "flips" in changed
    assert plain.endswith(time.strftime("%H:%M", time.localtime(0)))


def test_names_never_show_the_registry_prefix(tiny):
    assert run_config.RunConfig(dataset="user:flowers", model="lenet5").display_name == (
        "lenet5 on flowers"
    )


def test_rename_and_delete_through_the_cli(tiny, capsys):
    run_id = new_run()
    assert main(["rename", run_id, "  my   first run "]) == 0
    assert runboard.row(run_id).name == "my first run"
    assert store.run_name(run_id) == "my first run"
    assert main(["rename", run_id, "   "]) == 1
    assert "cannot be empty" in capsys.readouterr().err
    lock = run_status.acquire_worker_lock(run_id)
    run_status.update_status(run_id, state="running")
    try:
        assert main(["delete", run_id]) == 1  # not while it trains
        assert "stop it before deleting" in capsys.readouterr().err
    finally:
        os.close(lock)
    run_status.update_status(run_id, state="stopped")
    assert main(["delete", run_id]) == 0
    assert store.list_runs() == []


def test_the_epoch_chart_draws_a_single_epoch_as_a_point_on_whole_epoch_ticks():
    frame = pd.DataFrame({"train": [0.8]}, index=pd.Index([1], name="epoch"))
    spec = history.curve_spec(frame, "accuracy", whole_epochs=True)
    assert spec["data"]["values"] == [{"x": 1.0, "series": "train", "value": 0.8}]
    assert spec["mark"]["point"] is True
    assert spec["encoding"]["x"]["axis"]["format"] == "d"
    assert spec["encoding"]["y"]["scale"] == {"zero": False}  # zoomed to the data


def test_compared_runs_get_distinct_colours():
    frame = pd.DataFrame({"run a": [0.9, 0.95], "run b": [0.91, 0.96]},
                         index=pd.Index([1, 2], name="epoch"))  # fmt: skip
    scale = history.curve_spec(frame, "accuracy", whole_epochs=True)["encoding"]["color"]["scale"]
    assert scale["domain"] == ["run a", "run b"]
    assert len(set(scale["range"])) == 2
