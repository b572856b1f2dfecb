"""Widgets and cached loaders shared by the pages. UI only: the logic lives in cnn_core."""

import gc
import threading

import numpy as np
import streamlit as st
from PIL import Image

from cnn_core.data import datasets, versions
from cnn_core.data.dataset import USER_PREFIX, Dataset, DatasetError
from pages import _session as session
from pages._session import (
    CHOSEN_MODEL,
    CHOSEN_MODEL_DATASET,
    CHOSEN_MODEL_LABEL,
    DEFAULT_DATASET,
    URL_DATASET,
    URL_MODEL,
)

# This script run's sidebar line naming the chosen model. Each session's script runs in its
# own thread, so a page further down the same run fills the line its sidebar drew.
_this_run = threading.local()

TENSORFLOW_SPINNER = "Loading TensorFlow (first start only)…"
_tensorflow_ready = threading.Event()  # set once the background import has ended
_tensorflow_thread: threading.Thread | None = None
_tensorflow_start = threading.Lock()


def _import_tensorflow() -> None:
    """Imports TensorFlow and Keras, then takes what they created out of garbage collection.

    A full collection walks every object of the process while holding the interpreter lock
    that all sessions share; TensorFlow's import leaves hundreds of thousands of them.
    gc.freeze moves them, once per server, to a generation that collections skip
    (RELIABILITY.md: with 20 learners it took a Predict click from 468 to 192 ms of server
    CPU when Streamlit still collected twice after every run).
    """
    try:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401

        gc.collect()
        gc.freeze()
    finally:  # a failed import is raised again where a page imports it, with its message
        _tensorflow_ready.set()


def import_tensorflow_in_background() -> None:
    """Starts importing TensorFlow in a thread of its own, once per process (app.py once a
    page has been drawn, scripts/serve.py at the latest a few seconds after the start).

    Its import takes most of a server's start (8-13 s on two cores); the pages that need no
    model render meanwhile, and those that do wait in `wait_for_tensorflow`.
    """
    global _tensorflow_thread
    with _tensorflow_start:
        if _tensorflow_thread is None:
            _tensorflow_thread = threading.Thread(
                target=_import_tensorflow, name="import-tensorflow", daemon=True
            )
            _tensorflow_thread.start()


def wait_for_tensorflow() -> None:
    """Returns once TensorFlow is imported, with a spinner while the background import runs.

    A page that needs TensorFlow calls it before importing anything that imports it, so
    that no page waits without a word, and no two threads import TensorFlow at once.
    """
    import_tensorflow_in_background()  # where no one started it: AppTest, `streamlit run`
    if not _tensorflow_ready.is_set():
        with st.spinner(TENSORFLOW_SPINNER):
            _tensorflow_ready.wait()


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=4)
def _dataset_copy(name: str, version: str, fingerprint: str | None) -> Dataset:
    return versions.load_dataset_version(name, fingerprint)


def cached_dataset(name: str, fingerprint: str | None = None) -> Dataset:
    """One read-only copy of a dataset shared by every session.

    Keyed by the dataset's version too, so a re-import or a download is seen at once.
    With a run's fingerprint it is the exact images that run trained on, or DatasetGone.
    """
    return _dataset_copy(name, versions.dataset_version(name), fingerprint)


def dataset_label(name: str) -> str:
    ready = datasets.is_available(name)
    return datasets.dataset_title(name) + ("" if ready else " (not available)")


def from_url(key: str, choices) -> str | None:
    """A choice kept in the page's address (``?dataset=...&model=...``), if it is valid, so
    a reload or a bookmark restores it; anything else in the address is ignored."""
    value = st.query_params.get(key)
    return value if value in choices else None


def keep_in_url(key: str, value: str) -> None:
    """Writes a choice into the address (page switches clear it, so every run writes it)."""
    if st.query_params.get(key) != value:
        st.query_params[key] = value


def dataset_sidebar() -> str:
    """The dataset chooser in the sidebar; its choice is kept for the whole session, and in
    the address so that it survives a reload."""
    names = datasets.list_datasets()
    if st.session_state.get(session.DATASET) not in names:
        st.session_state[session.DATASET] = from_url(URL_DATASET, names) or DEFAULT_DATASET
    chosen = st.sidebar.selectbox("Dataset", names, key=session.DATASET, format_func=dataset_label)
    keep_in_url(URL_DATASET, chosen)
    st.sidebar.caption(f"In use: {datasets.active_title(chosen)}")
    _this_run.model_line = st.sidebar.empty()
    # A model chosen for another dataset is not the one in use: a page with a model chooser
    # names this dataset's in the same run.
    if st.session_state.get(CHOSEN_MODEL_DATASET) == chosen:
        show_chosen_model()
    return chosen


def show_chosen_model() -> None:
    """Names the chosen model in this run's sidebar line (where the sidebar was drawn)."""
    line = getattr(_this_run, "model_line", None)
    if line is not None and st.session_state.get(CHOSEN_MODEL_LABEL):
        line.caption(f"Model: {st.session_state[CHOSEN_MODEL_LABEL]}")


def load_chosen_dataset(name: str, fingerprint: str | None = None) -> Dataset | None:
    """The dataset (a run's version of it, given its fingerprint), or None after showing
    what would make it available."""
    try:
        return cached_dataset(name, fingerprint)
    except DatasetError as exc:
        st.warning(str(exc))
        return None


