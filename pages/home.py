"""Home: what the lab is, which datasets are ready, and a first path through it."""

import pandas as pd
import streamlit as st

from cnn_core import datasets

st.title("CNN Lab")
st.markdown(
    "CNN Lab is a hands-on lab for learning how convolutional neural networks see images. "
    "You pick a dataset and a model, train it while accuracy and loss draw themselves live, "
    "and then look inside: the filters it learned, the feature maps of your own drawing, and "
    "the mistakes behind its confusion matrix. Everything runs on this computer, offline."
)

st.subheader("Datasets on this machine")
rows = []
for name in datasets.list_datasets():
    status = datasets.dataset_status(name)
    ready = next((s for s in status if s.available), None)
    rows.append(
        {
            "dataset": datasets.dataset_title(name),
            "ready": "yes" if ready else "no",
            "source": ready.description if ready else "—",
            "to get it": "" if ready else status[-1].detail,
        }
    )
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
