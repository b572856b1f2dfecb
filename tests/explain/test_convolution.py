"""Tests for cnn_core.explain.convolution: the report's worked example, Keras as the reference."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from cnn_core.explain.convolution import (
    FILTERS,
    REPORT_IMAGE,
    convolve,
    max_pool,
    out_of_range_cells,
    output_size,
    padding_for,
    parse_grid,
    same_padding,
    size_formula,
    step_expression,
)

REPORT_OUTPUT = [[-5, -4, 0, 8], [-10, -2, 2, 3], [0, -2, -4, -7], [-3, -2, -3, -16]]


def keras_conv(image: np.ndarray, kernel: np.ndarray, padding: str, stride: int) -> np.ndarray:
    """The reference: keras.ops.conv on channels-last 4-D tensors, one filter."""
    x = image if image.ndim == 3 else image[..., None]
    k = kernel if kernel.ndim == 3 else kernel[..., None]
    out = keras.ops.conv(
        x[None].astype("float32"),
        k[..., None].astype("float32"),
        stride,
        padding,
        data_format="channels_last",
    )
    return keras.ops.convert_to_numpy(out)[0, ..., 0]


def keras_max_pool(image: np.ndarray, size: int, stride: int, padding: str) -> np.ndarray:
    x = image[None, ..., None].astype("float32")
    out = keras.ops.max_pool(x, size, stride, padding, data_format="channels_last")
    return keras.ops.convert_to_numpy(out)[0, ..., 0]


# ---------------------------------------------------------------- the report's example


def test_report_example_gives_figure_13_exactly():
    result = convolve(REPORT_IMAGE, FILTERS["vertical"])
    assert result.output.dtype == np.int64
    assert result.output.tolist() == REPORT_OUTPUT


def test_report_steps_match_figures_11_and_12():
    result = convolve(REPORT_IMAGE, FILTERS["vertical"])
    assert len(result.steps) == 16
    first, second = result.steps[0], result.steps[1]
    assert first.window.tolist() == [[3, 0, 1], [1, 5, 8], [2, 7, 2]]
    assert first.products.tolist() == [[3, 0, -1], [1, 0, -8], [2, 0, -2]]
    assert first.total == -5
    assert (second.top, second.left, second.row, second.col) == (0, 1, 0, 1)
    assert second.total == -4
    assert step_expression(first, FILTERS["vertical"]).endswith("= -5")
    assert step_expression(first, FILTERS["vertical"]).startswith("3×1 + 0×0 + 1×(-1)")
    assert [s.total for s in result.steps] == [v for row in REPORT_OUTPUT for v in row]


def test_filters_are_the_report_ones():
    assert FILTERS["vertical"].tolist() == [[1, 0, -1]] * 3
    assert FILTERS["horizontal"].tolist() == [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]
    assert FILTERS["sobel_vertical"].tolist() == [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
    assert FILTERS["scharr_vertical"].tolist() == [[3, 0, -3], [10, 0, -10], [3, 0, -3]]
    for name in ("sobel", "scharr"):
        assert (FILTERS[f"{name}_horizontal"] == FILTERS[f"{name}_vertical"].T).all()


def test_report_max_pool():
    pooled = max_pool(np.array(REPORT_OUTPUT))
    assert pooled.output.tolist() == [[-2, 8], [0, -3]]
    assert pooled.steps[1].argmax == (0, 1)
    assert pooled.steps[1].window.tolist() == [[0, 8], [2, 3]]


# ------------------------------------------------------------------- Keras as the reference

SIZES = (5, 6, 7)
KERNELS = ((1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (2, 3), (3, 1))
STRIDES = (1, 2, 3)
PADDINGS = ("valid", "same")


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("stride", STRIDES)
def test_convolve_equals_keras_for_every_combination(padding, stride):
    rng = np.random.default_rng(stride)
    checked = 0
    for n, (kh, kw) in itertools.product(SIZES, KERNELS):
        if padding == "valid" and max(kh, kw) > n:
            continue
        image = rng.integers(-9, 10, size=(n, n + 1))
        kernel = rng.normal(size=(kh, kw))
        result = convolve(image, kernel, padding, stride)
        expected = keras_conv(image, kernel, padding, stride)
        np.testing.assert_allclose(result.output, expected, rtol=1e-5, atol=1e-4)
        assert result.output.shape == (
            output_size(n, kh, result.padding[0], stride),
            output_size(n + 1, kw, result.padding[1], stride),
        )
        assert len(result.steps) == result.output.size
        checked += 1
    assert checked >= 15


@pytest.mark.parametrize("padding", PADDINGS)
def test_convolve_over_volume_equals_keras(padding):
    rng = np.random.default_rng(3)
    image = rng.uniform(size=(7, 6, 3))
    kernel = rng.normal(size=(3, 3, 3))
    for stride in STRIDES:
        result = convolve(image, kernel, padding, stride)
        expected = keras_conv(image, kernel, padding, stride)
        np.testing.assert_allclose(result.output, expected, rtol=1e-5, atol=1e-5)
        assert result.steps[0].products.shape == (3, 3, 3)


@pytest.mark.parametrize("padding", PADDINGS)
def test_max_pool_equals_keras(padding):
    rng = np.random.default_rng(4)
    for n, size, stride in itertools.product((4, 5, 7), (2, 3), (1, 2, 3)):
        image = rng.integers(-20, 20, size=(n, n + 1))
        result = max_pool(image, size, stride, padding)
        expected = keras_max_pool(image, size, stride, padding)
        np.testing.assert_array_equal(result.output, expected)
        assert result.output.dtype == image.dtype
        assert result.output.shape == (
            output_size(n, size, result.padding[0], stride),
            output_size(n + 1, size, result.padding[1], stride),
        )


# ---------------------------------------------------------------------- sizes and padding


def test_output_size_formula():
    assert output_size(6, 3, 0, 1) == 4
    assert output_size(6, 3, 1, 1) == 6
    assert output_size(6, 3, 0, 2) == 2
    assert output_size(7, 3, 1, 2) == 4
    assert output_size(6, 4, (1, 2), 1) == 6
    with pytest.raises(ValueError, match="does not fit"):
        output_size(2, 3, 0, 1)
    with pytest.raises(ValueError, match="stride"):
        output_size(6, 3, 0, 0)


def test_padding_for_and_keras_same_padding():
    assert padding_for("valid", 3) == 0
    assert padding_for("same", 3) == 1
    assert padding_for("same", 5) == 2
    with pytest.raises(ValueError, match="even"):
        padding_for("same", 4)
    with pytest.raises(ValueError, match="valid"):
        padding_for("full", 3)
    assert same_padding(6, 3, 1) == (1, 1)
    assert same_padding(6, 4, 1) == (1, 2)
    assert same_padding(6, 3, 2) == (0, 1)  # TF pads the odd zero after
    assert same_padding(7, 3, 2) == (1, 1)


def test_size_formula_substitutes_the_numbers():
    assert size_formula(6, 3, "valid", 1).endswith(r"{6 + 2 \cdot 0 - 3}{1} \right\rfloor + 1 = 4")
    assert size_formula(6, 3, "same", 1).endswith("= 6")
    assert "(0 + 1)" in size_formula(6, 3, "same", 2)
    assert size_formula(6, 3, "valid", 2).endswith("= 2")


def test_parse_grid_messages_name_the_cell():
    assert parse_grid([[1, 2], ["3", 4.0]]).dtype == np.int64
    assert parse_grid([[0.5, 1]]).dtype == np.float64
    with pytest.raises(ValueError, match="row 2, column 1 is empty"):
        parse_grid([[1, 2], [None, 4]], "The grid")
    with pytest.raises(ValueError, match="row 1, column 2 is empty or not a number"):
        parse_grid([[1, float("nan")]])
    with pytest.raises(ValueError, match="'abc', which is not a number"):
        parse_grid([[1, "abc"]])
    with pytest.raises(ValueError, match="between"):
        parse_grid([[1, 1e300]])
    with pytest.raises(ValueError, match="3 rows and 3 columns"):
        parse_grid([[1, 2]], shape=(3, 3))


def test_convolve_rejects_bad_input_with_a_message():
    with pytest.raises(ValueError, match="does not match"):
        convolve(REPORT_IMAGE, np.ones((3, 3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        convolve(np.full((4, 4), np.nan), FILTERS["vertical"])
    with pytest.raises(ValueError, match="does not fit"):
        convolve(np.ones((2, 2)), FILTERS["vertical"])
    with pytest.raises(ValueError, match="Padding"):
        convolve(REPORT_IMAGE, FILTERS["vertical"], padding="full")


# ------------------------------------------------------------------------ pixel range
def test_out_of_range_cells_names_each_cell_and_the_range():
    grid = np.array([[0, 300], [255, -4]])
    assert out_of_range_cells(grid, "The input image", 0, 255) == [
        "The input image, row 1, column 2 is 300, outside the range of a grey pixel, "
        "0 (black) to 255 (white).",
        "The input image, row 2, column 2 is -4.",
    ]


def test_out_of_range_cells_counts_the_rest():
    grid = np.full((3, 3), 999.5)
    found = out_of_range_cells(grid, "The image", 0, 255, limit=2)
    assert len(found) == 3
    assert "is 999.5" in found[0]
    assert found[-1] == "7 more cells are outside it too."
    assert out_of_range_cells(np.array([[0, 255]]), "x", 0, 255) == []
