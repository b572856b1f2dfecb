"""CNN Lab: the entry point. Navigation over the pages and the shared sidebar; nothing else."""

import streamlit as st

from lab_pages._shared import dataset_sidebar

st.set_page_config(page_title="CNN Lab", page_icon=":material/neurology:", layout="wide")

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
