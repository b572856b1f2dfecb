"""Look inside a trained CNN: its layers, its filters and the feature maps an image lights up.

One technique per function, numpy in and numpy out, for functional Keras 3 models whose
input is one float32 image in [0, 1] of shape (H, W, C) (a batch dimension is added here).
Attribution (saliency, Grad-CAM) is in `attribution`, activation maximisation in
`maximization`; both build on the layer lookup and the cached traced functions here.

Speed. Each technique compiles one ``tf.function`` per model (and layer) on its first
call, cached in a ``WeakKeyDictionary`` that forgets the model when it is dropped, so a
page that redraws on every stroke pays the tracing (a few hundred ms) once and then a few
milliseconds per call.

Typical use::

    maps = feature_maps(model, x)                 # {"conv1": (28, 28, 32), ...}
    weights = filter_weights(model, "conv1")      # (3, 3, 1, 32)
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

FILTER_MODES = ("per_input_channel", "rgb", "mean")
SCALES = ("shared", "per_filter")
POOLING_TYPES = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)

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
