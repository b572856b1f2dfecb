"""jobs.start_runs: every config is validated and completed before any run is created or any
worker started, so one bad config of a preset starts none of them."""

import pytest

from cnn_core.runs import jobs, run_config, store
from tests.factories import tiny_config


@pytest.fixture
def spawned(tiny, monkeypatch):
    """The run ids whose worker would have been started (no process is started here)."""
    started: list[str] = []
    monkeypatch.setattr(jobs, "spawn_worker", started.append)
    return started


def test_an_invalid_second_config_starts_none(spawned):
    good, bad = tiny_config(name="the good one"), tiny_config(name="the bad one", epochs=0)
    with pytest.raises(run_config.ConfigError, match="the bad one") as caught:
        jobs.start_runs([good, bad])
    assert "No run was started" in str(caught.value)
    assert spawned == [] and store.list_runs() == []


def test_an_invalid_config_alone_keeps_its_own_message(spawned):
    bad = tiny_config(epochs=0)
    with pytest.raises(run_config.ConfigError) as caught:
        jobs.start_runs([bad])
    with pytest.raises(run_config.ConfigError) as direct:
        run_config.validate_config(bad)
    assert str(caught.value) == str(direct.value)
    assert spawned == [] and store.list_runs() == []


def test_a_batch_too_big_for_the_data_starts_none(spawned):
    configs = [tiny_config(), tiny_config(batch_size=512)]
    with pytest.raises(run_config.ConfigError, match="No run was started"):
        jobs.start_runs(configs, train_size=72, input_shape=(12, 12, 1))
    assert spawned == [] and store.list_runs() == []


def test_valid_configs_start_in_order_completed(spawned):
    run_ids = jobs.start_runs([tiny_config(name="first"), tiny_config(), tiny_config(seed=7)])
    assert spawned == run_ids and len(set(run_ids)) == 3
    first, unnamed, seeded = (store.read_config(r) for r in run_ids)
    assert first.name == "first"
    assert unnamed.name and seeded.name and unnamed.name != "first"  # a default name is given
    for cfg in (first, unnamed, seeded):
        assert cfg.optimizer and cfg.learning_rate is not None  # the model's defaults filled in
        assert cfg.dataset_fingerprint  # the exact images it will train on
        assert cfg.mixed_precision is not None


def test_start_run_is_start_runs_of_one(spawned):
    run_id = jobs.start_run(tiny_config())
    assert spawned == [run_id] and [r.id for r in store.list_runs()] == [run_id]
