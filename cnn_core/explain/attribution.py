"""Which pixels made the class: class scores, gradients, saliency, Grad-CAM and overlays.

Class scores. Saliency and Grad-CAM differentiate the *pre-softmax* score of a class (its
logit), not its probability: a probability also rises when the other classes fall, and
it saturates near 1, where its gradient vanishes (Simonyan et al. 2014; Selvaraju et al.
2017 also use the logit). When the last layer is a ``Dense`` (the zoo's "predictions"),
the logit is recomputed from that layer's input and its own kernel and bias, so no copy
of the model is made; when it is an ``Activation``/``Softmax`` layer, its input is the
logit. Any other last layer is differentiated as it is (``score_kind`` says which).

Typical use::

    cam = grad_cam(model, x)                      # (28, 28) in [0, 1]
    picture = overlay(x, cam)                     # (28, 28, 3) uint8
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import matplotlib
import numpy as np
import tensorflow as tf

from cnn_core.explain.inspection import (
    _as_batch,
    _cache,
    _check_model,
    _input_spec,
    _layer,
    _to_numpy,
    conv_layers,
    tappable_layers,
)

COLORMAPS = ("jet", "inferno")


# --- Class scores and gradients -------------------------------------------------------------
def _score_head(model: keras.Model) -> tuple[keras.KerasTensor, Callable, str]:
    """(tensor to tap, function from it to class scores, "logit" or "output")."""
    last = model.layers[-1]
    if last.output is not model.outputs[0]:  # the output comes from elsewhere in the graph
        return model.outputs[0], lambda h: tf.cast(h, tf.float32), "output"
    if isinstance(last, keras.layers.Dense):
        layer = last

        def logits(h):
            z = tf.matmul(tf.cast(h, tf.float32), tf.cast(layer.kernel, tf.float32))
            return z if layer.bias is None else z + tf.cast(layer.bias, tf.float32)

        return last.input, logits, "logit"
    if isinstance(last, keras.layers.Softmax | keras.layers.Activation):
        return last.input, lambda h: tf.cast(h, tf.float32), "logit"
    return model.outputs[0], lambda h: tf.cast(h, tf.float32), "output"


def score_kind(model: keras.Model) -> str:
    """Which class score saliency and Grad-CAM differentiate.

    Returns:
        "logit" (the pre-activation score of a last Dense layer, or the input of a last
        Activation/Softmax layer) or "output" (the model's output as it is, for any other
        last layer).
    """
    return _score_head(_check_model(model))[2]


def _num_classes(model: keras.Model) -> int:
    return int(model.outputs[0].shape[-1])


def _check_class_index(model: keras.Model, class_index: int | None) -> int:
    """-1 for "the predicted class", else a checked index."""
    if class_index is None:
        return -1
    k = _num_classes(model)
    if isinstance(class_index, bool) or not isinstance(class_index, int | np.integer):
        raise ValueError(f"class_index must be a class number or None, not {class_index!r}.")
    if not 0 <= class_index < k:
        raise ValueError(f"class_index must be between 0 and {k - 1}, not {class_index}.")
    return int(class_index)


def _gradient_function(model: keras.Model, layer_name: str | None) -> Callable:
    """Compiled (x, class_index) -> (grad of the score wrt x, layer output, grad wrt it)."""
    key = ("gradients", layer_name)
    cache = _cache(model)
    if key in cache:
        return cache[key]
    head, to_scores, _ = _score_head(model)
    taps = [head] if layer_name is None else [model.get_layer(layer_name).output, head]
    grad_model = keras.Model(model.inputs[0], taps)

    def gradients(x, class_index):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = grad_model(x, training=False)
            outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
            scores = to_scores(outputs[-1])
            predicted = tf.argmax(scores[0], output_type=tf.int32)
            index = tf.where(class_index < 0, predicted, class_index)
            score = tf.gather(scores[0], index)
        feature = outputs[0] if layer_name is not None else tf.zeros_like(x)
        grad_x, grad_feature = tape.gradient(
            score, [x, feature], unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        return grad_x, tf.cast(feature, tf.float32), tf.cast(grad_feature, tf.float32)

    cache[key] = tf.function(
        gradients,
        input_signature=[_input_spec(model), tf.TensorSpec((), tf.int32)],
        autograph=False,
    )
    return cache[key]


def _unit_max(values: np.ndarray) -> np.ndarray:
    """Divides by the maximum; an all-zero map stays zero instead of becoming NaN."""
    peak = float(values.max()) if values.size else 0.0
    return (values / peak if peak > 0 else np.zeros_like(values)).astype(np.float32)


def saliency(model: keras.Model, x: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """Vanilla gradient saliency: how much each pixel changes the class score.

    ``|d score / d pixel|``, the largest over the colour channels, divided by its maximum.
    The score is the class logit (see the module notes). A pixel that cannot affect the
    score gets exactly 0.

    Args:
        model: A functional Keras model.
        x: One image (H, W, C) (or (H, W) for a one-channel model).
        class_index: The class to explain; None for the predicted class.

    Returns:
        float32 (H, W) in [0, 1].

    Raises:
        ValueError: For a wrong image shape or class index.
    """
    _check_model(model)
    batch = _as_batch(model, x)
    index = _check_class_index(model, class_index)
    grad_x, _, _ = _gradient_function(model, None)(tf.constant(batch), tf.constant(index))
    return _unit_max(np.abs(_to_numpy(grad_x)[0]).max(axis=-1))


def grad_cam(
    model: keras.Model,
    x: np.ndarray,
    class_index: int | None = None,
    layer_name: str | None = None,
) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): where the evidence for a class lies in the image.

    Each channel of a conv layer's output is weighted by the mean gradient of the class
    logit over that channel; the ReLU of the weighted sum is upsampled bilinearly to the
    input size and divided by its maximum.

    Args:
        model: A functional Keras model.
        x: One image (H, W, C) (or (H, W) for a one-channel model).
        class_index: The class to explain; None for the predicted class.
        layer_name: A conv or pooling layer; None for the last Conv2D layer (the last one
            that still has spatial detail and sees the most).

    Returns:
        float32 (H, W) in [0, 1]; all zeros when nothing speaks for the class.

    Raises:
        ValueError: For a wrong image shape or class index, an unknown layer, or a model
            without conv layers.
    """
    _check_model(model)
    if layer_name is None:
        convs = conv_layers(model)
        if not convs:
            raise ValueError("Grad-CAM needs a conv layer, and this model has none.")
        layer_name = convs[-1].name
    else:
        _layer(model, layer_name, tappable_layers(model), "conv or pooling layer")
    batch = _as_batch(model, x)
    index = _check_class_index(model, class_index)
    fn = _gradient_function(model, layer_name)
    _, feature, grads = fn(tf.constant(batch), tf.constant(index))
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * feature, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, batch.shape[1:3], method="bilinear")
    return _unit_max(_to_numpy(cam)[0, ..., 0])


