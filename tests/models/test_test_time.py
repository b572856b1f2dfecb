"""Test-time flips: the averaged answer of an image and its mirror, checked by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnn_core.explain.inference import Predictor
from cnn_core.models import test_time


def lopsided_model() -> keras.Model:
    """A model whose answer changes when the image is mirrored (a dense layer on pixels)."""
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [keras.Input((4, 5, 3)), keras.layers.Flatten(), keras.layers.Dense(4, "softmax")]
    )


def images() -> np.ndarray:
    return np.random.default_rng(0).random((6, 4, 5, 3), dtype=np.float32)


def test_only_a_model_trained_with_flips_averages_them():
    assert test_time.averages_flips(True)
    assert not test_time.averages_flips(False)
    assert not test_time.averages_flips(None)  # an old config without the setting


def test_the_average_is_of_the_image_and_its_left_right_mirror():
    model, x = lopsided_model(), images()
    plain = model.predict(x, verbose=0)
    mirrored = model.predict(x[:, :, ::-1, :], verbose=0)  # columns reversed: left <-> right
    assert not np.allclose(plain, mirrored, atol=1e-3)  # else the test could not fail
    averaged = test_time.outputs(model, tf.constant(x), average_flips=True).numpy()
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, rtol=1e-5)
    single = test_time.outputs(model, tf.constant(x), average_flips=False).numpy()
    np.testing.assert_allclose(single, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("average_flips", [False, True])
def test_the_predictor_gives_the_same_numbers(average_flips):
    model, x = lopsided_model(), images()
    expected = test_time.outputs(model, tf.constant(x), average_flips=average_flips).numpy()
    got = Predictor(model, average_flips=average_flips).predict_proba(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_logits_predictor_averages_probabilities_not_logits():
    keras.utils.set_random_seed(4)
    logits_model = keras.Sequential(
        [keras.Input((4, 5, 3)), keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    x = images()
    plain = keras.ops.softmax(logits_model(x)).numpy()
    mirrored = keras.ops.softmax(logits_model(x[:, :, ::-1, :])).numpy()
    got = Predictor(logits_model, from_logits=True, average_flips=True).predict_proba(x)
    np.testing.assert_allclose(got, (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)
