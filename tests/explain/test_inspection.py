"""Tests for cnn_core.explain.inspection, attribution and maximization on tiny functional models
with known answers (the hand-weighted ones come from tests/factories.py)."""

from __future__ import annotations

import gc
import time
import weakref

import keras
import numpy as np
import pytest

from cnn_core.explain import attribution, inspection
from cnn_core.explain.attribution import (
    grad_cam,
    grad_cam_with_evidence,
    overlay,
    saliency,
    score_kind,
)
from cnn_core.explain.inspection import (
    conv_layers,
    feature_maps,
    filter_images,
    filter_modes,
    filter_weights,
    map_filter,
    source_conv,
    tappable_layers,
)
from cnn_core.explain.maximization import activation_maximization, maximize_activation
from devtools.explain_inputs import seeded_digit, small_convnet
from tests.factories import HAND_MODEL_SIDE

SIDE = HAND_MODEL_SIDE  # the images of the hand-weighted models


# ------------------------------------------------------------------------------ models


def logits_function(model: keras.Model):
    """Independent reference: the Dense head applied by hand to the flatten output."""
    flat = keras.Model(model.inputs[0], model.get_layer("flatten").output)
    kernel, bias = model.get_layer("predictions").get_weights()
    return lambda x: flat(x[None].astype(np.float32), training=False).numpy()[0] @ kernel + bias


@pytest.fixture(scope="module")
def convnet():
    return small_convnet()


@pytest.fixture(scope="module")
def digit():
    return seeded_digit(5)


# ------------------------------------------------------------------------------ layers


def test_conv_and_tappable_layers(convnet):
    assert [layer.name for layer in conv_layers(convnet)] == ["conv1", "conv2", "conv3"]
    assert [layer.name for layer in tappable_layers(convnet)] == [
        "conv1",
        "conv2",
        "pool1",
        "conv3",
        "pool2",
    ]


def test_filter_weights_and_images(convnet):
    weights = filter_weights(convnet, "conv2")
    assert weights.shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(weights, convnet.get_layer("conv2").get_weights()[0])

    per_channel = filter_images(convnet, "conv1")
    assert per_channel.shape == (32, 1, 3, 3)
    mean = filter_images(convnet, "conv2", mode="mean")
    assert mean.shape == (32, 3, 3)
    for images in (per_channel, mean):
        assert images.min() >= 0 and images.max() <= 1
    # Shared scale: the largest |weight| of the layer lands on 0 or 1, zero on mid-grey.
    w = weights.mean(axis=2).transpose(2, 0, 1)
    np.testing.assert_allclose(mean, w / (2 * np.abs(w).max()) + 0.5, rtol=1e-6)
    assert np.isclose(np.abs(mean - 0.5).max(), 0.5)
    per_filter = filter_images(convnet, "conv2", mode="mean", scale="per_filter")
    np.testing.assert_allclose(np.abs(per_filter - 0.5).max(axis=(1, 2)), 0.5, rtol=1e-6)


def test_rgb_filter_images(precision):
    model = small_convnet((16, 16, 3))
    rgb = filter_images(model, "conv1", mode="rgb", scale="per_filter")
    assert rgb.shape == (32, 3, 3, 3)
    np.testing.assert_allclose(
        rgb[5],
        filter_weights(model, "conv1")[..., 5]
        / (2 * np.abs(filter_weights(model, "conv1")[..., 5]).max())
        + 0.5,
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="'rgb' needs 3"):
        filter_images(model, "conv2", mode="rgb")
    with pytest.raises(ValueError, match="not a Conv2D layer.*conv1, conv2, conv3"):
        filter_weights(model, "pool1")
    with pytest.raises(ValueError, match="mode must be"):
        filter_images(model, "conv1", mode="colour")


