"""The fused batch norm must compute what Keras' own BatchNormalization computes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnn_core.models import batchnorm, zoo
from cnn_core.runs import training


def _pair(momentum: float = 0.8) -> tuple[keras.Model, keras.Model]:
    """Two copies of a conv + dense net with batch norm on both, sharing their weights."""

    def make() -> keras.Model:
        inp = keras.Input((6, 6, 3))
        x = keras.layers.Conv2D(4, 3)(inp)
        x = keras.layers.BatchNormalization(momentum=momentum)(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(5)(x)
        x = keras.layers.BatchNormalization(momentum=momentum, center=False)(x)
        return keras.Model(inp, x)

    keras_model, fused = make(), make()
    fused.set_weights(keras_model.get_weights())
    return keras_model, fused


def _step(model: keras.Model, x: tf.Tensor) -> tuple[np.ndarray, list, list]:
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.range(1.0, 6.0))
    grads = tape.gradient(loss, [x, *model.trainable_weights])
    return y.numpy(), [g.numpy() for g in grads], [w.numpy() for w in model.non_trainable_weights]


@pytest.fixture
def batch() -> tf.Tensor:
    return tf.constant(np.random.RandomState(0).randn(7, 6, 6, 3).astype("float32") * 3 + 1)


def test_training_step_matches_keras(batch):
    keras_model, fused = _pair()
    assert batchnorm.use_fused_batch_norm(fused) == 2
    want, got = _step(keras_model, batch), _step(fused, batch)
    np.testing.assert_allclose(got[0], want[0], atol=1e-5)
    for g_got, g_want in zip(got[1], want[1], strict=True):  # input, kernels, gamma, beta
        np.testing.assert_allclose(g_got, g_want, rtol=1e-4, atol=1e-4)  # sums of ~1e-6 terms
    # moving mean and the biased moving variance, also for the dense layer (n = 7, where
    # an unbiased variance would differ by 7/6)
    for m_got, m_want in zip(got[2], want[2], strict=True):
        np.testing.assert_allclose(m_got, m_want, rtol=1e-5, atol=1e-6)


def test_inference_is_keras_own(batch):
    keras_model, fused = _pair()
    batchnorm.use_fused_batch_norm(fused)
    np.testing.assert_allclose(fused(batch, training=False), keras_model(batch), atol=1e-6)


def test_bfloat16_training_step_is_close(batch):
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        keras_model, fused = _pair()
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    batchnorm.use_fused_batch_norm(fused)
    want, got = _step(keras_model, batch), _step(fused, batch)
    assert got[0].dtype == want[0].dtype
    np.testing.assert_allclose(got[0].astype("float32"), want[0].astype("float32"), atol=0.1)


def test_saved_model_is_plain_keras(tmp_path, batch):
    _, fused = _pair()
    batchnorm.use_fused_batch_norm(fused)
    fused(batch, training=True)
    fused.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    kinds = {type(layer) for layer in loaded.layers}
    assert keras.layers.BatchNormalization in kinds
    np.testing.assert_allclose(loaded(batch), fused(batch), atol=1e-6)


def test_other_axis_and_renorm_keep_keras_code():
    inp = keras.Input((4, 4, 2))
    x = keras.layers.BatchNormalization(axis=1)(inp)
    x = keras.layers.BatchNormalization(renorm=True)(x)
    assert batchnorm.use_fused_batch_norm(keras.Model(inp, x)) == 0


def test_compile_model_fuses_and_fit_learns():
    model = zoo.build_model("vgg_like_bn", (28, 28, 1), 10)
    training.compile_model(model, keras.optimizers.Adam(1e-3))
    fused = [ly for ly in model.layers if "call" in vars(ly)]  # the call set on the instance
    assert fused and all(isinstance(ly, keras.layers.BatchNormalization) for ly in fused)
    x = np.random.RandomState(1).rand(32, 28, 28, 1).astype("float32")
    y = keras.utils.to_categorical(np.arange(32) % 10, 10)
    before = [w.numpy().copy() for w in model.non_trainable_weights]
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = [w.numpy() for w in model.non_trainable_weights]
    assert any(not np.allclose(a, b) for a, b in zip(after, before, strict=True))
