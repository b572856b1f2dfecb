"""Starting, queueing and stopping training workers, without a daemon.

Each run is trained by its own process, ``python -m cnn_core worker RUN_ID``, started in a
new session so that a restart of the Streamlit server does not kill it. The queue is made
of file locks only:

- the worker first takes its run's lock (``<run>/worker.lock``) for its whole life;
- it then waits, with status "queued", until it is the oldest queued run still waiting
  AND holds one of ``max_workers()`` slot locks (``<runs_home>/.slots/slot-N.lock``);
- the kernel releases every lock of a process when it dies, so a killed worker never
  leaks a slot, and nothing needs cleaning up after a crash or a reboot.

Queued workers import neither TensorFlow nor Keras: a long queue costs little memory.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
import traceback

from cnn_core import settings
from cnn_core.runs import checkpointing, run_config, run_folder, store
from cnn_core.runs import status as run_status
from cnn_core.settings import max_workers

QUEUE_POLL_S = 0.3
SLOTS_DIR = ".slots"


# ---------------------------------------------------------------- the app's side


def spawn_worker(run_id: str) -> subprocess.Popen:
    """Starts the worker process of a run, detached from the caller's session.

    Its stdout and stderr go to the run's worker.log. A daemon thread waits for it, so a
    long-lived caller (the Streamlit server) does not collect zombies.
    """
    p = run_folder.run_paths(run_id)
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # so worker.log is live
    with open(p.log, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cnn_core", "worker", run_id],
            cwd=settings.REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    threading.Thread(target=proc.wait, name=f"reap-{run_id}", daemon=True).start()
    return proc


def start_runs(
    configs: list[run_config.RunConfig],
    *,
    train_size: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
) -> list[str]:
    """Validates and completes every config, then creates each run and starts its worker
    (which queues itself). Nothing is started when one config is invalid.

    This is the one place a config is validated: the worker trusts the config it reads
    (it checks only that the dataset is still there and unchanged).

    Args:
        configs: the runs' configurations, in the order they queue.
        train_size, input_shape: the dataset's training-set size and image shape, when
            the caller has them; they enable more checks (see ``run_config.validate_config``).

    Returns:
        The new run ids, in the order of configs.

    Raises:
        run_config.ConfigError: a config is invalid; the message says what to fix and, when
            there are several, which one.
        run_folder.RunError: the runs folder is unwritable or full.
    """
    ready = []
    for cfg in configs:
        try:
            ready.append(_complete_config(cfg, train_size=train_size, input_shape=input_shape))
        except run_config.ConfigError as exc:
            if len(configs) == 1:
                raise
            raise run_config.ConfigError(f"{cfg.display_name}: {exc} No run was started.") from exc
    run_ids = []
    for cfg in ready:
        run_ids.append(store.create_run(cfg))
        spawn_worker(run_ids[-1])
    return run_ids


def start_run(
    cfg: run_config.RunConfig,
    *,
    train_size: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
) -> str:
    """`start_runs` for one config: returns its run id."""
    return start_runs([cfg], train_size=train_size, input_shape=input_shape)[0]


def _complete_config(
    cfg: run_config.RunConfig,
    *,
    train_size: int | None,
    input_shape: tuple[int, int, int] | None,
) -> run_config.RunConfig:
    """The config validated, with the model's defaults, the dataset's fingerprint and a name.

    Raises:
        run_config.ConfigError: the config is invalid, or its dataset is gone or damaged.
    """
    # lazy: numpy and sklearn, which validate_config loads anyway
    from cnn_core.data import versions
    from cnn_core.data.dataset import DatasetError

    cfg = run_config.validate_config(cfg, train_size=train_size, input_shape=input_shape)
    # The exact images it trains on, so Evaluate and Predict use those or say they are gone.
    try:
        fingerprint = versions.dataset_fingerprint(cfg.dataset)
    except DatasetError as exc:  # deleted or damaged since the checks: say so
        raise run_config.ConfigError(str(exc)) from exc
    cfg = dataclasses.replace(cfg, dataset_fingerprint=fingerprint)
    if not cfg.name:  # three runs of one model must not all read "simple_convnet on mnist"
        from cnn_core.runs import runboard

        cfg = dataclasses.replace(cfg, name=runboard.default_name(cfg))
    return cfg


def resume_run(run_id: str) -> None:
    """Queues a stopped, interrupted or failed run again; it continues after its newest
    intact checkpoint (or starts over when it has none).

    Raises:
        run_folder.RunError: the run is finished, still active, or failed before its first
            checkpoint (resuming would only repeat the failure).
    """
    status = run_status.read_status(run_id)
    if status.state == "finished":
        raise run_folder.RunError(f"Run {run_id} has finished; start a new run to train more.")
    if status.state not in run_status.RESUMABLE_STATES:
        raise run_folder.RunError(f"Run {run_id} is {status.state}; only a stopped, interrupted or "
                                 "failed run can be resumed.")  # fmt: skip
    if status.state == "failed" and checkpointing.latest_good_checkpoint(run_id) is None:
        raise run_folder.RunError(
            f"Run {run_id} failed before its first checkpoint ({status.message}); start a new "
            "run with a corrected configuration instead."
        )
    problem = store.runs_home_problem()
    if problem:
        raise run_folder.RunError(problem)
    run_status.clear_stop_request(run_id)
    run_status.update_status(run_id, state="queued", pid=None, queued=time.time(), finished=None,
                            eta_s=None, message="Waiting for a free training slot.")  # fmt: skip
    spawn_worker(run_id)


def stop_run(run_id: str) -> run_status.RunStatus:
    """Asks a run to stop: a queued run is stopped at once, a training one saves a
    checkpoint after its current batch and then stops. Other runs are left as they are.

    Returns:
        The status after the request.
    """
    status = run_status.read_status(run_id)
    if not status.active:
        return status
    run_status.request_stop(run_id)
    now = time.time()
    if not run_status.transition_status(run_id, ("queued",), state="stopped", finished=now,
                                       message="Stopped before it started training."):  # fmt: skip
        run_status.transition_status(run_id, ("running",), state="stopping",
                                    message="Stopping after the current batch.")  # fmt: skip
    return run_status.read_status(run_id)


# ---------------------------------------------------------------- the worker's side


def _waiting_runs() -> list[str]:
    """Ids of the queued runs whose worker is alive or starting, in queue order."""
    home = run_folder.runs_home()
    waiting = []
    for root in home.iterdir() if home.is_dir() else ():
        if (
            not run_folder.RUN_ID_RE.fullmatch(root.name)
            or not (root / run_folder.STATUS_FILE).is_file()
        ):
            continue
        try:
            status = run_status.read_status(root.name)
        except run_folder.RunError:
            continue
        if status.state == "queued":
            waiting.append((status.queued, root.name))
    return [run_id for _, run_id in sorted(waiting)]


def _take_slot() -> int | None:
    """A locked slot file descriptor, or None when all max_workers() slots are busy."""
    folder = run_folder.runs_home() / SLOTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(max_workers()):
        fd = os.open(folder / f"slot-{n}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            os.close(fd)
    return None


def _wait_for_turn(run_id: str) -> int | None:
    """Blocks until this run may train; returns its slot lock, or None if it was stopped."""
    shown = None
    while True:
        if run_status.stop_requested(run_id):
            run_status.transition_status(run_id, ("queued",), state="stopped", finished=time.time(),
                                        message="Stopped before it started training.")  # fmt: skip
            return None
        waiting = _waiting_runs()
        ahead = waiting.index(run_id) if run_id in waiting else 0
        slot = _take_slot() if ahead == 0 else None
        if slot is not None:
            if run_status.transition_status(run_id, ("queued",), state="running",
                                           message="Starting.", started=time.time()):  # fmt: skip
                return slot
            os.close(slot)  # stopped between the check and now
            return None
        if shown is None:
            # The place in the queue is not written here: cnn_core.runs.runboard works it out
            # for every reader from the same listing, so no message can go stale.
            shown = run_status.update_status(run_id, message="Waiting for a free training slot.")
        time.sleep(QUEUE_POLL_S)


def _stop_on_sigterm(run_id: str) -> None:
    """A polite kill (shutdown, `kill PID`) becomes a stop: checkpoint, then exit."""

    def handler(signum, frame):
        run_status.request_stop(run_id)

    signal.signal(signal.SIGTERM, handler)


def _queue_and_train(run_id: str) -> int:
    if not run_status.transition_status(run_id, ("queued",), pid=os.getpid()):
        print(f"Run {run_id} is not queued; use resume.", file=sys.stderr)
        return 1
    slot = _wait_for_turn(run_id)
    if slot is None:
        return 0
    try:
        from cnn_core.runs import training  # only now: TensorFlow is large

        return training.train_run(run_id)
    finally:
        os.close(slot)


def run_worker(run_id: str) -> int:
    """The body of ``python -m cnn_core worker RUN_ID``: lock, queue, train.

    Returns:
        The process exit code (0 finished or stopped, 1 failed or not startable).
    """
    try:
        lock = run_status.acquire_worker_lock(run_id)
    except run_folder.RunError as exc:
        print(exc, file=sys.stderr)
        return 1
    _stop_on_sigterm(run_id)
    try:
        return _queue_and_train(run_id)
    except Exception as exc:  # e.g. the runs folder vanished while queued: never silent
        traceback.print_exc()
        message = f"The worker failed: {type(exc).__name__}: {exc}"
        run_status.update_status(run_id, state="failed", finished=time.time(), message=message)
        return 1
    finally:
        os.close(lock)
