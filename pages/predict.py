"""Predict: draw a digit or upload images, and see what the model answers and why it saw it so."""

import weakref

import numpy as np
import streamlit as st
from PIL import Image
from streamlit_drawable_canvas import st_canvas

from cnn_core import catalog
from cnn_core.data import decoding
from cnn_core.explain import inference, preprocess
from cnn_core.models import test_time
from pages import _session as session
from pages._shared import (
    cached_dataset,
    cached_model,
    model_chooser,
    pixel_image,
    probability_chart,
)

CANVAS_SIZE = 280
STEP_SIZE = 96  # each preprocessing step is shown this wide
GALLERY_SIZE = 16
GALLERY_COLUMNS = 8
GALLERY_TILE = 84  # pixels: every tile of the gallery is this wide
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]
GALLERY_CACHE = session.GALLERY_CACHE

dataset = session.current_dataset()
st.title("Predict")
choice = model_chooser(dataset)
if choice is None:
    st.stop()
if choice.key.startswith(catalog.PRETRAINED_PREFIX):
    st.caption(
        "You have not trained a model on this dataset yet, so the lab's shipped model is used."
    )
try:
    model, predictor = cached_model(choice.key)
except catalog.TrainedModelError as exc:
    st.error(str(exc))
    st.stop()
mnist_style = preprocess.reads_digits(choice)


def step_picture(pixels: np.ndarray) -> Image.Image:
    """One step on a black square: a tall, thin "1" stays tall and thin. Small steps keep
    their hard pixels; a photo is shrunk smoothly."""
    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.uint8) * 255
    square = preprocess.square_on_black(preprocess.thumbnail(pixels, 2 * STEP_SIZE))
    if square.shape[0] > STEP_SIZE:
        return Image.fromarray(square).resize((STEP_SIZE, STEP_SIZE), Image.Resampling.LANCZOS)
    return pixel_image(square, STEP_SIZE)


def show_steps(steps: list[tuple[str, np.ndarray]], slots: int | None = None) -> None:
    """The steps side by side, each captioned, in `slots` columns (default: one each)."""
    columns = st.columns(max(slots or len(steps), len(steps)))
    for col, (caption, pixels) in zip(columns, steps, strict=False):
        col.image(step_picture(pixels), caption=caption, width=STEP_SIZE)


