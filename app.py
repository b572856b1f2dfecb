"""CNN Lab: the entry point. Navigation over the pages and the shared sidebar; nothing else."""

import sys

import streamlit as st

from pages._shared import dataset_sidebar, import_tensorflow_in_background, wait_for_tensorflow

st.set_page_config(page_title="CNN Lab", page_icon=":material/neurology:", layout="wide")


@st.cache_resource(show_spinner=False)
def keep_keras_state_between_runs() -> bool:
    """Stops Streamlit from resetting Keras after every script run; figures are still closed.

    Streamlit's script runner calls `keras.backend.clear_session()` after each run, for
    scripts that build a model every time. This server builds none per run: its models are
    loaded once and shared read-only (st.cache_resource), and each predicts through a traced
    function (cnn_core.explain.inference). clear_session throws that function's kernels away, so
    every prediction after it paid ~40 ms of CPU to instantiate them again (1.4 ms warm),
    plus a full garbage collection that held the interpreter lock for every session
    (RELIABILITY.md: the classroom's p95 with 20 learners). Python's own collector still
    runs. The hook is Streamlit's private `_clean_problem_modules`; tests/pages/test_app_home.py
    fails if a Streamlit upgrade renames it, instead of the lab slowing down unnoticed.
    """
    from streamlit.runtime.scriptrunner import script_runner

    def close_figures() -> None:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close("all")

    if not hasattr(script_runner, "_clean_problem_modules"):
        return False
    script_runner._clean_problem_modules = close_figures
    return True


keep_keras_state_between_runs()

# The pages whose scripts import TensorFlow: they wait for its background import with a
# spinner. Home, Data and Learn render without it (tests/app/test_first_page.py).
NEEDS_TENSORFLOW = {"train", "predict", "inspect", "evaluate"}
PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/predict.py", title="Predict", icon=":material/draw:"),
    st.Page("pages/inspect.py", title="Inspect", icon=":material/visibility:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/grid_on:"),
    st.Page("pages/learn.py", title="Learn", icon=":material/school:"),
]

page = st.navigation(PAGES)
dataset_sidebar()
if page.url_path in NEEDS_TENSORFLOW:
    wait_for_tensorflow()
page.run()
# Only now, once a page has been drawn: TensorFlow's import holds the interpreter lock for
# seconds at a time, which would hold up a first page drawn alongside it (BENCHMARKS.md).
import_tensorflow_in_background()
