"""Learn: the worked convolution of the project report *Image Classification Using
Convolutional Neural Network CNN* (figures 9 to 13), step by step on an image you edit."""

import numpy as np
import pandas as pd
import streamlit as st

from cnn_core.explain import convolution as conv
from cnn_core.explain import plots
from cnn_core.explain.conv_plots import colour_range, matrix_figure
from cnn_core.explain.plots import figure_png
from cnn_core.models import sources
from pages import _session as session
from pages._shared import show_png

IMAGE_KEY = session.LEARN_IMAGE
CUSTOM_KEY = session.LEARN_CUSTOM_FILTER
FILTER_KEY = session.LEARN_FILTER
PADDING_KEY = session.LEARN_PADDING
STRIDE_KEY = session.LEARN_STRIDE
STEP_KEY = session.LEARN_STEP
POOL_STEP_KEY = session.LEARN_POOL_STEP
PLAY_KEY = session.LEARN_PLAY
PLAY_INTERVAL_S = 1.5  # one window position per 1.5 s: time to read the sum
CUSTOM = "custom"
FILTER_CHOICES = [*conv.FILTERS, CUSTOM]
IDENTITY = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float64)
POOL_SIZE = 2
PADDING_LABELS = {"valid": "valid (no padding)", "same": "same (keep the size)"}


def grid_frame(values: np.ndarray) -> pd.DataFrame:
    """A matrix as a table with columns "1", "2", ... for the editors and tables."""
    return pd.DataFrame(values, columns=[str(c + 1) for c in range(values.shape[1])])


def filter_title(name: str) -> str:
    return "Your own 3×3 filter" if name == CUSTOM else conv.FILTER_TITLES[name]


def plain_number_columns(count: int) -> dict:
    """Editor columns "1".."count" that take any number as typed (no rounding, no limit)."""
    return {str(c + 1): st.column_config.NumberColumn(format="plain") for c in range(count)}


def reset_image() -> None:
    st.session_state.pop(IMAGE_KEY, None)


@st.cache_data(max_entries=512, show_spinner=False)
def matrix_png(
    values: np.ndarray,
    title: str,
    kind: str,
    highlight=None,
    padding=((0, 0), (0, 0)),
    value_range: tuple[float, float] | None = None,
) -> bytes:
    """The PNG of a matrix figure; cached, so stepping back and forth redraws nothing.

    `kind` fixes the colours of each quantity ("image", "weights", "signed"), the same in
    every figure of the page (plots.MATRIX_CMAPS).
    """
    figure = matrix_figure(
        values, title, highlight=highlight, padding=padding, kind=kind, value_range=value_range
    )
    return figure_png(figure)


def choose_inputs() -> tuple[object, object, str, str, int]:
    """The widgets; returns (image cells, filter cells, filter name, padding, stride)."""
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader("Input image, 6×6")
        # Float columns: a whole-number column would round a typed 2.5 to 3 without a word.
        image_cells = st.data_editor(
            grid_frame(conv.REPORT_IMAGE.astype(np.float64)),
            key=IMAGE_KEY,
            hide_index=True,
            num_rows="fixed",
            column_config=plain_number_columns(conv.REPORT_IMAGE.shape[1]),
        )
        st.button(
            "Back to the report's example image",
            on_click=reset_image,
            key="learn_reset",
            icon=":material/restart_alt:",
        )
    with right:
        st.subheader("Filter and settings")
        name = st.selectbox("Filter", FILTER_CHOICES, format_func=filter_title, key=FILTER_KEY)
        if name == CUSTOM:
            st.caption("Type any numbers. It starts as the identity: it copies the centre pixel.")
            filter_cells = st.data_editor(
                grid_frame(IDENTITY),
                key=CUSTOM_KEY,
                hide_index=True,
                num_rows="fixed",
                column_config=plain_number_columns(3),
            )
        else:
            filter_cells = conv.FILTERS[name]
            st.dataframe(grid_frame(filter_cells), hide_index=True)
            st.caption(conv.FILTER_NOTES[name])
        padding = st.radio(
            "Padding",
            list(PADDING_LABELS),
            format_func=PADDING_LABELS.get,
            horizontal=True,
            key=PADDING_KEY,
        )
        stride = st.radio("Stride", [1, 2], horizontal=True, key=STRIDE_KEY)
    return image_cells, filter_cells, name, padding, stride


