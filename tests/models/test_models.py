"""Tests for cnn_core.models: the zoo, the layer-list builder and the summaries.

References: Keras itself (built shapes, ``count_params``, the printed ``model.summary()``)
and the parameter counts the source documents publish (cnn_core.models.sources). Run alone with
``python -m pytest tests/models/test_models.py``; ``benchmarks/zoo_train_step.py`` prints
the parameter counts and a rough seconds-per-epoch estimate per zoo model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import keras
import numpy as np
import pytest

from cnn_core.models import sources
from cnn_core.models.input_limits import ModelError
from cnn_core.models.layer_lists import (
    DEFAULT_CUSTOM_LAYERS,
    MAX_CUSTOM_PARAMS,
    LayerSpecError,
    default_custom_layers,
    validate_layers,
)
from cnn_core.models.summaries import (
    conv_layer_names,
    format_shape,
    summarize,
    tappable_layer_names,
    training_flops,
)
from cnn_core.models.zoo import MODELS, ModelInfo, build_model, get_model_info, list_models

ZOO = [key for key in MODELS if key != "custom"]
SHAPES = [(28, 28, 1), (32, 32, 3)]
NUM_CLASSES = 10
BATCH = 8


@pytest.fixture
def fresh_session():
    """Frees the models and traced train steps of a test (clearing costs ~1 s, so only
    the tests that train use it)."""
    yield
    keras.backend.clear_session()


def _build(key: str, shape, num_classes: int = NUM_CLASSES) -> keras.Model:
    layers = default_custom_layers() if key == "custom" else None
    return build_model(key, shape, num_classes, layers)


def _make_optimizer(info: ModelInfo) -> keras.optimizers.Optimizer:
    """The recommended optimizer, looked up by name as a training engine would."""
    optimizer = keras.optimizers.get(info.optimizer)
    optimizer.learning_rate = info.learning_rate
    return optimizer


def _predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """An eager inference call: cheaper than tracing predict() for a single batch."""
    return keras.ops.convert_to_numpy(model(images, training=False))


def _keras_default_name(class_name: str) -> str:
    """The snake_case name Keras gives an unnamed layer (Conv2D -> conv2d, ReLU -> re_lu)."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras_printed_totals(model: keras.Model) -> dict[str, int]:
    """Parses "Total params: 1,234 (4.82 KB)" and friends from Keras' own summary."""
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    text = "\n".join(lines)
    found = re.findall(r"(Total|Trainable|Non-trainable) params: ([\d,]+)", text)
    return {label: int(count.replace(",", "")) for label, count in found}


