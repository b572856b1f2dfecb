"""Activation maximisation: the image a filter likes best, found by gradient ascent."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from cnn_core.explain.inspection import (
    _cache,
    _image_shape,
    _input_spec,
    _layer,
    _to_numpy,
    tappable_layers,
)

MAX_AM_STEPS = 1000
NOISE_ATTEMPTS = 4  # starting images tried before giving up on a filter that never fires


# --- Activation maximisation ----------------------------------------------------------------
def _border(height: int, width: int) -> int:
    """Pixels to ignore at each edge of a feature map: 2 as in keras-io, less on tiny maps."""
    return max(0, min(2, (min(height, width) - 1) // 4))


def _ascent_function(model: keras.Model, layer_name: str) -> Callable:
    """Compiled (image, filter, step) -> (image after one step, mean activation before)."""
    key = ("ascent", layer_name)
    cache = _cache(model)
    if key in cache:
        return cache[key]
    output = model.get_layer(layer_name).output
    extractor = keras.Model(model.inputs[0], output)
    b = _border(int(output.shape[1]), int(output.shape[2]))

    def step(image, filter_index, step_size):
        with tf.GradientTape() as tape:
            tape.watch(image)
            activation = tf.cast(extractor(image, training=False), tf.float32)
            # Avoid border artefacts by only involving non-border pixels in the loss.
            inner = activation[:, b : activation.shape[1] - b, b : activation.shape[2] - b]
            loss = tf.reduce_mean(tf.gather(inner, filter_index, axis=-1))
        grads = tf.math.l2_normalize(tape.gradient(loss, image))
        return image + step_size * grads, loss

    cache[key] = tf.function(
        step,
        input_signature=[
            _input_spec(model),
            tf.TensorSpec((), tf.int32),
            tf.TensorSpec((), tf.float32),
        ],
        autograph=False,
    )
    return cache[key]


def initial_noise(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """The starting image of activation maximisation: uniform noise in [-0.125, 0.125].

    As in keras-io, the noise is centred on 0 rather than mid-grey: near 0 a ReLU filter
    is positive at about half of the positions whatever its weights, so its gradient is
    not zero everywhere (a filter that is negative on all of a grey image would be stuck).
    """
    rng = np.random.default_rng(seed)
    return ((rng.uniform(size=tuple(shape)) - 0.5) * 0.25).astype(np.float32)


def maximize_activation(
    model: keras.Model,
    layer_name: str,
    filter_index: int,
    steps: int = 60,
    lr: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient ascent on the input for one filter; the raw image and the activation trace.

    Args: as for ``activation_maximization``.

    Returns:
        (image, trace): the optimised input, float32 (H, W, C), not yet deprocessed, and
        the filter's mean activation before each step and after the last, (steps + 1,).
    """
    layer = _layer(model, layer_name, tappable_layers(model), "conv or pooling layer")
    channels = int(layer.output.shape[-1])
    if isinstance(filter_index, bool) or not isinstance(filter_index, int | np.integer):
        raise ValueError(f"filter_index must be a whole number, not {filter_index!r}.")
    if not 0 <= filter_index < channels:
        raise ValueError(
            f"Layer {layer_name!r} has {channels} filters: filter_index must be between 0 "
            f"and {channels - 1}, not {filter_index}."
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_AM_STEPS:
        raise ValueError(f"steps must be a whole number from 1 to {MAX_AM_STEPS}, not {steps!r}.")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, not {lr!r}.")
    shape = _image_shape(model)
    if any(d is None for d in shape):
        raise ValueError("Activation maximisation needs a model with a fixed input size.")
    step = _ascent_function(model, layer_name)
    # ``lr`` is the root-mean-square change per pixel: the L2-normalised gradient is
    # scaled by sqrt(pixels) so that one lr suits a 28×28 digit and a 32×32 colour image.
    step_size = tf.constant(lr * math.sqrt(float(np.prod(shape))), tf.float32)
    index = tf.constant(int(filter_index), tf.int32)
    for attempt in range(NOISE_ATTEMPTS):
        image = tf.constant(initial_noise(shape, seed + attempt)[None])
        # A ReLU filter silent on all of this noise has no gradient: draw other noise.
        if float(step(image, index, tf.constant(0.0))[1]) > 0:
            break
    trace = []
    for _ in range(steps):
        image, loss = step(image, index, step_size)
        trace.append(float(loss))
    _, loss = step(image, index, tf.constant(0.0))
    trace.append(float(loss))
    return _to_numpy(image)[0], np.array(trace, dtype=np.float32)


def deprocess_image(image: np.ndarray) -> np.ndarray:
    """Centres an optimised input on mid-grey with a standard deviation of 0.15, in [0, 1].

    As in keras-io: the raw values are unbounded, so only their pattern is shown.
    """
    a = np.asarray(image, dtype=np.float32)
    a = (a - a.mean()) / (a.std() + 1e-5) * 0.15 + 0.5
    return np.clip(a, 0.0, 1.0)


def activation_maximization(
    model: keras.Model,
    layer_name: str,
    filter_index: int,
    steps: int = 60,
    lr: float = 0.05,
    seed: int = 0,
) -> np.ndarray:
    """The input pattern a filter responds to most, found by gradient ascent.

    Keras-io's "visualizing what convnets learn": start from low-amplitude noise around
    0 (``initial_noise``), and repeatedly step the image along the L2-normalised gradient of the
    filter's mean activation (ignoring a 2-pixel border of the map, less on tiny maps).

    Args:
        model: A functional Keras model with a fixed input size.
        layer_name: A conv or pooling layer.
        filter_index: The channel of that layer to maximise.
        steps: Gradient-ascent steps (1 to 1000).
        lr: Step length as the root-mean-square change per pixel.
        seed: Seed of the starting noise.

    Returns:
        float32 (H, W, C) in [0, 1], deprocessed for display. A filter that stays silent
        (zero activation) on four different noise images has nothing to climb: its image
        is the deprocessed noise.

    Raises:
        ValueError: For an unknown layer, a filter index out of range, or bad steps or lr.
    """
    image, _ = maximize_activation(model, layer_name, filter_index, steps, lr, seed)
    return deprocess_image(image)
