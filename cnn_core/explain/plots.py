"""Matplotlib / seaborn figures from numpy arrays, for the pages and for PNG export.

Every function returns a ``matplotlib.figure.Figure`` built directly on an Agg canvas, never
through ``pyplot``: pyplot keeps a global list of open figures, which leaks memory and
mixes figures up when several Streamlit sessions draw at once. ``figure_png`` renders a
figure to PNG bytes (for ``st.image`` and ``st.download_button``) and then frees it.

Typical use::

    fig = confusion_figure(ev.confusion, ev.class_names, normalised=False)
    png = figure_png(fig)
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.textpath import TextPath

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 100
MAX_ANNOTATED_CLASSES = 20  # above this a confusion matrix's numbers become unreadable
MAX_GRID_IMAGES = 256
HIGHLIGHT = "#ff7f0e"  # the sliding window, in every figure of the Learn page
PREDICTED = "#1f77b4"
OTHER = "#c7c7c7"
TRUE_CLASS = "#2ca02c"
# One colour map per quantity, on every page, each named in a caption beside its figure.
IMAGE_CMAP = "gray"  # pixels: black = 0, white = bright
WEIGHTS_CMAP = "gray"  # filter weights: mid-grey = 0, bright = positive, dark = negative
SIGNED_CMAP = "RdBu"  # sums and outputs that can be negative: blue > 0, white 0, red < 0
ACTIVATION_CMAP = "viridis"  # feature maps: yellow = strongest, dark purple = weakest
HEAT_CMAP = "jet"  # saliency and Grad-CAM: red = strongest evidence, dark blue = none
MATRIX_CMAPS = {"image": IMAGE_CMAP, "weights": WEIGHTS_CMAP, "signed": SIGNED_CMAP}
# What the colours mean, for the caption beside each figure; the same words on every page.
LEGENDS = {
    "image": "the image in grey, black = 0 and white = its brightest pixel",
    "weights": "weights in grey, mid-grey = 0, bright = positive, dark = negative",
    "signed": "products and sums in blue where positive, red where negative, white at 0",
    "activation": "each map on its own scale, dark purple = its smallest value and yellow = "
    "its largest",
    "heat": "dark blue = no evidence, red = the strongest evidence in this image",
}
MIN_TITLE_WIDTH = 1.8  # inches: a narrower matrix still gets titles of a few words per line


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """An empty Figure on its own Agg canvas (no pyplot, no global state).

    Args:
        width: Width in inches.
        height: Height in inches.
        layout: "constrained" (labels never overlap), or None for figures that place
            their axes themselves (faster: no layout pass).

    Returns:
        The figure.
    """
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """Renders a figure to PNG bytes, then clears it so its memory is freed.

    Args:
        fig: A figure from this module (or any Figure).
        dpi: Resolution; 100 gives 100 pixels per inch of figure size.

    Returns:
        The PNG file's bytes.
    """
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    finally:
        fig.clear()
    return buffer.getvalue()


def _grid(count: int, cols: int) -> tuple[int, int]:
    if isinstance(cols, bool) or not isinstance(cols, int) or cols < 1:
        raise ValueError(f"cols must be a whole number >= 1, not {cols!r}.")
    cols = max(1, min(cols, count))
    return math.ceil(count / cols), cols


# --- Evaluation -----------------------------------------------------------------------------
def confusion_figure(
    matrix: np.ndarray, class_names: Sequence[str], normalised: bool, title: str | None = None
) -> Figure:
    """A confusion matrix as an annotated seaborn heatmap (rows true, columns predicted).

    Args:
        matrix: (K, K) counts, or row-normalised fractions.
        class_names: K names.
        normalised: Whether ``matrix`` holds fractions (shown with two decimals, 0 to 1).
        title: Optional title.

    Returns:
        The Figure. Numbers are written in the cells up to 20 classes.
    """
    m = np.asarray(matrix)
    k = len(class_names)
    if m.shape != (k, k):
        raise ValueError(f"The matrix is {m.shape} but there are {k} class names.")
    side = min(max(4.0, 0.55 * k + 2.0), 16.0)
    fig = new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    sns.heatmap(
        m,
        ax=ax,
        annot=k <= MAX_ANNOTATED_CLASSES,
        fmt=".2f" if normalised else "d",
        cmap="Blues",
        vmin=0,
        vmax=1 if normalised else None,
        xticklabels=list(class_names),
        yticklabels=list(class_names),
        square=True,
        cbar_kws={"label": "fraction of the true class" if normalised else "images"},
    )
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.tick_params(axis="x", labelrotation=45)
    ax.tick_params(axis="y", labelrotation=0)
    ax.set_title(
        title or ("Confusion matrix (row-normalised)" if normalised else "Confusion matrix")
    )
    return fig


def history_figure(
    epoch_records: Sequence[Mapping[str, Any]], metric: str, title: str | None = None
) -> Figure:
    """Training and validation curves of one metric, per epoch.

    Args:
        epoch_records: One mapping per epoch with "epoch", ``metric`` and ``"val_" +
            metric`` (missing or None values are skipped); records whose "kind" is not
            "epoch" (batch windows) are ignored.
        metric: "loss", "accuracy", "mse", ...
        title: Optional title.

    Returns:
        The Figure (with a note when there is no epoch yet).
    """
    epochs = [r for r in epoch_records if r.get("kind", "epoch") == "epoch"]
    fig = new_figure(6, 3.6)
    ax = fig.add_subplot()
    plotted = False
    for key, label, style in ((metric, "training", "o-"), (f"val_{metric}", "validation", "s--")):
        points = [(r["epoch"], r[key]) for r in epochs if r.get(key) is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, style, label=label)
            plotted = True
    if plotted:
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    else:
        ax.text(0.5, 0.5, "No finished epoch yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.set_title(title or f"{metric} per epoch")
    return fig


def class_bars_figure(
    probs: np.ndarray,
    class_names: Sequence[str],
    true_index: int | None = None,
    title: str | None = None,
) -> Figure:
    """The probability of every class as horizontal bars; the predicted class in colour.

    Args:
        probs: (K,) probabilities.
        class_names: K names.
        true_index: The right answer, if known: its label is marked "(true)" in green.
        title: Optional title.

    Returns:
        The Figure.
    """
    p = np.asarray(probs, dtype=np.float64).ravel()
    k = len(class_names)
    if p.size != k:
        raise ValueError(f"{p.size} probabilities were given for {k} class names.")
    predicted = int(p.argmax())
    fig = new_figure(5.5, max(2.0, 0.32 * k + 0.9))
    ax = fig.add_subplot()
    if true_index is not None and not 0 <= true_index < k:
        raise ValueError(f"true_index must be between 0 and {k - 1}, not {true_index}.")
    labels = [str(n) + (" (true)" if i == true_index else "") for i, n in enumerate(class_names)]
    ax.barh(range(k), p, color=[PREDICTED if i == predicted else OTHER for i in range(k)])
    ax.set_yticks(range(k), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    for i, value in enumerate(p):
        ax.text(min(value + 0.01, 0.88), i, f"{value:.1%}", va="center", fontsize=8)
    if true_index is not None:
        ax.get_yticklabels()[true_index].set_color(TRUE_CLASS)
        ax.get_yticklabels()[true_index].set_fontweight("bold")
    ax.set_title(title or f"Prediction: {class_names[predicted]} ({p[predicted]:.1%})")
    return fig


# --- Images ---------------------------------------------------------------------------------
TILE_GAP = 0.12  # space between tiles, in tile sides
TITLE_BAND = 0.3  # room above a tile for its title, in tile sides
SUPTITLE_BAND = 0.45
COLORBAR_BAND_IN = 0.95  # inches below the tiles for a colour bar, its ticks and label


def _tiles_figure(
    tiles: Sequence[np.ndarray],
    cols: int,
    titles: Sequence[str] | None = None,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
    cell: float = 1.0,
    colorbar: tuple[str, str] | None = None,
    **imshow: Any,
) -> Figure:
    """Many small images on ONE axes, each placed with ``extent``.

    A subplot per image costs tens of milliseconds (ticks, layout); one axes with N image
    artists draws a 64-filter grid in a fraction of that. ``colorbar`` (a colormap and
    its label) adds a horizontal colour bar from 0 to 1 below the tiles.
    """
    rows, cols = _grid(len(tiles), cols)
    band = TITLE_BAND if titles is not None else TILE_GAP
    left = 0.9 if row_labels is not None else TILE_GAP
    width = left + cols * (1 + TILE_GAP)
    # A title wider than the tiles wraps; a word wider still widens the figure around them.
    lines = wrap_to_width(title, width * cell - 0.1) if title else []
    needed = (max((_text_width(line, 10) for line in lines), default=0.0) + 0.2) / cell
    if needed > width:
        left, width = left + (needed - width) / 2, needed
    top = SUPTITLE_BAND + (len(lines) - 1) * 0.18 / cell if lines else 0.0
    tiles_height = top + rows * (1 + band)
    bar_band = COLORBAR_BAND_IN / cell if colorbar else 0.0
    height = tiles_height + bar_band
    fig = new_figure(width * cell, height * cell, layout=None)
    ax = fig.add_axes((0, bar_band / height, 1, tiles_height / height))
    if colorbar:
        _add_colorbar(fig, *colorbar)
    height = tiles_height
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        x0 = left + c * (1 + TILE_GAP)
        y0 = top + r * (1 + band) + band
        a = np.asarray(tile)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        kwargs = dict(imshow)
        if a.ndim == 2:
            kwargs.setdefault("cmap", "gray")
        ax.imshow(a, extent=(x0, x0 + 1, y0 + 1, y0), interpolation="nearest", **kwargs)
        if titles is not None and titles[i]:
            ax.text(x0 + 0.5, y0 - 0.04, titles[i], ha="center", va="bottom", fontsize=8)
    for r, label in enumerate(row_labels or []):
        y = top + r * (1 + band) + band + 0.5
        ax.text(left - 0.06, y, label, ha="right", va="center", fontsize=8)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_aspect("auto")
    ax.axis("off")
    if lines:
        ax.text(width / 2, top * 0.55, "\n".join(lines), ha="center", va="center", fontsize=10)
    return fig


def _add_colorbar(fig: Figure, cmap: str, label: str) -> None:
    """A horizontal 0-to-1 colour bar along the bottom COLORBAR_BAND_IN inches."""
    width, height = fig.get_size_inches()
    bar_w = min(0.7 * width, 4.0)
    cax = fig.add_axes(((width - bar_w) / 2 / width, 0.5 / height, bar_w / width, 0.14 / height))
    mappable = ScalarMappable(norm=Normalize(0, 1), cmap=cmap)
    bar = fig.colorbar(mappable, cax=cax, orientation="horizontal")
    bar.set_ticks([0, 0.5, 1])
    bar.ax.tick_params(labelsize=8)
    lines = wrap_to_width(label, width - 0.2, fontsize=8)
    bar.set_label("\n".join(lines), fontsize=8)


def heatmaps_figure(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    cmap: str,
    label: str,
    cell: float = 2.2,
) -> Figure:
    """Images with heatmaps laid over them (``inspection.overlay``), in one row, with the
    heatmaps' colour scale below them, so that no colour is left unexplained.

    Args:
        images: N (H, W, 3) uint8 images, e.g. an input and its saliency and Grad-CAM.
        titles: N titles.
        cmap: The colormap the overlays were drawn with.
        label: What the colour bar's 0 to 1 means.
        cell: Inches per image.

    Returns:
        The Figure.
    """
    tiles = [np.asarray(image) for image in images]
    if len(titles) != len(tiles):
        raise ValueError(f"{len(titles)} titles were given for {len(tiles)} images.")
    if not tiles:
        raise ValueError("heatmaps_figure needs at least one image.")
    lines = [wrap_to_width(t, cell * 0.98, fontsize=8) for t in titles]
    tile_titles = ["\n".join(t) for t in lines]
    # The title band above each tile is 0.3 of its side: three lines of 8 points at 2.2 in.
    return _tiles_figure(
        tiles, len(tiles), tile_titles, cell=cell, colorbar=(cmap, label),
        **_display_range(tiles[0]),
    )  # fmt: skip


def _display_range(image: np.ndarray) -> dict[str, float]:
    """vmin/vmax for a float image in [0, 1]; uint8 images need none."""
    return {"vmin": 0, "vmax": 1} if np.issubdtype(image.dtype, np.floating) else {}


def image_grid_figure(
    images: np.ndarray | Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    cols: int = 8,
    title: str | None = None,
    cell: float = 1.3,
) -> Figure:
    """A grid of small images with optional titles (e.g. the mistakes of a confusion cell).

    Args:
        images: N images (H, W), (H, W, 1) or (H, W, 3): floats in [0, 1] or uint8, all of
            the same type.
        titles: N short titles, or None.
        cols: Images per row.
        title: Optional title of the whole grid.
        cell: Inches per image.

    Returns:
        The Figure (a note when there is no image).
    """
    images = [np.asarray(image) for image in list(images)[:MAX_GRID_IMAGES]]
    if titles is not None and len(titles) < len(images):
        raise ValueError(f"{len(titles)} titles were given for {len(images)} images.")
    if not images:
        fig = new_figure(4, 1)
        fig.text(0.5, 0.5, "No images", ha="center", va="center")
        return fig
    return _tiles_figure(images, cols, titles, title, cell=cell, **_display_range(images[0]))


def filters_figure(
    images: np.ndarray,
    mode: str = "mean",
    max_filters: int = 64,
    cols: int = 8,
    max_channels: int = 8,
    title: str | None = None,
) -> Figure:
    """The filters of a conv layer, from ``inspection.filter_images``.

    Args:
        images: As ``filter_images`` returns for ``mode``, values in [0, 1] (0.5 = zero).
        mode: "mean" (filters, kh, kw) and "rgb" (filters, kh, kw, 3): one tile per
            filter, ``cols`` per row; "per_input_channel" (filters, in, kh, kw): one row per
            filter and one column per input channel (at most ``max_channels``).
        max_filters: Filters shown at most.
        cols: Tiles per row for "mean" and "rgb".
        max_channels: Input channels shown at most for "per_input_channel".
        title: Optional title.

    Returns:
        The Figure.
    """
    a = np.asarray(images)
    expected = {"mean": 3, "rgb": 4, "per_input_channel": 4}
    if mode not in expected:
        raise ValueError(f"mode must be one of {tuple(expected)}, not {mode!r}.")
    if a.ndim != expected[mode] or (mode == "rgb" and a.shape[-1] != 3):
        raise ValueError(f"Filter images of shape {a.shape} do not fit mode {mode!r}.")
    a = a[:max_filters]
    title = title or "Filters (mid-grey = 0, bright = positive, dark = negative)"
    if mode == "per_input_channel":
        a = a[:, :max_channels]
        n, channels = a.shape[:2]
        tiles = [a[f, c] for f in range(n) for c in range(channels)]
        titles = [f"in {c}" if f == 0 else "" for f in range(n) for c in range(channels)]
        rows = [f"filter {f}" for f in range(n)]
        return _tiles_figure(tiles, channels, titles, title, rows, cell=0.8, vmin=0, vmax=1)
    titles = [str(f) for f in range(len(a))]
    return _tiles_figure(list(a), cols, titles, title, cell=0.8, vmin=0, vmax=1)


def feature_maps_figure(
    maps: np.ndarray,
    max_maps: int = 32,
    cols: int = 8,
    title: str | None = None,
    cmap: str = ACTIVATION_CMAP,
) -> Figure:
    """The channels of one layer's feature maps, each on its own colour scale.

    Args:
        maps: (h, w, channels) activations of one layer for one image.
        max_maps: Channels shown at most (the first ones).
        cols: Maps per row.
        title: Optional title.
        cmap: A matplotlib colormap name.

    Returns:
        The Figure.
    """
    a = np.asarray(maps, dtype=np.float32)
    if a.ndim != 3:
        raise ValueError(f"Feature maps must be (h, w, channels), not shape {a.shape}.")
    count = min(a.shape[2], max_maps)
    shown = f"{count} of {a.shape[2]} channels" if count < a.shape[2] else f"{count} channels"
    tiles = [a[..., c] for c in range(count)]
    titles = [str(c) for c in range(count)]
    return _tiles_figure(tiles, cols, titles, title or f"Feature maps ({shown})", cmap=cmap)


def activation_rgb(values: np.ndarray, cmap: str = ACTIVATION_CMAP) -> np.ndarray:
    """One feature map in colour: (h, w) values stretched from their lowest to their highest,
    then coloured; a flat map is the colour of its lowest value.

    Returns:
        (h, w, 3) float32 RGB in [0, 1].
    """
    a = np.asarray(values, dtype=np.float32)
    low, high = float(a.min()), float(a.max())
    unit = (a - low) / (high - low) if high > low else np.zeros_like(a)
    return matplotlib.colormaps[cmap](unit)[..., :3].astype(np.float32)


def _text_width(text: str, fontsize: float) -> float:
    """The width of one line of text in inches, from the font's own glyph metrics."""
    return TextPath((0, 0), text, size=fontsize).get_extents().width / 72.0


def wrap_to_width(text: str, width: float, fontsize: float = 10) -> list[str]:
    """Splits text into lines at spaces so that each fits `width` inches when it can.

    A single word wider than `width` stays whole on its own line; the caller widens the
    figure to it rather than cutting the word.
    """
    lines: list[str] = []
    for word in text.split():
        if lines and _text_width(f"{lines[-1]} {word}", fontsize) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines
