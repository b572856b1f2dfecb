"""Inspect's first tab: the whole network at work on one image, and every number behind one
unit of it (cnn_core.explain.units computes; this module only collects choices and renders)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from cnn_core.explain import network_pictures as pictures
from cnn_core.explain import units
from cnn_core.models import summaries
from pages._shared import model_at, probability_chart

OVERVIEW_MAPS = 8  # maps shown per layer in the overview; the rest on request
ALL_MAPS_PER_ROW = 16
TILE_PX = 64
FIELD_PX = 224
MAP_CHART_PX = 260
TOP_TERMS = 10
SHOWN_CHANNELS = 3  # a convolution's input channels drawn number by number
COLOURS = (
    "Colours: each layer on its own scale, the same for all its maps: blue where a value is "
    "positive, red where it is negative, white at 0; the deepest blue or red is the layer's "
    "largest size, given beside it."
)
NONE = "—"
COLOUR_NAMES = ("red", "green", "blue")

INTRO = (
    "Your image goes in on the left of this list and flows down through every layer to the "
    "class probabilities at the bottom. Each row is one layer: its name, what kind of layer "
    "it is, the shape of what it outputs (height × width × maps), and its first maps. "
    "Watch the maps shrink and multiply: early layers still look like the picture, later "
    "ones only say *where* a pattern was found."
)
DETAIL = (
    "Choose any one number a layer computed (a *unit*: one pixel of one map, or one entry of "
    "a vector) and see exactly how it was computed from the layer before, with this "
    "network's own weights. The orange frame on the image is its **receptive field**: the "
    "only pixels that can change it. Units deeper in the network see more of the image."
)
LESSONS = {
    "convolution": "A convolution unit multiplies the small patch of the layer below it "
    "(every map of it) by its filter's weights, adds the products and a bias, and applies "
    "the activation: a large positive value means the patch looks like the filter.",
    "max pooling": "Max pooling keeps the largest value of each small window: the map gets "
    "smaller, and a pattern found anywhere in the window still counts.",
    "average pooling": "Average pooling keeps the mean of each window: a smaller, smoother map.",
    "global average pooling": "Global average pooling squeezes each whole map into one "
    "number, its mean: how much of that pattern the image holds anywhere.",
    "global max pooling": "Global max pooling keeps each map's largest value.",
    "batch normalisation": "Batch normalisation rescales every map with statistics it learnt "
    "in training (a mean and a variance) and two learnt numbers (γ and β), so the next "
    "layer gets values of a steady size.",
    "dense": "A dense unit weighs every input: the largest products below decided it.",
    "flatten": "Flatten only lays the maps out as one long list: each value is a value of "
    "the layer below.",
    "addition (residual connection)": "A residual connection adds the block's input to "
    "what the block computed: the block only has to learn a change.",
    "dropout (off when predicting)": "Dropout switches random units off while training so "
    "the network cannot rely on any one of them; when predicting it is off and passes "
    "every value on unchanged.",
}


@st.cache_data(show_spinner="Running the image through every layer…", max_entries=32)
def traced(key: str, epoch: int | None, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output for one image, once per model, epoch and image."""
    model, _ = model_at(key, epoch)
    return units.trace_layers(model, x)


def network_view(choice, model, epoch: int | None, x: np.ndarray) -> None:
    """The overview and the unit detail for one image."""
    st.markdown(INTRO)
    trace = traced(choice.key, epoch, x)
    layers = units.list_layers(model)
    overview(choice, layers, trace, x)
    st.divider()
    unit_detail(choice, model, layers, trace, x)