# --- Every zoo model: builds, trains a step, predicts probabilities --------------------------
@pytest.mark.parametrize("shape", SHAPES, ids=["28x28x1", "32x32x3"])
@pytest.mark.parametrize("key", [*ZOO, "custom"])
def test_model_builds_trains_one_step_and_outputs_probabilities(key, shape, fresh_session):
    info = MODELS[key]
    model = _build(key, shape)
    model.compile(_make_optimizer(info), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.random((BATCH, *shape), dtype=np.float32)
    labels = rng.integers(0, NUM_CLASSES, BATCH)

    loss = model.train_on_batch(images, labels)
    probs = _predict(model, images)

    assert math.isfinite(float(np.ravel(loss)[0]))
    assert probs.shape == (BATCH, NUM_CLASSES)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()


@pytest.mark.parametrize("key", [*ZOO, "custom"])
def test_model_is_functional_with_readable_unique_names_and_a_softmax_output(key):
    model = _build(key, (28, 28, 1), num_classes=7)
    names = [layer.name for layer in model.layers]
    output = model.layers[-1]

    assert not isinstance(model, keras.Sequential)
    assert isinstance(model.layers[0], keras.layers.InputLayer)
    assert len(names) == len(set(names))
    assert output.name == "predictions"
    assert isinstance(output, keras.layers.Dense)
    assert output.activation.__name__ == "softmax"
    assert output.units == 7
    assert not any(isinstance(layer, keras.layers.Rescaling) for layer in model.layers)
    for layer in model.layers[1:]:
        default = _keras_default_name(type(layer).__name__)
        is_auto_named = re.fullmatch(rf"{default}(_\d+)?", layer.name)
        assert layer.name == "flatten" or not is_auto_named, f"{key}: {layer.name} is unnamed"


@pytest.mark.parametrize("key", ZOO)
def test_every_conv_and_pool_output_can_be_tapped_as_feature_maps(key):
    model = _build(key, (28, 28, 1))
    names = tappable_layer_names(model)
    tap = keras.Model(model.input, [model.get_layer(name).output for name in names])

    maps = tap(np.zeros((1, 28, 28, 1), np.float32), training=False)

    assert set(conv_layer_names(model)) <= set(names)
    assert len(maps) == len(names) >= 2
    for name, feature_map in zip(names, maps, strict=True):
        expected = (1, *model.get_layer(name).output.shape[1:])
        assert tuple(feature_map.shape) == expected and len(expected) == 4, name


def test_conv_and_tappable_names_follow_the_model_order():
    model = _build("simple_convnet", (28, 28, 1))

    assert conv_layer_names(model) == ["conv1", "conv2", "conv3"]
    assert tappable_layer_names(model) == ["conv1", "conv2", "pool1", "conv3", "pool2"]


@pytest.mark.parametrize("key", ["custom", "fashion_cnn_dropout", "resnet", "wideresnet"])
def test_model_survives_a_keras_file_round_trip(key, tmp_path):
    model = _build(key, (28, 28, 1))
    images = np.random.default_rng(1).random((2, 28, 28, 1), dtype=np.float32)
    path = tmp_path / f"{key}.keras"

    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)

    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(_predict(loaded, images), _predict(model, images), atol=1e-6)


# --- Source documents' architectures ---------------------------------------------------------
def test_vgg_like_bn_has_the_parameter_counts_printed_in_the_cifar10_report():
    summary = summarize(_build("vgg_like_bn", (32, 32, 3)))

    assert summary.total_params == 2_253_906
    assert summary.trainable_params == 2_251_218
    assert summary.non_trainable_params == 2_688


def test_vgg_like_bn_layer_shapes_follow_the_cifar10_report():
    rows = {row.name: row for row in summarize(_build("vgg_like_bn", (32, 32, 3))).rows}

    assert rows["conv1_1"].params == 896
    assert rows["bn1_1"].params == 128
    assert rows["pool4"].output_shape == (2, 2, 256)
    assert rows["flatten"].output_shape == (1024,)
    assert rows["dense1"].params == 307_500
    assert rows["dense2"].params == 30_100


@pytest.mark.parametrize(
    ("key", "expected_params"),
    [
        ("fashion_cnn", 356_234),  # DataCamp tutorial's model.summary()
        ("fashion_cnn_dropout", 356_234),  # dropout adds no weights
        ("tf_tutorial", 242_062),  # 416 + 14,436 + 225,920 + 1,290 in Hvass' notebook
    ],
)
def test_source_models_have_the_tutorials_parameter_counts(key, expected_params):
    assert _build(key, (28, 28, 1)).count_params() == expected_params


def test_tf_tutorial_pools_before_relu_as_the_tutorial():
    names = [layer.name for layer in _build("tf_tutorial", (28, 28, 1)).layers]

    assert names.index("conv1") < names.index("pool1") < names.index("relu1")


def test_fashion_cnn_uses_leaky_relu_with_slope_0_1():
    model = _build("fashion_cnn", (28, 28, 1))
    slopes = [
        layer.negative_slope for layer in model.layers if isinstance(layer, keras.layers.LeakyReLU)
    ]

    assert slopes == pytest.approx([0.1] * 4)


