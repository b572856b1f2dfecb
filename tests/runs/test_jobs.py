"""Real worker processes: the lifecycle, stop and resume, SIGKILL and resume, the queue."""

import os
import signal
import time

import pytest

from cnn_core import settings
from cnn_core.runs import checkpointing, jobs, metrics_log, run_config, run_folder, store
from cnn_core.runs import status as run_status
from devtools.browser import poll_until
from tests.factories import assert_unbroken_history, epochs_logged, save_tiny_dataset, tiny_config

STOP_BOUND_S = 10.0  # "within a few seconds", with headroom for a loaded CI machine
RUN_TIMEOUT_S = 240.0
DONE = ("finished", "failed", "interrupted", "stopped")


@pytest.fixture
def engine(lab_home):
    """A lab home with "user:tiny" (96 images) and "user:long" (3,000 images: 338 batches
    of 8 per epoch, so a stop or a kill lands mid-epoch). Live workers are killed after."""
    save_tiny_dataset()
    save_tiny_dataset(n=3000, name="long")
    yield lab_home
    for info in store.list_runs():
        if run_status.worker_alive(info.id) and info.status.pid:
            os.kill(info.status.pid, signal.SIGKILL)  # only workers this test started


def long_config(**changes) -> run_config.RunConfig:
    return tiny_config(dataset="user:long", batch_size=8, validation_split=0.1,
                       metrics_every_batches=5, **changes)  # fmt: skip


def state(run_id: str) -> str:
    return run_status.read_status(run_id).state


def in_epoch(run_id: str, epoch: int) -> bool:
    """True once the worker is well inside that epoch (or a later one), past a checkpoint."""
    s = run_status.read_status(run_id)
    if s.state in DONE:
        raise AssertionError(f"run ended early: {s.state}: {s.message}")
    return (
        s.state == "running" and s.epoch >= epoch and s.batch >= 20
        and s.last_checkpoint == s.epoch - 1
    )  # fmt: skip


def iterations(checkpoint) -> int:
    import keras  # only here: loading a checkpoint is the one way to read its optimizer

    return int(keras.saving.load_model(checkpoint).optimizer.iterations)


