"""Models as data: a layer table, parameter counts, FLOPs, and the layers inspection can tap."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras


@dataclass(frozen=True)
class LayerRow:
    """One row of a model summary table."""

    name: str
    type: str
    output_shape: tuple[int | None, ...]
    params: int


@dataclass(frozen=True)
class ModelSummary:
    """A model summary as data: one row per layer plus the parameter totals."""

    name: str
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int

    def to_records(self) -> list[dict[str, Any]]:
        """Returns one plain dict per layer, ready for a table (shape as text)."""
        return [
            {
                "name": row.name,
                "type": row.type,
                "output_shape": format_shape(row.output_shape),
                "params": row.params,
            }
            for row in self.rows
        ]


# --- Small helpers --------------------------------------------------------------------------
def format_shape(shape: Sequence[int | None]) -> str:
    """Formats a shape without batch dimension for learners: (28, 28, 32) -> "28 × 28 × 32"."""
    return " × ".join("?" if dim is None else str(dim) for dim in shape)


# --- Summaries and layer lookup -------------------------------------------------------------
def _count(weights: list) -> int:
    return sum(math.prod(w.shape) for w in weights)


def summarize(model: keras.Model) -> ModelSummary:
    """Describes a built model as data: its layers, their output shapes and parameters.

    Args:
        model: A built functional model (as from ``build_model`` or a loaded .keras file).

    Returns:
        One row per layer (the input layer first) and the parameter totals, which equal
        Keras' own ``model.count_params()`` and ``model.summary()``.
    """
    rows = [
        LayerRow(
            name=layer.name,
            type=type(layer).__name__,
            output_shape=tuple(layer.output.shape[1:]),
            params=layer.count_params(),
        )
        for layer in model.layers
    ]
    return ModelSummary(
        name=model.name,
        rows=rows,
        total_params=model.count_params(),
        trainable_params=_count(model.trainable_weights),
        non_trainable_params=_count(model.non_trainable_weights),
    )


def conv_layer_names(model: keras.Model) -> list[str]:
    """Names of the model's Conv2D layers, input to output (the last one suits Grad-CAM)."""
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def tappable_layer_names(model: keras.Model) -> list[str]:
    """Names of the conv and pooling layers whose outputs are feature maps, input to output."""
    kinds = (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    return [
        layer.name
        for layer in model.layers
        if isinstance(layer, kinds) and len(layer.output.shape) == 4
    ]


def training_flops(model: keras.Model) -> tuple[int, int]:
    """Floating-point operations per image of the convolutions and dense layers.

    A multiply-add counts as two operations. Training costs the forward pass, the gradient
    with respect to each layer's weights (as much again) and the gradient with respect to
    its input (as much again, except for the first weighted layer, whose input is the
    image). Biases, activations, pooling and the optimizer are left out: they are a few
    percent of the total for these models.

    Args:
        model: A built functional model.

    Returns:
        (forward FLOPs, training FLOPs) for one image.
    """
    forward = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense):
            kernel = layer.kernel.shape  # conv: (kh, kw, cin / groups, cout); dense: (in, out)
            macs = math.prod(layer.output.shape[1:]) * math.prod(kernel[:-1])
            forward.append(2 * macs)
    if not forward:
        return 0, 0
    return sum(forward), 3 * sum(forward) - forward[0]
