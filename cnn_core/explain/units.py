"""Every number behind one unit of a trained network, for one input image.

A *unit* is one number a layer outputs: a pixel (row, col, channel) of a feature map, or
one entry of a vector (a dense unit, a class probability). `explain_unit` recomputes that
number from the layer's own input and weights, step by step, in float64 numpy, and returns
the steps beside the value the model itself computed (`activation`, tapped from the real
forward pass), so a learner can check each multiplication and a test can check that the
explanation is the model's computation:

    trace = trace_layers(model, image)         # every layer's output for this image
    unit = explain_unit(model, image, "conv2d", (5, 7, 3), trace=trace)
    unit.value, unit.activation                # the same number, computed twice
    unit.receptive_field                       # (top, left, bottom, right) input pixels

The layer types explained are those the lab's models and layer lists are built from:
Conv2D, Dense, max and average pooling (and their global forms), batch normalisation,
ReLU, LeakyReLU, Activation, Dropout (off when predicting), Flatten, Add (residual
connections) and the input itself. A mixed-precision (bfloat16) model computes in bfloat16,
so its own value differs from the float64 recomputation by bfloat16's rounding (about 3
significant digits); `tolerance` gives the bound a comparison should use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cnn_core.explain.inspection import _as_batch, _cache, _input_spec, _to_numpy

# What each Keras layer class is called for a learner.
TYPE_NAMES = {
    "InputLayer": "input",
    "Conv2D": "convolution",
    "Dense": "dense",
    "MaxPooling2D": "max pooling",
    "AveragePooling2D": "average pooling",
    "GlobalAveragePooling2D": "global average pooling",
    "GlobalMaxPooling2D": "global max pooling",
    "BatchNormalization": "batch normalisation",
    "ReLU": "ReLU",
    "LeakyReLU": "leaky ReLU",
    "Activation": "activation",
    "Dropout": "dropout (off when predicting)",
    "Flatten": "flatten",
    "Add": "addition (residual connection)",
}
PASS_THROUGH = ("Dropout",)  # the same numbers out as in, at prediction time
ELEMENTWISE = ("BatchNormalization", "ReLU", "LeakyReLU", "Activation", "Dropout")
PRECISION = {"float32": 1e-5, "bfloat16": 2e-2}  # relative rounding of one layer's sums


class UnitError(ValueError):
    """A layer or unit that cannot be explained; the message says what to choose."""


@dataclass(frozen=True)
class LayerInfo:
    """One layer as the overview lists it."""

    name: str
    type: str  # TYPE_NAMES' words
    output_shape: tuple[int, ...]  # without the batch dimension


@dataclass(frozen=True)
class Step:
    """One line of the computation: what was done, and the number it gave."""

    text: str
    value: float


@dataclass(frozen=True)
class UnitExplanation:
    """How one unit's value was computed.

    Attributes:
        layer, layer_type: the layer's name and its type in words.
        unit: (row, col, channel) of a map, or (index,) of a vector.
        value: the value recomputed from `terms` and `steps` (float64).
        activation: the value the model computed in its forward pass.
        receptive_field: (top, left, bottom, right), inclusive, of the input pixels that
            can change this unit.
        terms: the element-wise pieces: for a convolution one per kernel weight
            (input, weight, product and where the input came from), for a dense unit one
            per input sorted by the size of its product, for pooling one per window cell.
        steps: the computation from the terms to `value`, in order.
        scale: the sum of the sizes of the terms (or of the value), which rounding
            errors are relative to; see `tolerance`.
        dtype: the layer's compute dtype, "float32" or "bfloat16".
    """

    layer: str
    layer_type: str
    unit: tuple[int, ...]
    value: float
    activation: float
    receptive_field: tuple[int, int, int, int]
    terms: list[dict[str, Any]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    scale: float = 0.0
    dtype: str = "float32"

    @property
    def tolerance(self) -> float:
        """How far `value` and `activation` may differ by rounding alone."""
        scale = max(self.scale, abs(self.activation), abs(self.value))
        return PRECISION.get(self.dtype, PRECISION["bfloat16"]) * scale + 1e-6

    def to_json(self) -> dict[str, Any]:
        """The CLI's --json form."""
        return {
            "layer": self.layer,
            "type": self.layer_type,
            "unit": list(self.unit),
            "value": self.value,
            "activation": self.activation,
            "receptive_field": list(self.receptive_field),
            "terms": self.terms,
            "steps": [{"text": s.text, "value": s.value} for s in self.steps],
        }