def test_filter_modes_suit_each_layer(convnet, precision):
    assert filter_modes(convnet, "conv1") == ("mean",)  # one input channel: nothing to average
    assert filter_modes(convnet, "conv2") == ("mean",)
    rgb = small_convnet((16, 16, 3))
    assert filter_modes(rgb, "conv1") == ("rgb", "per_input_channel")
    assert filter_modes(rgb, "conv3") == ("mean",)
    assert filter_modes(small_convnet((16, 16, 2)), "conv1") == ("per_input_channel", "mean")
    with pytest.raises(ValueError, match="not a Conv2D layer"):
        filter_modes(convnet, "pool1")


def test_a_pooled_map_comes_from_the_conv_filter_before_it(convnet, digit):
    assert [source_conv(convnet, n) for n in ("conv1", "pool1", "pool2")] == [
        "conv1",
        "conv2",
        "conv3",
    ]
    maps = feature_maps(convnet, digit, ["conv2", "pool1"])
    single = feature_maps(convnet, digit, ["pool1"])  # one tapped layer, not a list of one
    np.testing.assert_array_equal(single["pool1"], maps["pool1"])
    pooled = maps["conv2"][..., 5].reshape(14, 2, 14, 2).max(axis=(1, 3))
    np.testing.assert_allclose(maps["pool1"][..., 5], pooled, rtol=1e-6)
    found = map_filter(convnet, "pool1", 5)
    assert found.layer_name == "conv2" and found.in_channels == 32
    np.testing.assert_allclose(
        found.weights, filter_weights(convnet, "conv2")[..., 5].mean(axis=2), rtol=1e-6
    )
    with pytest.raises(ValueError, match="from 0 to 31"):
        map_filter(convnet, "conv1", 32)


