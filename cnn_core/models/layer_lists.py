"""The learner's own layer list: checked row by row, planned shape by shape, built into a model."""

from __future__ import annotations

import copy
import math
import numbers
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras

from cnn_core.models.architectures import PREDICTIONS, _batch_norm, _model
from cnn_core.models.input_limits import (
    MIN_INPUT_SIDE,
    ModelError,
    _check_input_shape,
    _check_num_classes,
)

# --- Custom layer lists: allowed values (inclusive ranges) and budgets ----------------------
FILTERS_RANGE = (1, 1024)
KERNEL_RANGE = (1, 11)  # also the range of a pool's size and stride
STRIDE_RANGE = (1, 4)
UNITS_RANGE = (1, 4096)
MAX_CUSTOM_LAYERS = 64
MAX_CUSTOM_PARAMS = 20_000_000
# "leaky_relu" is Keras' own activation function, whose negative slope is 0.2.
ACTIVATIONS = ("relu", "linear", "tanh", "sigmoid", "leaky_relu")
PADDINGS = ("same", "valid")

# Defaults for the keys a layer dict may omit; a pool's stride of None means "its size".
LAYER_DEFAULTS: dict[str, dict[str, Any]] = {
    "conv": {"filters": 32, "kernel": 3, "stride": 1, "padding": "same", "activation": "relu"},
    "maxpool": {"size": 2, "stride": None, "padding": "valid"},
    "avgpool": {"size": 2, "stride": None, "padding": "valid"},
    "batchnorm": {},
    "dropout": {"rate": 0.25},
    "flatten": {},
    "globalavgpool": {},
    "dense": {"units": 128, "activation": "relu"},
}
LAYER_TYPES = tuple(LAYER_DEFAULTS)
KNOWN_KEYS = frozenset({"type"}.union(*LAYER_DEFAULTS.values()))
SPATIAL_TYPES = frozenset({"conv", "maxpool", "avgpool", "globalavgpool"})
NAME_PREFIXES = {
    "conv": "conv",
    "maxpool": "pool",
    "avgpool": "avgpool",
    "batchnorm": "bn",
    "dropout": "dropout",
    "flatten": "flatten",
    "globalavgpool": "gap",
    "dense": "dense",
}
CUSTOM = "custom"

# A learner's starting point: two conv/pool blocks and a small dense layer (106k parameters
# on 28×28×1, a few seconds per MNIST epoch). Copy it (default_custom_layers()) to edit it.
DEFAULT_CUSTOM_LAYERS: list[dict[str, Any]] = [
    {
        "type": "conv",
        "filters": 16,
        "kernel": 3,
        "stride": 1,
        "padding": "same",
        "activation": "relu",
    },
    {"type": "maxpool", "size": 2, "stride": 2},
    {
        "type": "conv",
        "filters": 32,
        "kernel": 3,
        "stride": 1,
        "padding": "same",
        "activation": "relu",
    },
    {"type": "maxpool", "size": 2, "stride": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 64, "activation": "relu"},
    {"type": "dropout", "rate": 0.25},
]


class LayerSpecError(ModelError):
    """A custom layer list is invalid; the message names the layer and what to fix."""


@dataclass(frozen=True)
class LayerShape:
    """What one layer of a custom list will be, computed without building Keras layers.

    Attributes:
        number: 1-based position in the user's list; None for a layer added automatically
            (a Flatten before a Dense or before the output, and the output layer itself).
        name: The Keras layer name the builder gives it ("conv1", "predictions").
        kind: The layer type ("conv", "maxpool", ..., "dense").
        label: A short description for tables and messages ("conv 32 3×3").
        output_shape: Output shape without the batch dimension.
        params: Number of parameters (weights, biases and batch-norm statistics).
        spec: The layer dict with every default filled in.
    """

    number: int | None
    name: str
    kind: str
    label: str
    output_shape: tuple[int, ...]
    params: int
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def auto(self) -> bool:
        """Whether the builder added this layer rather than the user."""
        return self.number is None


