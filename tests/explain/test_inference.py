"""Tests for cnn_core.explain.inference: the compiled forward pass must match model.predict."""

from __future__ import annotations

import statistics
import threading
import time

import keras
import numpy as np
import pytest

from cnn_core.explain import inference
from cnn_core.explain.inference import Predictor, predict_in_batches, top_k
from tests.factories import atol_for

IMAGE_SHAPE = (8, 8, 1)
CLASSES = 5


def tiny_model(activation: str | None = "softmax") -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input(IMAGE_SHAPE)
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.5)(x)  # active only if the model were called with training=True
    outputs = keras.layers.Dense(CLASSES, activation=activation)(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return tiny_model()


@pytest.fixture(scope="module")
def predictor(model) -> Predictor:
    return Predictor(model)


def random_images(count: int, seed: int = 0, shape=IMAGE_SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *shape), dtype=np.float32)


def test_single_image_matches_model_predict(model, predictor):
    image = random_images(1)[0]
    probs = predictor.predict_proba(image)
    assert probs.shape == (1, CLASSES) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, model.predict(image[np.newaxis], verbose=0), atol=1e-5)


@pytest.mark.parametrize("count", [1, 3, 17])
def test_batch_matches_model_predict(model, predictor, count):
    images = random_images(count, seed=count)
    probs = predictor.predict_proba(images)
    np.testing.assert_allclose(probs, model.predict(images, verbose=0), atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_uint8_is_scaled_by_255(model, predictor):
    pixels = np.random.default_rng(4).integers(0, 256, (6, *IMAGE_SHAPE), dtype=np.uint8)
    expected = model.predict(pixels.astype(np.float32) / 255, verbose=0)
    np.testing.assert_allclose(predictor.predict_proba(pixels), expected, atol=1e-5)


@pytest.mark.parametrize("shape", [(8, 8, 3), (9, 8, 1), (2, 28, 28, 1), (8, 8), (1, 1, 8, 8, 1)])
def test_wrong_shape_names_both_shapes(predictor, shape):
    with pytest.raises(ValueError) as caught:
        predictor.predict_proba(np.zeros(shape, np.float32))
    message = str(caught.value)
    assert "(8, 8, 1)" in message and str(shape) in message


@pytest.mark.parametrize("values", [np.full(IMAGE_SHAPE, 255.0), np.full(IMAGE_SHAPE, -0.5)])
def test_floats_outside_unit_range_are_refused(predictor, values):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predictor.predict_proba(values)


def test_nan_is_refused(predictor):
    values = np.zeros(IMAGE_SHAPE)
    values[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predictor.predict_proba(values)


def test_empty_batch_gives_no_rows(predictor):
    assert predictor.predict_proba(np.zeros((0, *IMAGE_SHAPE), np.float32)).shape == (0, CLASSES)


def test_logits_model_gets_a_softmax(precision):
    logits_model = tiny_model(activation=None)
    images = random_images(4, seed=9)
    logits = logits_model.predict(images, verbose=0)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probs = Predictor(logits_model, from_logits=True).predict_proba(images)
    # bfloat16: the model's softmax runs on bfloat16 logits, the Predictor's in float32.
    np.testing.assert_allclose(probs, expected, atol=atol_for(precision, 1e-5))


def test_models_it_cannot_serve_are_refused(precision):
    first, second = keras.Input((4, 4, 1)), keras.Input((4, 4, 1))
    two_inputs = keras.Model([first, second], keras.layers.Add()([first, second]))
    with pytest.raises(ValueError, match="one input"):
        Predictor(two_inputs)
    with pytest.raises(ValueError, match="built model"):
        Predictor(keras.Sequential([keras.layers.Dense(3)]))
    vector = keras.Input((3,))
    with pytest.raises(ValueError, match=r"\(batch, H, W, C\)"):
        Predictor(keras.Model(vector, keras.layers.Dense(2)(vector)))


def test_concurrent_calls_agree_with_sequential_ones(predictor):
    inputs = [random_images(3, seed=seed) for seed in range(8)]
    expected = [predictor.predict_proba(x) for x in inputs]
    results: dict[int, np.ndarray] = {}

    def work(index: int) -> None:
        for _ in range(20):
            results[index] = predictor.predict_proba(inputs[index])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, probs in enumerate(expected):
        np.testing.assert_array_equal(results[index], probs)


# ----------------------------------------------------------------------------- top_k


def test_top_k_sorts_and_names():
    probs = np.array([0.1, 0.5, 0.2, 0.2], np.float32)
    names = ["a", "b", "c", "d"]
    ranked = top_k(probs, 3, names)
    assert [name for name, _ in ranked] == ["b", "c", "d"]  # the c/d tie keeps class order
    np.testing.assert_allclose([p for _, p in ranked], [0.5, 0.2, 0.2])
    assert [name for name, _ in top_k(probs[np.newaxis], 10, names)] == ["b", "c", "d", "a"]
    assert Predictor.top_k(probs, 1, names) == [("b", 0.5)]
    assert all(type(p) is float for _, p in top_k(probs, 4, names))


@pytest.mark.parametrize(
    ("probs", "k", "names", "message"),
    [
        (np.ones(3) / 3, 2, ["a", "b"], "3 probabilities but 2 class names"),
        (np.ones(3) / 3, 0, ["a", "b", "c"], "at least 1"),
        (np.ones((2, 3)) / 3, 1, ["a", "b", "c"], "one image"),
    ],
)
def test_top_k_refuses_mismatches(probs, k, names, message):
    with pytest.raises(ValueError, match=message):
        top_k(probs, k, names)


# ----------------------------------------------------------------- predict_in_batches


def test_predict_in_batches_matches_model_predict(model, predictor):
    pixels = np.random.default_rng(7).integers(0, 256, (1000, *IMAGE_SHAPE), dtype=np.uint8)
    expected = model.predict(pixels.astype(np.float32) / 255, batch_size=256, verbose=0)
    from_model = predict_in_batches(model, pixels, batch_size=128)  # 1000 = 7×128 + 104
    assert from_model.shape == (1000, CLASSES)
    np.testing.assert_allclose(from_model, expected, atol=1e-5)
    from_floats = predict_in_batches(predictor, pixels.astype(np.float32) / 255)
    np.testing.assert_allclose(from_floats, expected, atol=1e-5)


def test_predict_in_batches_validates_first(predictor):
    with pytest.raises(ValueError, match="batch_size"):
        predict_in_batches(predictor, random_images(2), batch_size=0)
    with pytest.raises(ValueError, match=r"\(8, 8, 1\)"):
        predict_in_batches(predictor, np.zeros((5, 8, 8, 3), np.uint8))
    assert predict_in_batches(predictor, np.zeros((0, *IMAGE_SHAPE))).shape == (0, CLASSES)


# -------------------------------------------------------------------------- timing


def mnist_convnet() -> keras.Model:
    """The keras-io MNIST convnet: the size of model the canvas serves."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.5)(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def median_ms(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def test_report_canvas_latency(capsys, precision):
    """Prints the latency for the record; timing is never asserted (noisy machines)."""
    model = mnist_convnet()
    image = random_images(1, shape=(28, 28, 1))[0]
    predictor = Predictor(model)
    predictor.predict_proba(image)  # warm-up outside the measurement
    compiled = median_ms(lambda: predictor.predict_proba(image), 100)
    model.predict(image[np.newaxis], verbose=0)
    keras_predict = median_ms(lambda: model.predict(image[np.newaxis], verbose=0), 10)
    with capsys.disabled():
        print(
            f"\nPredictor.predict_proba median {compiled:.2f} ms over 100 calls; "
            f"model.predict median {keras_predict:.1f} ms over 10 calls"
        )
    np.testing.assert_allclose(
        predictor.predict_proba(image), model.predict(image[np.newaxis], verbose=0), atol=1e-5
    )


# -------------------------------------------------------------- certainty in words


@pytest.mark.parametrize(
    ("probs", "words"),
    [
        ([0.97, 0.02, 0.01], "very sure"),
        ([0.85, 0.1, 0.05], "fairly sure"),
        ([0.6, 0.3, 0.1], "unsure"),
        ([0.45, 0.2, 0.2, 0.15], "very unsure"),
        ([0.55, 0.36, 0.09], "torn"),  # unsure by its top, but the best two 0.19 apart
        ([0.5, 0.45, 0.05], "torn"),
        ([0.34, 0.33, 0.33], "torn"),
    ],
)
def test_certainty_words_follow_the_top_and_the_margin(probs, words):
    assert inference.certainty_words(np.array(probs)) == words


def test_certainty_sentence_says_the_model_must_pick_and_how_unsure():
    names = [str(d) for d in range(10)]
    probs = np.full(10, 0.01)
    probs[7], probs[1] = 0.85, 0.06
    sentence = inference.certainty_sentence(probs, names)
    assert sentence == (
        "The model must answer with one of its 10 classes, even for a picture of none of "
        "them. Here it is fairly sure: 7 at 85.0%, then 1 at 6.0%."
    )
    torn = inference.certainty_sentence(np.array([0.48, 0.52]), ["cat", "dog"])
    assert torn.endswith("Here it is torn between dog and cat: dog at 52.0%, then cat at 48.0%.")
