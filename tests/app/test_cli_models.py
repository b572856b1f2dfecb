"""`python -m cnn_core models` and `evaluate`: every usable trained model, and a model's
scores on a test split or on a folder of images, checked against scikit-learn."""

import json

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from cnn_core import catalog
from cnn_core.cli import main
from cnn_core.data import datasets, owndata, versions
from cnn_core.explain import inference
from cnn_core.models import shipped as shipped_model
from tests.factories import train_tiny_run

SHIPPED = "pretrained:mnist"
SHIPPED_FASHION = "pretrained:fashion_mnist"
SHIPPED_CIFAR = "pretrained:cifar10"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished run on the tiny dataset, in a lab home of this module's own."""
    home = tmp_path_factory.mktemp("lab")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_LAB_HOME", str(home))
        mp.setenv("KERAS_HOME", str(home / "keras"))
        yield train_tiny_run(epochs=1)


def json_of(capsys, *argv: str):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def sklearn_scores(y_true, probs, k: int) -> dict:
    y_pred = probs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(k), zero_division=0
    )
    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
    }


def assert_matches(result: dict, names, expected: dict) -> None:
    assert result["accuracy"] == pytest.approx(expected["accuracy"])
    assert list(result["per_class"]) == list(names)
    for i, name in enumerate(names):
        got = result["per_class"][name]
        for field in ("precision", "recall", "f1"):
            assert got[field] == pytest.approx(float(expected[field][i])), (name, field)
        assert got["support"] == int(expected["support"][i]), name


def test_models_lists_the_shipped_model_and_finished_runs(finished_run, capsys):
    found = {m["key"]: m for m in json_of(capsys, "models", "--json")}
    shipped = found[SHIPPED]
    assert shipped["shipped"] is True
    assert shipped["dataset"] == "mnist"
    assert shipped["class_names"] == [str(d) for d in range(10)]
    assert shipped["input_shape"] == [28, 28, 1]
    # The accuracy the build measured, as its description counts it: at least the goal.
    split = json.loads((shipped_model.PRETRAINED_DIR / "mnist.json").read_text())["test_split"]
    assert shipped["test_accuracy"] == pytest.approx(
        split["correct"] / split["test_images"], abs=5e-5
    )
    assert split["test_images"] == 2000 and shipped["test_accuracy"] >= 0.99
    assert "mnist-99" in shipped["description"]
    fashion = found[SHIPPED_FASHION]
    assert fashion["shipped"] is True and fashion["dataset"] == "fashion_mnist"
    assert fashion["class_names"][0] == "T-shirt/top" and fashion["input_shape"] == [28, 28, 1]
    assert fashion["test_accuracy"] >= 0.935
    cifar = found[SHIPPED_CIFAR]
    assert cifar["shipped"] is True and cifar["dataset"] == "cifar10"
    assert cifar["class_names"][:2] == ["airplane", "automobile"]
    assert cifar["input_shape"] == [32, 32, 3] and cifar["test_accuracy"] >= 0.855
    run = found[catalog.RUN_PREFIX + finished_run]
    assert run["shipped"] is False
    assert run["dataset"] == "user:tiny"
    assert run["class_names"] == ["a", "b", "c"]
    assert run["input_shape"] == [12, 12, 1]
    assert run["test_accuracy"] is None or 0.0 <= run["test_accuracy"] <= 1.0
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert SHIPPED in table and finished_run in table and "SHIPPED" in table


def test_evaluate_a_run_on_its_own_test_split_as_scikit_learn_scores_it(finished_run, capsys):
    result = json_of(capsys, "evaluate", finished_run, "--json")
    key = catalog.RUN_PREFIX + finished_run
    assert result["model"] == key
    assert result["dataset"] == "user:tiny"
    ds = versions.load_dataset_version("user:tiny", None)
    assert result["images"] == len(ds.y_test)
    probs = inference.predict_in_batches(catalog.load_trained(key), ds.x_test)
    assert_matches(result, ds.class_names, sklearn_scores(ds.y_test, probs, 3))
    # The same run named by its catalog key, as text: accuracy, report and matrix.
    assert main(["evaluate", key]) == 0
    text = capsys.readouterr().out
    assert f"test accuracy: {result['accuracy']:.4f}" in text
    assert "precision" in text and "weighted avg" in text
    assert "confusion matrix (rows: true class, columns: predicted class):" in text
    assert text.rstrip().splitlines()[-3].startswith("a ")


def mirror_averaged(model, x: np.ndarray) -> np.ndarray:
    """A model trained with flips answers from each image and its mirror: the mean, by hand."""
    mirrored = x[:, :, ::-1]
    assert not np.array_equal(x, mirrored)
    return (model.predict(x / 255, verbose=0) + model.predict(mirrored / 255, verbose=0)) / 2


