"""The whole-network pictures: one signed scale per layer, frames where the unit is."""

from __future__ import annotations

import numpy as np

from cnn_core.explain import network_pictures as pictures


def test_a_layer_is_coloured_on_one_scale_white_at_zero():
    rgb = pictures.signed_rgb(np.array([-2.0, 0.0, 2.0, 1.0]), scale=2.0)
    negative, zero, positive, half = (tuple(int(v) for v in c) for c in rgb)
    assert min(zero) > 240  # white
    assert positive[2] > positive[0] + 60 and negative[0] > negative[2] + 60  # blue / red
    assert sum(half) > sum(positive)  # half the scale is paler than the layer's largest
    assert pictures.layer_scale(np.array([[0.5, -3.0]])) == 3.0
    assert pictures.layer_scale(np.zeros((2, 2))) == 1.0


def test_maps_are_drawn_side_by_side_on_the_layers_scale():
    maps = np.zeros((4, 4, 10))
    maps[..., 9] = 5.0  # one strong map decides the scale of all
    maps[..., 0] = 1.0
    strip = pictures.maps_strip(maps, 0, 3, tile_px=16)
    assert strip.shape == (16, 3 * 16 + 2 * pictures.GAP_PX, 3)
    alone = pictures.maps_strip(maps[..., :1], 0, 1, tile_px=16)
    assert int(strip[0, 0].sum()) > int(alone[0, 0].sum())  # paler beside the strong map


def test_the_receptive_field_is_framed_and_the_rest_dimmed():
    image = np.ones((8, 8, 1), np.float32)
    picture = pictures.field_picture(image, (2, 3, 4, 6), side_px=80)  # 10 px per pixel
    assert picture.shape == (80, 80, 3)
    assert tuple(picture[20, 45]) == pictures.FIELD_COLOUR  # the frame's top edge
    assert tuple(picture[35, 45]) == (255, 255, 255)  # inside: the pixel as it is
    assert picture[5, 5].max() < 200  # outside: dimmed


def test_a_colour_image_shows_its_three_channels():
    image = np.zeros((2, 2, 3), np.float32)
    image[..., 0] = 1.0  # pure red
    strip = pictures.channel_pictures(image, tile_px=4)
    tiles = [strip[:, i * (4 + pictures.GAP_PX) : i * (4 + pictures.GAP_PX) + 4] for i in range(4)]
    assert [tuple(int(v) for v in t[0, 0]) for t in tiles] == [
        (255, 0, 0), (255, 0, 0), (0, 0, 0), (0, 0, 0)
    ]  # fmt: skip