# --- The layers and their outputs ------------------------------------------------------------
def type_name(layer: keras.layers.Layer) -> str:
    """The layer's type in a learner's words ("convolution", "max pooling", ...)."""
    return TYPE_NAMES.get(type(layer).__name__, type(layer).__name__)


def list_layers(model: keras.Model) -> list[LayerInfo]:
    """Every layer from the input to the output, in the model's order."""
    return [
        LayerInfo(layer.name, type_name(layer), tuple(int(d) for d in layer.output.shape[1:]))
        for layer in model.layers
    ]


def trace_layers(model: keras.Model, image: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output for one image, in one forward pass (training=False).

    Args:
        model: a functional Keras model with one image input.
        image: (H, W, C) float32 in [0, 1] (or (H, W) for a one-channel model).

    Returns:
        {layer name: float32 array without the batch dimension}, the input layer included.
    """
    batch = _as_batch(model, image)
    outputs = _trace_function(model)(tf.constant(batch))
    names = [layer.name for layer in model.layers]
    return {name: _to_numpy(out)[0] for name, out in zip(names, outputs, strict=True)}


def _trace_function(model: keras.Model):
    cache = _cache(model)
    if "trace" not in cache:
        tap = keras.Model(model.inputs[0], [layer.output for layer in model.layers])
        cache["trace"] = tf.function(
            lambda x: tap(x, training=False), input_signature=[_input_spec(model)], autograph=False
        )
    return cache["trace"]


def _inputs_of(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layers whose outputs `layer` reads (none for the input layer)."""
    if isinstance(layer, keras.layers.InputLayer) or not layer._inbound_nodes:
        return []
    tensors = keras.tree.flatten(layer._inbound_nodes[0].input_tensors)
    return [t._keras_history.operation for t in tensors]


def elementwise_chain(model: keras.Model, layer_name: str) -> list[str]:
    """The layers right after `layer_name` that change each value on its own (batch norm,
    activations, dropout), as long as each is the only reader of the layer before: a
    convolution's unit goes on through them to the value its batch norm and ReLU make."""
    names: list[str] = []
    layer = _layer_of(model, layer_name)
    while len(layer._outbound_nodes) == 1:
        following = layer._outbound_nodes[0].operation
        if type(following).__name__ not in ELEMENTWISE or following not in model.layers:
            break
        names.append(following.name)
        layer = following
    return names


def reads_the_image(model: keras.Model, layer_name: str) -> bool:
    """Whether a layer's input is the image itself (its input maps are the colour channels)."""
    sources = _inputs_of(_layer_of(model, layer_name))
    return len(sources) == 1 and isinstance(sources[0], keras.layers.InputLayer)


def _layer_of(model: keras.Model, name: str) -> keras.layers.Layer:
    try:
        return model.get_layer(name)
    except ValueError:
        names = ", ".join(layer.name for layer in model.layers)
        raise UnitError(f"This model has no layer {name!r}; its layers are: {names}.") from None


# --- Receptive fields ------------------------------------------------------------------------
Span = tuple[int, int]  # first and last index, inclusive


def receptive_field(
    model: keras.Model, layer_name: str, unit: Sequence[int]
) -> tuple[int, int, int, int]:
    """The input pixels that can change one unit: (top, left, bottom, right), inclusive.

    Computed from the kernels, strides and padding of every layer between the input and
    the unit (the union over both branches of a residual addition); a unit of a vector
    (after flattening or global pooling) sees the whole input.
    """
    layer = _layer_of(model, layer_name)
    shape = tuple(layer.output.shape[1:])
    _check_unit(layer, shape, unit)
    if len(shape) == 3:
        rows, cols = (unit[0], unit[0]), (unit[1], unit[1])
    else:
        rows = cols = None
    field_rows, field_cols = _field(layer, rows, cols, tuple(unit))
    return field_rows[0], field_cols[0], field_rows[1], field_cols[1]


def _field(layer, rows: Span | None, cols: Span | None, unit: tuple[int, ...]):
    """Input rows and columns behind `rows`×`cols` of `layer`'s output (None: all of it)."""
    kind = type(layer).__name__
    if isinstance(layer, keras.layers.InputLayer):
        height, width = layer.output.shape[1:3]
        return rows or (0, height - 1), cols or (0, width - 1)
    sources = _inputs_of(layer)
    if kind == "Flatten" and unit and rows is None:
        h, w, c = sources[0].output.shape[1:]
        r, col = divmod(unit[0] // c, w)
        return _field(sources[0], (r, r), (col, col), ())
    if rows is not None and kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D"):
        rows, cols = _window_span(layer, rows, 0), _window_span(layer, cols, 1)
    elif kind not in ELEMENTWISE and kind != "Add":
        rows = cols = None  # dense, global pooling, flatten of everything: the whole input
    spans = [_field(source, rows, cols, ()) for source in sources]
    return (
        (min(s[0][0] for s in spans), max(s[0][1] for s in spans)),
        (min(s[1][0] for s in spans), max(s[1][1] for s in spans)),
    )


def _window(layer) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(window size, strides, dilation) of a convolution or pooling layer."""
    if isinstance(layer, keras.layers.Conv2D):
        return tuple(layer.kernel_size), tuple(layer.strides), tuple(layer.dilation_rate)
    return tuple(layer.pool_size), tuple(layer.strides), (1, 1)


def _pad_before(layer, axis: int) -> int:
    """Rows (axis 0) or columns (axis 1) of zeros TensorFlow adds before the input."""
    if layer.padding != "same":
        return 0
    size, strides, dilation = _window(layer)
    extent = (size[axis] - 1) * dilation[axis] + 1
    n_in = layer.input.shape[1 + axis]
    n_out = layer.output.shape[1 + axis]
    return max((n_out - 1) * strides[axis] + extent - n_in, 0) // 2


def _window_span(layer, span: Span, axis: int) -> Span:
    size, strides, dilation = _window(layer)
    pad = _pad_before(layer, axis)
    n_in = layer.input.shape[1 + axis]
    first = span[0] * strides[axis] - pad
    last = span[1] * strides[axis] - pad + (size[axis] - 1) * dilation[axis]
    return max(first, 0), min(last, n_in - 1)


# --- Explaining one unit ---------------------------------------------------------------------
def explain_unit(
    model: keras.Model,
    image: np.ndarray,
    layer_name: str,
    unit: Sequence[int],
    *,
    trace: dict[str, np.ndarray] | None = None,
) -> UnitExplanation:
    """Recompute one unit of one layer for one image, with every step.

    Args:
        model: a functional Keras model with one image input.
        image: (H, W, C) float32 in [0, 1].
        layer_name: one of `list_layers(model)`.
        unit: (row, col, channel) for a layer with maps, (index,) for a vector.
        trace: `trace_layers(model, image)`, when the caller has it already.

    Raises:
        UnitError: no such layer, a unit outside its output, or a layer type or setting
            that is not explained (the message names it).
    """
    layer = _layer_of(model, layer_name)
    outputs = trace if trace is not None else trace_layers(model, image)
    out = outputs[layer.name]
    unit = tuple(int(i) for i in unit)
    _check_unit(layer, out.shape, unit)
    inputs = [outputs[source.name].astype(np.float64) for source in _inputs_of(layer)]
    kind = type(layer).__name__
    explain = _EXPLAINERS.get(kind)
    if explain is None:
        raise UnitError(f"{layer.name} is a {kind} layer, which the lab cannot explain yet.")
    value, terms, steps, scale = explain(layer, inputs, unit)
    dtype = getattr(getattr(layer, "dtype_policy", None), "compute_dtype", "float32")
    return UnitExplanation(
        layer=layer.name,
        layer_type=type_name(layer),
        unit=unit,
        value=float(value),
        activation=float(out[unit]),
        receptive_field=receptive_field(model, layer.name, unit),
        terms=terms,
        steps=steps,
        scale=float(scale),
        dtype="bfloat16" if "bfloat16" in str(dtype) else "float32",
    )


def _check_unit(layer, shape: Sequence[int], unit: Sequence[int]) -> None:
    shape = tuple(int(d) for d in shape)
    what = "(row, col, channel)" if len(shape) == 3 else "(index,)"
    if len(unit) != len(shape) or not all(0 <= u < n for u, n in zip(unit, shape, strict=False)):
        limits = ", ".join(f"0..{n - 1}" for n in shape)
        raise UnitError(
            f"{layer.name} outputs {'×'.join(map(str, shape))}: a unit is {what} with "
            f"{limits}; got {tuple(unit)}."
        )


def _activation_steps(layer, z: float, steps: list[Step]) -> float:
    """Applies the layer's own activation function to the pre-activation `z`."""
    name = getattr(layer.activation, "__name__", "linear")
    if name == "linear":
        return z
    a = float(_to_numpy(layer.activation(tf.constant([[z]], tf.float32)))[0, 0])
    steps.append(Step(f"{name} of {z:.6g}", a))
    return a


def _explain_conv(layer, inputs, unit):
    (x,) = inputs
    row, col, channel = unit
    if layer.groups != 1:
        raise UnitError(f"{layer.name} is a grouped convolution, which is not explained yet.")
    kernel = layer.kernel.numpy().astype(np.float64)[..., channel]  # (kh, kw, c_in)
    (kh, kw), strides, dilation = _window(layer)
    top = row * strides[0] - _pad_before(layer, 0)
    left = col * strides[1] - _pad_before(layer, 1)
    terms, total, scale = [], 0.0, 0.0
    for i in range(kh):
        for j in range(kw):
            r, c = top + i * dilation[0], left + j * dilation[1]
            padding = not (0 <= r < x.shape[0] and 0 <= c < x.shape[1])
            for k in range(x.shape[2]):
                value = 0.0 if padding else float(x[r, c, k])
                weight = float(kernel[i, j, k])
                product = value * weight
                total += product
                scale += abs(product)
                terms.append({"row": r, "col": c, "channel": k, "input": value,
                              "weight": weight, "product": product,
                              "padding": padding})  # fmt: skip
    steps = [Step(f"sum of the {len(terms)} products (input × weight)", total)]
    z = total
    if layer.use_bias:
        bias = float(layer.bias.numpy()[channel])
        z = total + bias
        scale += abs(bias)
        steps.append(Step(f"+ bias {bias:.6g}", z))
    return _activation_steps(layer, z, steps), terms, steps, scale


def _explain_dense(layer, inputs, unit):
    (x,) = inputs
    (index,) = unit
    weights = layer.kernel.numpy().astype(np.float64)
    bias = layer.bias.numpy().astype(np.float64) if layer.use_bias else np.zeros(weights.shape[1])
    products = x * weights[:, index]
    order = np.argsort(-np.abs(products), kind="stable")
    terms = [{"index": int(i), "input": float(x[i]), "weight": float(weights[i, index]),
              "product": float(products[i])} for i in order]  # fmt: skip
    total = float(products.sum())
    z = total + float(bias[index])
    steps = [
        Step(f"sum of the {len(terms)} products (input × weight)", total),
        Step(f"+ bias {float(bias[index]):.6g}", z),
    ]
    scale = float(np.abs(products).sum() + abs(bias[index]))
    if getattr(layer.activation, "__name__", "") == "softmax":
        logits = x @ weights + bias
        exp = np.exp(logits - logits.max())
        probs = exp / exp.sum()
        steps.append(Step("logits of all units: " + ", ".join(f"{v:.4g}" for v in logits), z))
        steps.append(
            Step(
                f"softmax: e^{z:.4g} / (sum over the {len(logits)} units of e^logit)",
                float(probs[index]),
            )  # fmt: skip
        )
        return float(probs[index]), terms, steps, 1.0
    return _activation_steps(layer, z, steps), terms, steps, scale


def _explain_pool(layer, inputs, unit):
    (x,) = inputs
    row, col, channel = unit
    (ph, pw), strides, _ = _window(layer)
    top = row * strides[0] - _pad_before(layer, 0)
    left = col * strides[1] - _pad_before(layer, 1)
    cells = [(r, c) for r in range(top, top + ph) for c in range(left, left + pw)
             if 0 <= r < x.shape[0] and 0 <= c < x.shape[1]]  # fmt: skip
    values = [float(x[r, c, channel]) for r, c in cells]
    if isinstance(layer, keras.layers.MaxPooling2D):
        winner = int(np.argmax(values))
        value = values[winner]
        steps = [Step(f"the largest of the {len(values)} values in the window", value)]
    else:
        winner = -1
        value = float(np.mean(values))
        steps = [Step(f"the mean of the {len(values)} values in the window", value)]
    terms = [{"row": r, "col": c, "channel": channel, "input": v, "chosen": i == winner}
             for i, ((r, c), v) in enumerate(zip(cells, values, strict=True))]  # fmt: skip
    return value, terms, steps, max(abs(v) for v in values)


def _explain_global_pool(layer, inputs, unit):
    (x,) = inputs
    (channel,) = unit
    plane = x[..., channel]
    if isinstance(layer, keras.layers.GlobalMaxPooling2D):
        value, text = float(plane.max()), "the largest value of map"
    else:
        value, text = float(plane.mean()), "the mean of map"
    steps = [Step(f"{text} {channel} ({plane.shape[0]}×{plane.shape[1]} values)", value)]
    return value, [], steps, float(np.abs(plane).max())


def _explain_batchnorm(layer, inputs, unit):
    (x,) = inputs
    channel = unit[-1]
    v = float(x[unit])
    mean = float(layer.moving_mean.numpy()[channel])
    variance = float(layer.moving_variance.numpy()[channel])
    gamma = float(layer.gamma.numpy()[channel]) if layer.scale else 1.0
    beta = float(layer.beta.numpy()[channel]) if layer.center else 0.0
    normalised = (v - mean) / np.sqrt(variance + layer.epsilon)
    value = normalised * gamma + beta
    steps = [
        Step(f"input {v:.6g}", v),
        Step(f"minus the mean the layer learnt, {mean:.6g}", v - mean),
        Step(f"divided by √(variance {variance:.6g} + ε {layer.epsilon:g})", normalised),
        Step(f"× γ {gamma:.6g} + β {beta:.6g}", value),
    ]
    return value, [], steps, abs(normalised * gamma) + abs(beta) + abs(v)


def _explain_elementwise(layer, inputs, unit):
    (x,) = inputs
    v = float(x[unit])
    kind = type(layer).__name__
    if kind in PASS_THROUGH:
        return v, [], [Step("dropout is off when predicting: the input passes unchanged", v)], v
    if kind == "ReLU":
        slope = float(layer.negative_slope or 0.0)
        value = v if v >= layer.threshold else slope * (v - layer.threshold)
        if layer.max_value is not None:
            value = min(value, float(layer.max_value))
        return value, [], [Step(f"ReLU of {v:.6g}: max(0, input)", value)], abs(v)
    if kind == "LeakyReLU":
        slope = float(layer.negative_slope)
        value = v if v >= 0 else slope * v
        return value, [], [Step(f"leaky ReLU of {v:.6g}: input, or {slope:g} × input below 0",
                                value)], abs(v)  # fmt: skip
    steps: list[Step] = []
    return _activation_steps(layer, v, steps), [], steps, abs(v)


def _explain_flatten(layer, inputs, unit):
    (x,) = inputs
    (index,) = unit
    where = np.unravel_index(index, x.shape)
    value = float(x[where])
    text = f"the value at (row {where[0]}, col {where[1]}, channel {where[2]}) of the input"
    return value, [], [Step(text, value)], abs(value)


def _explain_add(layer, inputs, unit):
    values = [float(x[unit]) for x in inputs]
    names = [source.name for source in _inputs_of(layer)]
    terms = [{"from": n, "input": v} for n, v in zip(names, values, strict=True)]
    value = float(sum(values))
    steps = [Step(" + ".join(f"{v:.6g} ({n})" for n, v in zip(names, values, strict=True)),
                  value)]  # fmt: skip
    return value, terms, steps, sum(abs(v) for v in values)


def _explain_input(layer, inputs, unit):
    raise UnitError(
        f"{layer.name} is the image itself: choose a unit of a later layer to see how it "
        "was computed."
    )


_EXPLAINERS = {
    "Conv2D": _explain_conv,
    "Dense": _explain_dense,
    "MaxPooling2D": _explain_pool,
    "AveragePooling2D": _explain_pool,
    "GlobalAveragePooling2D": _explain_global_pool,
    "GlobalMaxPooling2D": _explain_global_pool,
    "BatchNormalization": _explain_batchnorm,
    "ReLU": _explain_elementwise,
    "LeakyReLU": _explain_elementwise,
    "Activation": _explain_elementwise,
    "Dropout": _explain_elementwise,
    "Flatten": _explain_flatten,
    "Add": _explain_add,
    "InputLayer": _explain_input,
}