def overview(choice, layers: list[units.LayerInfo], trace: dict[str, np.ndarray], x) -> None:
    st.caption(COLOURS)
    for info in layers:
        label, picture = st.columns([1, 4], vertical_alignment="center")
        shape = summaries.format_shape(info.output_shape)
        label.markdown(f"**{info.name}**  \n{info.type}  \n{shape}")
        with picture:
            layer_picture(choice, info, trace[info.name], x, info.name == layers[-1].name)
    map_layers = [i.name for i in layers[1:] if len(i.output_shape) == 3]
    if not map_layers:
        return
    every = st.selectbox("See every map of one layer", [NONE, *map_layers],
                         key=f"network_all_maps-{choice.key}")  # fmt: skip
    if every != NONE:
        values = trace[every]
        for first in range(0, values.shape[-1], ALL_MAPS_PER_ROW):
            st.image(pictures.maps_strip(values, first, ALL_MAPS_PER_ROW, TILE_PX))
        st.caption(f"All {values.shape[-1]} maps of {every}, on the layer's one scale.")


def layer_picture(choice, info: units.LayerInfo, values: np.ndarray, x, is_output: bool) -> None:
    """One layer of the overview: the image, its first maps, a vector, or the probabilities."""
    scale = f"scale ±{pictures.layer_scale(values):.3g}"
    if info.type == "input":
        st.image(pictures.channel_pictures(x, TILE_PX))
        if x.shape[-1] == 3:
            st.caption("The image, then its red, green and blue channels.")
    elif is_output and values.ndim == 1:
        probability_chart(values, choice.class_names)
        if choice.average_flips:
            st.caption(
                "The network's answer for the image as it is. Elsewhere this model answers "
                "from the image and its mirror image, averaged (test-time flips), so its "
                "probabilities there differ a little."
            )
    elif values.ndim == 3:
        st.image(pictures.maps_strip(values, 0, OVERVIEW_MAPS, TILE_PX))
        count = values.shape[-1]
        shown = f"maps 0–{OVERVIEW_MAPS - 1} of {count} · " if count > OVERVIEW_MAPS else ""
        st.caption(shown + scale)
    else:
        st.image(pictures.vector_strip(values, 8))
        st.caption(f"{len(values)} numbers · {scale}")


# ---------------------------------------------------------------- one unit


def _row_col_keys(choice, layer: str) -> tuple[str, str, str, str]:
    base = f"{choice.key}-{layer}"
    return f"unit_row-{base}", f"unit_col-{base}", f"unit_channel-{base}", f"unit_map-{base}"


def _clicked(chart_key: str, row_key: str, col_key: str) -> None:
    """A click on the map chart chooses that unit: the row and column inputs follow it."""
    event = st.session_state.get(chart_key)
    points = (event or {}).get("selection", {}).get("unit") or []
    if points:
        st.session_state[row_key] = int(points[0]["row"])
        st.session_state[col_key] = int(points[0]["col"])


def map_chart(values: np.ndarray, chart_key: str, row_key: str, col_key: str) -> None:
    """One map as a clickable heat map (a Vega-Lite point selection: Streamlit's own chart
    events, so no extra component is needed)."""
    scale = pictures.layer_scale(values)
    rows, cols = values.shape
    data = [
        {"row": r, "col": c, "value": float(values[r, c])} for r in range(rows) for c in range(cols)
    ]
    st.vega_lite_chart(
        {
            "data": {"values": data},
            "params": [{"name": "unit", "select": {"type": "point", "fields": ["row", "col"]}}],
            "mark": {"type": "rect", "tooltip": True},
            "encoding": {
                "x": {"field": "col", "type": "ordinal", "title": "column",
                      "axis": {"labelOverlap": True}},
                "y": {"field": "row", "type": "ordinal", "title": "row",
                      "axis": {"labelOverlap": True}},
                "color": {"field": "value", "type": "quantitative", "title": "value",
                          "scale": {"scheme": "redblue", "domain": [-scale, scale]}},
                "stroke": {"condition": {"param": "unit", "empty": False, "value": "#ff7f0e"},
                           "value": None},
                "strokeWidth": {"value": 2},
            },
            "width": MAP_CHART_PX,
            "height": MAP_CHART_PX,
        },
        key=chart_key,
        on_select=lambda: _clicked(chart_key, row_key, col_key),
        selection_mode="unit",
        width=MAP_CHART_PX + 140,  # the map and its colour legend
        height=MAP_CHART_PX + 60,  # and its column labels
    )  # fmt: skip


