"""The convolution explained: a 2-D convolution and a max-pool that keep every step.

This is the arithmetic of the project report *Image Classification Using Convolutional
Neural Network CNN* (figures 9 to 13 and 21; see ``cnn_core.models.sources``): a small filter
slides over the image; at each position the window is multiplied element-wise by the
filter and the products are summed into one output number. As in every deep-learning
library this is a cross-correlation: the kernel is *not* flipped, so
``convolve(REPORT_IMAGE, vertical)`` gives the report's figure 13 and the same numbers as
``keras.ops.conv``.

Padding follows Keras exactly. "valid" adds nothing. "same" makes the output
``ceil(n / s)`` long and splits the padding it needs as TensorFlow does: ``total //
2`` before and the rest after, so an even filter or a stride above 1 can pad one pixel
more at the bottom/right than at the top/left (see ``same_padding``).

Typical use::

    result = convolve(REPORT_IMAGE, FILTERS["vertical"])
    result.output[0]            # array([-5, -4,  0,  8])
    step = result.steps[1]      # the second window position (figure 12)
    step.window, step.products, step.total
    pooled = max_pool(result.output)

It is one module of ~570 lines because it is one idea, the Learn page's arithmetic: the
sizes and padding, the checks of the grids a learner types, the convolution and the pool,
and the expressions that spell a step out all describe the same sliding window.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The report's figure 9: the 6×6 grayscale example image.
REPORT_IMAGE = np.array(
    [
        [3, 0, 1, 2, 7, 4],
        [1, 5, 8, 9, 3, 1],
        [2, 7, 2, 5, 1, 3],
        [0, 1, 3, 1, 7, 8],
        [4, 2, 1, 6, 2, 8],
        [2, 4, 5, 2, 3, 9],
    ],
    dtype=np.int64,
)
REPORT_IMAGE.setflags(write=False)

_VERTICAL = np.array([[1, 0, -1]] * 3, dtype=np.int64)
_SOBEL = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.int64)
_SCHARR = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]], dtype=np.int64)

# The report's figure 14. A "vertical" filter finds vertical edges: it compares the column
# on the left of the window with the column on the right. Its transpose finds horizontal
# edges by comparing the row above with the row below.
FILTERS: dict[str, np.ndarray] = {
    "vertical": _VERTICAL,
    "horizontal": _VERTICAL.T.copy(),
    "sobel_vertical": _SOBEL,
    "sobel_horizontal": _SOBEL.T.copy(),
    "scharr_vertical": _SCHARR,
    "scharr_horizontal": _SCHARR.T.copy(),
}
for _kernel in FILTERS.values():
    _kernel.setflags(write=False)

FILTER_TITLES: dict[str, str] = {
    "vertical": "Vertical edges",
    "horizontal": "Horizontal edges",
    "sobel_vertical": "Sobel, vertical edges",
    "sobel_horizontal": "Sobel, horizontal edges",
    "scharr_vertical": "Scharr, vertical edges",
    "scharr_horizontal": "Scharr, horizontal edges",
}

FILTER_NOTES: dict[str, str] = {
    "vertical": (
        "It subtracts the right column of the window from the left one: the output is "
        "large and positive where bright meets dark from left to right, large and negative "
        "where dark meets bright, and near zero on flat areas."
    ),
    "horizontal": (
        "It subtracts the bottom row of the window from the top one: it answers where "
        "bright meets dark from top to bottom, and ignores changes from left to right."
    ),
    "sobel_vertical": (
        "Like the vertical filter, but the middle row counts twice, so the edge in the "
        "centre of the window matters more than its corners."
    ),
    "sobel_horizontal": (
        "The horizontal filter with the middle column counted twice: horizontal edges "
        "through the centre of the window stand out more."
    ),
    "scharr_vertical": (
        "An even stronger weight on the middle row (10 against 3): a vertical-edge "
        "detector that reacts to edges at every angle more evenly than Sobel."
    ),
    "scharr_horizontal": (
        "Scharr for horizontal edges: the middle column weighs 10, the corners 3."
    ),
}

PADDING_MODES = ("valid", "same")
MAX_ABS_VALUE = 1e6  # larger numbers are typos and would make the products unreadable
PIXEL_RANGE = (0, 255)  # a grey pixel of an 8-bit image: 0 black, 255 white


# --- Results --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ConvStep:
    """One position of the sliding window.

    Attributes:
        row: Row of the output value this step computes.
        col: Column of the output value this step computes.
        top: Row of the window's top-left cell in the padded input.
        left: Column of the window's top-left cell in the padded input.
        window: The input values under the window, shape of the kernel.
        products: ``window * kernel``, element by element.
        total: The sum of the products: the output value at (row, col).
    """

    row: int
    col: int
    top: int
    left: int
    window: np.ndarray
    products: np.ndarray
    total: float | int


@dataclass(frozen=True, eq=False)
class ConvResult:
    """A convolution with every step kept, so a page can animate the window.

    Attributes:
        image: The input as given, (H, W) or (H, W, C).
        kernel: The filter, (kh, kw) or (kh, kw, C).
        padded: The input with its zero padding, what the window actually slides over.
        padding: ((top, bottom), (left, right)) zeros added on each side.
        stride: The window's step in both directions.
        output: The output map, (out_h, out_w).
        steps: One ConvStep per output value, row by row.
    """

    image: np.ndarray
    kernel: np.ndarray
    padded: np.ndarray
    padding: tuple[tuple[int, int], tuple[int, int]]
    stride: int
    output: np.ndarray
    steps: list[ConvStep]


@dataclass(frozen=True, eq=False)
class PoolStep:
    """One position of the pooling window.

    Attributes:
        row: Row of the output value this step computes.
        col: Column of the output value this step computes.
        top: Row of the window's top-left cell in the padded input.
        left: Column of the window's top-left cell in the padded input.
        window: The values under the window (padding shows as -inf).
        argmax: (row, col) of the largest value inside the window.
        value: The largest value: the output at (row, col).
    """

    row: int
    col: int
    top: int
    left: int
    window: np.ndarray
    argmax: tuple[int, int]
    value: float | int


@dataclass(frozen=True, eq=False)
class PoolResult:
    """A max-pool with every step kept.

    Attributes:
        image: The input as given, (H, W).
        padded: The input with its padding (-inf, which never wins a max).
        padding: ((top, bottom), (left, right)) cells added on each side.
        size: The window's side.
        stride: The window's step in both directions.
        output: The pooled map.
        steps: One PoolStep per output value, row by row.
    """

    image: np.ndarray
    padded: np.ndarray
    padding: tuple[tuple[int, int], tuple[int, int]]
    size: int
    stride: int
    output: np.ndarray
    steps: list[PoolStep]


# --- Sizes and padding ----------------------------------------------------------------------
def _check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number, not {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}.")
    return int(value)


def _pair(p: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(p, tuple | list):
        if len(p) != 2:
            raise ValueError(f"Padding must be one number or (before, after), not {p!r}.")
        return (_check_positive_int("padding", p[0], 0), _check_positive_int("padding", p[1], 0))
    value = _check_positive_int("padding", p, 0)
    return value, value


def output_size(n: int, f: int, p: int | tuple[int, int], s: int) -> int:
    """Length of a convolution's or pool's output along one axis.

    The report's formula: ``floor((n + 2p - f) / s) + 1``. With Keras' "same" padding the two
    sides can differ, so ``p`` may also be ``(before, after)`` and ``2p`` becomes their sum.

    Args:
        n: Input length (pixels).
        f: Filter (window) length.
        p: Zero padding on each side, or (before, after).
        s: Stride.

    Returns:
        The output length, at least 1.

    Raises:
        ValueError: If an argument is not a whole number in range, or if the filter does
            not fit into the padded input (the output would be empty).
    """
    n = _check_positive_int("The input size n", n)
    f = _check_positive_int("The filter size f", f)
    s = _check_positive_int("The stride s", s)
    before, after = _pair(p)
    padded = n + before + after
    if padded < f:
        raise ValueError(
            f"A {f}-wide filter does not fit into an input of {n} with padding "
            f"{before}+{after} ({padded} in all): use a smaller filter or more padding."
        )
    return (padded - f) // s + 1


def same_padding(n: int, f: int, s: int = 1) -> tuple[int, int]:
    """Keras' (TensorFlow's) "same" padding along one axis, as (before, after).

    "Same" means the output has ``ceil(n / s)`` values: the same size as the input when
    the stride is 1. TensorFlow adds just enough zeros for that, ``max((out - 1) * s + f -
    n, 0)``, and puts the odd one, if any, *after* (bottom or right). So a 3×3 filter with
    stride 1 pads 1 on every side, but a 4×4 filter pads 1 before and 2 after, and a 3×3
    filter with stride 2 on 6 pixels pads 0 before and 1 after.

    Args:
        n: Input length.
        f: Filter length.
        s: Stride.

    Returns:
        (before, after) zeros.
    """
    n = _check_positive_int("The input size n", n)
    f = _check_positive_int("The filter size f", f)
    s = _check_positive_int("The stride s", s)
    out = math.ceil(n / s)
    total = max((out - 1) * s + f - n, 0)
    return total // 2, total - total // 2


def padding_for(mode: str, f: int) -> int:
    """The zeros added on *each* side for a padding mode with stride 1, as in the report.

    "valid" adds none. "same" adds ``(f - 1) // 2`` on every side, which keeps an n-pixel
    input n pixels wide when the filter length f is odd and the stride is 1. For an even
    f, "same" cannot be split evenly: Keras then pads ``(f - 1) // 2`` before and ``f //
    2`` after, and with a stride above 1 the padding also depends on n. Use
    ``same_padding(n, f, s)`` for those cases; this function refuses even filters rather
    than return a number that would not match Keras.

    Args:
        mode: "valid" or "same".
        f: Filter length.

    Returns:
        Zeros on each side.

    Raises:
        ValueError: For an unknown mode, or "same" with an even f.
    """
    f = _check_positive_int("The filter size f", f)
    if mode not in PADDING_MODES:
        raise ValueError(f"Padding must be one of {PADDING_MODES}, not {mode!r}.")
    if mode == "valid":
        return 0
    if f % 2 == 0:
        raise ValueError(
            f"'same' padding with an even filter size ({f}) is not symmetric: Keras pads "
            f"{(f - 1) // 2} before and {f // 2} after. Use same_padding(n, f, s)."
        )
    return (f - 1) // 2


def _resolve_padding(
    padding: str | int, shape: tuple[int, int], window: tuple[int, int], stride: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) for a mode name or a number of zeros per side."""
    if isinstance(padding, str):
        if padding not in PADDING_MODES:
            raise ValueError(f"Padding must be one of {PADDING_MODES}, not {padding!r}.")
        if padding == "valid":
            return (0, 0), (0, 0)
        return (
            same_padding(shape[0], window[0], stride),
            same_padding(shape[1], window[1], stride),
        )
    p = _check_positive_int("padding", padding, 0)
    return (p, p), (p, p)


