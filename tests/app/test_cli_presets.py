"""`python -m cnn_core train --preset KEY`: a Train page recipe from the command line,
started through jobs.start_runs as the page starts it, with options overriding it."""

import dataclasses
import json

import pytest

from cnn_core import cli
from cnn_core.runs import jobs, presets, status, store
from tests.factories import TINY_LAYERS


@pytest.fixture
def started(monkeypatch):
    """The configs the CLI hands to jobs.start_runs, which starts nothing here."""
    calls = []

    def fake_start_runs(configs, **kwargs):
        calls.append(list(configs))
        return [f"run-{i}" for i in range(len(configs))]

    monkeypatch.setattr(jobs, "start_runs", fake_start_runs)
    return calls


def test_a_preset_starts_its_config_unchanged(started, capsys):
    assert cli.main(["train", "--preset", "mnist-99"]) == 0
    assert started == [list(presets.get_preset("mnist-99").configs)]
    assert capsys.readouterr().out.split() == ["run-0"]


def test_options_override_every_run_of_a_preset(started, capsys):
    code = cli.main(["train", "--preset", "overfitting", "--epochs", "2", "--seed", "5"])
    assert code == 0
    expected = [dataclasses.replace(c, epochs=2, seed=5)
                for c in presets.get_preset("overfitting").configs]  # fmt: skip
    assert started == [expected]  # both runs, in the preset's order, in one call
    assert capsys.readouterr().out.split() == ["run-0", "run-1"]


def test_another_dataset_drops_the_presets_own_source(started):
    assert cli.main(["train", "--preset", "mnist-99", "--dataset", "fashion_mnist"]) == 0
    (cfg,) = started[0]
    assert presets.get_preset("mnist-99").configs[0].dataset_source == "embedded"
    assert cfg == presets.with_dataset(presets.get_preset("mnist-99").configs[0], "fashion_mnist")


def test_an_unknown_preset_names_the_known_ones(started, capsys):
    assert cli.main(["train", "--preset", "mnist-100"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown preset 'mnist-100'") and len(err.splitlines()) == 1
    assert all(p.key in err for p in presets.PRESETS)
    assert started == []


def test_preset_and_config_file_exclude_each_other(started, tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 1}))
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--preset", "mnist-99", "--config", str(tmp_path / "c.json")])
    assert exc.value.code == 2 and started == []


def test_a_preset_trains_and_waits_to_the_end(tiny, capsys):
    """A real worker: the fashion-quick recipe (cosine decay, lr 2e-3, no validation
    split) on the tiny dataset with a tiny network, followed to its end."""
    code = cli.main(["train", "--preset", "fashion-quick", "--dataset", "user:tiny",
                     "--model", "custom", "--layers", json.dumps(TINY_LAYERS),
                     "--epochs", "1", "--batch-size", "16", "--wait"])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    run_id = out[0]
    assert status.read_status(run_id).state == "finished"
    assert out[-1].startswith("finished: ")
    recipe = presets.get_preset("fashion-quick").configs[0]
    cfg = store.read_config(run_id)
    assert (cfg.dataset, cfg.epochs, cfg.layers) == ("user:tiny", 1, TINY_LAYERS)
    assert (cfg.learning_rate, cfg.lr_schedule, cfg.validation_split, cfg.name) == (
        recipe.learning_rate, recipe.lr_schedule, recipe.validation_split, recipe.name
    )  # fmt: skip
