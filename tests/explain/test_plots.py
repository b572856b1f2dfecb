"""Tests for cnn_core.explain.plots: each builder returns a Figure that renders to a sensible
PNG."""

from __future__ import annotations

import io
import sys

import matplotlib.text
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from cnn_core.explain import conv_plots, plots
from cnn_core.explain.conv_plots import matrix_figure
from cnn_core.explain.plots import (
    PNG_SIGNATURE,
    class_bars_figure,
    confusion_figure,
    feature_maps_figure,
    figure_png,
    filters_figure,
    history_figure,
    image_grid_figure,
)

RNG = np.random.default_rng(0)
NAMES = [str(i) for i in range(10)]
HISTORY = [
    {
        "kind": "epoch",
        "epoch": 1,
        "loss": 0.9,
        "val_loss": 0.7,
        "accuracy": 0.7,
        "val_accuracy": 0.8,
    },
    {"kind": "batch", "epoch": 2, "loss": 0.5},
    {"kind": "epoch", "epoch": 2, "loss": 0.4, "val_loss": None, "accuracy": 0.9},
]


def check_png(fig: Figure, min_side: int = 100, max_side: int = 2500) -> bytes:
    assert isinstance(fig, Figure)
    png = figure_png(fig)
    assert png.startswith(PNG_SIGNATURE)
    assert 1_000 < len(png) < 3_000_000
    with Image.open(io.BytesIO(png)) as image:
        assert min_side <= min(image.size) and max(image.size) <= max_side
    assert not fig.axes  # figure_png frees the figure
    return png


