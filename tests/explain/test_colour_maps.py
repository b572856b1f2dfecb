"""The array-to-colour steps the Inspect page draws with: a feature map in colour, and an
image as the RGB it sits beside its heatmaps in."""

import matplotlib
import numpy as np
import pytest

from cnn_core.explain import attribution, plots


def test_a_feature_map_is_stretched_from_its_lowest_to_its_highest_value():
    values = np.array([[-2.0, 0.0], [1.0, 2.0]], np.float32)
    rgb = plots.activation_rgb(values)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.float32
    cmap = matplotlib.colormaps[plots.ACTIVATION_CMAP]
    np.testing.assert_allclose(rgb[0, 0], cmap(0.0)[:3], atol=1e-6)  # lowest: dark purple
    np.testing.assert_allclose(rgb[1, 1], cmap(1.0)[:3], atol=1e-6)  # highest: yellow
    np.testing.assert_allclose(rgb[0, 1], cmap(0.5)[:3], atol=1e-6)
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0


def test_a_flat_feature_map_is_one_colour_its_lowest():
    rgb = plots.activation_rgb(np.full((3, 4), 7.5))
    cmap = matplotlib.colormaps[plots.ACTIVATION_CMAP]
    np.testing.assert_allclose(rgb.reshape(-1, 3), np.tile(cmap(0.0)[:3], (12, 1)), atol=1e-6)


@pytest.mark.parametrize("shape", [(5, 6), (5, 6, 1), (5, 6, 3)])
def test_an_image_as_rgb8_is_the_overlay_under_no_heat(shape):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    rgb = attribution.as_rgb8(image)
    assert rgb.shape == (5, 6, 3) and rgb.dtype == np.uint8
    grey = image if image.ndim == 3 else image[..., None]
    np.testing.assert_array_equal(rgb, np.round(np.broadcast_to(grey, (5, 6, 3)) * 255))
    heat = np.random.default_rng(1).random((5, 6)).astype(np.float32)
    np.testing.assert_array_equal(rgb, attribution.overlay(image, heat, alpha=0.0))
