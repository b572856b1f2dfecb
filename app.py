"""CNN Lab: the entry point. Navigation over the pages and the shared sidebar; nothing else."""

import gc

import streamlit as st

from lab_pages._shared import dataset_sidebar

st.set_page_config(page_title="CNN Lab", page_icon=":material/neurology:", layout="wide")


@st.cache_resource(show_spinner=False)
def freeze_startup_objects() -> bool:
    """Takes the objects TensorFlow and Keras create at import out of garbage collection.

    After every script run Streamlit collects garbage twice in full (runner.postScriptGC and
    keras.backend.clear_session); each walked TensorFlow's hundreds of thousands of
    long-lived objects, some 300 ms of the ~550 ms a Predict click cost the server
    (benchmarks/classroom_ws.py). gc.freeze moves them, once per server, to a generation
    that collections skip.
    """
    import tensorflow  # noqa: F401 - the pages import it anyway; most of the heap is its own

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
