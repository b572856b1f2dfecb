"""A full disk or an unusable runs home: a message at the start, never a half-written run.

A full disk is simulated for real with RLIMIT_FSIZE, set in a child process or lowered on a
live worker with prlimit: no file of that process (or of a worker it starts) can grow past
the limit, and Python ignores SIGXFSZ, so such a write fails with EFBIG the way a write to
a full disk fails with ENOSPC. This works as root too, where chmod stops nobody.
"""

import errno
import json
import os
import resource
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest

from cnn_core.runs import checkpointing, jobs, run_folder, store
from cnn_core.runs import status as run_status
from devtools.browser import poll_until
from tests.factories import (
    REPO,
    TINY_LAYERS,
    assert_unbroken_history,
    open_page,
    tiny_config,
)

RUN_TIMEOUT_S = 120.0
ENDED = ("finished", "stopped", "failed", "interrupted")
# Checkpoints of this model are about 0.9 MB; every other file of a short run stays a few kB.
BIG_LAYERS = [*TINY_LAYERS[:3], {"type": "dense", "units": 512}]
ROOM_FOR_SMALL_FILES = 256 * 1024

LIMIT_FILE_SIZE = (
    "import resource, sys\n"
    "hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv.pop(1)), hard))\n"
)
CREATE_RUN = (
    "import json, sys\n"
    "from cnn_core.runs import checkpointing, run_config, run_folder, store\n"
    "try:\n"
    "    print(store.create_run(run_config.RunConfig.from_dict(json.loads(sys.argv[1]))))\n"
    "except run_folder.RunError as exc:\n"
    "    sys.exit(str(exc))\n"
)
RUN_CLI = "import runpy\nrunpy.run_module('cnn_core', run_name='__main__', alter_sys=True)\n"


def run_limited(limit_bytes: int, code: str, *args: str) -> subprocess.CompletedProcess:
    """Runs Python code in a child whose files cannot grow past limit_bytes."""
    command = [sys.executable, "-c", LIMIT_FILE_SIZE + code, str(limit_bytes), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def run_folders() -> list[str]:
    home = run_folder.runs_home()
    return sorted(p.name for p in home.iterdir() if p.is_dir()) if home.is_dir() else []


def assert_complete(run_id: str) -> None:
    assert store.read_config(run_id) == tiny_config()
    assert run_status.read_status(run_id).state in ("queued", "interrupted")
    assert run_folder.run_paths(run_id).checkpoints.is_dir()
    assert [info.id for info in store.list_runs()] == [run_id]


@pytest.fixture
def live_workers(tiny):
    """Kills, after the test, the workers it left alive (only those of its own lab home)."""
    yield
    for info in store.list_runs():
        if run_status.worker_alive(info.id) and info.status.pid:
            os.kill(info.status.pid, signal.SIGKILL)


# ---------------------------------------------------------------- a message at start


def make_runs_home_a_file() -> None:
    run_folder.runs_home().parent.mkdir(parents=True, exist_ok=True)
    run_folder.runs_home().write_text("a file where the runs folder should be")


def test_a_runs_home_under_a_file_is_refused(lab_home):
    lab_home.parent.mkdir(parents=True, exist_ok=True)
    lab_home.write_text("a file where the lab home should be")
    assert "not writable (Not a directory)" in store.runs_home_problem()
    with pytest.raises(run_folder.RunError, match="Set CNN_LAB_HOME to a folder you can write to"):
        store.create_run(tiny_config())
    assert lab_home.is_file()


def test_a_runs_home_that_is_a_file_is_refused(tiny):
    make_runs_home_a_file()
    with pytest.raises(run_folder.RunError, match="is not writable"):
        jobs.start_run(tiny_config())
    assert run_folder.runs_home().is_file()


def test_a_nearly_full_disk_is_refused_at_start_and_at_resume(tiny, monkeypatch):
    stopped = store.create_run(tiny_config())  # made while there was room
    run_status.update_status(stopped, state="stopped")
    free = store.MIN_FREE_BYTES - 1
    usage = SimpleNamespace(total=2 * free, used=free, free=free)
    monkeypatch.setattr(store.shutil, "disk_usage", lambda path: usage)
    message = "MB free; training needs at least 200 MB for checkpoints. Delete old runs"
    with pytest.raises(run_folder.RunError, match=message):
        jobs.start_run(tiny_config())
    with pytest.raises(run_folder.RunError, match=message):
        jobs.resume_run(stopped)
    assert run_status.read_status(stopped).state == "stopped"
    assert run_folders() == [stopped]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders anyway")
def test_a_read_only_runs_home_is_refused(tiny):
    run_folder.runs_home().mkdir(parents=True, exist_ok=True)
    run_folder.runs_home().chmod(0o500)
    try:
        with pytest.raises(run_folder.RunError, match="not writable"):
            jobs.start_run(tiny_config())
        assert run_folders() == []
    finally:
        run_folder.runs_home().chmod(0o700)


def test_a_run_is_complete_or_absent_whatever_the_room_left(tiny):
    status = json.dumps(run_status.RunStatus(state="queued").to_dict(), indent=2)
    config = json.dumps(tiny_config().to_dict(), indent=2)
    # 1 byte: the start check's write fails. 600: status.json fits, config.json does not.
    assert len(status) < 600 < len(config)
    for limit in (1, 600):
        result = run_limited(limit, CREATE_RUN, json.dumps(tiny_config().to_dict()))
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("There is no room to save runs in "), result.stderr
        assert "(File too large). Delete old runs or free space" in result.stderr
        assert run_folders() == []
    result = run_limited(1_000_000, CREATE_RUN, json.dumps(tiny_config().to_dict()))
    assert result.returncode == 0, result.stderr
    assert_complete(result.stdout.strip())


def test_the_command_line_says_so_instead_of_a_traceback(tiny):
    layers = json.dumps(TINY_LAYERS)
    result = run_limited(600, RUN_CLI, "train", "--dataset", "user:tiny", "--model", "custom",
                         "--layers", layers, "--epochs", "1", "--batch-size", "16")  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: There is no room to save")
    assert "Traceback" not in result.stderr
    assert run_folders() == []


def wait_until_ended(run_id: str) -> run_status.RunStatus:
    return poll_until(
        lambda: (s := run_status.read_status(run_id)).state in ENDED and s, RUN_TIMEOUT_S, "the end"
    )


def fill_the_disk_of(pid: int) -> None:
    """Lowers a live process's file size limit: its next big write fails, as on a full disk."""
    hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (ROOM_FOR_SMALL_FILES, hard))


