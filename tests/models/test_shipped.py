"""The shipped models: a run config plus weights, rebuilt by the zoo's builder, and read
straight into the catalog's one record, TrainedModel."""

import json
import shutil

import numpy as np
import pytest

from cnn_core import catalog
from cnn_core.models import shipped, zoo
from cnn_core.runs import run_folder
from tests.factories import TINY_LAYERS

DESCRIBED = ("recipe", "test_split", "epochs", "training_minutes", "machine", "date")


def write_shipped(directory, name: str, layers, *, weights_of=None):
    """A shipped model of the custom kind in `directory`; returns the Keras model saved."""
    model = zoo.build_model("custom", (12, 12, 1), 3, layers)
    model.set_weights([np.random.default_rng(i).normal(size=w.shape) * 0.1
                       for i, w in enumerate(model.get_weights())])  # fmt: skip
    (weights_of or model).save_weights(directory / f"{name}-abc.weights.h5")
    meta = {
        "dataset": "user:tiny", "input_shape": [12, 12, 1], "class_names": ["a", "b", "c"],
        "ink_on_dark": False, "weights": f"{name}-abc.weights.h5", "test_accuracy": 0.5,
        "config": {"dataset": "user:tiny", "model": "custom", "layers": layers, "epochs": 2},
        "recipe": {"preset": "tiny-recipe", "command": "python -m cnn_core train --preset x"},
    }  # fmt: skip
    (directory / f"{name}.json").write_text(json.dumps(meta))
    return model


def test_a_custom_layer_list_is_rebuilt_and_predicts_as_the_saved_model(tmp_path):
    saved = write_shipped(tmp_path, "tiny", TINY_LAYERS)
    (info,) = shipped.list_pretrained(directory=tmp_path)
    assert info.key == "pretrained:tiny" and info.shipped and info.model == "custom"
    assert info.label == "Pretrained tiny-recipe (50.0% test accuracy)"
    loaded = shipped.load_pretrained(info, directory=tmp_path)
    x = np.random.default_rng(1).random((5, 12, 12, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), saved.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    assert [type(a) for a in loaded.layers] == [type(b) for b in saved.layers]


def test_weights_of_another_architecture_are_refused(tmp_path):
    wider = [dict(TINY_LAYERS[0], filters=6), *TINY_LAYERS[1:]]
    write_shipped(tmp_path, "tiny", TINY_LAYERS,
                  weights_of=zoo.build_model("custom", (12, 12, 1), 3, wider))  # fmt: skip
    (info,) = shipped.list_pretrained(directory=tmp_path)
    with pytest.raises(shipped.PretrainedError, match="cannot be loaded"):
        shipped.load_pretrained(info, directory=tmp_path)


def test_an_impossible_layer_list_is_a_pretrained_error(tmp_path):
    write_shipped(tmp_path, "tiny", TINY_LAYERS)
    meta = json.loads((tmp_path / "tiny.json").read_text())
    meta["config"]["layers"] = [{"type": "conv", "filters": -3}]
    (tmp_path / "tiny.json").write_text(json.dumps(meta))
    (info,) = shipped.list_pretrained(directory=tmp_path)
    with pytest.raises(shipped.PretrainedError, match="cannot be built"):
        shipped.load_pretrained(info, directory=tmp_path)


def test_a_description_without_a_config_says_how_to_restore_it(tmp_path):
    (tmp_path / "old.json").write_text(json.dumps({"dataset": "mnist", "model": "x"}))
    with pytest.raises(shipped.PretrainedError, match="git checkout assets/"):
        shipped.list_pretrained(directory=tmp_path)


# The input each built-in dataset's model takes, and whether it reads light ink on dark.
BUILT_IN = {"mnist": ((28, 28, 1), True), "fashion_mnist": ((28, 28, 1), True),
            "cifar10": ((32, 32, 3), False)}  # fmt: skip


def test_every_built_in_dataset_ships_a_model():
    assert {m.dataset for m in shipped.list_pretrained()} == set(BUILT_IN)


@pytest.mark.parametrize("dataset", list(BUILT_IN))
def test_every_dataset_ships_a_described_model(dataset):
    (m,) = shipped.list_pretrained(dataset)
    assert isinstance(m, catalog.TrainedModel) and catalog.TrainedModel is shipped.TrainedModel
    assert m.key == f"pretrained:{dataset}" and m.shipped
    assert (m.input_shape, m.ink_on_dark) == BUILT_IN[dataset] and len(m.class_names) == 10
    meta = shipped.read_description(shipped.description_path(m))
    assert set(DESCRIBED) <= set(meta)
    split = meta["test_split"]
    assert m.test_accuracy == pytest.approx(split["correct"] / split["test_images"], abs=5e-5)
    assert (
        meta["recipe"]["command"]
        == f"python -m cnn_core train --preset {meta['recipe']['preset']} --wait"
    )
    assert meta["config"]["epochs"] == meta["epochs"] and meta["config"]["model"] == "custom"
    assert shipped.weights_path(m).is_file()


def test_the_shipped_files_stay_small():
    total = sum(p.stat().st_size for p in shipped.PRETRAINED_DIR.parent.rglob("*") if p.is_file())
    assert total <= 40 * 2**20


def test_the_catalog_lists_and_loads_the_shipped_record_itself(lab_home):
    m = shipped.list_pretrained("mnist")[0]
    assert catalog.list_trained("mnist") == [m]
    model = catalog.load_trained(m.key)
    assert model.output_shape == (None, 10)


def test_a_copied_folder_loads_as_the_assets_do(tmp_path):
    """The loader reads only the files a description names (what build_pretrained stages)."""
    m = shipped.list_pretrained("mnist")[0]
    shutil.copy(shipped.description_path(m), tmp_path)
    shutil.copy(shipped.weights_path(m), tmp_path)
    (copy,) = shipped.list_pretrained(directory=tmp_path)
    assert copy == m
    x = np.random.default_rng(2).random((3, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(
        shipped.load_pretrained(copy, directory=tmp_path).predict(x, verbose=0),
        shipped.load_pretrained(m).predict(x, verbose=0),
    )


def test_a_run_is_not_shipped():
    run = catalog.TrainedModel("run:x", "Your run: x", "mnist", (28, 28, 1), ("0", "1"),
                               True, None)  # fmt: skip
    assert not run.shipped and run.model == ""


def test_the_models_trained_on_mirrors_answer_from_each_image_and_its_mirror(lab_home):
    """The CIFAR-10 and Fashion-MNIST models were trained on mirrored images (a mirrored shirt
    is still a shirt); the MNIST one was not (a mirrored digit is another digit or none)."""
    flips = {m.dataset: m.average_flips for m in shipped.list_pretrained()}
    assert flips == {"mnist": False, "fashion_mnist": True, "cifar10": True}
    assert all(catalog.averages_flips(m.key) == m.average_flips for m in catalog.list_trained())


def test_a_finished_run_with_flips_is_listed_as_averaging_them(lab_home):
    from tests.factories import run_on, save_tiny_dataset

    fingerprint = save_tiny_dataset()
    plain, flipped = run_on("user:tiny", fingerprint), run_on("user:tiny", fingerprint)
    config = run_folder.run_paths(flipped).config
    config.write_text(json.dumps({**json.loads(config.read_text()), "augment_flip": True}))
    for run_id, expected in ((plain, False), (flipped, True)):
        assert catalog.averages_flips(catalog.RUN_PREFIX + run_id) is expected
    assert catalog.averages_flips(catalog.RUN_PREFIX + "no-such-run") is False
