"""The command line: `python -m cnn_core ...` as a user types it, and main() in-process
where a subprocess would only add TensorFlow's start-up time."""

import os
import subprocess
import sys
import time

from cnn_core.cli import main
from cnn_core.data import readers
from cnn_core.runs import run_config, status, store
from tests.factories import TINY_LAYERS, tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs the real command line with the test's environment (CNN_LAB_HOME included)."""
    return subprocess.run(
        [sys.executable, "-m", "cnn_core", *args], cwd=REPO, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_datasets_lists_sources_and_availability(tiny):
    result = cli("datasets")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "mnist: MNIST" in out and "[ready  ] embedded" in out
    assert "cifar10: CIFAR-10" in out and "[missing] data-dir" in out
    # With nothing downloaded (the test's own empty KERAS_HOME), CIFAR-10 is ready from
    # the embedded copy.
    assert "[ready  ] embedded: embedded copy" in out.split("cifar10: CIFAR-10")[1]
    assert "user:tiny" in out


def test_runs_prints_a_table(tiny):
    assert "No runs yet" in cli("runs").stdout
    run_id = store.create_run(run_config.validate_config(tiny_config()))
    result = cli("runs")
    assert result.returncode == 0
    header, row = result.stdout.splitlines()
    assert header.split()[:3] == ["RUN", "STATE", "EPOCHS"]
    cells = row.split("  ")
    assert [c.strip() for c in cells if c.strip()][:3] == [
        run_id,
        "queued: next in line, starting",
        "0/2",
    ]


def test_user_errors_are_one_line_and_exit_1(tiny, capsys):
    assert main(["train", "--dataset", "user:tiny", "--model", "custom", "--lr", "50"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: learning_rate must be") and len(err.splitlines()) == 1
    for args in (("show", "../etc"), ("stop", "nope"), ("resume", "nope")):
        result = cli(*args)
        assert result.returncode == 1 and result.stderr.startswith("error: "), args
        assert "Traceback" not in result.stderr


def test_train_wait_follows_the_run_to_its_end(tiny, capsys):
    layers = '[{"type": "conv", "filters": 4, "kernel": 3}, {"type": "maxpool"}]'
    code = main(["train", "--dataset", "user:tiny", "--model", "custom", "--layers", layers,
                 "--epochs", "2", "--batch-size", "16", "--augment-zoom", "0.1",
                 "--label-smoothing", "0.1", "--wait"])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    run_id = out[0]
    assert status.read_status(run_id).state == "finished"
    assert [line.split(":")[0] for line in out[1:3]] == ["epoch 1", "epoch 2"]
    assert out[-2].startswith("test: loss") and out[-1].startswith("finished: ")
    cfg = store.read_config(run_id)
    assert cfg.epochs == 2 and cfg.layers[0]["filters"] == 4 and cfg.layers != TINY_LAYERS
    assert (cfg.augment_zoom, cfg.label_smoothing) == (0.1, 0.1)
    shown = cli("show", run_id)
    assert shown.returncode == 0 and "epoch 2:" in shown.stdout and "test: loss" in shown.stdout


def test_download_fails_fast_and_clearly_offline(tiny, monkeypatch, capsys):
    # Port 9 of localhost refuses at once: the same failure as no network, on any machine.
    monkeypatch.setattr(readers, "KERAS_ORIGIN", "http://127.0.0.1:9/")
    started = time.monotonic()
    assert main(["download", "mnist"]) == 1
    assert time.monotonic() - started < 15
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: Could not download http://127.0.0.1:9/mnist.npz")
    assert "offline" in err


def test_download_of_an_unknown_dataset(tiny, capsys):
    assert main(["download", "imagenet"]) == 1
    assert "Unknown dataset 'imagenet'" in capsys.readouterr().err