def save_folder(root, images: dict[str, np.ndarray]) -> None:
    for name, pixels in images.items():
        (root / name).mkdir(parents=True)
        for i, image in enumerate(pixels):
            Image.fromarray(image[..., 0]).save(root / name / f"{i}.png")


def test_evaluate_a_folder_of_images_by_class_name(lab_home, tmp_path, capsys):
    ds = datasets.load_dataset("mnist")
    picked = {c: ds.x_test[ds.y_test == int(c)][:25] for c in ("3", "7")}
    folder = tmp_path / "digits"
    save_folder(folder, picked)
    result = json_of(capsys, "evaluate", "mnist", "--images", str(folder), "--json")
    assert result["model"] == SHIPPED
    assert result["images"] == 50
    assert result["accuracy"] > 0.9  # folder 3 holds the model's class 3, not its label 0
    # What the reader makes of the folder, scored by scikit-learn with the model's labels.
    x, labels, names, _ = owndata.read_image_folder(folder, image_size=28, grayscale=True)
    y = np.asarray([int(names[i]) for i in labels])
    probs = inference.predict_in_batches(catalog.load_trained(SHIPPED), x)
    assert_matches(result, [str(d) for d in range(10)], sklearn_scores(y, probs, 10))
    assert result["per_class"]["3"]["support"] == 25 and result["per_class"]["0"]["support"] == 0


@pytest.mark.skipif(not datasets.is_available("fashion_mnist"), reason="no Fashion-MNIST here")
def test_evaluate_the_shipped_fashion_model_on_a_folder(lab_home, tmp_path, capsys):
    """A class with a slash (T-shirt/top) is a folder named T-shirt_top."""
    ds = datasets.load_dataset("fashion_mnist")
    label_of = {"T-shirt_top": 0, "Trouser": 1, "Bag": 8}
    picked = {name: ds.x_test[ds.y_test == label][:n]
              for (name, label), n in zip(label_of.items(), (20, 15, 10), strict=True)}  # fmt: skip
    folder = tmp_path / "clothes"
    save_folder(folder, picked)
    result = json_of(capsys, "evaluate", SHIPPED_FASHION, "--images", str(folder), "--json")
    assert result["model"] == SHIPPED_FASHION and result["images"] == 45
    x, labels, names, _ = owndata.read_image_folder(folder, image_size=28, grayscale=True)
    y = np.asarray([label_of[names[i]] for i in labels])
    probs = mirror_averaged(catalog.load_trained(SHIPPED_FASHION), x)  # trained on mirrors
    assert_matches(result, ds.class_names, sklearn_scores(y, probs, 10))
    assert result["per_class"]["T-shirt/top"]["support"] == 20


def test_evaluate_the_shipped_cifar10_model_on_a_folder_of_photos(lab_home, tmp_path, capsys):
    """Colour photos in class folders, from the embedded copy's held-out split."""
    ds = datasets.load_dataset("cifar10")
    picked = {name: ds.x_test[ds.y_test == ds.class_names.index(name)][:12]
              for name in ("cat", "ship", "truck")}  # fmt: skip
    folder = tmp_path / "photos"
    for name, photos in picked.items():
        (folder / name).mkdir(parents=True)
        for i, photo in enumerate(photos):
            Image.fromarray(photo).save(folder / name / f"{i:02d}.png")
    result = json_of(capsys, "evaluate", "cifar10", "--images", str(folder), "--json")
    assert result["model"] == SHIPPED_CIFAR and result["images"] == 36
    x, labels, names, _ = owndata.read_image_folder(folder, image_size=32, grayscale=False)
    np.testing.assert_array_equal(x, np.concatenate(list(picked.values())))  # PNG: lossless
    y = np.asarray([ds.class_names.index(names[i]) for i in labels])
    probs = mirror_averaged(catalog.load_trained(SHIPPED_CIFAR), x)  # trained on mirrors
    assert_matches(result, ds.class_names, sklearn_scores(y, probs, 10))
    assert result["per_class"]["ship"]["support"] == 12 and result["accuracy"] > 0.6


def test_evaluate_names_a_folder_that_is_not_a_class(lab_home, tmp_path, capsys):
    ds = datasets.load_dataset("mnist")
    save_folder(tmp_path / "mixed", {"3": ds.x_test[:3], "cats": ds.x_test[3:6]})
    assert main(["evaluate", SHIPPED, "--images", str(tmp_path / "mixed")]) == 1
    err = capsys.readouterr().err
    assert "'cats'" in err and "0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in err


def test_evaluate_an_unknown_model_lists_the_models(lab_home, capsys):
    assert main(["evaluate", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert "'no-such-model'" in err and SHIPPED in err