def test_dropout_variant_adds_the_tutorials_dropout_rates():
    plain = _build("fashion_cnn", (28, 28, 1))
    dropout = _build("fashion_cnn_dropout", (28, 28, 1))
    rates = [layer.rate for layer in dropout.layers if isinstance(layer, keras.layers.Dropout)]

    assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)
    assert rates == pytest.approx([0.25, 0.25, 0.4, 0.3])


def test_resnet_adds_shortcuts_and_projects_when_the_shape_changes():
    model = _build("resnet", (32, 32, 3))
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    projections = [name for name in conv_layer_names(model) if "shortcut" in name]

    assert len(adds) == 9  # ResNet-20: three stages of three blocks
    assert projections == ["stage2_block1_shortcut_conv", "stage3_block1_shortcut_conv"]
    assert model.get_layer("stage3_block3_out").output.shape[1:] == (8, 8, 64)


def test_allcnn_has_no_pooling_and_no_hidden_dense_layers():
    model = _build("allcnn", (32, 32, 3))
    kinds = {type(layer).__name__ for layer in model.layers}
    denses = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]

    assert not kinds & {"MaxPooling2D", "AveragePooling2D", "Flatten"}
    assert "GlobalAveragePooling2D" in kinds
    assert [layer.name for layer in denses] == ["predictions"]


# --- Summaries --------------------------------------------------------------------------------
@pytest.mark.parametrize("key", [*ZOO, "custom"])
def test_summary_matches_keras_counts_and_shapes(key):
    model = _build(key, (32, 32, 3))
    summary = summarize(model)
    printed = _keras_printed_totals(model)

    assert summary.total_params == model.count_params() == printed["Total"]
    assert summary.trainable_params == printed["Trainable"]
    assert summary.non_trainable_params == printed["Non-trainable"]
    assert sum(row.params for row in summary.rows) == summary.total_params
    assert [row.name for row in summary.rows] == [layer.name for layer in model.layers]
    assert summary.rows[0].output_shape == (32, 32, 3)
    assert summary.rows[-1].output_shape == (NUM_CLASSES,)


def test_training_flops_count_every_multiply_add_of_the_simple_convnet():
    forward, training = training_flops(_build("simple_convnet", (28, 28, 1)))

    # Same-padded 3x3 convs: 28x28x32 from 1 channel, 28x28x32 from 32, 14x14x32 from 32,
    # then the dense output from the 7x7x32 flattened maps.
    layers = [28 * 28 * 32 * 9, 28 * 28 * 32 * 9 * 32, 14 * 14 * 32 * 9 * 32, 7 * 7 * 32 * 10]
    assert forward == 2 * sum(layers)
    # Backward: weight and input gradients, except the input gradient of the first layer.
    assert training == 3 * forward - 2 * layers[0]
    assert training_flops(_build("allcnn", (32, 32, 3)))[0] > forward


def test_summary_records_are_plain_table_rows():
    records = summarize(_build("simple_convnet", (28, 28, 1))).to_records()

    assert json.loads(json.dumps(records)) == records
    assert records[1] == {
        "name": "conv1",
        "type": "Conv2D",
        "output_shape": "28 × 28 × 32",
        "params": 320,
    }
    assert format_shape((None, 5)) == "? × 5"