def test_max_workers(monkeypatch):
    monkeypatch.setenv(settings.MAX_WORKERS_ENV, "3")
    assert settings.max_workers() == 3
    for bad in ("0", "many", ""):
        monkeypatch.setenv(settings.MAX_WORKERS_ENV, bad)
        assert settings.max_workers() == max(1, os.cpu_count() // 2)


def test_stop_is_prompt_and_resume_continues_with_the_optimizer_state(engine):
    run_id = jobs.start_run(long_config(epochs=50))
    poll_until(lambda: in_epoch(run_id, 2), RUN_TIMEOUT_S, "epoch 2 to be under way")
    asked = time.monotonic()
    jobs.stop_run(run_id)
    poll_until(lambda: state(run_id) == "stopped", 60, "the stop")
    took = time.monotonic() - asked
    assert took < STOP_BOUND_S, f"stopping took {took:.1f} s"
    status = run_status.read_status(run_id)
    k, b, per_epoch = status.epoch, status.batch, status.batches_per_epoch
    if b == per_epoch:  # the stop landed on an epoch's last batch: epoch k is complete
        k, b = k + 1, 0
    # The stopped part of epoch k has no record yet; its checkpoint holds its b batches.
    assert epochs_logged(run_id) == list(range(1, k)) and status.last_checkpoint == k - 1
    steps_at_stop = iterations(run_folder.run_paths(run_id).checkpoint(k - 1, b))
    assert steps_at_stop == (k - 1) * per_epoch + b

    jobs.resume_run(run_id)
    assert state(run_id) == "queued"
    poll_until(lambda: k + 1 in epochs_logged(run_id), RUN_TIMEOUT_S, f"epoch {k + 1}")
    jobs.stop_run(run_id)
    poll_until(lambda: state(run_id) == "stopped", 60, "the second stop")
    assert_unbroken_history(run_id)
    assert epochs_logged(run_id)[: k + 1] == list(range(1, k + 2))
    # The optimizer went on from its saved step count, and trained the rest of epoch k.
    after = iterations(run_folder.run_paths(run_id).checkpoint(k + 1))
    assert after == (k + 1) * per_epoch
    resumed = metrics_log.epoch_records(metrics_log.read_metrics(run_id)[0])[k - 1]
    assert resumed["partial"] is False and resumed["val_loss"] is not None


def test_a_killed_worker_is_interrupted_and_resumes_without_gaps(engine):
    run_id = jobs.start_run(long_config(epochs=3))
    poll_until(lambda: in_epoch(run_id, 2), RUN_TIMEOUT_S, "epoch 2 to be under way")
    os.kill(run_status.read_status(run_id).pid, signal.SIGKILL)
    poll_until(lambda: state(run_id) == "interrupted", 30, "the run to read as interrupted")
    done = run_status.read_status(run_id).last_checkpoint
    # Half an epoch was logged after the last checkpoint: the resume must drop it.
    assert any(r["epoch"] > done for r in metrics_log.read_metrics(run_id)[0])

    jobs.resume_run(run_id)
    poll_until(lambda: state(run_id) in DONE, RUN_TIMEOUT_S, "the resumed run to end")
    status = run_status.read_status(run_id)
    assert status.state == "finished", status.message
    assert epochs_logged(run_id) == [1, 2, 3]
    assert_unbroken_history(run_id)
    assert status.history_rewrites == 1  # the half epoch 2 was dropped once
    assert [e for e, _ in checkpointing.checkpoints(run_id)] == [0, 1, 2, 3]


def test_queued_runs_train_one_at_a_time_in_order_through_workers(engine, monkeypatch):
    monkeypatch.setenv(settings.MAX_WORKERS_ENV, "1")
    ids = [jobs.start_run(tiny_config(epochs=2, name=f"queued {i}")) for i in range(3)]
    cancelled = jobs.start_run(tiny_config(epochs=1))
    assert jobs.stop_run(cancelled).state == "stopped"  # a queued run stops at once
    seen: dict[str, list[str]] = {i: [] for i in ids}
    most_running, waiting_seen = 0, False

    def all_done() -> bool:
        nonlocal most_running, waiting_seen
        states = [state(i) for i in ids]
        for run_id, s in zip(ids, states, strict=True):
            if not seen[run_id] or seen[run_id][-1] != s:
                seen[run_id].append(s)
        running = sum(s in ("running", "stopping") for s in states)
        most_running = max(most_running, running)
        waiting_seen |= running == 1 and "queued" in states
        return all(s in DONE for s in states)

    poll_until(all_done, 3 * RUN_TIMEOUT_S, "all queued runs to end", interval=0.02)
    statuses = [run_status.read_status(i) for i in ids]
    assert [s.state for s in statuses] == ["finished"] * 3, [s.message for s in statuses]
    assert all(seen[i] == ["queued", "running", "finished"] for i in ids), seen
    assert most_running == 1 and waiting_seen
    assert sorted(ids, key=lambda i: run_status.read_status(i).started) == ids
    spans = [(s.started, s.finished) for s in statuses]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert state(cancelled) == "stopped" and metrics_log.read_metrics(cancelled) == ([], 0)
    poll_until(lambda: not run_status.worker_alive(cancelled), 30, "the cancelled worker to exit")
    assert_run_artefacts(ids[0])


def assert_run_artefacts(run_id: str) -> None:
    """What a finished run leaves: both kinds of metrics, evaluation, TensorBoard, log."""
    assert {r["kind"] for r in metrics_log.read_metrics(run_id)[0]} == {"batch", "epoch"}
    assert epochs_logged(run_id) == [1, 2]
    assert store.read_evaluation(run_id)["test_images"] == 48
    p = run_folder.run_paths(run_id)
    assert list((p.tensorboard / "train").glob("events.out.tfevents.*"))
    assert list((p.tensorboard / "validation").glob("events.out.tfevents.*"))
    assert p.log.stat().st_size > 0 and p.model.is_file()
    info = next(r for r in store.list_runs() if r.id == run_id)
    assert info.test_accuracy is not None and info.best_val_accuracy is not None
    assert info.params and info.seconds > 0


def test_resume_refuses_what_cannot_resume(engine):
    run_id = store.create_run(run_config.validate_config(tiny_config()))
    run_status.update_status(run_id, state="finished")
    with pytest.raises(run_folder.RunError, match="has finished"):
        jobs.resume_run(run_id)
    run_status.update_status(run_id, state="failed", message="The loss became NaN")
    with pytest.raises(run_folder.RunError, match="before its first checkpoint.*NaN"):
        jobs.resume_run(run_id)
    lock = run_status.acquire_worker_lock(run_id)
    try:
        run_status.update_status(run_id, state="running")
        with pytest.raises(run_folder.RunError, match="is running"):
            jobs.resume_run(run_id)
    finally:
        os.close(lock)
    assert jobs.stop_run(run_id).state == "interrupted"  # nothing left to stop