CASES = {
    "confusion counts": lambda: confusion_figure(RNG.integers(0, 50, (10, 10)), NAMES, False),
    "confusion normalised": lambda: confusion_figure(RNG.uniform(size=(3, 3)), list("abc"), True),
    "confusion 40 classes": lambda: confusion_figure(
        RNG.integers(0, 9, (40, 40)), [f"c{i}" for i in range(40)], False
    ),
    "history": lambda: history_figure(HISTORY, "loss"),
    "history empty": lambda: history_figure([], "accuracy"),
    "image grid": lambda: image_grid_figure(
        RNG.uniform(size=(10, 28, 28, 1)), [f"p {i}" for i in range(10)], cols=5
    ),
    "image grid rgb uint8": lambda: image_grid_figure(
        RNG.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8), None, cols=8, title="CIFAR"
    ),
    "image grid empty": lambda: image_grid_figure([], None),
    "filters mean": lambda: filters_figure(RNG.uniform(size=(32, 3, 3)), "mean"),
    "filters rgb": lambda: filters_figure(RNG.uniform(size=(16, 3, 3, 3)), "rgb"),
    "filters per channel": lambda: filters_figure(
        RNG.uniform(size=(6, 16, 5, 5)), "per_input_channel"
    ),
    "feature maps": lambda: feature_maps_figure(RNG.uniform(size=(14, 14, 64)), max_maps=16),
    "class bars": lambda: class_bars_figure(RNG.dirichlet(np.ones(10)), NAMES, true_index=3),
    "matrix with window": lambda: matrix_figure(
        RNG.integers(-9, 9, (8, 8)), "input", highlight=(1, 2, 3, 3), padding=((1, 1), (1, 1))
    ),
    "matrix non-negative": lambda: matrix_figure(np.arange(36).reshape(6, 6) / 7),
    "matrix with -inf": lambda: matrix_figure(np.array([[1.0, -np.inf], [2.0, 3.0]])),
    # Inspect's weights beside a feature map: a 3×3 filter under a long title.
    "matrix 3x3 long title": lambda: matrix_figure(
        RNG.normal(size=(3, 3)), "conv2 filter 7, averaged over its 32 inputs", cell=0.6
    ),
    "matrix 1x1 long title": lambda: matrix_figure(np.array([[0]]), "Pooled output"),
    # A grey first layer drawn one column per input channel: a single column of tiles.
    "filters of one channel, long title": lambda: filters_figure(
        RNG.uniform(size=(4, 1, 3, 3)), "per_input_channel", title="conv1: first 64 of 128 filters"
    ),
    "one feature map, long title": lambda: feature_maps_figure(
        RNG.uniform(size=(7, 7, 1)), cols=1, title="pool2: 1 maps of 7×7, the strongest kept"
    ),
    "heatmaps with a colour bar": lambda: plots.heatmaps_figure(
        [RNG.uniform(size=(28, 28, 3))] * 3,
        ["input", "saliency for 7 (0.0%)", "Grad-CAM for 7 (0.0%), conv3"],
        "jet",
        "evidence, 0 = none, 1 = the strongest in this image",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_figures_render_to_png(name):
    check_png(CASES[name](), min_side=80)


@pytest.mark.parametrize("name", list(CASES))
def test_no_text_is_cut_off_at_the_figure_edge(name):
    """Every title, label and number lies inside the canvas (a title once read "ilter 7,
    averaged over its 32": both ends fell outside a filter's narrow figure)."""
    fig = CASES[name]()
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    drawn = fig.get_tightbbox(renderer)  # in inches: everything drawn, text included
    tolerance = 0.5 / fig.dpi
    inside = drawn.x0 >= -tolerance and drawn.y0 >= -tolerance
    width, height = fig.get_size_inches()
    assert inside and drawn.x1 <= width + tolerance and drawn.y1 <= height + tolerance, (
        [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()],
        drawn.bounds,
        (width, height),
    )


def test_a_map_drawn_on_the_scale_of_the_map_it_comes_from():
    """A pooled 1×1 map of 0 (the Learn page with stride 2) is drawn in the colour of a 0
    of the convolution output beside it, not black."""
    output = np.array([[-5, 0], [0, -4]])
    conv_fig = matrix_figure(output, "Convolution output")
    pooled_fig = matrix_figure(
        np.array([[0]]), "Pooled", value_range=conv_plots.colour_range(output)
    )
    conv_zero = conv_fig.axes[0].images[0].to_rgba(0.0)
    assert pooled_fig.axes[0].images[0].to_rgba(0.0) == conv_zero
    assert min(conv_zero[:3]) > 0.9  # a diverging map: zero is white


def test_one_colour_map_per_quantity():
    """Weights are mid-grey at 0 on every page (Inspect's filters and its weights beside a
    map, the Learn page's filter), whatever their signs."""
    positive = matrix_figure(np.array([[1, 2], [3, 4]]), kind="weights")
    signed = matrix_figure(np.array([[1, 0], [-1, 2]]), kind="weights")
    for fig in (positive, signed):
        image = fig.axes[0].images[0]
        assert image.get_cmap().name == plots.WEIGHTS_CMAP
        assert image.norm.vmin == -image.norm.vmax  # 0 sits in the middle: mid-grey
    signed_sum = matrix_figure(np.array([[3, 0], [1, 2]]), kind="signed")
    assert signed_sum.axes[0].images[0].get_cmap().name == plots.SIGNED_CMAP


def test_heatmaps_have_a_labelled_colour_bar():
    fig = plots.heatmaps_figure([RNG.uniform(size=(8, 8, 3))], ["input"], "jet", "evidence")
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert "evidence" in labels  # the colour bar's axes, labelled


def test_no_pyplot_state():
    before = sys.modules.get("matplotlib.pyplot")
    figs = before.get_fignums() if before is not None else []
    check_png(confusion_figure(np.eye(3, dtype=int), list("abc"), False))
    after = sys.modules.get("matplotlib.pyplot")
    assert after is None or after.get_fignums() == figs
    assert plots.new_figure(2, 2).canvas.get_default_filetype() == "png"


def test_png_size_follows_the_figure():
    png = figure_png(plots.new_figure(4, 3))
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (400, 300)


def test_bad_arguments():
    with pytest.raises(ValueError, match="3 class names"):
        confusion_figure(np.eye(2), list("abc"), False)
    with pytest.raises(ValueError, match="do not fit mode"):
        filters_figure(RNG.uniform(size=(4, 3, 3)), "rgb")
    with pytest.raises(ValueError, match="titles"):
        image_grid_figure(RNG.uniform(size=(3, 4, 4)), ["a"])
    with pytest.raises(ValueError, match="between 0 and 9"):
        class_bars_figure(np.full(10, 0.1), NAMES, true_index=10)


def test_a_tiny_negative_number_is_written_as_zero_not_minus_zero():
    fig = matrix_figure(np.array([[-0.001, 0.5], [-0.25, 1.0]]))
    written = [t.get_text() for t in fig.axes[0].texts]
    assert written == ["0.00", "0.50", "-0.25", "1"]