def default_custom_layers() -> list[dict[str, Any]]:
    """Returns a fresh copy of DEFAULT_CUSTOM_LAYERS that a caller may edit freely."""
    return copy.deepcopy(DEFAULT_CUSTOM_LAYERS)


def layers_from_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The layer dicts of the layer editor's table rows (``DataFrame.to_dict("records")``).

    A table column holds floats and NaN where a row leaves a cell empty: an empty cell
    (None or NaN) is dropped, so the layer's default applies, and a whole float becomes an
    int, except the dropout ``rate``. Anything else is passed on as typed, for
    ``validate_layers`` to check.
    """
    return [
        {k: (int(v) if isinstance(v, float) and v.is_integer() and k != "rate" else v)
         for k, v in row.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}
        for row in rows
    ]  # fmt: skip


def _window_output(size: int, window: int, stride: int, padding: str) -> int:
    """Output length of a conv or pool along one axis, as Keras computes it (0 = empty)."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1 if size >= window else 0


# --- Custom layer lists ---------------------------------------------------------------------
def _is_missing(value: Any) -> bool:
    """None and NaN (an empty cell of an edited table) both mean "use the default"."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _whole_number(value: Any, key: str, bounds: tuple[int, int], where: str) -> int:
    """Checks an integer setting; integral floats (32.0 from a table) are accepted."""
    low, high = bounds
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not is_number or not float(value).is_integer():
        raise LayerSpecError(
            f"{where}: {key} must be a whole number from {low} to {high}, got {value!r}."
        )
    if not low <= value <= high:
        raise LayerSpecError(f"{where}: {key} must be from {low} to {high}, got {int(value)}.")
    return int(value)


def _choice(value: Any, key: str, options: Sequence[str], where: str) -> str:
    """Checks a text setting against its options, ignoring case and surrounding spaces."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in options:
        raise LayerSpecError(f"{where}: {key} must be one of {', '.join(options)}, got {value!r}.")
    return text


