"""Pictures of a whole network at work on one image, drawn as pixel arrays (no matplotlib).

The overview shows every layer of a network at once and is redrawn for every new drawing,
so each layer is one RGB array built with numpy (a few milliseconds) instead of a
matplotlib figure (a hundred or more). Colours: every layer has one scale of its own,
symmetric around 0, so its maps compare with each other: blue where positive, red where
negative, white at 0 (plots.LEGENDS["signed"]), the brightest blue being the layer's
largest value.
"""

from __future__ import annotations

import matplotlib
import numpy as np

from cnn_core.explain.plots import SIGNED_CMAP

GAP_PX = 2  # white between tiles
FIELD_COLOUR = (255, 127, 14)  # the receptive field's frame: the Learn page's highlight

_COLOURS = (matplotlib.colormaps[SIGNED_CMAP](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def layer_scale(values: np.ndarray) -> float:
    """The layer's colour scale: its largest absolute value (1 for an all-zero layer)."""
    peak = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return peak if peak > 0 else 1.0


def signed_rgb(values: np.ndarray, scale: float) -> np.ndarray:
    """Values coloured on a scale of ±`scale`: (…) float → (…, 3) uint8, white at 0."""
    unit = np.clip(np.asarray(values, np.float64) / scale, -1.0, 1.0)
    return _COLOURS[np.round((unit + 1) * 127.5).astype(np.int64)]


def enlarge(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Each pixel as a factor×factor block, so a 7×7 map stays a grid of squares."""
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def maps_strip(
    maps: np.ndarray, first: int, count: int, tile_px: int, scale: float | None = None
) -> np.ndarray:
    """Channels first..first+count-1 of a layer's (h, w, channels) maps side by side.

    Args:
        maps: the layer's output for one image.
        first, count: which channels.
        tile_px: the side of each tile, rounded down to a whole multiple of the map side.
        scale: the colour scale; None for the whole layer's (`layer_scale(maps)`).

    Returns:
        (tile, n × tile + gaps, 3) uint8.
    """
    scale = layer_scale(maps) if scale is None else scale
    channels = range(first, min(first + count, maps.shape[-1]))
    factor = max(1, tile_px // max(maps.shape[0], maps.shape[1]))
    tiles = [enlarge(signed_rgb(maps[..., c], scale), factor) for c in channels]
    return _side_by_side(tiles)


def vector_strip(values: np.ndarray, cell_px: int, per_row: int = 64) -> np.ndarray:
    """A vector (dense units, pooled features) as rows of coloured cells on the layer's scale."""
    scale = layer_scale(values)
    padded = np.full(-(-len(values) // per_row) * per_row, np.nan)
    padded[: len(values)] = values
    grid = padded.reshape(-1, per_row)
    rgb = signed_rgb(np.nan_to_num(grid), scale)
    rgb[np.isnan(grid)] = 255
    return enlarge(rgb, cell_px)


def channel_pictures(image: np.ndarray, tile_px: int) -> np.ndarray:
    """A colour image's red, green and blue channels, each in its own colour, side by side;
    a grey image as itself."""
    pixels = np.clip(np.round(np.asarray(image, np.float64) * 255), 0, 255).astype(np.uint8)
    factor = max(1, tile_px // max(pixels.shape[0], pixels.shape[1]))
    if pixels.shape[-1] == 1:
        return enlarge(np.repeat(pixels, 3, axis=-1), factor)
    tiles = [enlarge(pixels, factor)]
    for channel in range(3):
        tinted = np.zeros_like(pixels)
        tinted[..., channel] = pixels[..., channel]
        tiles.append(enlarge(tinted, factor))
    return _side_by_side(tiles)


def field_picture(image: np.ndarray, field: tuple[int, int, int, int], side_px: int) -> np.ndarray:
    """The input image enlarged, the receptive field (top, left, bottom, right; inclusive)
    framed and everything outside it dimmed."""
    pixels = np.clip(np.round(np.asarray(image, np.float64) * 255), 0, 255).astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    top, left, bottom, right = field
    inside = np.zeros(pixels.shape[:2], bool)
    inside[top : bottom + 1, left : right + 1] = True
    dimmed = np.where(inside[..., None], pixels, (pixels * 0.35 + 90).astype(np.uint8))
    factor = max(1, side_px // max(pixels.shape[0], pixels.shape[1]))
    big = enlarge(dimmed, factor)
    _frame(big, top * factor, left * factor, (bottom + 1) * factor - 1, (right + 1) * factor - 1)
    return big


def _frame(rgb: np.ndarray, top: int, left: int, bottom: int, right: int, width: int = 2):
    width = max(1, min(width, (bottom - top + 1) // 2, (right - left + 1) // 2))
    for k in range(width):
        rgb[top + k, left : right + 1] = FIELD_COLOUR
        rgb[bottom - k, left : right + 1] = FIELD_COLOUR
        rgb[top : bottom + 1, left + k] = FIELD_COLOUR
        rgb[top : bottom + 1, right - k] = FIELD_COLOUR


def _side_by_side(tiles: list[np.ndarray]) -> np.ndarray:
    if not tiles:
        return np.full((1, 1, 3), 255, np.uint8)
    height = max(t.shape[0] for t in tiles)
    parts = []
    for i, tile in enumerate(tiles):
        if i:
            parts.append(np.full((height, GAP_PX, 3), 255, np.uint8))
        padded = np.full((height, tile.shape[1], 3), 255, np.uint8)
        padded[: tile.shape[0]] = tile
        parts.append(padded)
    return np.concatenate(parts, axis=1)