def pixel_image(pixels: np.ndarray, size: int = 84) -> Image.Image:
    """A small image enlarged with hard pixel edges, so a 28×28 digit stays readable."""
    array = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels
    return Image.fromarray(array.astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST)


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def cached_model(key: str):
    """A trained model shared read-only by every session (never trained further)."""
    from cnn_core import catalog
    from cnn_core.explain import inference

    model = catalog.load_trained(key)
    return model, inference.Predictor(model, average_flips=catalog.averages_flips(key))


@st.cache_resource(show_spinner="Loading that epoch's checkpoint…", max_entries=16)
def cached_checkpoint(key: str, epoch: int):
    """A run's model as it was after one epoch, shared read-only like cached_model."""
    from cnn_core import catalog
    from cnn_core.explain import inference

    model = catalog.load_checkpoint(key, epoch)
    return model, inference.Predictor(model, average_flips=catalog.averages_flips(key))


def model_at(key: str, epoch: int | None):
    """(model, predictor) of the final model (epoch None) or of one epoch's checkpoint."""
    return cached_model(key) if epoch is None else cached_checkpoint(key, epoch)


def choose_epoch(key: str, widget_prefix: str, caption: str) -> int | None:
    """The replay slider of a run with several checkpoints, captioned with what it changes
    on the page; None means the final model (or a model without checkpoints)."""
    from cnn_core import catalog

    epochs = catalog.checkpoint_epochs(key)
    if len(epochs) < 2:
        return None
    chosen = st.select_slider(
        "Replay training: the model after epoch", options=epochs, value=epochs[-1],
        key=session.epoch_key(widget_prefix, key),
        format_func=lambda e: "0 (before training)" if e == 0 else str(e),  # the untrained net
    )  # fmt: skip
    st.caption(caption)
    return None if chosen == epochs[-1] else int(chosen)


def show_png(png: bytes, name: str, key: str) -> None:
    """A figure's PNG with a button that downloads it as <name>.png."""
    st.image(png)
    st.download_button(
        "PNG",
        png,
        file_name=f"{name}.png",
        mime="image/png",
        key=key,
        icon=":material/download:",
        on_click="ignore",
    )


def unavailable_hint(dataset: str) -> str:
    """What makes a dataset without models usable: its data first, then a training run."""
    title = datasets.dataset_title(dataset)
    if dataset.startswith(USER_PREFIX):
        get = "Import its images again on the Data page"
    else:
        get = f"Download it (needs internet): `{datasets.download_hint(dataset)}`"
    return (
        f"No trained model for {title}, and its images are not on this computer, so none "
        f"can be trained yet. {get}, then train a model on the Train page, or choose MNIST "
        "in the sidebar to use the shipped model."
    )


def model_chooser(dataset: str, key: str = session.PREDICT_MODEL):
    """Pick a trained model for the dataset; returns its TrainedModel or None with a hint."""
    from cnn_core import catalog

    choices = catalog.list_trained(dataset)
    if not choices and not datasets.is_available(dataset):  # nothing can be trained on it
        st.info(unavailable_hint(dataset))
        return None
    if not choices:
        st.info(
            f"No trained model for {datasets.dataset_title(dataset)} yet. Train one on the "
            "Train page, or choose MNIST in the sidebar to use the shipped model."
        )
        return None
    by_key = {c.key: c for c in choices}
    # One choice for the whole session: each page's widget follows CHOSEN_MODEL, and a
    # change on any page updates it (in on_change, so before the sidebar is drawn).
    wanted = st.session_state.get(CHOSEN_MODEL) or from_url(URL_MODEL, by_key)
    if wanted in by_key:
        st.session_state[key] = wanted
    elif st.session_state.get(key) not in by_key:
        st.session_state[key] = choices[0].key

    def remember() -> None:
        chosen = by_key[st.session_state[key]]
        st.session_state[CHOSEN_MODEL] = chosen.key
        st.session_state[CHOSEN_MODEL_LABEL] = chosen.label
        st.session_state[CHOSEN_MODEL_DATASET] = dataset

    chosen = st.selectbox(
        "Model", list(by_key), key=key, format_func=lambda k: by_key[k].label, on_change=remember
    )
    if st.session_state.get(CHOSEN_MODEL) != chosen:
        remember()
    keep_in_url(URL_MODEL, chosen)
    show_chosen_model()
    return by_key[chosen]


def probability_chart(probs, class_names) -> None:
    """Probability bars for every class, in class order, 0 to 100%.

    A Vega-Lite spec of its own rather than st.bar_chart, which builds and validates an
    Altair chart on every call: 22-30 ms of the server's single Python thread against 2 ms,
    on the page a classroom reruns with every stroke (RELIABILITY.md).
    """
    values = [
        {"class": str(name), "probability": float(p)}
        for name, p in zip(class_names, probs, strict=True)
    ]
    st.vega_lite_chart(
        {
            "data": {"values": values},
            "mark": {"type": "bar", "tooltip": True},
            "encoding": {
                "y": {"field": "class", "type": "nominal", "sort": None, "title": None,
                      "axis": {"labelOverlap": False}},  # every class named
                "x": {"field": "probability", "type": "quantitative", "title": "probability",
                      "scale": {"domain": [0, 1]}, "axis": {"format": "%"}},
            },
            "height": 260,
        },
        width="stretch",
    )  # fmt: skip