def grad_cam_with_evidence(
    model: keras.Model, x: np.ndarray, class_index: int | None = None
) -> tuple[str, np.ndarray]:
    """Grad-CAM on the deepest conv layer that shows any evidence for the class.

    In a model that flattens its last maps into a Dense layer (rather than averaging
    them), the mean gradient of a channel can be negative where the channel is active,
    so the last conv layer's Grad-CAM is often all zeros; an earlier layer still shows
    where the evidence lies. The conv layers are tried from the last to the first.

    Args:
        model: A functional Keras model with at least one conv layer.
        x: One image (H, W, C) (or (H, W) for a one-channel model).
        class_index: The class to explain; None for the predicted class.

    Returns:
        (layer name, float32 (H, W) map in [0, 1]); the last conv layer and its all-zero
        map when no layer shows evidence.

    Raises:
        ValueError: As for ``grad_cam``.
    """
    convs = conv_layers(model)
    if not convs:
        raise ValueError("Grad-CAM needs a conv layer, and this model has none.")
    for layer in reversed(convs):
        cam = grad_cam(model, x, class_index, layer.name)
        if cam.max() > 0:
            return layer.name, cam
    return convs[-1].name, grad_cam(model, x, class_index, convs[-1].name)


# --- Display --------------------------------------------------------------------------------
def overlay(
    image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5, colormap: str = "jet"
) -> np.ndarray:
    """A heatmap in colour over a (grey or colour) image, for display.

    Args:
        image: (H, W), (H, W, 1) or (H, W, 3); floats in [0, 1] or uint8.
        heatmap: (H, W) in [0, 1], e.g. from ``saliency`` or ``grad_cam``.
        alpha: Weight of the heatmap, from 0 (image only) to 1 (heatmap only).
        colormap: "jet" or "inferno".

    Returns:
        uint8 (H, W, 3).

    Raises:
        ValueError: If the shapes differ or alpha is outside [0, 1].
    """
    if colormap not in COLORMAPS:
        raise ValueError(f"colormap must be one of {COLORMAPS}, not {colormap!r}.")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}.")
    rgb = _as_rgb(image)
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.shape != rgb.shape[:2]:
        raise ValueError(
            f"The heatmap is {heat.shape} but the image is {rgb.shape[:2]}: they must match."
        )
    colored = matplotlib.colormaps[colormap](np.clip(np.nan_to_num(heat), 0, 1))[..., :3]
    blended = (1 - alpha) * rgb + alpha * colored
    return np.round(np.clip(blended, 0, 1) * 255).astype(np.uint8)


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """An image as uint8 (H, W, 3), the way ``overlay`` draws it under no heatmap, so it
    sits in one grid with the coloured overlays."""
    return overlay(image, np.zeros(np.shape(image)[:2], np.float32), alpha=0.0)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] from a grey or colour, uint8 or [0, 1] float image."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"The image must be (H, W), (H, W, 1) or (H, W, 3), not {a.shape}.")
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    return np.clip(np.nan_to_num(a), 0, 1)
