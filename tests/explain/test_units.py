"""Every number behind one unit: the explained value is the model's own, for every layer type."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnn_core.explain import units
from cnn_core.models import shipped, zoo

ZOO_INPUTS = {  # the input each zoo network is built for here (small, so the test is quick)
    "simple_convnet": (32, 32, 3), "tf_tutorial": (28, 28, 1), "fashion_cnn": (28, 28, 1),
    "fashion_cnn_dropout": (28, 28, 1), "vgg_like_bn": (32, 32, 3), "lenet5": (32, 32, 3),
    "vgg": (32, 32, 3), "allcnn": (32, 32, 3), "resnet": (32, 32, 3), "wideresnet": (32, 32, 3),
}  # fmt: skip
# A learner's own list with every layer type the Train page offers.
OWN_LAYERS = [
    {"type": "conv", "filters": 6, "kernel": 3, "stride": 2, "padding": "same",
     "activation": "relu"},
    {"type": "batchnorm"},
    {"type": "avgpool", "size": 2, "stride": 1, "padding": "same"},
    {"type": "conv", "filters": 5, "kernel": 5, "padding": "valid", "activation": "tanh"},
    {"type": "maxpool", "size": 3, "stride": 2, "padding": "same"},
    {"type": "dropout", "rate": 0.3},
    {"type": "globalavgpool"},
    {"type": "dense", "units": 7, "activation": "relu"},
]  # fmt: skip


def with_learnt_statistics(model: keras.Model, seed: int = 0) -> keras.Model:
    """Batch-norm layers with means, variances, γ and β far from their initial 0 and 1, so
    an explanation that skipped one of them would be wrong."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.3, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.3, 3, n).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.3, n).astype("float32"))
    return model


def assert_every_layer_explained(model: keras.Model, image: np.ndarray, per_layer: int = 3):
    trace = units.trace_layers(model, image)
    rng = np.random.default_rng(1)
    for info in units.list_layers(model)[1:]:  # the input is not computed
        out = trace[info.name]
        assert out.shape == info.output_shape
        picks = [tuple(int(rng.integers(0, d)) for d in out.shape) for _ in range(per_layer)]
        picks.append(tuple(int(i) for i in np.unravel_index(np.argmax(out), out.shape)))
        for unit in picks:
            e = units.explain_unit(model, image, info.name, unit, trace=trace)
            assert e.activation == pytest.approx(float(out[unit]))
            assert abs(e.value - e.activation) <= e.tolerance, (info, unit, e.steps)


@pytest.fixture(params=["float32", "mixed_bfloat16"])
def policy(request):
    before = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(request.param)
    yield request.param
    keras.mixed_precision.set_dtype_policy(before)


@pytest.mark.parametrize("name", list(ZOO_INPUTS))
def test_every_zoo_layer_explains_the_models_own_value(name, policy):
    keras.utils.set_random_seed(0)
    shape = ZOO_INPUTS[name]
    model = with_learnt_statistics(zoo.build_model(name, shape, 10))
    image = np.random.default_rng(2).random(shape, dtype=np.float32)
    assert_every_layer_explained(model, image)


def test_every_layer_type_of_an_own_layer_list_is_explained(policy):
    keras.utils.set_random_seed(0)
    model = with_learnt_statistics(zoo.build_model("custom", (20, 20, 3), 4, layers=OWN_LAYERS))
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Conv2D", "BatchNormalization", "AveragePooling2D", "MaxPooling2D", "Dropout",
            "GlobalAveragePooling2D", "Dense"} <= kinds  # fmt: skip
    assert_every_layer_explained(model, np.random.default_rng(3).random((20, 20, 3), np.float32))


def test_a_trained_shipped_model_explains_its_probabilities():
    (info,) = shipped.list_pretrained("mnist")
    model = shipped.load_pretrained(info)
    image = np.zeros((28, 28, 1), np.float32)
    image[5:23, 12:16] = 1.0  # a "1"
    probs = model.predict(image[None], verbose=0)[0]
    output = units.list_layers(model)[-1].name
    for digit in range(10):
        e = units.explain_unit(model, image, output, (digit,))
        assert e.value == pytest.approx(float(probs[digit]), abs=1e-5)
        assert e.steps[-1].text.startswith("softmax")
    assert_every_layer_explained(model, image, per_layer=2)


def hand_model(pooling=keras.layers.MaxPooling2D) -> keras.Model:
    """conv 3×3 valid → pool 2 → conv 3×3 same, linear, with random weights set here."""
    inputs = keras.Input((10, 10, 1))
    x = keras.layers.Conv2D(2, 3, name="c1")(inputs)
    x = pooling(2, name="p1")(x)
    x = keras.layers.Conv2D(1, 3, padding="same", name="c2")(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(4)
    for layer in model.layers[1:]:
        if layer.weights:
            layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.weights])
    return model


