"""Figures for the convolution explained: numbered matrices, colour ranges, wrapped titles."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnn_core.explain.plots import (
    HIGHLIGHT,
    MATRIX_CMAPS,
    MIN_TITLE_WIDTH,
    _text_width,
    new_figure,
    wrap_to_width,
)


# --- The convolution explained --------------------------------------------------------------
def _cell_text(value: float) -> str:
    if not np.isfinite(value):
        return ""
    if float(value) == int(value):
        return str(int(value))
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text  # a tiny negative weight is not "minus zero"


def colour_range(values: np.ndarray, kind: str | None = None) -> tuple[float, float]:
    """The colour scale (vmin, vmax) ``matrix_figure`` draws these values with.

    Pass it as ``matrix_figure``'s ``value_range`` to draw a derived matrix (a pooled
    map) in the same colours as the matrix it comes from.

    Args:
        values: The numbers; non-finite ones are ignored.
        kind: As for ``matrix_figure``.

    Returns:
        (0, max) for an image (a non-negative matrix when kind is None); (-peak, peak),
        centred on 0, for weights and signed values.
    """
    a = np.asarray(values, dtype=np.float64)
    finite = a[np.isfinite(a)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if _kind_for(kind, low) == "image":
        return min(low, 0.0), max(high, 1e-9)
    peak = max(abs(low), abs(high), 1e-9)
    return -peak, peak


def _kind_for(kind: str | None, low: float) -> str:
    if kind is None:
        return "image" if low >= 0 else "signed"
    if kind not in MATRIX_CMAPS:
        raise ValueError(f"kind must be one of {tuple(MATRIX_CMAPS)} or None, not {kind!r}.")
    return kind


def matrix_figure(
    values: np.ndarray,
    title: str | None = None,
    highlight: tuple[int, int, int, int] | None = None,
    padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
    cmap: str | None = None,
    cell: float = 0.55,
    kind: str | None = None,
    value_range: tuple[float, float] | None = None,
) -> Figure:
    """A small matrix with its numbers written in the cells, as in the worked example of
    the project report *Image Classification Using Convolutional Neural Network CNN*.

    Args:
        values: (rows, cols) numbers; non-finite cells (pooling padding) stay blank.
        title: Optional title; wrapped, and the figure widened, so that it is never cut.
        highlight: (top, left, height, width) of a window to outline, e.g. a ConvStep's
            (top, left) and the kernel's size.
        padding: ((top, bottom), (left, right)) border cells that are padding: hatched.
        cmap: A colormap that overrides the kind's (drawn centred on 0).
        cell: Inches per cell.
        kind: What the numbers are, which fixes the colours on every page: "image" (grey,
            black = 0, white = the largest), "weights" (grey, mid-grey = 0, as Inspect's
            filters), "signed" (sums and outputs: blue positive, red negative, white 0);
            None picks "image" for a non-negative matrix and "signed" otherwise.
        value_range: (vmin, vmax) of the colour scale, e.g. ``colour_range(source)`` to
            share the scale of the matrix these values come from; None fits the values.

    Returns:
        The Figure.
    """
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"A matrix figure needs 2-D values, not shape {a.shape}.")
    vmin, vmax = value_range if value_range is not None else colour_range(a, kind)
    kind = _kind_for(kind, vmin)
    if cmap is not None and value_range is None:
        peak = max(abs(vmin), abs(vmax))
        vmin, vmax = -peak, peak
    cmap = cmap or MATRIX_CMAPS[kind]
    rows, cols = a.shape
    grid_w, grid_h = cols * cell, rows * cell
    lines = wrap_to_width(title, max(grid_w, MIN_TITLE_WIDTH)) if title else []
    text_w = max((_text_width(line, 10) for line in lines), default=0.0)
    title_in = 0.12 + 0.18 * len(lines) if lines else 0.0
    width, height = max(grid_w, text_w + 0.1) + 0.1, grid_h + 0.1 + title_in
    fig = new_figure(width, height, layout=None)
    left_in = (width - grid_w) / 2
    ax = fig.add_axes((left_in / width, 0.05 / height, grid_w / width, grid_h / height))
    ax.imshow(
        np.ma.masked_invalid(a),
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
        aspect="auto",
    )
    colormap = matplotlib.colormaps[cmap]
    span = vmax - vmin if vmax > vmin else 1.0
    for (r, c), value in np.ndenumerate(a):
        if not np.isfinite(value):
            continue
        red, green, blue, _ = colormap(float(np.clip((value - vmin) / span, 0, 1)))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        ax.text(
            c,
            r,
            _cell_text(value),
            ha="center",
            va="center",
            fontsize=10,
            color="white" if dark else "black",
        )
    (top, bottom), (left, right) = padding
    for r in range(rows):
        for c in range(cols):
            if r < top or r >= rows - bottom or c < left or c >= cols - right:
                ax.add_patch(
                    Rectangle(
                        (c - 0.5, r - 0.5),
                        1,
                        1,
                        fill=False,
                        hatch="///",
                        edgecolor="#999999",
                        linewidth=0,
                    )
                )
    if highlight is not None:
        t, lft, h, w = highlight
        ax.add_patch(
            Rectangle((lft - 0.5, t - 0.5), w, h, fill=False, edgecolor=HIGHLIGHT, linewidth=3)
        )
    ax.hlines(np.arange(rows + 1) - 0.5, -0.5, cols - 0.5, color="#bbbbbb", linewidth=0.8)
    ax.vlines(np.arange(cols + 1) - 0.5, -0.5, rows - 0.5, color="#bbbbbb", linewidth=0.8)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.axis("off")
    if lines:
        y = 1 - (0.06 + 0.09 * len(lines)) / height
        fig.text(0.5, y, "\n".join(lines), ha="center", va="center", fontsize=10)
    return fig
