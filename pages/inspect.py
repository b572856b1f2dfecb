"""Inspect: look inside a trained model at one image: the whole network and every number behind
one unit, filters, feature maps, saliency, Grad-CAM."""

import numpy as np
import streamlit as st

from cnn_core import catalog
from cnn_core.explain import attribution, conv_plots, inspection, maximization, plots
from cnn_core.models import summaries
from pages import _session as session
from pages._network import network_view
from pages._shared import (
    choose_epoch,
    load_chosen_dataset,
    model_at,
    model_chooser,
    pixel_image,
    show_png,
)

AM_STEPS = 60
MAX_FILTERS = 64
MAX_MAPS = 32
HEAT_ALPHA = 0.5
UNLIKELY = 0.01  # below 1% the model sees almost nothing of a class: its maps are faint guesses
TABS = [
    session.INSPECT_NETWORK_TAB,
    "Filters",
    "Feature maps",
    session.INSPECT_SALIENCY_TAB,
    "What a filter looks for",
]
DRAWING, TEST = session.INSPECT_SOURCE_DRAWING, session.INSPECT_SOURCE_TEST
EPOCH_CAPTION = (
    "Every view below shows the model as it was after this epoch. Slide back to "
    "0, before training: the filters start as noise and take shape as the model learns."
)
AUTO = "auto"  # Grad-CAM on the last conv layer that shows evidence
SCALE_LABELS = {"shared": "Shared by the layer", "per_filter": "Per filter"}
MODE_LABELS = {
    "rgb": "In colour",
    "per_input_channel": "One image per input channel",
    "mean": "Averaged over input channels",
}

FILTER_LEGENDS = {
    "mean": f"Colours: {plots.LEGENDS['weights']}.",
    "per_input_channel": f"Colours: {plots.LEGENDS['weights']}.",
    "rgb": "Colours: the red, green and blue weights mixed; mid-grey = 0 in every channel.",
}

dataset = session.current_dataset()
st.title("Inspect")
st.markdown(
    "Look inside a trained network at work on one image: the filters it learned, what each "
    "layer makes of the image, and which pixels decided its answer. Use your own drawing "
    "from the Predict page or any test image, and for a run of yours, replay its training "
    "epoch by epoch."
)


# ---------------------------------------------------------------- models and cached figures


@st.cache_data(show_spinner=False, max_entries=256)
def filters_png(key: str, epoch: int | None, layer: str, mode: str, scale: str) -> bytes:
    model, _ = model_at(key, epoch)
    images = inspection.filter_images(model, layer, mode, scale)
    count = images.shape[0]
    shown = f"first {MAX_FILTERS} of {count}" if count > MAX_FILTERS else str(count)
    figure = plots.filters_figure(
        images, mode, max_filters=MAX_FILTERS, title=f"{layer}: {shown} filters"
    )
    return plots.figure_png(figure)


@st.cache_data(show_spinner=False, max_entries=256)
def maps_png(key: str, epoch: int | None, layer: str, x: np.ndarray) -> bytes:
    model, _ = model_at(key, epoch)
    maps = inspection.feature_maps(model, x, [layer])[layer]
    count = maps.shape[-1]
    shown = f"first {MAX_MAPS} of {count}" if count > MAX_MAPS else str(count)
    title = f"{layer}: {shown} maps of {maps.shape[0]}×{maps.shape[1]}"
    return plots.figure_png(plots.feature_maps_figure(maps, max_maps=MAX_MAPS, title=title))


@st.cache_data(show_spinner=False, max_entries=256)
def map_detail_pngs(
    key: str, epoch: int | None, layer: str, channel: int, x: np.ndarray
) -> tuple[bytes, str, bytes | None, str]:
    """The chosen map large with its value range, and the filter behind it with a note."""
    model, _ = model_at(key, epoch)
    values = inspection.feature_maps(model, x, [layer])[layer][..., channel]
    low, high = float(values.min()), float(values.max())
    colored = plots.activation_rgb(values)
    big = plots.figure_png(plots.image_grid_figure([colored], cols=1, cell=3.0))
    scale = f"{layer}, map {channel}: from {low:.2f} (dark purple) to {high:.2f} (yellow)."
    if high == low:  # a colour scale needs two values: say what the one colour means
        scale = (
            f"{layer}, map {channel}: {low:.2f} everywhere, so it is one flat colour: "
            "its filter finds nothing of its pattern in this image."
        )
    found = inspection.map_filter(model, layer, channel)
    if found is None:
        return big, scale, None, "No conv filter made this map: it pools the input image."
    averaged = f", averaged over its {found.in_channels} inputs" if found.in_channels > 1 else ""
    name = f"{found.layer_name} filter {channel}{averaged}"
    small = plots.figure_png(
        conv_plots.matrix_figure(found.weights, title=name, cell=0.6, kind="weights")
    )
    if found.layer_name == layer:
        note = (
            f"The weights of {name}, drawn as on the Filters tab: mid-grey = 0, bright = "
            "positive, dark = negative. Slid over its input, they made this map."
        )
    else:
        note = (
            f"A pooling layer has no weights: this map keeps the strongest value of each "
            f"window of map {channel} of {found.layer_name}, made by {name}."
        )
    return big, scale, small, note


