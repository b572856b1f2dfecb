"""Look inside a trained CNN: filters, feature maps, saliency, Grad-CAM, activation maximisation.

One technique per function, numpy in and numpy out, for functional Keras 3 models whose
input is one float32 image in [0, 1] of shape (H, W, C) (a batch dimension is added here).

Class scores. Saliency and Grad-CAM differentiate the *pre-softmax* score of a class (its
logit), not its probability: a probability also rises when the other classes fall, and
it saturates near 1, where its gradient vanishes (Simonyan et al. 2014; Selvaraju et al.
2017 also use the logit). When the last layer is a ``Dense`` (the zoo's "predictions"),
the logit is recomputed from that layer's input and its own kernel and bias, so no copy
of the model is made; when it is an ``Activation``/``Softmax`` layer, its input is the
logit. Any other last layer is differentiated as it is (``score_kind`` says which).

Speed. Each technique compiles one ``tf.function`` per model (and layer) on its first
call, cached in a ``WeakKeyDictionary`` that forgets the model when it is dropped, so a
page that redraws on every stroke pays the tracing (a few hundred ms) once and then a few
milliseconds per call.

Typical use::

    maps = feature_maps(model, x)                 # {"conv1": (28, 28, 32), ...}
    cam = grad_cam(model, x)                      # (28, 28) in [0, 1]
    picture = overlay(x, cam)                     # (28, 28, 3) uint8
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import keras
import matplotlib
import numpy as np
import tensorflow as tf

FILTER_MODES = ("per_input_channel", "rgb", "mean")
SCALES = ("shared", "per_filter")
COLORMAPS = ("jet", "inferno")
POOLING_TYPES = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
MAX_AM_STEPS = 1000
NOISE_ATTEMPTS = 4  # starting images tried before giving up on a filter that never fires

# model -> {cache key: compiled function}; entries vanish with the model.
_CACHE: weakref.WeakKeyDictionary[keras.Model, dict[Any, Any]] = weakref.WeakKeyDictionary()


# --- Layers ---------------------------------------------------------------------------------
def conv_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's Conv2D layers, in order.

    Args:
        model: A built functional Keras model.

    Returns:
        The Conv2D layers.
    """
    return [layer for layer in _check_model(model).layers if isinstance(layer, keras.layers.Conv2D)]