def test_a_convolution_unit_is_its_patch_times_the_kernel_plus_the_bias():
    model = hand_model()
    image = np.random.default_rng(5).random((10, 10, 1), dtype=np.float32)
    kernel, bias = model.get_layer("c1").get_weights()
    e = units.explain_unit(model, image, "c1", (2, 5, 1))
    by_hand = float((image[2:5, 5:8, 0] * kernel[:, :, 0, 1]).sum() + bias[1])
    assert e.value == pytest.approx(by_hand, rel=1e-6)
    assert [(t["row"], t["col"]) for t in e.terms] == [(r, c) for r in range(2, 5)
                                                       for c in range(5, 8)]  # fmt: skip
    assert [t["input"] for t in e.terms] == pytest.approx(image[2:5, 5:8, 0].ravel())
    assert e.steps[-1].value == pytest.approx(by_hand, rel=1e-6)
    # "same" padding: at a corner, the kernel's first row and column fall on zeros.
    corner = units.explain_unit(model, image, "c2", (0, 0, 0))
    padded = [t for t in corner.terms if t["padding"]]
    assert len(padded) == 5 * 2 and all(t["input"] == 0 for t in padded)  # 5 cells × 2 channels


def test_a_max_pooling_unit_names_the_winner_of_its_window():
    model = hand_model()
    image = np.random.default_rng(6).random((10, 10, 1), dtype=np.float32)
    c1 = units.trace_layers(model, image)["c1"]
    e = units.explain_unit(model, image, "p1", (1, 2, 0))
    window = c1[2:4, 4:6, 0]
    assert e.value == pytest.approx(float(window.max()))
    (winner,) = [t for t in e.terms if t["chosen"]]
    assert (winner["row"], winner["col"]) == tuple(
        np.add((2, 4), np.unravel_index(window.argmax(), window.shape))
    )


def test_the_receptive_field_of_a_known_stack_is_the_hand_computed_one():
    # c2 (0,0) reads p1 rows -1..1 (padding above), that is p1 rows 0..1; p1 rows 0..1
    # pool c1 rows 0..3; c1 rows 0..3 see input rows 0..5. At (2, 3): p1 rows 1..3 and
    # columns 2..4, c1 rows 2..7 and columns 4..9, input rows 2..9 and columns 4..11 → 9.
    model = hand_model()
    assert units.receptive_field(model, "c2", (0, 0, 0)) == (0, 0, 5, 5)
    assert units.receptive_field(model, "c2", (2, 3, 0)) == (2, 4, 9, 9)
    assert units.receptive_field(model, "c1", (7, 7, 1)) == (7, 7, 9, 9)


def test_the_receptive_field_is_where_the_gradient_of_the_unit_is_not_zero():
    """The input pixels that can change a unit are those it has a gradient for (a linear
    network with random weights has no accidental zeros; average pooling, as max pooling
    passes a gradient to its winner only)."""
    model = hand_model(keras.layers.AveragePooling2D)
    image = tf.constant(np.random.default_rng(7).random((1, 10, 10, 1), dtype=np.float32))
    for unit in [(0, 0, 0), (2, 3, 0), (1, 1, 0)]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            value = model(image)[0][unit]
        rows, cols = np.nonzero(tape.gradient(value, image).numpy()[0, ..., 0])
        expected = (rows.min(), cols.min(), rows.max(), cols.max())
        assert units.receptive_field(model, "c2", unit) == expected


def first_layer_of(name: str, kind: type, seed: int):
    """A CIFAR-sized zoo network with learnt-looking statistics, a random photo, every
    layer's output for it, and the network's first layer of `kind`."""
    keras.utils.set_random_seed(0)
    model = with_learnt_statistics(zoo.build_model(name, (32, 32, 3), 10))
    image = np.random.default_rng(seed).random((32, 32, 3), dtype=np.float32)
    layer = next(layer for layer in model.layers if isinstance(layer, kind))
    return model, image, units.trace_layers(model, image), layer


def test_a_residual_unit_adds_its_two_branches():
    model, image, trace, add = first_layer_of("resnet", keras.layers.Add, seed=8)
    e = units.explain_unit(model, image, add.name, (4, 9, 2), trace=trace)
    branches = [t["from"] for t in e.terms]
    assert len(branches) == 2
    assert e.value == pytest.approx(sum(float(trace[b][4, 9, 2]) for b in branches), rel=1e-6)
    assert e.value == pytest.approx(e.activation, rel=1e-5, abs=1e-6)
    # Both branches count: the field of the sum is at least that of its widest branch.
    fields = [units.receptive_field(model, b, (4, 9, 2)) for b in branches]
    rf = units.receptive_field(model, add.name, (4, 9, 2))
    assert rf[0] == min(f[0] for f in fields) and rf[2] == max(f[2] for f in fields)


