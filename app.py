"""CNN Lab: the entry point. Navigation over the pages and the shared sidebar; nothing else."""

import streamlit as st

st.set_page_config(page_title="CNN Lab", page_icon="🧠", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
]

page = st.navigation(PAGES)
page.run()