# --- Custom layer lists: validate_layers agrees with Keras -----------------------------------
CUSTOM_STACKS = {
    "default": (DEFAULT_CUSTOM_LAYERS, (28, 28, 1)),
    "strided_valid_leaky": (
        [
            {
                "type": "conv",
                "filters": 8,
                "kernel": 5,
                "stride": 2,
                "padding": "valid",
                "activation": "leaky_relu",
            },
            {"type": "batchnorm"},
            {
                "type": "conv",
                "filters": 12,
                "kernel": 3,
                "stride": 3,
                "padding": "same",
                "activation": "tanh",
            },
            {"type": "avgpool", "size": 3, "stride": 1},
            {"type": "flatten"},
            {"type": "batchnorm"},
            {"type": "dense", "units": 20, "activation": "sigmoid"},
        ],
        (32, 32, 3),
    ),
    "odd_sizes_same_pool": (
        [
            {"type": "conv", "filters": 4, "kernel": 4, "padding": "valid"},
            {"type": "maxpool", "size": 3, "stride": 2, "padding": "same"},
            {"type": "maxpool", "size": 2},
            {"type": "dropout", "rate": 0.1},
            {"type": "globalavgpool"},
            {"type": "dense", "units": 9, "activation": "linear"},
        ],
        (29, 17, 2),
    ),
    "dense_on_an_image_gets_a_flatten": (
        [{"type": "conv", "filters": 6, "kernel": 1}, {"type": "dense", "units": 5}],
        (8, 8, 1),
    ),
    "ends_spatial_gets_a_flatten": (
        [{"type": "conv", "filters": 3}, {"type": "maxpool", "size": 4}],
        (12, 12, 3),
    ),
    "empty_is_softmax_regression": ([], (28, 28, 1)),
}


@pytest.mark.parametrize("stack", CUSTOM_STACKS.values(), ids=CUSTOM_STACKS.keys())
def test_validate_layers_predicts_the_shapes_and_params_keras_builds(stack):
    layers, shape = stack
    planned = validate_layers(layers, shape, num_classes=NUM_CLASSES)
    model = build_model("custom", shape, NUM_CLASSES, layers)

    built = [(row.name, row.output_shape, row.params) for row in summarize(model).rows[1:]]
    assert [(row.name, row.output_shape, row.params) for row in planned] == built
    assert [row.number for row in planned if not row.auto] == list(range(1, len(layers) + 1))
    assert planned[-1].name == "predictions" and planned[-1].auto


def test_validate_layers_inserts_flatten_before_dense_and_at_the_end():
    before_dense = validate_layers([{"type": "conv"}, {"type": "dense"}], (8, 8, 1))
    at_end = validate_layers([{"type": "conv"}], (8, 8, 1), num_classes=3)

    assert [(row.name, row.number) for row in before_dense] == [
        ("conv1", 1),
        ("flatten1", None),
        ("dense1", 2),
    ]
    assert [(row.name, row.auto) for row in at_end] == [
        ("conv1", False),
        ("flatten1", True),
        ("predictions", True),
    ]
    assert at_end[-1].params == 8 * 8 * 32 * 3 + 3


def test_validate_layers_fills_defaults_and_accepts_table_cells():
    layers = [
        {"type": "Conv", "filters": 16.0, "kernel": None, "stride": float("nan")},
        {"type": "maxpool", "size": 3, "units": 99},  # another type's column is ignored
        {"type": "dense"},
        {"type": "dropout"},
    ]

    specs = [row.spec for row in validate_layers(layers, (28, 28, 1))]

    assert specs[0] == {
        "type": "conv",
        "filters": 16,
        "kernel": 3,
        "stride": 1,
        "padding": "same",
        "activation": "relu",
    }
    assert specs[1] == {"type": "maxpool", "size": 3, "stride": 3, "padding": "valid"}
    assert specs[3]["units"] == 128 and specs[4]["rate"] == 0.25


def test_default_custom_layers_are_json_ready_and_copied():
    layers = default_custom_layers()
    layers[0]["filters"] = 999

    assert json.loads(json.dumps(DEFAULT_CUSTOM_LAYERS)) == DEFAULT_CUSTOM_LAYERS
    assert DEFAULT_CUSTOM_LAYERS[0]["filters"] != 999
    assert validate_layers(DEFAULT_CUSTOM_LAYERS, (32, 32, 3))