def show_output_size(result: conv.ConvResult, padding: str) -> None:
    n, f, s = result.image.shape[0], result.kernel.shape[0], result.stride
    st.subheader("Output size")
    st.latex(conv.size_formula(n, f, padding, s))
    (top, bottom), _ = result.padding
    rows, cols = result.output.shape
    text = f"n = {n} pixels, f = {f}, s = {s}: the output is **{rows} × {cols}**."
    if top != bottom:
        text += (
            f" Keras' *same* padding adds just enough zeros for ⌈n / s⌉ = {rows} outputs: "
            f"{top} before (top, left) and {bottom} after (bottom, right). When the count is "
            "odd, the extra zero goes after."
        )
    st.markdown(text)


def next_position(position: int, count: int) -> int:
    """The window position after `position` while playing: 1 again after the last."""
    return position % count + 1


def show_steps(result: conv.ConvResult) -> None:
    st.subheader("The window, step by step")
    st.markdown(
        "Each output number comes from one position of the filter: multiply the 3×3 window "
        "by the filter cell by cell, then add the nine products. Move the window, or press "
        "Play and watch it move by itself."
    )
    count = len(result.steps)
    playing = count > 1 and st.toggle(
        "Play: move the window by itself",
        key=PLAY_KEY,
        help=f"One position every {PLAY_INTERVAL_S:g} s, back to the first after the last.",
    )
    # Only this part reruns on the timer, so the rest of the page is not redrawn each step.
    st.fragment(run_every=PLAY_INTERVAL_S if playing else None)(window_view)(result, playing)


def window_view(result: conv.ConvResult, playing: bool) -> None:
    """The window at its position: figures, sum and expression; one step on while playing."""
    count = len(result.steps)
    if count > 1:
        if playing:
            position = int(st.session_state.get(STEP_KEY, 1))
            st.session_state[STEP_KEY] = next_position(min(position, count), count)
        elif st.session_state.get(STEP_KEY, 1) > count:
            st.session_state[STEP_KEY] = count  # the output shrank (stride, padding)
        position = st.slider("Window position", 1, count, 1, key=STEP_KEY)
    else:
        position = 1
    step = result.steps[position - 1]
    kh, kw = result.kernel.shape
    st.caption(f"Output row {step.row + 1}, column {step.col + 1}.")
    # Column widths follow the matrices' widths, so every cell is drawn at the same scale.
    columns = st.columns([result.padded.shape[1], kw, kw, result.output.shape[1]])
    image_scale = colour_range(result.padded, "image")
    with columns[0]:
        title = "Input, padded" if any(sum(p) for p in result.padding) else "Input"
        window = (step.top, step.left, kh, kw)
        png = matrix_png(result.padded, title, "image", window, result.padding, image_scale)
        show_png(png, "input-window", "learn_png_input")
    with columns[1]:
        show_png(matrix_png(result.kernel, "Filter", "weights"), "filter", "learn_png_filter")
    with columns[2]:
        show_png(
            matrix_png(step.products, "Window × filter", "signed"),
            "products",
            "learn_png_products",
        )
    with columns[3]:
        show_png(
            matrix_png(result.output, "Output", "signed", (step.row, step.col, 1, 1)),
            "output",
            "learn_png_output",
        )
    st.caption(COLOUR_LEGEND)
    st.metric("Sum of the products", conv.format_numbers([step.total])[0])
    st.code(conv.step_expression(step, result.kernel), language=None, wrap_lines=True)