def choose_unit(choice, layers, trace) -> tuple[str, tuple[int, ...]]:
    names = [i.name for i in layers[1:]]
    types = {i.name: i.type for i in layers}
    default = next((i for i, n in enumerate(names) if types[n] == "convolution"), 0)
    layer = st.selectbox("Layer", names, index=default, key=f"unit_layer-{choice.key}",
                         format_func=lambda n: f"{n} ({types[n]})")  # fmt: skip
    values = trace[layer]
    if values.ndim == 1:
        key = f"unit_index-{choice.key}-{layer}"
        if layer == names[-1] and len(values) == len(choice.class_names):
            index = st.selectbox("Class", range(len(values)), key=key,
                                 format_func=lambda i: f"{i}: {choice.class_names[i]}")  # fmt: skip
        else:  # a long vector (a flattened map): a number, not a list of thousands
            if key not in st.session_state:
                st.session_state[key] = int(np.argmax(values))
            index = st.number_input(f"Unit (0 to {len(values) - 1})", 0, len(values) - 1, key=key)
        return layer, (int(index),)
    row_key, col_key, channel_key, chart_key = _row_col_keys(choice, layer)
    height, width, channels = values.shape
    if channel_key not in st.session_state:  # first visit: the layer's strongest unit
        strongest = np.unravel_index(int(np.argmax(values)), values.shape)
        for key, index in zip((row_key, col_key, channel_key), strongest, strict=True):
            st.session_state[key] = int(index)
    left, middle, right = st.columns(3)
    channel = left.number_input(f"Map (0 to {channels - 1})", 0, channels - 1, key=channel_key)
    row = middle.number_input(f"Row (0 to {height - 1})", 0, height - 1, key=row_key)
    col = right.number_input(f"Column (0 to {width - 1})", 0, width - 1, key=col_key)
    st.caption("Or click a pixel of the map:")
    map_chart(values[..., int(channel)], f"{chart_key}-{channel}", row_key, col_key)
    return layer, (int(row), int(col), int(channel))


@st.fragment
def unit_detail(choice, model, layers, trace, x) -> None:
    """A fragment: choosing another unit reruns this part only, not the overview above."""
    st.subheader("Every number behind one unit")
    st.markdown(DETAIL)
    controls, field = st.columns([3, 2], gap="large")
    with controls:
        layer, unit = choose_unit(choice, layers, trace)
    try:
        found = units.explain_unit(model, x, layer, unit, trace=trace)
    except units.UnitError as exc:
        st.warning(str(exc))
        return
    with field:
        top, left, bottom, right = found.receptive_field
        st.image(pictures.field_picture(x, found.receptive_field, FIELD_PX))
        st.caption(
            f"Receptive field: rows {top}–{bottom}, columns {left}–{right} "
            f"({bottom - top + 1}×{right - left + 1} of the image's "
            f"{x.shape[0]}×{x.shape[1]} pixels)."
        )
    st.markdown(LESSONS.get(found.layer_type, ""))
    agree = abs(found.value - found.activation) <= found.tolerance
    a, b = st.columns(2)
    a.metric("Computed here, step by step", f"{found.value:.6g}")
    b.metric("The network's own value", f"{found.activation:.6g}")
    st.caption(
        ("✓ The same number" if agree else "✗ The two differ")
        + (
            " (this model computes in bfloat16, which keeps about 3 significant digits)."
            if found.dtype == "bfloat16"
            else "."
        )
    )
    terms_view(found, units.reads_the_image(model, layer) and x.shape[-1] == 3)
    st.markdown("**The steps**")
    steps_table([(found.layer, s) for s in found.steps], f"unit_steps-{choice.key}")
    if found.layer_type in ("convolution", "dense"):
        following_view(choice, model, x, found, trace)


def steps_table(steps: list[tuple[str, units.Step]], key: str) -> None:
    st.dataframe(
        pd.DataFrame([{"layer": layer, "step": s.text, "value": s.value} for layer, s in steps]),
        hide_index=True,
        column_config={"value": st.column_config.NumberColumn(format="%.6g")},
        key=key,
    )