def _dropout_rate(value: Any, where: str) -> float:
    """Checks a dropout rate: 0 keeps everything, 1 would drop everything."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not is_number or not 0 <= value < 1:
        raise LayerSpecError(
            f"{where}: rate must be a number from 0 to below 1 (the share of values "
            f"dropped), e.g. 0.25, got {value!r}."
        )
    return float(value)


def _layer_type(raw: Any, number: int) -> str:
    """Reads and checks the "type" of one layer dict."""
    where = f"Layer {number}"
    if not isinstance(raw, dict):
        raise LayerSpecError(
            f"{where}: each layer must be a dict such as {{'type': 'conv', 'filters': 32}}, "
            f"got {raw!r}."
        )
    kind = raw.get("type")
    kind = kind.strip().lower() if isinstance(kind, str) else kind
    if kind not in LAYER_DEFAULTS:
        missing = "has no type" if _is_missing(kind) else f"has unknown type {raw['type']!r}"
        raise LayerSpecError(f"{where} {missing}. Choose one of: {', '.join(LAYER_TYPES)}.")
    return kind


def _normalize_layer(raw: Any, number: int) -> dict[str, Any]:
    """Returns the layer dict with defaults filled in and every value checked.

    Keys that belong to other layer types are ignored (a table row keeps every column),
    but keys no layer type knows are reported, since they are almost always typos.
    """
    kind = _layer_type(raw, number)
    where = f"Layer {number} ({kind})"
    unknown = sorted(str(key) for key in raw if key not in KNOWN_KEYS)
    if unknown:
        allowed = ", ".join(LAYER_DEFAULTS[kind]) or "no settings besides type"
        raise LayerSpecError(f"{where}: unknown setting {unknown[0]!r}. It takes: {allowed}.")
    spec: dict[str, Any] = {"type": kind}
    for key, default in LAYER_DEFAULTS[kind].items():
        value = raw.get(key)
        spec[key] = default if _is_missing(value) else value
    return _check_settings(spec, where)


def _check_settings(spec: dict[str, Any], where: str) -> dict[str, Any]:
    """Checks every setting of a layer dict whose defaults are filled in; returns it cleaned."""
    kind = spec["type"]
    if kind == "conv":
        spec["filters"] = _whole_number(spec["filters"], "filters", FILTERS_RANGE, where)
        spec["kernel"] = _whole_number(spec["kernel"], "kernel", KERNEL_RANGE, where)
        spec["stride"] = _whole_number(spec["stride"], "stride", STRIDE_RANGE, where)
    elif kind in ("maxpool", "avgpool"):
        spec["size"] = _whole_number(spec["size"], "size", KERNEL_RANGE, where)
        stride = spec["size"] if spec["stride"] is None else spec["stride"]
        spec["stride"] = _whole_number(stride, "stride", KERNEL_RANGE, where)
    elif kind == "dense":
        spec["units"] = _whole_number(spec["units"], "units", UNITS_RANGE, where)
    elif kind == "dropout":
        spec["rate"] = _dropout_rate(spec["rate"], where)
    if "padding" in spec:
        spec["padding"] = _choice(spec["padding"], "padding", PADDINGS, where)
    if "activation" in spec:
        spec["activation"] = _choice(spec["activation"], "activation", ACTIVATIONS, where)
    return spec


def _layer_label(spec: dict[str, Any]) -> str:
    """A short description of a normalized layer, e.g. "conv 32 3×3" or "max-pool 2×2"."""
    kind = spec["type"]
    if kind == "conv":
        label = f"conv {spec['filters']} {spec['kernel']}×{spec['kernel']}"
        return label + (f" stride {spec['stride']}" if spec["stride"] > 1 else "")
    if kind in ("maxpool", "avgpool"):
        label = f"{kind[:3]}-pool {spec['size']}×{spec['size']}"
        return label + (f" stride {spec['stride']}" if spec["stride"] != spec["size"] else "")
    if kind == "dense" and spec["activation"] == "softmax":
        return f"softmax output {spec['units']}"
    if kind == "dense":
        return f"dense {spec['units']}"
    if kind == "dropout":
        return f"dropout {spec['rate']:g}"
    return {"batchnorm": "batch-norm", "globalavgpool": "global-avg-pool"}.get(kind, kind)


def _windowed_shape(spec: dict[str, Any], shape: tuple[int, ...], where: str):
    """Output (height, width) of a conv or pool, or a LayerSpecError if nothing is left."""
    height, width = shape[:2]
    window = spec["kernel"] if spec["type"] == "conv" else spec["size"]
    out = tuple(_window_output(n, window, spec["stride"], spec["padding"]) for n in shape[:2])
    if min(out) >= 1:
        return out
    if spec["type"] != "conv" and (height, width) == (1, 1):
        raise LayerSpecError(
            f"{where}: its input is only 1×1, so there is nothing left to pool. "
            "Remove this layer or pool less earlier."
        )
    raise LayerSpecError(
        f"{where}: its input is only {height}×{width}, smaller than its {window}×{window} "
        "window, so its output would be empty. Use padding 'same', a smaller window, "
        "or shrink the image less in earlier layers."
    )


def _layer_output(spec: dict[str, Any], shape: tuple[int, ...], where: str):
    """Output shape and parameter count of one normalized layer on an input shape."""
    kind = spec["type"]
    if kind == "conv":
        height, width = _windowed_shape(spec, shape, where)
        params = spec["kernel"] ** 2 * shape[-1] * spec["filters"] + spec["filters"]
        return (height, width, spec["filters"]), params
    if kind in ("maxpool", "avgpool"):
        return (*_windowed_shape(spec, shape, where), shape[-1]), 0
    if kind == "batchnorm":
        # gamma and beta are trained; the moving mean and variance are not, but still count.
        return shape, 4 * shape[-1]
    if kind == "flatten":
        return (math.prod(shape),), 0
    if kind == "globalavgpool":
        return (shape[-1],), 0
    if kind == "dense":
        return (spec["units"],), shape[-1] * spec["units"] + spec["units"]
    return shape, 0  # dropout


def _check_not_flat(spec: dict[str, Any], shape: tuple[int, ...], where: str, flat_at: str):
    """A conv or pool needs an image grid; after flatten/dense/global pooling there is none."""
    if spec["type"] in SPATIAL_TYPES and len(shape) == 1:
        raise LayerSpecError(
            f"{where}: it comes after {flat_at}, which turned the image into a flat list of "
            f"{shape[0]} numbers, so there is no grid left to slide over. Move this layer "
            "before it, or remove it."
        )


def _check_param_budget(rows: list[LayerShape]) -> None:
    """Rejects stacks over MAX_CUSTOM_PARAMS, naming the layer that holds the most."""
    total = sum(row.params for row in rows)
    if total <= MAX_CUSTOM_PARAMS:
        return
    biggest = max(rows, key=lambda row: row.params)
    over = f"so the model would have {total:,}, more than the {MAX_CUSTOM_PARAMS:,} allowed"
    if biggest.auto:  # only the output layer has parameters among the added layers
        inputs = biggest.params // biggest.output_shape[0] - 1
        raise LayerSpecError(
            f"The output layer has {biggest.params:,} parameters because it receives "
            f"{inputs:,} values, {over}. Pool, stride or add a globalavgpool before the end."
        )
    raise LayerSpecError(
        f"Layer {biggest.number} ({biggest.label}) has {biggest.params:,} parameters, "
        f"{over}. Use fewer filters or units, or pool / stride more before it."
    )


def _plan_row(
    spec: dict[str, Any], number: int | None, name: str, shape: tuple[int, ...], where: str
) -> LayerShape:
    """Plans one layer: its label, output shape and parameter count on ``shape``."""
    out_shape, params = _layer_output(spec, shape, where)
    return LayerShape(number, name, spec["type"], _layer_label(spec), out_shape, params, spec)


def _plan_layers(
    layers: Any, input_shape: tuple[int, int, int], num_classes: int | None
) -> list[LayerShape]:
    """Walks the layer list with shape arithmetic only; see ``validate_layers``."""
    if not isinstance(layers, (list, tuple)):
        raise LayerSpecError(
            f"The layer list must be a list of dicts, got {type(layers).__name__}."
        )
    if len(layers) > MAX_CUSTOM_LAYERS:
        raise LayerSpecError(
            f"The layer list has {len(layers)} layers; at most {MAX_CUSTOM_LAYERS} are allowed."
        )
    counts: Counter[str] = Counter()
    rows: list[LayerShape] = []
    shape: tuple[int, ...] = tuple(input_shape)
    flat_at = ""

    def next_name(kind: str) -> str:
        counts[kind] += 1
        return f"{NAME_PREFIXES[kind]}{counts[kind]}"

    for number, raw in enumerate(layers, start=1):
        spec = _normalize_layer(raw, number)
        where = f"Layer {number} ({_layer_label(spec)})"
        _check_not_flat(spec, shape, where, flat_at)
        if spec["type"] == "dense" and len(shape) == 3:
            # Keras' Dense would act on the channel axis alone; learners expect a flat input.
            rows.append(_plan_row({"type": "flatten"}, None, next_name("flatten"), shape, ""))
            shape = rows[-1].output_shape
        rows.append(_plan_row(spec, number, next_name(spec["type"]), shape, where))
        shape = rows[-1].output_shape
        if len(shape) == 1 and not flat_at:
            flat_at = f"layer {number} ({rows[-1].label})"
    if len(shape) == 3:
        rows.append(_plan_row({"type": "flatten"}, None, next_name("flatten"), shape, ""))
        shape = rows[-1].output_shape
    if num_classes is not None:
        output = {"type": "dense", "units": num_classes, "activation": "softmax"}
        rows.append(_plan_row(output, None, PREDICTIONS, shape, "the output layer"))
    _check_param_budget(rows)
    return rows


def validate_layers(
    layers: list[dict[str, Any]],
    input_shape: tuple[int, int, int],
    num_classes: int | None = None,
) -> list[LayerShape]:
    """Computes every layer's output shape and parameters, without building Keras layers.

    Pure arithmetic, so a page can call it on every edit of the layer table. The result
    lists the layers the builder will create, in order: the user's layers, a Flatten
    inserted automatically before a Dense or at the end when the data is still an image,
    and, when ``num_classes`` is given, the softmax output layer "predictions".

    Layer dicts (JSON-ready; omitted, None or NaN values take the ``LAYER_DEFAULTS``)::

        {"type": "conv", "filters": 32, "kernel": 3, "stride": 1, "padding": "same",
         "activation": "relu"}        # activation: relu, linear, tanh, sigmoid, leaky_relu
        {"type": "maxpool" | "avgpool", "size": 2, "stride": 2, "padding": "valid"}
        {"type": "batchnorm"}  {"type": "dropout", "rate": 0.25}  {"type": "flatten"}
        {"type": "globalavgpool"}  {"type": "dense", "units": 128, "activation": "relu"}

    A pool's stride defaults to its size. Ranges: filters 1-1024, kernel and pool size
    1-11, conv stride 1-4, units 1-4096, rate in [0, 1); at most 64 layers and 20 million
    parameters.

    Args:
        layers: The layer dicts, input to output.
        input_shape: (height, width, channels) of the images.
        num_classes: Number of classes; when given, the output layer is included (and
            counts towards the parameter limit).

    Returns:
        One ``LayerShape`` per layer the model will have after its input.

    Raises:
        LayerSpecError: A layer is invalid; the message names the layer and what to fix.
        ModelError: The input shape or class count is invalid.
    """
    shape = _check_input_shape(input_shape, CUSTOM, MIN_INPUT_SIDE)
    if num_classes is not None:
        _check_num_classes(num_classes)
    return _plan_layers(layers, shape, num_classes)


def _keras_layer(row: LayerShape) -> keras.layers.Layer:
    """The Keras layer for one planned row."""
    spec, name = row.spec, row.name
    kind = spec["type"]
    if kind == "conv":
        return keras.layers.Conv2D(
            spec["filters"],
            spec["kernel"],
            strides=spec["stride"],
            padding=spec["padding"],
            activation=spec["activation"],
            name=name,
        )
    if kind in ("maxpool", "avgpool"):
        pool = keras.layers.MaxPooling2D if kind == "maxpool" else keras.layers.AveragePooling2D
        return pool(spec["size"], strides=spec["stride"], padding=spec["padding"], name=name)
    if kind == "dense":
        # The output layer stays float32 under mixed precision (see _predictions).
        dtype = "float32" if name == PREDICTIONS else None
        return keras.layers.Dense(
            spec["units"], activation=spec["activation"], dtype=dtype, name=name
        )
    if kind == "dropout":
        return keras.layers.Dropout(spec["rate"], name=name)
    simple = {
        "batchnorm": _batch_norm,
        "flatten": keras.layers.Flatten,
        "globalavgpool": keras.layers.GlobalAveragePooling2D,
    }
    return simple[kind](name=name)


def _custom(
    input_shape: tuple[int, int, int], num_classes: int, layers: list[dict[str, Any]]
) -> keras.Model:
    """Builds a model from a layer list (see ``validate_layers`` for the format).

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: Number of output classes.
        layers: The layer dicts; a Flatten and the softmax output are added as needed.

    Returns:
        The untrained model; its layers match ``validate_layers`` one to one.

    Raises:
        LayerSpecError: The layer list is invalid.
    """
    rows = _plan_layers(layers, input_shape, num_classes)

    def body(x):
        for row in rows:
            x = _keras_layer(row)(x)
        return x

    return _model(input_shape, CUSTOM, body)
