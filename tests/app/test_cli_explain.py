"""`python -m cnn_core explain`: a model's layers for an image, and one unit's computation."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from PIL import Image

from cnn_core import catalog
from cnn_core.cli import main
from cnn_core.data import datasets, decoding
from cnn_core.explain import preprocess
from cnn_core.models import shipped


def json_of(capsys, *argv: str):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def saved_test_image(tmp_path, dataset: str, index: int = 0):
    ds = datasets.load_dataset(dataset)
    pixels = ds.x_test[index]
    path = tmp_path / f"{dataset}-{index}.png"
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)
    return path


def model_input(path, key: str) -> np.ndarray:
    """What the Upload tab makes of the file, for that model."""
    (info,) = [m for m in shipped.list_pretrained() if m.key == key]
    image = decoding.decode_image(path.read_bytes(), path.name)
    return preprocess.prepare_upload_for(image, info).model_input


def tapped(key: str, layer: str, x: np.ndarray) -> np.ndarray:
    """The layer's output as Keras computes it, without the lab's tracing."""
    model = catalog.load_trained(key)
    tap = keras.Model(model.inputs, model.get_layer(layer).output)
    return np.asarray(tap.predict(x[None], verbose=0)[0], np.float64)


def test_without_a_layer_it_lists_the_layers_for_the_image(lab_home, tmp_path, capsys):
    path = saved_test_image(tmp_path, "mnist")
    layers = json_of(capsys, "explain", "mnist", str(path), "--json")
    model = catalog.load_trained("pretrained:mnist")
    assert [entry["name"] for entry in layers] == [layer.name for layer in model.layers]
    assert layers[0] == {"name": model.layers[0].name, "type": "input",
                         "output_shape": [28, 28, 1]}  # fmt: skip
    assert layers[-1] == {"name": "predictions", "type": "dense", "output_shape": [10]}
    assert main(["explain", "mnist", str(path)]) == 0
    text = capsys.readouterr().out
    assert "batch normalisation" in text and "--layer NAME --unit ROW COL CHANNEL" in text


def test_a_convolution_unit_is_the_models_own_activation(lab_home, tmp_path, capsys):
    path = saved_test_image(tmp_path, "mnist")
    found = json_of(capsys, "explain", "pretrained:mnist", str(path), "--layer", "conv2",
                    "--unit", "9", "12", "5", "--json")  # fmt: skip
    assert set(found) >= {"layer", "unit", "value", "activation", "receptive_field", "terms"}
    assert (found["layer"], found["unit"]) == ("conv2", [9, 12, 5])
    reference = tapped("pretrained:mnist", "conv2", model_input(path, "pretrained:mnist"))
    assert found["activation"] == pytest.approx(reference[9, 12, 5], rel=1e-5, abs=1e-6)
    assert found["value"] == pytest.approx(reference[9, 12, 5], rel=1e-4, abs=1e-5)
    # Two 3×3 convolutions: a 5×5 field centred on the unit.
    assert found["receptive_field"] == [7, 10, 11, 14]
    assert len(found["terms"]) == 3 * 3 * 32
    assert sum(t["product"] for t in found["terms"]) == pytest.approx(found["steps"][0]["value"])


def test_an_output_unit_is_the_probability_the_model_gives(lab_home, tmp_path, capsys):
    path = saved_test_image(tmp_path, "mnist", index=3)
    x = model_input(path, "pretrained:mnist")
    probs = catalog.load_trained("pretrained:mnist").predict(x[None], verbose=0)[0]
    best = int(np.argmax(probs))
    found = json_of(capsys, "explain", "mnist", str(path), "--layer", "predictions", "--unit",
                    str(best), "--json")  # fmt: skip
    assert found["value"] == pytest.approx(float(probs[best]), abs=1e-5)
    assert found["receptive_field"] == [0, 0, 27, 27]
    assert main(["explain", "mnist", str(path), "--layer", "predictions", "--unit", str(best)]) == 0
    text = capsys.readouterr().out
    assert "softmax" in text and "the model computed" in text


def test_a_colour_photo_unit_of_the_cifar10_model(lab_home, tmp_path, capsys):
    path = saved_test_image(tmp_path, "cifar10", index=5)
    layers = json_of(capsys, "explain", "cifar10", str(path), "--json")
    first_conv = next(entry["name"] for entry in layers if entry["type"] == "convolution")
    found = json_of(capsys, "explain", "cifar10", str(path), "--layer", first_conv, "--unit",
                    "0", "0", "3", "--json")  # fmt: skip
    reference = tapped("pretrained:cifar10", first_conv, model_input(path, "pretrained:cifar10"))
    assert found["value"] == pytest.approx(reference[0, 0, 3], rel=1e-4, abs=1e-5)
    assert {t["channel"] for t in found["terms"]} == {0, 1, 2}  # red, green and blue
    assert any(t["padding"] for t in found["terms"])  # the corner's kernel hangs over the edge
    assert found["receptive_field"] == [0, 0, 1, 1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--layer", "nope", "--unit", "0"], "no layer 'nope'; its layers are: input, conv1"),
        (["--layer", "conv2", "--unit", "99", "0", "0"], "0..27, 0..27, 0..31"),
        (["--layer", "conv2"], "--layer needs --unit"),
    ],
)
def test_a_wrong_layer_or_unit_says_what_to_choose(lab_home, tmp_path, capsys, extra, message):
    path = saved_test_image(tmp_path, "mnist")
    assert main(["explain", "mnist", str(path), *extra]) == 1
    assert message in capsys.readouterr().err


def test_a_file_that_is_no_image_or_no_digit_is_refused_with_the_reason(lab_home, tmp_path, capsys):
    broken = tmp_path / "notes.png"
    broken.write_bytes(b"not an image at all")
    assert main(["explain", "mnist", str(broken)]) == 1
    assert "notes.png" in capsys.readouterr().err
    blank = tmp_path / "blank.png"
    Image.new("L", (60, 60), 230).save(blank)
    assert main(["explain", "mnist", str(blank)]) == 1
    assert "No digit found" in capsys.readouterr().err
    assert main(["explain", "mnist", str(tmp_path / "missing.png")]) == 1
    assert "missing.png: cannot be read" in capsys.readouterr().err