LAYER_ERRORS = {
    "unknown_type": ([{"type": "convolution"}], ["Layer 1", "'convolution'", "maxpool"]),
    "missing_type": ([{"filters": 8}], ["Layer 1", "no type", "conv"]),
    "not_a_dict": (["conv"], ["Layer 1", "dict"]),
    "unknown_key": ([{"type": "conv", "filter": 8}], ["Layer 1", "unknown setting", "'filter'"]),
    "filters_zero": ([{"type": "conv", "filters": 0}], ["Layer 1", "filters", "1 to 1024"]),
    "filters_too_many": ([{"type": "conv", "filters": 2048}], ["filters", "1 to 1024"]),
    "filters_text": ([{"type": "conv", "filters": "32"}], ["filters", "whole number"]),
    "filters_fraction": ([{"type": "conv", "filters": 3.5}], ["filters", "whole number"]),
    "kernel_too_big": ([{"type": "conv", "kernel": 12}], ["kernel", "1 to 11"]),
    "stride_too_big": ([{"type": "conv", "stride": 5}], ["stride", "1 to 4"]),
    "pool_size_zero": ([{"type": "maxpool", "size": 0}], ["size", "1 to 11"]),
    "units_zero": (
        [{"type": "flatten"}, {"type": "dense", "units": 0}],
        ["Layer 2", "units", "1 to 4096"],
    ),
    "units_too_many": ([{"type": "dense", "units": 5000}], ["units", "1 to 4096"]),
    "rate_one": ([{"type": "dropout", "rate": 1.0}], ["rate", "below 1"]),
    "rate_negative": ([{"type": "dropout", "rate": -0.1}], ["rate", "from 0"]),
    "bad_padding": ([{"type": "conv", "padding": "full"}], ["padding", "same", "valid"]),
    "bad_activation": (
        [{"type": "conv", "activation": "softmax"}],
        ["activation", "relu", "leaky_relu"],
    ),
    "pool_on_1x1": (
        [{"type": "conv"}] + [{"type": "maxpool", "size": 2}] * 4,
        ["Layer 5 (max-pool 2×2)", "only 1×1", "nothing left to pool", "pool less earlier"],
    ),
    "conv_kernel_larger_than_map": (
        [{"type": "maxpool"}, {"type": "conv", "kernel": 5, "padding": "valid"}],
        ["Layer 2 (conv 32 5×5)", "only 4×4", "5×5", "'same'"],
    ),
    "conv_after_flatten": (
        [{"type": "flatten"}, {"type": "conv"}],
        ["Layer 2 (conv 32 3×3)", "after layer 1 (flatten)", "Move this layer"],
    ),
    "pool_after_dense": (
        [{"type": "dense", "units": 8}, {"type": "avgpool"}],
        ["Layer 2 (avg-pool 2×2)", "after layer 1 (dense 8)", "no grid"],
    ),
    "gap_after_gap": (
        [{"type": "globalavgpool"}, {"type": "globalavgpool"}],
        ["Layer 2 (global-avg-pool)", "after layer 1"],
    ),
    "too_many_params": (  # on 8x8x1 only 256 values reach the dense layer, so widen first
        [
            {"type": "conv", "filters": 1024, "kernel": 1},
            {"type": "flatten"},
            {"type": "dense", "units": 4096},
        ],
        ["Layer 3 (dense 4096)", "parameters", f"{MAX_CUSTOM_PARAMS:,}", "pool"],
    ),
    "too_many_layers": ([{"type": "dropout"}] * 65, ["65 layers", "at most 64"]),
    "not_a_list": ("conv, pool", ["list of dicts"]),
}


@pytest.mark.parametrize("case", LAYER_ERRORS.values(), ids=LAYER_ERRORS.keys())
def test_invalid_layer_lists_raise_a_message_that_says_what_to_fix(case):
    layers, keywords = case

    with pytest.raises(LayerSpecError) as error:
        validate_layers(layers, (8, 8, 1))

    for keyword in keywords:
        assert keyword in str(error.value)


def test_an_output_layer_over_the_budget_is_reported():
    with pytest.raises(LayerSpecError, match="output layer.*786,432 values"):
        validate_layers([], (512, 512, 3), num_classes=100)
    assert validate_layers([], (512, 512, 3))  # without the output layer it fits