def test_source_conv_walks_back_through_normalisation_and_stops_at_the_input(precision):
    inputs = keras.Input((8, 8, 1))
    first = keras.layers.MaxPooling2D(2, name="pool0")(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv1")(first)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("relu", name="relu")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    assert source_conv(model, "pool1") == "conv1"
    assert source_conv(model, "pool0") is None and map_filter(model, "pool0", 0) is None
    assert map_filter(model, "pool1", 2).weights.shape == (3, 3)


# ------------------------------------------------------------------------------ feature maps


def test_feature_maps_shapes_and_values(convnet, digit):
    maps = feature_maps(convnet, digit)
    assert list(maps) == ["conv1", "conv2", "pool1", "conv3", "pool2"]
    for name, array in maps.items():
        assert array.shape == tuple(convnet.get_layer(name).output.shape[1:])
        assert array.dtype == np.float32
    reference = keras.Model(convnet.inputs[0], convnet.get_layer("conv3").output)
    np.testing.assert_allclose(
        maps["conv3"], reference.predict(digit[None], verbose=0)[0], rtol=1e-5, atol=1e-6
    )
    some = feature_maps(convnet, digit[..., 0], layer_names=["pool1", "conv1"])
    assert list(some) == ["conv1", "pool1"]  # model order, and (H, W) accepted for 1 channel
    np.testing.assert_array_equal(some["pool1"], maps["pool1"])


def test_bad_inputs_say_what_to_fix(convnet, digit):
    with pytest.raises(ValueError, match="28 × 28 × 1.*without a batch dimension"):
        feature_maps(convnet, digit[None])
    with pytest.raises(ValueError, match="finite"):
        saliency(convnet, np.full((28, 28, 1), np.nan))
    with pytest.raises(ValueError, match="not a conv or pooling layer"):
        feature_maps(convnet, digit, ["flatten"])
    with pytest.raises(ValueError, match="between 0 and 9"):
        grad_cam(convnet, digit, class_index=10)


# ------------------------------------------------------------------------------ saliency


@pytest.mark.parametrize("side", ["left", "right"])
def test_saliency_and_grad_cam_find_the_half_that_decides(side, precision, half_model):
    model = half_model(side)
    x = np.random.default_rng(2).uniform(0.2, 1.0, (SIDE, SIDE, 1)).astype(np.float32)
    seen = slice(0, SIDE // 2) if side == "left" else slice(SIDE // 2, SIDE)
    hidden = slice(SIDE // 2, SIDE) if side == "left" else slice(0, SIDE // 2)
    sal = saliency(model, x, class_index=0)
    cam = grad_cam(model, x, class_index=0)
    for heat in (sal, cam):
        assert heat.shape == (SIDE, SIDE)
        assert heat.min() >= 0 and heat.max() == pytest.approx(1.0)
        assert heat[:, seen].sum() >= 0.8 * heat.sum()
    # A pixel that cannot affect the output has no saliency at all.
    assert np.all(sal[:, hidden] == 0)


def test_grad_cam_equals_the_formula(precision, half_model):
    """Grad-CAM of a conv layer at full resolution, recomputed from the Dense weights."""
    model = half_model("left")
    x = np.random.default_rng(3).uniform(size=(SIDE, SIDE, 1)).astype(np.float32)
    conv = keras.Model(model.inputs[0], model.get_layer("conv1").output)
    activations = conv.predict(x[None], verbose=0)[0]  # (8, 8, 2)
    kernel = model.get_layer("predictions").get_weights()[0]
    for c in range(3):
        # The layer's output is already rectified and feeds the logit linearly.
        dlogit = kernel[:, c].reshape(activations.shape)
        alphas = dlogit.mean(axis=(0, 1))
        expected = np.maximum((activations * alphas).sum(axis=-1), 0)
        expected = expected / expected.max() if expected.max() > 0 else expected
        np.testing.assert_allclose(grad_cam(model, x, c), expected, atol=1e-5)


def test_grad_cam_with_evidence_falls_back_to_an_earlier_layer(precision, evidence_model):
    model = evidence_model()
    x = np.zeros((SIDE, SIDE, 1), np.float32)
    x[:, SIDE // 2 :] = 1.0  # dark left half, bright right half
    assert grad_cam(model, x, 0, "conv2").max() == 0
    layer, cam = grad_cam_with_evidence(model, x, 0)
    assert layer == "conv1"
    assert cam[:, : SIDE // 2].min() > 0 and cam[:, SIDE // 2 :].max() == 0
    layer, cam = grad_cam_with_evidence(model, x, 1)  # the last layer has evidence: kept
    assert layer == "conv2"
    np.testing.assert_array_equal(cam, grad_cam(model, x, 1, "conv2"))
    dark = np.zeros((SIDE, SIDE, 1), np.float32)  # no bright pixel: no evidence anywhere
    layer, cam = grad_cam_with_evidence(model, dark, 1)
    assert layer == "conv2" and cam.max() == 0


def test_saliency_equals_finite_differences(half_model):
    # float32 only (no `precision`): finite differences of bfloat16 logits are rounding
    # noise at any step small enough for the model to stay linear.
    model = half_model("left")
    x = np.random.default_rng(4).uniform(size=(SIDE, SIDE, 1)).astype(np.float64)
    sal = saliency(model, x, class_index=2)
    logits_of = logits_function(model)
    eps = 1e-2  # the model is piecewise linear; float32 logits need a step this large
    points = [(0, 0), (3, 2), (5, 3), (7, 1), (2, 6)]
    grads = np.zeros((SIDE, SIDE))
    for r, c in points:
        up, down = x.copy(), x.copy()
        up[r, c, 0] += eps
        down[r, c, 0] -= eps
        grads[r, c] = abs(logits_of(up)[2] - logits_of(down)[2]) / (2 * eps)
    full = np.abs(np.asarray(saliency_raw(model, x, 2)))
    rows, cols = zip(*points, strict=True)
    np.testing.assert_allclose(grads[rows, cols], full[rows, cols], atol=1e-2 * full.max())
    assert full[2, 6] == 0  # a hidden pixel
    np.testing.assert_allclose(sal, full / full.max(), rtol=1e-5, atol=1e-7)


def saliency_raw(model: keras.Model, x: np.ndarray, class_index: int) -> np.ndarray:
    """|d logit / d x| unnormalised, through the module's own compiled function."""
    import tensorflow as tf

    fn = attribution._gradient_function(model, None)
    grad, _, _ = fn(tf.constant(x[None].astype(np.float32)), tf.constant(class_index))
    return np.abs(grad.numpy()[0, ..., 0])


def test_predicted_class_is_the_default(convnet, digit):
    predicted = int(convnet.predict(digit[None], verbose=0)[0].argmax())
    np.testing.assert_array_equal(saliency(convnet, digit), saliency(convnet, digit, predicted))
    np.testing.assert_array_equal(grad_cam(convnet, digit), grad_cam(convnet, digit, predicted))
    cam = grad_cam(convnet, digit, 1, layer_name="pool1")
    assert cam.shape == (28, 28) and cam.min() >= 0 and cam.max() <= 1
    assert score_kind(convnet) == "logit"


def test_a_model_without_softmax_dense_uses_its_output(precision):
    inputs = keras.Input((SIDE, SIDE, 1))
    x = keras.layers.Conv2D(2, 3, name="conv1")(inputs)
    outputs = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, outputs)
    assert score_kind(model) == "output"
    x = np.random.default_rng(0).uniform(size=(SIDE, SIDE, 1)).astype(np.float32)
    assert saliency(model, x).shape == (SIDE, SIDE)


def test_mixed_precision_layers_give_float32_maps(digit):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", dtype="mixed_bfloat16", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, dtype="mixed_bfloat16", name="pool1")(x)
    x = keras.layers.Flatten(dtype="mixed_bfloat16")(x)
    outputs = keras.layers.Dense(3, activation="softmax", dtype="float32", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    maps = feature_maps(model, digit)
    assert maps["conv1"].dtype == np.float32 and maps["pool1"].shape == (13, 13, 4)
    for heat in (saliency(model, digit), grad_cam(model, digit)):
        assert heat.dtype == np.float32 and heat.shape == (28, 28) and heat.max() <= 1


def test_overlay():
    image = np.zeros((4, 5), np.float32)
    heat = np.ones((4, 5), np.float32)
    out = overlay(image, heat, alpha=1.0)
    assert out.dtype == np.uint8 and out.shape == (4, 5, 3)
    assert tuple(out[0, 0]) == (128, 0, 0)  # the top of "jet" is dark red
    assert np.all(overlay(np.full((4, 5, 3), 255, np.uint8), heat, alpha=0.0) == 255)
    with pytest.raises(ValueError, match="must match"):
        overlay(image, np.ones((5, 4)))
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, heat, alpha=2)


# ------------------------------------------------------------------------------ maximisation


def test_activation_maximization_increases_the_activation(convnet):
    for layer, index in (("conv1", 0), ("conv3", 5)):
        start = time.perf_counter()
        image, trace = maximize_activation(convnet, layer, index, steps=30)
        elapsed = time.perf_counter() - start
        print(f"\nactivation maximisation {layer}[{index}], 30 steps: {elapsed:.2f} s")
        assert image.shape == (28, 28, 1)
        assert trace[-1] > 2 * trace[0] and trace[-1] > 0
    shown = activation_maximization(convnet, "conv1", 0, steps=30)
    assert shown.shape == (28, 28, 1) and shown.min() >= 0 and shown.max() <= 1
    with pytest.raises(ValueError, match="32 filters"):
        activation_maximization(convnet, "conv1", 32)


def test_cache_forgets_dropped_models(digit, precision):
    model = small_convnet(seed=4)
    feature_maps(model, digit)
    grad_cam(model, digit)
    assert len(inspection._CACHE[model]) == 2
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None  # the compiled functions do not keep the model alive
