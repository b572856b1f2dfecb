"""Every st.session_state key the pages keep, and every hand-off from one page to another.

A page writes only its own keys directly; what it hands to another page (the latest
drawing for Inspect, "open this test image in Inspect", the chosen model) goes through the
small functions here, so no page spells out another page's key.
"""

import streamlit as st

DEFAULT_DATASET = "mnist"

# ---------------------------------------------------------------- every page (the sidebar)
DATASET = "dataset"  # the sidebar's dataset chooser
CHOSEN_MODEL = "chosen_model"  # the trained model chosen on any page
CHOSEN_MODEL_LABEL = "chosen_model_label"
CHOSEN_MODEL_DATASET = "chosen_model_dataset"  # the dataset that model was chosen for
URL_DATASET, URL_MODEL = "dataset", "model"  # query parameters that survive a reload

# ---------------------------------------------------------------- Predict
PREDICT_MODEL = "model_key"  # its model chooser
CANVAS_ROUND = "canvas_round"  # "Clear" starts a new canvas widget: canvas-<round>
GALLERY_SEED = "gallery_seed"
GALLERY_CACHE = "gallery_cache"  # the last gallery's picks and probabilities

# ---------------------------------------------------------------- Inspect
LATEST_IMAGE = "inspect_input"  # (description, model input) of the latest drawing or upload
INSPECT_MODEL = "inspect_model"  # its model chooser
INSPECT_SOURCE = "inspect_source"  # the drawing or a test image
INSPECT_SOURCE_TEST = "test"
INSPECT_SOURCE_DRAWING = "drawing"
INSPECT_TAB = "inspect_tab"
INSPECT_SALIENCY_TAB = "Saliency and Grad-CAM"  # the tab Evaluate opens
INSPECT_NETWORK_TAB = "The whole network"  # the tab Predict and Learn open
INSPECT_EPOCH = "inspect_epoch"  # replay slider: inspect_epoch-<model key>
INSPECT_PATTERNS_DONE = "inspect_am_done"  # activation maximisations asked for

# ---------------------------------------------------------------- Evaluate
EVALUATE_MODEL = "evaluate_model"
EVALUATE_EPOCH = "evaluate_epoch"  # replay slider: evaluate_epoch-<model key>
EVALUATE_CELLS = "evaluate_cells"  # the clickable confusion matrix

# ---------------------------------------------------------------- Data
DATA_PENDING = "data_pending_import"  # an import that waits for "replace or keep both"
DATA_FLASH = "data_flash"  # (kind, message, tables) shown once after a rerun
DATA_SAMPLE_SEED = "sample_seed"

# ---------------------------------------------------------------- Learn
LEARN_IMAGE = "learn_image"
LEARN_CUSTOM_FILTER = "learn_custom_filter"
LEARN_FILTER = "learn_filter"
LEARN_PADDING = "learn_padding"
LEARN_STRIDE = "learn_stride"
LEARN_STEP = "learn_step"
LEARN_POOL_STEP = "learn_pool_step"
LEARN_PLAY = "learn_play"

# ---------------------------------------------------------------- Train (pages/train.py)
TRAIN_RUN_ID = "run_id"  # the run watched
TRAIN_COMPARE = "compare"  # the runs compared with it
TRAIN_HISTORIES = "histories"  # each run's live history, read incrementally
TRAIN_CUSTOM_LAYERS = "custom_layers"  # the layer list of the last custom run started
TRAIN_LAYER_EDITOR = "layer_editor"


def current_dataset() -> str:
    """The dataset chosen in the sidebar (the default before the sidebar ran)."""
    return st.session_state.get(DATASET, DEFAULT_DATASET)


def epoch_key(prefix: str, model_key: str) -> str:
    """The session key of a page's replay slider for one model."""
    return f"{prefix}-{model_key}"


def inspect_index_key(dataset: str) -> str:
    """The session key of Inspect's test-image number for one dataset."""
    return f"inspect_index-{dataset}"


def canvas_round() -> int:
    return int(st.session_state.get(CANVAS_ROUND, 0))


def next_seed(key: str) -> int:
    """Counts a "shuffle" button's presses; returns the new seed."""
    st.session_state[key] = st.session_state.get(key, 0) + 1
    return st.session_state[key]


def seed(key: str) -> int:
    return st.session_state.get(key, 0)


# ---------------------------------------------------------------- hand-offs


def keep_latest_image(description: str, model_input) -> None:
    """Predict → Inspect: the latest drawing or upload, as the model sees it."""
    st.session_state[LATEST_IMAGE] = (description, model_input)


def latest_image():
    """(description, model input) of the latest drawing or upload, or None."""
    return st.session_state.get(LATEST_IMAGE)


def open_test_image_in_inspect(model_key: str, dataset: str, index: int, epoch: int | None) -> None:
    """Evaluate → Inspect: the same model (at that replay epoch, unless None), test image
    ``index`` and its saliency tab; the caller then switches page."""
    st.session_state[INSPECT_MODEL] = model_key
    st.session_state[INSPECT_SOURCE] = INSPECT_SOURCE_TEST
    st.session_state[inspect_index_key(dataset)] = int(index)
    st.session_state[INSPECT_TAB] = INSPECT_SALIENCY_TAB
    if epoch is not None:
        st.session_state[epoch_key(INSPECT_EPOCH, model_key)] = epoch


def open_network_in_inspect(model_key: str | None) -> None:
    """Predict or Learn → Inspect: the whole network, on the latest drawing or upload when
    there is one (else a test image), for this model (None: the one Inspect had)."""
    if model_key is not None:
        st.session_state[INSPECT_MODEL] = model_key
    drawn = latest_image() is not None
    st.session_state[INSPECT_SOURCE] = INSPECT_SOURCE_DRAWING if drawn else INSPECT_SOURCE_TEST
    st.session_state[INSPECT_TAB] = INSPECT_NETWORK_TAB


def set_flash(kind: str, message: str, tables: list) -> None:
    """A message (st.<kind>) and (caption, frame) tables shown once, after the next rerun."""
    st.session_state[DATA_FLASH] = (kind, message, tables)


def pop_flash():
    """The message kept by set_flash, once; None when there is none."""
    return st.session_state.pop(DATA_FLASH, None)
