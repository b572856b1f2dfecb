"""What the explain tests and benchmarks/explain_timing.py both build: the zoo's simple
ConvNet shape with seeded weights, and seeded predictions to score. No pytest here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras


def small_convnet(input_shape=(28, 28, 1), seed: int = 0) -> keras.Model:
    """The shape of the zoo's simple ConvNet: conv conv pool conv pool, softmax."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def random_predictions(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` labels among `k` classes and softmax scores that are better than chance."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y]  # better than chance
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs.astype(np.float32)


def seeded_digit(seed: int = 5) -> np.ndarray:
    """A 28×28×1 float32 input of uniform noise."""
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(28, 28, 1)).astype(np.float32)