def tappable_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The conv and pooling layers whose outputs are feature maps (H, W, C), in order.

    Args:
        model: A built functional Keras model.

    Returns:
        Conv2D, MaxPooling2D and AveragePooling2D layers with a 4-D output.
    """
    return [
        layer
        for layer in _check_model(model).layers
        if isinstance(layer, (keras.layers.Conv2D, *POOLING_TYPES)) and len(layer.output.shape) == 4
    ]


def _check_model(model: object) -> keras.Model:
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a Keras model, not {type(model).__name__}.")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"The model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "inspection needs a model with one image input and one output."
        )
    return model


def _layer(model: keras.Model, name: str, allowed: list[keras.layers.Layer], what: str):
    names = [layer.name for layer in allowed]
    if name not in names:
        choices = ", ".join(names) or "none"
        raise ValueError(f"{name!r} is not a {what} of this model; choose one of: {choices}.")
    return allowed[names.index(name)]


def _cache(model: keras.Model) -> dict[Any, Any]:
    return _CACHE.setdefault(model, {})


# --- Inputs ---------------------------------------------------------------------------------
def _image_shape(model: keras.Model) -> tuple[int | None, ...]:
    return tuple(model.inputs[0].shape[1:])


def _as_batch(model: keras.Model, x: object) -> np.ndarray:
    """One image (H, W, C), or (H, W) for a one-channel model, as a float32 batch of one."""
    expected = _image_shape(model)
    image = np.asarray(x)
    if image.ndim == 2 and len(expected) == 3 and expected[2] == 1:
        image = image[..., None]
    matches = image.ndim == len(expected) and all(
        e is None or e == g for e, g in zip(expected, image.shape, strict=True)
    )
    if not matches:
        shape = " × ".join("?" if d is None else str(d) for d in expected)
        raise ValueError(
            f"The model takes one image of shape {shape}, but got an array of shape "
            f"{image.shape}: pass a single image without a batch dimension."
        )
    if not (np.issubdtype(image.dtype, np.number) and np.all(np.isfinite(image))):
        raise ValueError("The image must hold finite numbers (float32 in [0, 1]).")
    return image[None].astype(np.float32)


def _input_spec(model: keras.Model) -> tf.TensorSpec:
    return tf.TensorSpec((None, *_image_shape(model)), tf.float32)


# --- Filters --------------------------------------------------------------------------------
def filter_weights(model: keras.Model, layer_name: str) -> np.ndarray:
    """The kernel of a Conv2D layer.

    Args:
        model: A functional Keras model.
        layer_name: Name of one of its Conv2D layers.

    Returns:
        float32 array (kh, kw, in_channels, filters).

    Raises:
        ValueError: If the layer is not a Conv2D layer of the model.
    """
    layer = _layer(model, layer_name, conv_layers(model), "Conv2D layer")
    return np.array(layer.kernel.numpy(), dtype=np.float32)


def filter_images(
    model: keras.Model, layer_name: str, mode: str = "per_input_channel", scale: str = "shared"
) -> np.ndarray:
    """A Conv2D layer's filters as images in [0, 1], with mid-grey (0.5) for a zero weight.

    Weights are scaled symmetrically, ``w / (2 max|w|) + 0.5``, so that positive weights
    are bright, negative ones dark and the sign of a weight is never lost; ``max|w|`` is
    taken over the whole layer ("shared": filters compare with each other) or over each
    filter ("per_filter": the pattern of weak filters becomes visible too).

    Args:
        model: A functional Keras model.
        layer_name: Name of one of its Conv2D layers.
        mode: "per_input_channel": one image per filter and input channel, shape
            (filters, in_channels, kh, kw); "rgb": a colour image per filter of a layer with
            3 input channels (the first layer of an RGB model), shape (filters, kh, kw, 3);
            "mean": the weights averaged over the input channels (how deeper layers are
            usually shown), shape (filters, kh, kw).
        scale: "shared" or "per_filter".

    Returns:
        float32 array in [0, 1], shaped as described for ``mode``.

    Raises:
        ValueError: For an unknown mode or scale, "rgb" on a layer without 3 input
            channels, or a layer that is not Conv2D.
    """
    if mode not in FILTER_MODES:
        raise ValueError(f"mode must be one of {FILTER_MODES}, not {mode!r}.")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, not {scale!r}.")
    weights = filter_weights(model, layer_name)
    if mode == "rgb" and weights.shape[2] != 3:
        raise ValueError(
            f"Layer {layer_name!r} has {weights.shape[2]} input channels; 'rgb' needs 3 "
            "(the first layer of a colour model). Use 'per_input_channel' or 'mean'."
        )
    if mode == "per_input_channel":
        images = weights.transpose(3, 2, 0, 1)
    elif mode == "rgb":
        images = weights.transpose(3, 0, 1, 2)
    else:
        images = weights.mean(axis=2).transpose(2, 0, 1)
    return _symmetric_unit(images, per_filter=scale == "per_filter")


def _symmetric_unit(images: np.ndarray, per_filter: bool) -> np.ndarray:
    axes = tuple(range(1, images.ndim)) if per_filter else None
    peak = np.abs(images).max(axis=axes, keepdims=per_filter)
    safe = np.where(peak > 0, peak, 1.0)
    return (images / (2 * safe) + 0.5).astype(np.float32)


# --- Feature maps ---------------------------------------------------------------------------
def feature_maps(
    model: keras.Model, x: np.ndarray, layer_names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """The activations of conv and pooling layers for one image, in one forward pass.

    Args:
        model: A functional Keras model.
        x: One image (H, W, C) (or (H, W) for a one-channel model).
        layer_names: Layers to tap, from ``tappable_layers``; None for all of them.

    Returns:
        {layer name: float32 array (h, w, channels)} in the model's layer order.

    Raises:
        ValueError: For a wrong image shape or a name that is not a conv/pool layer.
    """
    allowed = tappable_layers(model)
    if layer_names is None:
        names = tuple(layer.name for layer in allowed)
    else:
        if isinstance(layer_names, str):
            layer_names = [layer_names]
        requested = set(layer_names)
        for name in requested:
            _layer(model, name, allowed, "conv or pooling layer")
        names = tuple(layer.name for layer in allowed if layer.name in requested)
    batch = _as_batch(model, x)
    if not names:
        return {}
    outputs = _tap_function(model, names)(tf.constant(batch))
    if not isinstance(outputs, list | tuple):  # a model with one output returns a bare tensor
        outputs = [outputs]
    return {name: _to_numpy(out)[0] for name, out in zip(names, outputs, strict=True)}


def _tap_function(model: keras.Model, names: tuple[str, ...]) -> Callable:
    key = ("tap", names)
    cache = _cache(model)
    if key not in cache:
        tap = keras.Model(model.inputs[0], [model.get_layer(n).output for n in names])
        cache[key] = tf.function(
            lambda x: tap(x, training=False),
            input_signature=[_input_spec(model)],
            autograph=False,
        )
    return cache[key]


def _to_numpy(tensor: Any) -> np.ndarray:
    """float32 numpy, also from the bfloat16 outputs of a mixed-precision model."""
    return tf.cast(tensor, tf.float32).numpy()


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


# --- Where a feature map comes from ---------------------------------------------------------
class MapFilter(NamedTuple):
    """The filter behind one feature map, for showing the two side by side."""

    layer_name: str  # the Conv2D layer whose filter made the map
    weights: np.ndarray  # (kh, kw) float32: the filter averaged over its input channels
    in_channels: int  # how many input channels were averaged


def source_conv(model: keras.Model, layer_name: str) -> str | None:
    """The Conv2D layer whose channels a conv or pooling layer's channels are.

    A conv layer is its own source. A pooling layer keeps channel c of the layer before
    it as its channel c, so the walk goes back through single-input layers that keep the
    channel count (pooling, activation, batch normalisation, dropout) to a conv layer.

    Args:
        model: A functional Keras model.
        layer_name: One of its conv or pooling layers.

    Returns:
        The conv layer's name, or None when there is none (pooling straight after the
        input, or a layer that merges several inputs on the way).

    Raises:
        ValueError: If the layer is not a conv or pooling layer of the model.
    """
    layer = _layer(model, layer_name, tappable_layers(model), "conv or pooling layer")
    channels = layer.output.shape[-1]
    while not isinstance(layer, keras.layers.Conv2D):
        history = getattr(layer.input, "_keras_history", None)
        if history is None:  # several inputs, or none
            return None
        layer = history.operation
        if isinstance(layer, keras.layers.InputLayer) or layer.output.shape[-1] != channels:
            return None
    return layer.name


def map_filter(model: keras.Model, layer_name: str, channel: int) -> MapFilter | None:
    """The filter that made channel ``channel`` of a conv or pooling layer's output.

    Args:
        model: A functional Keras model.
        layer_name: One of its conv or pooling layers.
        channel: A channel of that layer's output.

    Returns:
        The MapFilter, or None when no conv layer made the map (see ``source_conv``).

    Raises:
        ValueError: For an unknown layer or a channel out of range.
    """
    layer = _layer(model, layer_name, tappable_layers(model), "conv or pooling layer")
    channels = int(layer.output.shape[-1])
    if isinstance(channel, bool) or not isinstance(channel, int | np.integer):
        raise ValueError(f"channel must be a whole number, not {channel!r}.")
    if not 0 <= channel < channels:
        raise ValueError(
            f"Layer {layer_name!r} has {channels} channels: choose one from 0 to {channels - 1}."
        )
    conv = source_conv(model, layer_name)
    if conv is None:
        return None
    kernel = filter_weights(model, conv)[..., int(channel)]
    return MapFilter(conv, kernel.mean(axis=2).astype(np.float32), int(kernel.shape[2]))


def filter_modes(model: keras.Model, layer_name: str) -> tuple[str, ...]:
    """The ways of drawing a conv layer's filters that suit it, best first.

    The first conv layer of a colour model sees red, green and blue: its filters read
    best as colour images, or one image per colour channel. Any layer with one input
    channel has nothing to average. Deeper layers see dozens of channels, so their
    filters are shown averaged over them.

    Args:
        model: A functional Keras model.
        layer_name: One of its Conv2D layers.

    Returns:
        Modes of ``filter_images``: ("rgb", "per_input_channel") for the first layer of
        an RGB model, ("per_input_channel", "mean") for the first layer of any other
        model with several input channels, ("mean",) otherwise.

    Raises:
        ValueError: If the layer is not a Conv2D layer of the model.
    """
    convs = conv_layers(model)
    layer = _layer(model, layer_name, convs, "Conv2D layer")
    in_channels = int(layer.kernel.shape[2])
    if layer is not convs[0] or in_channels == 1:
        return ("mean",)
    if in_channels == 3:
        return ("rgb", "per_input_channel")
    return ("per_input_channel", "mean")