def test_build_model_validates_a_custom_list_before_building():
    with pytest.raises(LayerSpecError, match="Layer 1"):
        build_model("custom", (28, 28, 1), NUM_CLASSES, [{"type": "conv", "filters": -1}])


def test_layer_spec_error_is_a_model_error_and_a_value_error():
    assert issubclass(LayerSpecError, ModelError)
    assert issubclass(ModelError, ValueError)


# --- Registry and argument errors -------------------------------------------------------------
def test_registry_entries_describe_each_model():
    infos = list_models()

    assert [info.key for info in infos] == list(MODELS)
    assert set(ZOO) >= {
        "simple_convnet",
        "tf_tutorial",
        "fashion_cnn",
        "fashion_cnn_dropout",
        "vgg_like_bn",
        "lenet5",
        "vgg",
        "allcnn",
        "resnet",
        "wideresnet",
    }
    for info in infos:
        assert info.title and info.description.count(". ") >= 1, info.key
        assert info.description.endswith("."), info.key
        assert info.optimizer in {"adam", "adamax", "sgd"}
        assert 0 < info.learning_rate < 1
        # Each zoo model names the document it comes from by its title.
        assert info.key == "custom" or info.source in sources.SOURCES, info.key
        assert (info.citation == "") == (info.key == "custom"), info.key
        if info.source:
            assert sources.SOURCES[info.source].title in info.citation
    assert (MODELS["vgg_like_bn"].optimizer, MODELS["vgg_like_bn"].learning_rate) == (
        "adamax",
        3e-3,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        infos[0].learning_rate = 1.0


def test_unknown_model_name_lists_the_valid_names():
    with pytest.raises(ModelError) as error:
        build_model("alexnet", (28, 28, 1), NUM_CLASSES)

    assert "alexnet" in str(error.value)
    for key in MODELS:
        assert key in str(error.value)
    assert get_model_info(" LeNet5 ").key == "lenet5"


@pytest.mark.parametrize(
    ("key", "shape", "keywords"),
    [
        ("simple_convnet", (28, 28), ["(height, width, channels)", "(28, 28, 1)"]),
        ("simple_convnet", (28, 28, 0), ["positive whole numbers"]),
        ("simple_convnet", "28x28x1", ["input_shape"]),
        ("simple_convnet", (4, 4, 1), ["8×8", "4×4", "Resize"]),
        ("simple_convnet", (1024, 1024, 3), ["512×512"]),
        ("vgg_like_bn", (8, 8, 3), ["vgg_like_bn", "16×16", "8×8"]),
        ("lenet5", (10, 10, 1), ["12×12"]),
        ("simple_convnet", (3, 28, 28), ["28 channels"]),
    ],
)
def test_bad_input_shape_says_what_to_fix(key, shape, keywords):
    with pytest.raises(ModelError) as error:
        build_model(key, shape, NUM_CLASSES)

    for keyword in keywords:
        assert keyword in str(error.value)


@pytest.mark.parametrize("num_classes", [1, 0, 2.5, True, "10"])
def test_bad_class_count_says_what_to_fix(num_classes):
    with pytest.raises(ModelError, match="num_classes must be a whole number from 2"):
        build_model("simple_convnet", (28, 28, 1), num_classes)


@pytest.mark.parametrize("key", ZOO)
def test_each_model_builds_at_its_smallest_allowed_size(key):
    side = MODELS[key].min_input_side

    assert _build(key, (side, side, 1), num_classes=2).output_shape == (None, 2)


def test_layers_are_required_for_custom_and_refused_elsewhere():
    with pytest.raises(ModelError, match="layer list"):
        build_model("custom", (28, 28, 1), NUM_CLASSES)
    with pytest.raises(ModelError, match="fixed architecture"):
        build_model("vgg", (28, 28, 1), NUM_CLASSES, DEFAULT_CUSTOM_LAYERS)