def gallery_predictions(ds, predictor, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The gallery's test images and their probabilities, computed once per model, dataset and
    shuffle: the whole page reruns when a learner comes back to it or the sidebar changes,
    and the gallery's 16 images are not predicted again then.

    The cache holds weak references, so it matches only the very model and dataset objects
    it was computed with (a downloaded dataset replaces the cached one under the same name).
    """
    cached = st.session_state.get(GALLERY_CACHE)
    if cached is not None:
        ds_ref, predictor_ref, cached_seed, picks, probs = cached
        if ds_ref() is ds and predictor_ref() is predictor and cached_seed == seed:
            return picks, probs
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(ds.y_test), size=GALLERY_SIZE, replace=False)
    probs = inference.predict_in_batches(predictor, ds.x_test[picks])
    st.session_state[GALLERY_CACHE] = (weakref.ref(ds), weakref.ref(predictor), seed, picks, probs)
    return picks, probs


def show_prediction(probs: np.ndarray, class_names, average_flips: bool = False) -> None:
    """The answer, how sure it is in words (it must pick a class), and every class's bar;
    `average_flips` says the answer averages the image and its mirror (test_time)."""
    best = int(np.argmax(probs))
    # No metric delta: Streamlit draws it with an arrow, as if the value had changed.
    st.metric("Prediction", class_names[best])
    st.caption(inference.certainty_sentence(probs, class_names))
    if average_flips:
        st.caption(test_time.EXPLANATION)
    probability_chart(probs, class_names)


def look_inside_button(choice, label: str, key: str) -> None:
    """To Inspect's whole-network view, on this very image (the latest one kept)."""
    if st.button(label, icon=":material/visibility:", key=key,
                 help="Every layer of the network at work on it, and every number behind "
                 "any unit"):  # fmt: skip
        session.open_network_in_inspect(choice.key)
        st.switch_page("pages/inspect.py")


# Each tab is a fragment: a stroke, an upload or a shuffle reruns its own tab, not the page
# (the model chooser, the sidebar, the other tabs' images). With a classroom drawing at once
# that is most of the server's work per stroke (RELIABILITY.md).


@st.fragment
def draw_panel(choice, predictor, mnist_style: bool) -> None:
    if not mnist_style:
        st.info("Drawing suits digit models (28×28, white on black). Use Upload for this model.")
        return
    left, right = st.columns([1, 1])
    with left:
        width = st.slider("Stroke width", 8, 40, 20, key="stroke")
        if st.button("Clear", icon=":material/ink_eraser:", key="clear"):
            session.next_seed(session.CANVAS_ROUND)
        canvas = st_canvas(
            stroke_width=width,
            stroke_color="#FFFFFF",
            background_color="#000000",
            height=CANVAS_SIZE,
            width=CANVAS_SIZE,
            drawing_mode="freedraw",
            return_image_data=True,
            key=f"canvas-{session.canvas_round()}",
        )
    with right:
        rgba = canvas.image_data if canvas is not None else None
        steps = None if rgba is None else preprocess.prepare_digit(preprocess.canvas_to_gray(rgba))
        if steps is None or steps.is_empty:
            st.info("Draw a digit on the black square with your mouse or finger.")
            return
        no_digit = preprocess.judge_drawing(steps.raw)
        if no_digit is not None:
            st.warning(no_digit.drawing_message)
            return
        show_prediction(predictor.predict_proba(steps.model_input)[0], choice.class_names)
        # The Inspect page looks inside the network for this same drawing.
        session.keep_latest_image("your drawing", steps.model_input)
        look_inside_button(choice, "Look inside this drawing", "look_inside_drawing")
    st.markdown(
        "**What the model receives**: like MNIST's own digits, your drawing is cropped to its "
        "ink, fitted into 20×20 keeping its shape, then centred by its centre of mass in 28×28."
    )
    show_steps(
        [("canvas", steps.raw), ("cropped", steps.cropped),
         ("20×20 fit", steps.fitted), ("28×28 centred", steps.centered)]
    )  # fmt: skip


@st.fragment
def upload_panel(choice, predictor) -> None:
    files = st.file_uploader(
        "Images (PNG, JPEG, GIF, BMP, WebP)",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key="uploads",
    )
    for number, file in enumerate(files or []):
        with st.container(border=True):
            try:
                image = decoding.decode_image(file.getvalue(), file.name)
                steps = preprocess.prepare_upload_for(image, choice)
            except decoding.ImageRejected as exc:
                st.error(str(exc))
                continue
            st.markdown(f"**{file.name}**")
            if steps.no_digit is not None:
                st.warning(steps.no_digit.message)
                show_steps(upload_steps(steps)[:2], slots=5)  # what it saw: the photo, its ink
                continue
            probs = predictor.predict_proba(steps.model_input)[0]
            session.keep_latest_image(file.name, steps.model_input)
            look_inside_button(choice, "Look inside for this image", f"look_inside-{number}")
            left, right = st.columns([1, 1])
            with left:
                show_prediction(probs, choice.class_names, predictor.average_flips)
            with right:
                st.markdown(upload_explanation(steps))
                show_steps(upload_steps(steps))


def upload_steps(steps: preprocess.UploadSteps) -> list[tuple[str, np.ndarray]]:
    """The pictures from the upload to the model input, captioned."""
    if steps.paper is None:  # a model of whole pictures
        return [("upload", steps.original), ("model input", steps.resized)]
    digit = steps.digit
    found = [
        ("photo (grey)", steps.paper.working),
        ("paper removed", steps.paper.paper_removed),
        ("ink", steps.paper.strokes),
    ]
    if digit.cropped is None:
        return found
    return [*found, ("cropped", digit.cropped), ("28×28 centred", digit.centered)]


def upload_explanation(steps: preprocess.UploadSteps) -> str:
    if steps.paper is None:
        turned = ", turned light on dark like the model's training images" if steps.inverted else ""
        return (
            f"**What the model receives**: the whole picture{turned}, resized to the size "
            "of its training images."
        )
    flip = "dark ink on light paper, turned into light on dark" if steps.inverted else (
        "light ink on a dark background"
    )  # fmt: skip
    return (
        f"**What the model receives**: {flip}. The paper's lighting and shadows are "
        "divided out, the ink is the part clearly darker than its paper (specks and stray "
        "marks left out), then it is cropped, fitted into 20×20 and centred in 28×28 like "
        "MNIST's digits."
    )


@st.fragment
def gallery_panel(choice, predictor) -> None:
    try:
        ds = cached_dataset(choice.dataset, choice.dataset_fingerprint)
    except Exception as exc:  # an unavailable dataset only hides the gallery
        st.info(f"The test images are not available: {exc}")
        return
    if st.button("New images", icon=":material/shuffle:", key="gallery_shuffle"):
        session.next_seed(session.GALLERY_SEED)
    picks, probs = gallery_predictions(ds, predictor, session.seed(session.GALLERY_SEED))
    grid = st.columns(GALLERY_COLUMNS)
    for slot, (index, p) in enumerate(zip(picks, probs, strict=True)):
        guess, truth = int(np.argmax(p)), int(ds.y_test[index])
        # Every tile says the same things, so a mistake's tile is not taller than the rest.
        mark = "✓" if guess == truth else "✗"
        caption = f"{mark} {ds.class_names[guess]} {p[guess]:.0%} · is {ds.class_names[truth]}"
        # A fixed width: left to itself, Streamlit sizes an image by its caption's width.
        grid[slot % GALLERY_COLUMNS].image(
            pixel_image(ds.x_test[index], GALLERY_TILE), caption=caption, width=GALLERY_TILE
        )


draw_tab, upload_tab, gallery_tab = st.tabs(["Draw", "Upload", "Test gallery"])
with draw_tab:
    draw_panel(choice, predictor, mnist_style)
with upload_tab:
    upload_panel(choice, predictor)
with gallery_tab:
    gallery_panel(choice, predictor)