def following_view(choice, model, x, found: units.UnitExplanation, trace) -> None:
    """The same unit through the batch norm and activation layers that follow it."""
    chain = units.elementwise_chain(model, found.layer)
    if not chain:
        return
    then = [units.explain_unit(model, x, name, found.unit, trace=trace) for name in chain]
    st.markdown(
        f"**Then {', '.join(chain)}** {'changes' if len(chain) == 1 else 'change'} this "
        "value on its own, before the next layer reads it:"
    )
    steps_table([(e.layer, s) for e in then for s in e.steps], f"unit_then-{choice.key}")
    last = then[-1]
    st.caption(
        f"{last.value:.6g}: the value in {last.layer}'s map (the network's own: "
        f"{last.activation:.6g})."
    )


def terms_view(found: units.UnitExplanation, colour_input: bool) -> None:
    if not found.terms:
        return
    if found.layer_type == "convolution":
        conv_terms_view(found, colour_input)
    elif "pooling" in found.layer_type:
        st.markdown("**The window** (the winner is ticked)" if found.layer_type == "max pooling"
                    else "**The window**")  # fmt: skip
        st.dataframe(pd.DataFrame(found.terms), hide_index=True)
    elif found.layer_type == "dense":
        st.markdown(f"**The {TOP_TERMS} largest of its {len(found.terms)} products** "
                    "(input × weight)")  # fmt: skip
        st.dataframe(pd.DataFrame(found.terms[:TOP_TERMS]), hide_index=True)
    else:
        st.dataframe(pd.DataFrame(found.terms), hide_index=True)


def conv_terms_view(found: units.UnitExplanation, colour_input: bool) -> None:
    """Per input channel: its share of the sum, and for the largest ones the patch, the
    kernel and their products number by number."""
    frame = pd.DataFrame(found.terms)
    shares = frame.groupby("channel")["product"].sum()
    order = shares.abs().sort_values(ascending=False).index
    st.markdown(
        f"**{len(frame)} products** ({len(shares)} input maps × a "
        f"{frame['row'].nunique()}×{frame['col'].nunique()} patch). The input maps that "
        "added the most:"
    )
    for channel in order[:SHOWN_CHANNELS]:
        input_map_view(frame, shares, int(channel), colour_input)
    if len(order) > SHOWN_CHANNELS:
        rest = shares[order[SHOWN_CHANNELS:]]
        st.caption(f"The other {len(rest)} input maps add {rest.sum():.4g} together.")
        # Every map as an option, in order, so the list stays the same from unit to unit.
        chosen = st.selectbox("See any input map", [None, *range(len(shares))],
                              format_func=lambda c: NONE if c is None else f"map {c}",
                              key=f"unit_other_map-{found.layer}")  # fmt: skip
        if chosen is not None:
            input_map_view(frame, shares, chosen, colour_input)


def input_map_view(frame: pd.DataFrame, shares: pd.Series, channel: int, colour_input: bool):
    """One input map's patch, the kernel's slice for it and their products, number by number."""
    part = frame[frame["channel"] == channel]
    shape = (part["row"].nunique(), part["col"].nunique())
    grid = {name: part[name].to_numpy().reshape(shape) + 0.0  # + 0.0: no "-0" shown
            for name in ("input", "weight", "product")}  # fmt: skip
    which = f"the {COLOUR_NAMES[channel]} channel" if colour_input else f"map {channel}"
    st.markdown(f"Input {which}: its products add up to {shares[channel]:.4g}"
                + (" (part of the patch hangs over the map's edge: padding, zeros)"
                   if part["padding"].any() else ""))  # fmt: skip
    columns = st.columns(3)
    for column, (name, title) in zip(columns, (("input", "patch"), ("weight", "kernel"),
                                               ("product", "patch × kernel")),
                                     strict=True):  # fmt: skip
        column.caption(title)
        column.dataframe(pd.DataFrame(grid[name]).style.format("{:.3g}"), hide_index=True)
