"""CNN Lab: the entry point. Navigation over the pages and the shared sidebar; nothing else."""

import gc

import streamlit as st

from lab_pages._shared import dataset_sidebar

st.set_page_config(page_title="CNN Lab", page_icon=":material/neurology:", layout="wide")


@st.cache_resource(show_spinner=False)
def freeze_startup_objects() -> bool:
    """Imports what the pages use, then takes those long-lived objects out of garbage
    collection.

    After every script run Keras' clear_session (which Streamlit calls) collects garbage in
    full; that walked TensorFlow's, pandas', Altair's and the lab's hundreds of thousands of
    long-lived objects, most of the CPU a Predict click cost the server with a classroom
    connected (benchmarks/classroom_ws.py). gc.freeze moves them, once per server, to a
    generation that collections skip. Importing the pages' libraries first matters: what is
    imported after the freeze is walked again on every run.
    """
    import altair  # noqa: F401 - the pages import all of these anyway; most of the heap
    import pandas  # noqa: F401 - is theirs
    import streamlit_drawable_canvas  # noqa: F401
    import tensorflow  # noqa: F401

    import cnn_core.evaluation  # noqa: F401
    import cnn_core.inference  # noqa: F401
    import cnn_core.inspection  # noqa: F401
    import cnn_core.plots  # noqa: F401
    import cnn_core.preprocess  # noqa: F401
    import cnn_core.presets  # noqa: F401
    import cnn_core.sharing  # noqa: F401
    import cnn_core.trained  # noqa: F401

    gc.collect()
    gc.freeze()
    return True


freeze_startup_objects()

PAGES = [
    st.Page("lab_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("lab_pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("lab_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("lab_pages/predict.py", title="Predict", icon=":material/draw:"),
    st.Page("lab_pages/inspect.py", title="Inspect", icon=":material/visibility:"),
    st.Page("lab_pages/evaluate.py", title="Evaluate", icon=":material/grid_on:"),
    st.Page("lab_pages/learn.py", title="Learn", icon=":material/school:"),
]

page = st.navigation(PAGES)
dataset_sidebar()
page.run()
