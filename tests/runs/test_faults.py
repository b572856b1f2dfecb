"""Fault injection: SIGKILL the training worker at random moments, resume, and lose nothing.

The data is learnable (a bright bar on the left, middle or right third of the image), so
the killed-and-resumed run can be compared with an uninterrupted one on test accuracy.
"""

import os
import random
import signal
import time

import numpy as np
import pytest

from cnn_core.data import userdata
from cnn_core.data.dataset import Dataset
from cnn_core.runs import jobs, metrics_log, run_config, store
from cnn_core.runs import status as run_status
from devtools.browser import poll_until

KILLS = 10
EPOCHS = 8
LAYERS = [{"type": "conv", "filters": 6, "kernel": 3}, {"type": "maxpool", "size": 2}]


def bars_dataset(n: int = 600, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.integers(0, 60, (n, 12, 12, 1)).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, 2:10, label * 4 : label * 4 + 4, 0] += 150
    split = n * 4 // 5
    return Dataset("bars", "bars", x[:split], y[:split], x[split:], y[split:],
                            ("left", "middle", "right"), "user", "test")  # fmt: skip


def config(name: str) -> run_config.RunConfig:
    return run_config.RunConfig(name=name, dataset="user:bars", model="custom", layers=LAYERS,
                          epochs=EPOCHS, batch_size=16, validation_split=0.0, seed=3)  # fmt: skip


def state_in(run_id: str, *states: str) -> run_status.RunStatus | None:
    status = run_status.read_status(run_id)
    return status if status.state in states else None


def finish(run_id: str) -> run_status.RunStatus:
    return poll_until(lambda: state_in(run_id, "finished"), 180, "the run to finish")


@pytest.mark.slow
def test_ten_sigkills_at_random_moments_lose_nothing(lab_home):
    userdata.save_user_dataset(bars_dataset(), "bars")
    rng = random.Random(7)

    clean = jobs.start_run(config("uninterrupted"))
    finish(clean)

    run_id = jobs.start_run(config("killed"))
    kills = 0
    while kills < KILLS:
        status = poll_until(lambda: state_in(run_id, "running", "finished"), 120, "a worker")
        if status.state == "finished":
            break
        time.sleep(rng.uniform(0.0, 1.5))  # a random moment: start-up, mid-epoch or checkpoint
        pid = run_status.read_status(run_id).pid
        if pid is None:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        kills += 1
        status = poll_until(lambda: state_in(run_id, "interrupted", "finished"), 30, "the kill")
        if status.state == "interrupted":
            jobs.resume_run(run_id)
    finish(run_id)

    assert kills >= KILLS // 2, f"only {kills} kills landed before the run finished"
    records = metrics_log.read_metrics(run_id)[0]
    epochs = [r["epoch"] for r in metrics_log.epoch_records(records)]
    assert epochs == list(range(1, EPOCHS + 1)), epochs  # unbroken, no duplicates
    batches = [(r["epoch"], r["batch"]) for r in records if r["kind"] == "batch"]
    assert len(batches) == len(set(batches)), "duplicated batch records"
    for epoch_no in range(1, EPOCHS + 1):  # within an epoch, batch windows only move forward
        steps = [b for e, b in batches if e == epoch_no]
        assert steps == sorted(steps)
    killed_acc = store.read_evaluation(run_id)["accuracy"]
    clean_acc = store.read_evaluation(clean)["accuracy"]
    print(f"\n{kills} SIGKILLs: test accuracy {killed_acc:.3f}, uninterrupted {clean_acc:.3f}")
    assert clean_acc > 0.9
    assert abs(killed_acc - clean_acc) <= 0.05


def test_the_worker_outlives_the_process_that_started_it(lab_home):
    """A restarted (or crashed) app server does not take its training runs with it."""
    import subprocess
    import sys

    from tests.factories import REPO

    userdata.save_user_dataset(bars_dataset(), "bars")
    starter = (
        "from cnn_core.runs import jobs, metrics_log, run_config, store; import os, signal; "
        "cfg = run_config.RunConfig(dataset='user:bars', model='custom', layers="
        f"{LAYERS!r}, epochs=4, batch_size=16, validation_split=0.0); "
        "print(jobs.start_run(cfg), flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    )
    done = subprocess.run([sys.executable, "-c", starter], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)  # fmt: skip
    assert done.returncode == -signal.SIGKILL  # the "server" died right after starting the run
    run_id = done.stdout.strip().splitlines()[-1]
    status = finish(run_id)
    assert status.state == "finished" and status.epoch == 4