@st.cache_data(show_spinner=False, max_entries=256)
def explanation_png(
    key: str, epoch: int | None, x: np.ndarray, class_index: int, cam_choice: str, name: str
) -> tuple[bytes, str, bool]:
    """The input, its saliency and its Grad-CAM side by side; the CAM's layer; is it empty?"""
    model, _ = model_at(key, epoch)
    saliency = attribution.saliency(model, x, class_index)
    if cam_choice == AUTO:
        cam_layer, cam = attribution.grad_cam_with_evidence(model, x, class_index)
    else:
        cam_layer, cam = cam_choice, attribution.grad_cam(model, x, class_index, cam_choice)
    images = [
        attribution.as_rgb8(x),
        attribution.overlay(x, saliency, HEAT_ALPHA, plots.HEAT_CMAP),
        attribution.overlay(x, cam, HEAT_ALPHA, plots.HEAT_CMAP),
    ]
    titles = ["input", f"saliency for {name}", f"Grad-CAM for {name}, {cam_layer}"]
    label = (
        "0 = no evidence, 1 = the strongest evidence in this image "
        "(each map on its own scale, so even a faint one reaches 1)"
    )
    figure = plots.heatmaps_figure(images, titles, plots.HEAT_CMAP, label, cell=2.2)
    return plots.figure_png(figure), cam_layer, bool(cam.max() == 0)


@st.cache_data(show_spinner=False, max_entries=256)
def pattern_result(key: str, epoch: int | None, layer: str, filter_index: int):
    """(PNG, mean activation before, after) of activation maximisation for one filter."""
    model, _ = model_at(key, epoch)
    image, trace = maximization.maximize_activation(model, layer, filter_index, steps=AM_STEPS)
    figure = plots.image_grid_figure([maximization.deprocess_image(image)], cols=1, cell=2.6)
    return plots.figure_png(figure), float(trace[0]), float(trace[-1])


# ---------------------------------------------------------------- choosing model and image


def pick_random(key: str, count: int) -> None:
    st.session_state[key] = int(np.random.default_rng().integers(count))


def choose_input(choice: catalog.TrainedModel) -> tuple[str, np.ndarray] | None:
    """(description, image (H, W, C) float32 in [0, 1]) or None after a message."""
    drawn = session.latest_image()
    fits = drawn is not None and np.shape(drawn[1]) == tuple(choice.input_shape)
    if fits:
        source = st.radio(
            "Image",
            [DRAWING, TEST],
            key=session.INSPECT_SOURCE,
            horizontal=True,
            format_func=lambda s: f"Yours: {drawn[0]}" if s == DRAWING else "A test image",
        )
        if source == DRAWING:
            return f"your image ({drawn[0]})", np.asarray(drawn[1], np.float32)
    elif drawn is not None:
        st.caption(
            f"Your latest image from Predict ({drawn[0]}) does not fit this model's "
            f"input of {summaries.format_shape(choice.input_shape)}."
        )
    else:
        st.caption("Draw or upload an image on the Predict page to inspect it here.")
    ds = load_chosen_dataset(choice.dataset, choice.dataset_fingerprint)
    if ds is None:
        return None
    if tuple(ds.input_shape) != tuple(choice.input_shape):
        st.warning(
            f"The test images of {ds.title} are {summaries.format_shape(ds.input_shape)}, "
            f"but this model takes {summaries.format_shape(choice.input_shape)}."
        )
        return None
    key = session.inspect_index_key(choice.dataset)
    count = len(ds.y_test)
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    index = left.number_input(f"Test image (0 to {count - 1})", 0, count - 1, key=key)
    right.button(
        "Random",
        icon=":material/shuffle:",
        key="inspect_random",
        on_click=pick_random,
        args=(key, count),
    )
    truth = ds.class_names[int(ds.y_test[index])]
    return f"test image {index} (true class {truth})", ds.x_test[index].astype(np.float32) / 255.0


# ---------------------------------------------------------------- the four views