def test_batch_norm_uses_the_layers_own_statistics():
    model, image, trace, bn = first_layer_of("vgg_like_bn", keras.layers.BatchNormalization, seed=9)
    source = units._inputs_of(bn)[0].name
    v = float(trace[source][3, 4, 5])
    mean, var = bn.moving_mean.numpy()[5], bn.moving_variance.numpy()[5]
    by_hand = (v - mean) / np.sqrt(var + bn.epsilon) * bn.gamma.numpy()[5] + bn.beta.numpy()[5]
    e = units.explain_unit(model, image, bn.name, (3, 4, 5), trace=trace)
    assert e.value == pytest.approx(float(by_hand), rel=1e-6)
    assert e.activation == pytest.approx(float(by_hand), rel=1e-4, abs=1e-5)


def test_layers_are_listed_with_their_types_and_shapes():
    model = hand_model()
    assert units.list_layers(model) == [
        units.LayerInfo(model.layers[0].name, "input", (10, 10, 1)),
        units.LayerInfo("c1", "convolution", (8, 8, 2)),
        units.LayerInfo("p1", "max pooling", (4, 4, 2)),
        units.LayerInfo("c2", "convolution", (4, 4, 1)),
    ]


@pytest.mark.parametrize(
    ("layer", "unit", "message"),
    [
        ("nope", (0, 0, 0), "its layers are: .*c1, p1, c2"),
        ("c1", (8, 0, 0), r"0\.\.7, 0\.\.7, 0\.\.1; got \(8, 0, 0\)"),
        ("c1", (0,), r"\(row, col, channel\)"),
    ],
)
def test_a_unit_that_does_not_exist_says_what_to_choose(layer, unit, message):
    model = hand_model()
    with pytest.raises(units.UnitError, match=message):
        units.explain_unit(model, np.zeros((10, 10, 1), np.float32), layer, unit)


def test_the_input_layer_is_not_a_computation():
    model = hand_model()
    with pytest.raises(units.UnitError, match="the image itself"):
        units.explain_unit(model, np.zeros((10, 10, 1)), model.layers[0].name, (0, 0, 0))


def test_a_unit_goes_on_through_the_batch_norm_and_activation_after_it():
    (info,) = shipped.list_pretrained("mnist")
    model = shipped.load_pretrained(info)
    assert units.elementwise_chain(model, "conv1") == ["bn1"]
    assert units.elementwise_chain(model, "pool1") == ["dropout1"]
    assert units.elementwise_chain(model, "predictions") == []
    keras.utils.set_random_seed(0)
    vgg = zoo.build_model("vgg_like_bn", (32, 32, 3), 10)
    first = vgg.layers[1].name
    kinds = [type(vgg.get_layer(n)).__name__ for n in units.elementwise_chain(vgg, first)]
    assert kinds == ["ReLU", "BatchNormalization"]
    # A residual block's convolution feeds an addition, not a chain.
    resnet = zoo.build_model("resnet", (32, 32, 3), 10)
    for layer in resnet.layers:
        for name in units.elementwise_chain(resnet, layer.name):
            assert type(resnet.get_layer(name)).__name__ in units.ELEMENTWISE


@pytest.mark.parametrize("mixed_precision", [False, True])
def test_a_run_trained_by_the_engine_explains_every_layer(tiny, mixed_precision):
    """The model a worker saved after training, in float32 or mixed bfloat16 (where the
    convolutions compute in bfloat16 and the softmax in float32)."""
    from cnn_core.runs import run_config, run_folder, store, training
    from tests.factories import tiny_config

    layers = [{"type": "conv", "filters": 4, "kernel": 3}, {"type": "batchnorm"},
              {"type": "maxpool"}, {"type": "dropout", "rate": 0.2}, {"type": "flatten"},
              {"type": "dense", "units": 8}]  # fmt: skip
    cfg = tiny_config(epochs=1, layers=layers, mixed_precision=mixed_precision)
    run_id = store.create_run(run_config.validate_config(cfg))
    assert training.train_run(run_id) == 0
    model = keras.saving.load_model(run_folder.run_paths(run_id).model, compile=False)
    policy = "mixed_bfloat16" if mixed_precision else "float32"
    assert model.get_layer("conv1").dtype_policy.name == policy
    image = np.random.default_rng(10).random((12, 12, 1), dtype=np.float32)
    assert_every_layer_explained(model, image, per_layer=4)
