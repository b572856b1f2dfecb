"""metrics_log.MetricsReader: the one incremental reader of a run's metrics log, behind the
live charts (history.LiveHistory) and the command line's ``--follow``."""

import json

import pytest

from cnn_core.runs import metrics_log, run_config, run_folder, store


@pytest.fixture
def log(lab_home):
    """A run (never started) and the path of its metrics log."""
    run_id = store.create_run(run_config.RunConfig(dataset="mnist", model="simple_convnet"))
    return run_id, run_folder.run_paths(run_id).metrics


def line(epoch: int) -> str:
    return json.dumps({"kind": "epoch", "epoch": epoch, "loss": 1.0 / epoch}) + "\n"


def append(path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def test_no_log_yet_reads_nothing(log):
    run_id, _ = log
    reader = metrics_log.MetricsReader(run_id)
    assert reader.read_new() == [] and reader.read_new() == []
    assert not reader.restarted


def test_a_line_written_in_two_halves_is_returned_once_and_whole(log):
    run_id, path = log
    reader = metrics_log.MetricsReader(run_id)
    whole = line(2)
    append(path, line(1) + whole[:10])
    assert [r["epoch"] for r in reader.read_new()] == [1]
    assert reader.partial == whole[:10].encode()
    assert reader.read_new() == []  # still unfinished: nothing, and nothing twice
    append(path, whole[10:])
    assert reader.read_new() == [json.loads(whole)]
    assert reader.partial == b"" and reader.read_new() == []


def test_each_record_is_returned_once_in_order(log):
    run_id, path = log
    reader = metrics_log.MetricsReader(run_id)
    seen = []
    for epoch in range(1, 6):
        append(path, line(epoch))
        seen += [r["epoch"] for r in reader.read_new()]
    assert seen == [1, 2, 3, 4, 5]
    assert reader.offset == path.stat().st_size


def test_a_shrunk_log_is_read_again_from_the_top_and_says_so(log):
    run_id, path = log
    reader = metrics_log.MetricsReader(run_id)
    append(path, line(1) + line(2) + line(3))
    assert len(reader.read_new()) == 3 and not reader.restarted
    path.write_text(line(1))  # a resume dropped epochs 2 and 3
    assert [r["epoch"] for r in reader.read_new()] == [1]
    assert reader.restarted
    append(path, line(2))
    assert [r["epoch"] for r in reader.read_new()] == [2] and not reader.restarted


def test_reset_reads_everything_again(log):
    run_id, path = log
    reader = metrics_log.MetricsReader(run_id)
    append(path, line(1) + line(2)[:5])
    assert len(reader.read_new()) == 1
    reader.reset()
    assert reader.partial == b"" and [r["epoch"] for r in reader.read_new()] == [1]


def test_a_damaged_line_is_skipped(log):
    run_id, path = log
    reader = metrics_log.MetricsReader(run_id)
    append(path, line(1) + "{not json\n" + line(2))
    assert [r["epoch"] for r in reader.read_new()] == [1, 2]