def filters_view(choice: catalog.TrainedModel, model, epoch: int | None) -> None:
    st.markdown(
        "Each small square is one filter: the weights a conv layer slides over its input. "
        "Mid-grey is a weight of zero, bright squares are positive weights and dark ones "
        "negative, so a filter with a bright row above a dark row fires on horizontal "
        "edges. First-layer filters look at pixels and are easiest to read; deeper ones "
        "combine earlier maps, so they are shown averaged over their inputs."
    )
    scale = st.radio(
        "Colour scale",
        list(SCALE_LABELS),
        format_func=SCALE_LABELS.get,
        key="inspect_scale",
        horizontal=True,
    )
    st.caption(
        "Shared: filters of a layer compare with each other, and weak ones look grey. "
        "Per filter: each is stretched to full contrast, to see the pattern of weak ones."
    )
    layers = inspection.conv_layers(model)
    first_modes = inspection.filter_modes(model, layers[0].name)
    first_mode = first_modes[0]
    if len(first_modes) > 1:
        first_mode = st.radio(
            "First layer drawn",
            first_modes,
            format_func=MODE_LABELS.get,
            key=f"inspect_first_mode-{choice.key}",
            horizontal=True,
        )
    for column, layer in zip(st.columns(2) * len(layers), layers, strict=False):
        with column:
            kh, kw, inputs, count = layer.kernel.shape
            mode = (
                first_mode if layer is layers[0] else inspection.filter_modes(model, layer.name)[0]
            )
            st.markdown(
                f"**{layer.name}**: {count} filters of {kh}×{kw}, each over {inputs} "
                f"input channel{'s' if inputs > 1 else ''}"
            )
            png = filters_png(choice.key, epoch, layer.name, mode, scale)
            show_png(png, f"{layer.name}-filters", f"png-filters-{layer.name}")
            st.caption(FILTER_LEGENDS.get(mode, FILTER_LEGENDS["mean"]))


def feature_maps_view(choice: catalog.TrainedModel, model, epoch: int | None, x) -> None:
    st.markdown(
        "A feature map shows where in the image one filter found its pattern: bright where "
        "it fired strongly, dark where it stayed silent. Early maps still look like the "
        "image; after each pooling layer they get smaller and more abstract, answering "
        "*is there a curve here?* rather than *which pixels are ink*."
    )
    layers = inspection.tappable_layers(model)
    names = [layer.name for layer in layers]
    with st.container(border=True):
        st.markdown("**Look closer at one map**")
        left, middle, right = st.columns([1, 2, 2])
        name = left.selectbox("Layer", names, key=f"inspect_map_layer-{choice.key}")
        channels = int(model.get_layer(name).output.shape[-1])
        channel = left.number_input(
            f"Map (0 to {channels - 1})",
            0,
            channels - 1,
            key=f"inspect_map_channel-{choice.key}-{name}",
        )
        big, scale, small, note = map_detail_pngs(choice.key, epoch, name, int(channel), x)
        with middle:
            st.caption(scale)
            show_png(big, f"{name}-map-{channel}", "png-map-detail")
        with right:
            if small is not None:
                show_png(small, f"{name}-filter-{channel}", "png-map-filter")
            st.caption(note)
    for column, layer in zip(st.columns(2) * len(layers), layers, strict=False):
        with column:
            shape = summaries.format_shape(layer.output.shape[1:])
            st.markdown(f"**{layer.name}** ({type(layer).__name__}): output {shape}")
            png = maps_png(choice.key, epoch, layer.name, x)
            show_png(png, f"{layer.name}-maps", f"png-maps-{layer.name}")
            st.caption(f"Colours: {plots.LEGENDS['activation']}.")


def saliency_view(choice: catalog.TrainedModel, model, epoch: int | None, x, probs) -> None:
    st.markdown(
        "Which pixels made the model say this? **Saliency** colours each pixel by how much "
        "a tiny change of it would change the class score: a sharp, pixel-level view. "
        "**Grad-CAM** weighs a conv layer's maps by how much they support the class: "
        "a coarser view of *where* the evidence lies. Colours: "
        f"{plots.LEGENDS['heat']}, as the colour bar under the maps shows."
    )
    predicted = int(np.argmax(probs))
    names = choice.class_names
    left, right = st.columns(2)
    options = [-1, *range(len(names))]
    class_index = left.selectbox(
        "Explain the class",
        options,
        key=f"inspect_class-{choice.key}",
        format_func=lambda i: f"The predicted one: {names[predicted]}" if i < 0 else names[i],
    )
    convs = [layer.name for layer in inspection.conv_layers(model)]
    cam_choice = right.selectbox(
        "Grad-CAM layer",
        [AUTO, *reversed(convs)],
        key=f"inspect_cam_layer-{choice.key}",
        format_func=lambda n: "The last one that shows evidence" if n == AUTO else n,
    )
    index = predicted if class_index < 0 else int(class_index)
    label = f"{names[index]} ({probs[index]:.1%})"
    png, cam_layer, cam_empty = explanation_png(choice.key, epoch, x, index, cam_choice, label)
    st.caption(f"Explaining {names[index]} (the model gives it {probs[index]:.1%}).")
    if probs[index] < UNLIKELY:
        st.warning(unlikely_note(names[index], float(probs[index])), icon=":material/info:")
    show_png(png, f"saliency-gradcam-{names[index]}", "png-explanation")
    why = (
        "weighted by their mean gradients, its maps add up to less than zero everywhere. "
        "That happens in models that flatten their last maps instead of averaging them"
    )
    if cam_empty:
        st.info(f"Grad-CAM finds no evidence for {names[index]} in {cam_layer}: {why}.")
    elif cam_layer != convs[-1]:
        st.caption(
            f"Grad-CAM is drawn on {cam_layer}, because {convs[-1]} shows no evidence for "
            f"{names[index]}: {why}."
        )
    example = ", say the gap that would close a 4 into a 9" if choice.dataset == "mnist" else ""
    st.caption(
        "Try a class the model did not choose: its evidence often sits where the image "
        f"differs from that class{example}. An early Grad-CAM layer gives a finer but "
        "noisier map."
    )