def size_formula(n: int, f: int, padding: str | int, s: int) -> str:
    """The output-size formula with the numbers substituted, as LaTeX for ``st.latex``.

    Args:
        n: Input length.
        f: Filter length.
        padding: "valid", "same", or zeros on each side.
        s: Stride.

    Returns:
        For example ``\\left\\lfloor \\frac{6 + 2 \\cdot 0 - 3}{1} \\right\\rfloor + 1 = 4``.
        When "same" pads the two sides differently, ``2p`` is written as their sum.
    """
    (before, after), _ = _resolve_padding(padding, (n, n), (f, f), s)
    out = output_size(n, f, (before, after), s)
    pad_text = rf"2 \cdot {before}" if before == after else f"({before} + {after})"
    return (
        rf"\left\lfloor \frac{{n + 2p - f}}{{s}} \right\rfloor + 1 = "
        rf"\left\lfloor \frac{{{n} + {pad_text} - {f}}}{{{s}}} \right\rfloor + 1 = {out}"
    )


# --- Validation of user grids ---------------------------------------------------------------
def parse_grid(
    values: object, name: str = "The grid", shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Turns a table of user-typed cells into a numeric array, or says which cell is wrong.

    Args:
        values: A 2-D sequence or array (e.g. ``DataFrame.to_numpy()``) of numbers or
            numeric strings.
        name: What the grid is, for messages ("The input image").
        shape: The shape the grid must have, if any.

    Returns:
        An int64 array when every value is a whole number, else float64.

    Raises:
        ValueError: Naming the first empty, non-numeric, infinite or huge cell (1-based
            row and column), or a wrong shape.
    """
    grid = np.asarray(values, dtype=object)
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"{name} must be a non-empty table of rows and columns.")
    if shape is not None and grid.shape != tuple(shape):
        raise ValueError(f"{name} must have {shape[0]} rows and {shape[1]} columns.")
    numbers_ = np.empty(grid.shape, dtype=np.float64)
    for (r, c), cell in np.ndenumerate(grid):
        numbers_[r, c] = _parse_cell(cell, f"{name}, row {r + 1}, column {c + 1}")
    if np.all(numbers_ == np.round(numbers_)):
        return numbers_.astype(np.int64)
    return numbers_


def _parse_cell(cell: object, where: str) -> float:
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        raise ValueError(f"{where} is empty: type a number.")
    if isinstance(cell, bool | np.bool_):
        raise ValueError(f"{where} is {cell}, not a number: type a number.")
    try:
        value = float(cell.strip() if isinstance(cell, str) else cell)
    except (TypeError, ValueError):
        raise ValueError(f"{where} is {cell!r}, which is not a number: type a number.") from None
    if math.isnan(value):
        # A table widget turns a cleared or unparsable cell into NaN.
        raise ValueError(f"{where} is empty or not a number: type a number.")
    if not abs(value) <= MAX_ABS_VALUE:
        raise ValueError(
            f"{where} is {cell!r}: use a number between {-MAX_ABS_VALUE:g} and {MAX_ABS_VALUE:g}."
        )
    return value


def out_of_range_cells(
    grid: np.ndarray, name: str, low: float, high: float, limit: int = 3
) -> list[str]:
    """Sentences naming the cells of a grid that lie outside [low, high].

    The Learn page computes with any number, but an image's pixels lie between 0 and 255;
    a typed 300 or -4 is said out loud rather than silently used.

    Args:
        grid: A parsed grid (``parse_grid``).
        name: What the grid is, for the sentences ("The input image").
        low: The smallest allowed value.
        high: The largest allowed value.
        limit: Cells named at most; a last sentence counts the others.

    Returns:
        [] when every cell is in range; else one sentence per named cell, the first of
        which gives the range, e.g. "The input image, row 1, column 2 is 300, outside the
        range of a grey pixel, 0 (black) to 255 (white)."
    """
    a = np.asarray(grid)
    cells = [(r, c, v) for (r, c), v in np.ndenumerate(a) if not low <= v <= high]
    sentences = []
    for i, (r, c, value) in enumerate(cells[:limit]):
        where = f"{name}, row {r + 1}, column {c + 1} is {_number(value)}"
        if i == 0:
            sentences.append(
                f"{where}, outside the range of a grey pixel, {_number(low)} (black) to "
                f"{_number(high)} (white)."
            )
        else:
            sentences.append(f"{where}.")
    if len(cells) > limit:
        more = len(cells) - limit
        sentences.append(f"{more} more cell{'s are' if more > 1 else ' is'} outside it too.")
    return sentences


# --- Convolution and pooling ----------------------------------------------------------------
def _as_numeric(array: object, name: str) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype == object or not (
        np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
    ):
        raise ValueError(f"{name} must hold numbers, not {a.dtype} values.")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values: replace them with numbers.")
    return a


def convolve(
    image: np.ndarray, kernel: np.ndarray, padding: str | int = "valid", stride: int = 1
) -> ConvResult:
    """Convolves an image with one filter, the deep-learning way, keeping every step.

    Args:
        image: (H, W) or (H, W, C) numbers.
        kernel: (kh, kw) for a 2-D image, or (kh, kw, C) matching the image's channels;
            each output value then sums all kh·kw·C products (the report's figure 18).
        padding: "valid" (none), "same" (Keras' rule, see ``same_padding``), or a number
            of zeros to add on every side.
        stride: Step of the window, the same in both directions.

    Returns:
        The ConvResult with the output map and one step per output value. Integer inputs
        give integer outputs, so the report's example reads exactly as in the document.

    Raises:
        ValueError: If shapes do not match, the values are not finite numbers, or the
            filter does not fit into the padded image.
    """
    image = _as_numeric(image, "The image")
    kernel = _as_numeric(kernel, "The filter")
    if image.ndim not in (2, 3):
        raise ValueError(f"The image must be (H, W) or (H, W, C), not shape {image.shape}.")
    if kernel.ndim != image.ndim or kernel.shape[2:] != image.shape[2:]:
        raise ValueError(
            f"The filter's shape {kernel.shape} does not match the image's {image.shape}: a "
            "2-D image needs a (kh, kw) filter, an (H, W, C) image a (kh, kw, C) one."
        )
    stride = _check_positive_int("The stride", stride)
    pads = _resolve_padding(padding, image.shape[:2], kernel.shape[:2], stride)
    out_h = output_size(image.shape[0], kernel.shape[0], pads[0], stride)
    out_w = output_size(image.shape[1], kernel.shape[1], pads[1], stride)
    dtype = np.result_type(image, kernel)
    padded = np.pad(image.astype(dtype), pads + ((0, 0),) * (image.ndim - 2))
    output = np.zeros((out_h, out_w), dtype=dtype)
    steps = []
    kh, kw = kernel.shape[:2]
    for row in range(out_h):
        for col in range(out_w):
            top, left = row * stride, col * stride
            window = padded[top : top + kh, left : left + kw]
            products = window * kernel
            total = products.sum()
            output[row, col] = total
            steps.append(ConvStep(row, col, top, left, window, products, total.item()))
    return ConvResult(image, kernel, padded, pads, stride, output, steps)


def max_pool(
    image: np.ndarray, size: int = 2, stride: int | None = 2, padding: str = "valid"
) -> PoolResult:
    """Max-pools a 2-D map, keeping every window (the report's figure 21).

    Args:
        image: (H, W) numbers, e.g. ``convolve(...).output``.
        size: Side of the square window.
        stride: Step of the window; None means ``size`` (non-overlapping windows).
        padding: "valid" or "same" (Keras' rule; padded cells never win the max).

    Returns:
        The PoolResult with the pooled map and one step per output value.

    Raises:
        ValueError: If the image is not 2-D numbers or the window does not fit.
    """
    image = _as_numeric(image, "The map to pool")
    if image.ndim != 2:
        raise ValueError(f"The map to pool must be 2-D (H, W), not shape {image.shape}.")
    size = _check_positive_int("The pool size", size)
    stride = size if stride is None else _check_positive_int("The pool stride", stride)
    if padding not in PADDING_MODES:
        raise ValueError(f"Padding must be one of {PADDING_MODES}, not {padding!r}.")
    pads = _resolve_padding(padding, image.shape, (size, size), stride)
    out_h = output_size(image.shape[0], size, pads[0], stride)
    out_w = output_size(image.shape[1], size, pads[1], stride)
    if any(sum(p) for p in pads):
        padded = np.pad(image.astype(np.float64), pads, constant_values=-np.inf)
    else:
        padded = image.copy()
    output = np.zeros((out_h, out_w), dtype=image.dtype)
    steps = []
    for row in range(out_h):
        for col in range(out_w):
            top, left = row * stride, col * stride
            window = padded[top : top + size, left : left + size]
            r, c = np.unravel_index(np.argmax(window), window.shape)
            value = image.dtype.type(window[r, c])
            output[row, col] = value
            steps.append(PoolStep(row, col, top, left, window, (int(r), int(c)), value.item()))
    return PoolResult(image, padded, pads, size, stride, output, steps)


def step_expression(step: ConvStep, kernel: np.ndarray, max_terms: int = 27) -> str:
    """The sum of products written out, as in the report's figure 11.

    Args:
        step: One step of a ``convolve`` result.
        kernel: The filter used.
        max_terms: Above this many products, the middle ones are elided with "…".

    Returns:
        For example ``"3×1 + 0×0 + 1×(-1) + … = -5"``.
    """
    terms = [
        f"{_number(v)}×{_number(k, paren=True)}"
        for v, k in zip(step.window.ravel(), np.asarray(kernel).ravel(), strict=True)
    ]
    if len(terms) > max_terms:
        keep = max_terms // 2
        terms = terms[:keep] + ["…"] + terms[-keep:]
    return " + ".join(terms) + f" = {_number(step.total)}"


def _number(value: object, paren: bool = False) -> str:
    """A number as a learner reads it: 3, -1, 0.25 (no trailing .0)."""
    v = float(value)
    text = str(int(v)) if v == int(v) else f"{v:.4g}"
    return f"({text})" if paren and v < 0 else text


def format_numbers(values: Sequence[float] | np.ndarray) -> list[str]:
    """Numbers as ``step_expression`` writes them, for tables and figure labels."""
    return [_number(v) for v in np.asarray(values).ravel()]