def test_a_disk_that_fills_during_training_keeps_the_last_checkpoint(live_workers):
    run_id = jobs.start_run(tiny_config(epochs=500, layers=BIG_LAYERS))
    poll_until(
        lambda: run_status.read_status(run_id).last_checkpoint, RUN_TIMEOUT_S, "a checkpoint"
    )
    fill_the_disk_of(run_status.read_status(run_id).pid)
    saved = {path: path.read_bytes() for _, path in checkpointing.checkpoints(run_id)}
    assert min(len(data) for data in saved.values()) > 2 * ROOM_FOR_SMALL_FILES

    failed = wait_until_ended(run_id)
    assert failed.state == "failed", failed
    assert all(path.read_bytes() == data for path, data in saved.items())
    assert all(checkpointing.checkpoint_ok(path) for _, path in checkpointing.checkpoints(run_id))
    kept_epoch, _ = checkpointing.latest_good_checkpoint(run_id)
    assert kept_epoch == failed.last_checkpoint
    assert failed.message == (
        f"The disk is full (File too large): the checkpoint of epoch {kept_epoch + 1} could not "
        f"be saved. Free space (delete old runs), then Resume: training continues after epoch "
        f"{kept_epoch}."
    )
    # the space is given back
    assert not list(run_folder.run_paths(run_id).checkpoints.glob(".*.tmp.keras"))
    assert_unbroken_history(run_id)

    jobs.resume_run(run_id)  # the space is back
    poll_until(
        lambda: (run_status.read_status(run_id).last_checkpoint or 0) > kept_epoch,
        RUN_TIMEOUT_S, "a checkpoint after the resume",
    )  # fmt: skip
    jobs.stop_run(run_id)
    assert wait_until_ended(run_id).state == "stopped"
    assert_unbroken_history(run_id)
    assert not list(run_folder.run_paths(run_id).checkpoints.glob(".*.tmp.keras"))
    assert all(checkpointing.checkpoint_ok(path) for _, path in checkpointing.checkpoints(run_id))


# ---------------------------------------------------------------- the Train page


def test_the_train_page_shows_the_problem_instead_of_the_form(tiny):
    make_runs_home_a_file()
    at = open_page("train", tiny)
    assert not at.exception
    assert any("is not writable" in e.value for e in at.error), [e.value for e in at.error]
    assert not [b for b in at.button if "Start" in b.label]
    assert run_folder.runs_home().is_file()


def test_a_disk_that_fills_at_the_click_leaves_no_run(tiny, monkeypatch):
    at = open_page("train", tiny)
    at.selectbox(key="train_model").set_value("custom").run()
    at.session_state["custom_layers"] = TINY_LAYERS

    def no_space(path, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(run_folder, "write_json_atomic", no_space)
    at.button[-1].click()  # the form's "Start training"
    at.run()
    assert not at.exception
    assert any("There is no room to save runs" in e.value for e in at.error), at.error
    assert run_folders() == []