def unlikely_note(name: str, probability: float) -> str:
    """Why the maps of a class the model all but rules out must not be read as evidence."""
    return (
        f"The model gives {name} {probability:.1%}: it sees almost nothing of a {name} "
        f"here. Each map is stretched to its own strongest value, so the heatmaps show what "
        f"little speaks for {name}, not evidence the model believes."
    )


def pattern_view(choice: catalog.TrainedModel, model, epoch: int | None) -> None:
    st.markdown(
        "What would make one filter fire as strongly as possible? Starting from faint noise, "
        "the image itself is changed step by step along the gradient of that filter's "
        "activation (activation maximisation). First-layer filters give edges and stripes; "
        "deeper filters give textures and pieces of shapes."
    )
    layers = [layer.name for layer in inspection.conv_layers(model)]
    left, middle, right = st.columns([1, 1, 1], vertical_alignment="bottom")
    name = left.selectbox("Layer", layers, key=f"inspect_am_layer-{choice.key}")
    count = int(model.get_layer(name).output.shape[-1])
    index = middle.number_input(
        f"Filter (0 to {count - 1})", 0, count - 1, key=f"inspect_am_filter-{choice.key}-{name}"
    )
    job = (choice.key, epoch, name, int(index))
    done = st.session_state.setdefault(session.INSPECT_PATTERNS_DONE, set())
    if right.button(
        "Find its pattern", icon=":material/auto_awesome:", key="inspect_am_run", type="primary"
    ):
        done.add(job)
    if job not in done:
        st.caption(f"The search takes a few seconds ({AM_STEPS} gradient steps).")
        return
    with st.spinner("Searching for the pattern…"):
        png, before, after = pattern_result(*job)
    left, right = st.columns([2, 3])
    with left:
        st.caption(f"What {name} filter {index} looks for")
        show_png(png, f"{name}-filter-{index}-pattern", "png-pattern")
    right.caption(
        f"The filter's mean activation rose from {before:.2f} on the starting noise to "
        f"{after:.2f} on this image. If it stayed near 0, the filter is silent for almost "
        "any input: a dead filter, common when the learning rate was high."
    )


# ---------------------------------------------------------------- the page

choice = model_chooser(dataset, key=session.INSPECT_MODEL)
if choice is None:
    st.stop()

with st.container(border=True):
    setup, picture = st.columns([3, 1])
    with setup:
        epoch = choose_epoch(choice.key, session.INSPECT_EPOCH, EPOCH_CAPTION)
        picked = choose_input(choice)
    if picked is None:
        st.stop()
    try:
        model, predictor = model_at(choice.key, epoch)
    except catalog.TrainedModelError as exc:
        st.error(str(exc))
        st.stop()
    described, x = picked
    probs = predictor.predict_proba(x)[0]
    best = int(np.argmax(probs))
    picture.image(
        pixel_image(np.round(x * 255), 140),
        caption=f"{described}: the model says {choice.class_names[best]} ({probs[best]:.1%})",
    )

tabs = st.tabs(TABS, key=session.INSPECT_TAB, on_change="rerun")
if tabs[0].open:
    with tabs[0]:
        network_view(choice, model, epoch, x)
views = (
    lambda: filters_view(choice, model, epoch),
    lambda: feature_maps_view(choice, model, epoch, x),
    lambda: saliency_view(choice, model, epoch, x, probs),
    lambda: pattern_view(choice, model, epoch),
)
for tab, view in zip(tabs[1:], views, strict=True):
    if tab.open:
        with tab:
            if inspection.conv_layers(model):
                view()
            else:
                st.info("This model has no convolution layers, so there are no filters or maps.")