COLOUR_LEGEND = (
    f"Colours: {plots.LEGENDS['image']}; {plots.LEGENDS['weights']}; "
    f"{plots.LEGENDS['signed']}. The orange frame is the window."
)


def show_pooling(result: conv.ConvResult) -> None:
    st.subheader("Max-pooling, 2×2 with stride 2")
    st.markdown(
        "Pooling shrinks the map: each 2×2 block keeps only its largest number, the strongest "
        "response of the filter there. Notice that the edge survives while the map halves."
    )
    try:
        pooled = conv.max_pool(result.output, POOL_SIZE, POOL_SIZE)
    except ValueError as exc:
        st.info(f"The output is too small to pool: {exc}")
        return
    count = len(pooled.steps)
    position = (
        st.slider("Pooling window position", 1, count, 1, key=POOL_STEP_KEY) if (count > 1) else 1
    )
    step = pooled.steps[position - 1]
    # The pooled map keeps values of the output, so it is drawn on the output's colour
    # scale: a 0 is white in both (alone, a one-cell map of 0 would have no scale at all).
    scale = colour_range(result.output, "signed")
    left, right, _ = st.columns([result.output.shape[1], max(pooled.output.shape[1], 2), 4])
    with left:
        show_png(
            matrix_png(
                result.output,
                "Convolution output",
                "signed",
                (step.top, step.left, POOL_SIZE, POOL_SIZE),
                value_range=scale,
            ),
            "pool-window",
            "learn_png_pool_input",
        )
    with right:
        show_png(
            matrix_png(
                pooled.output, "Pooled", "signed", (step.row, step.col, 1, 1), value_range=scale
            ),
            "pooled",
            "learn_png_pooled",
        )
    window = ", ".join(conv.format_numbers(step.window))
    st.metric("Largest in the window", conv.format_numbers([step.value])[0])
    st.caption(f"max({window}) = {conv.format_numbers([step.value])[0]}")


def warn_out_of_range(image: np.ndarray) -> None:
    """A warning for pixels outside 0 to 255: the sums use them, but no image has them."""
    problems = conv.out_of_range_cells(image, "The input image", *conv.PIXEL_RANGE)
    if problems:
        st.warning(
            " ".join(problems) + " The sums below use these numbers as typed.",
            icon=":material/warning:",
        )


def render() -> None:
    st.title("Learn: how a convolution sees an image")
    report = sources.cite("cifar10_report", "figures 9 to 13")
    st.markdown(
        "A convolution slides a small filter over the image. At every position it multiplies "
        "the pixels under the window by the filter's numbers and adds them up, giving one "
        f"number of the output map. The example image and filter are those of {report}. "
        "Edit the image or the filter and watch where the output is large: that is where "
        "the image looks like the filter."
    )
    image_cells, filter_cells, name, padding, stride = choose_inputs()
    try:
        image = conv.parse_grid(image_cells, "The input image", shape=conv.REPORT_IMAGE.shape)
        kernel = conv.parse_grid(filter_cells, "Your filter", shape=(3, 3))
        result = conv.convolve(image, kernel, padding, stride)
    except ValueError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    warn_out_of_range(image)
    show_output_size(result, padding)
    st.subheader("Output map")
    st.dataframe(grid_frame(result.output), hide_index=True)
    if name == "vertical":
        st.caption(
            "With the report's example image this is its figure 13: the largest numbers sit "
            "where bright pixels on the left meet dark ones on the right, negative ones the "
            "other way round."
        )
    show_steps(result)
    show_pooling(result)
    st.divider()
    st.markdown(
        "**The same on your own network.** Inspect's *The whole network* tab runs your "
        "drawing through a trained network and shows, for any unit of any layer, this very "
        "arithmetic with the network's own numbers: the patch it saw, the filter, the "
        "products, their sum, the bias and the activation."
    )
    if st.button("The same on a trained network", icon=":material/visibility:",
                 key="learn_to_network"):  # fmt: skip
        session.open_network_in_inspect(None)
        st.switch_page("pages/inspect.py")


render()
