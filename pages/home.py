"""Home: what the lab is, which datasets are ready, and a first path through it."""

import streamlit as st

from cnn_core.data import datasets

st.title("CNN Lab")
st.markdown(
    "CNN Lab is a hands-on lab for learning how convolutional neural networks see images. "
    "You pick a dataset and a model, train it while accuracy and loss draw themselves live, "
    "and then look inside: the filters it learned, the feature maps of your own drawing, and "
    "the mistakes behind its confusion matrix. Everything runs on this computer, offline."
)

st.subheader("A first path through the lab")
steps = [
    ("pages/predict.py", "1. Draw a digit", ":material/draw:",
     "and watch the shipped model read it as you draw."),
    ("pages/inspect.py", "2. Look inside", ":material/visibility:",
     "the filters and the feature maps your drawing lights up."),
    ("pages/train.py", "3. Train your own", ":material/model_training:",
     "network, stop and resume it, and compare it with others."),
    ("pages/evaluate.py", "4. Find its mistakes", ":material/grid_on:",
     "in the confusion matrix: click a cell to see the images behind it."),
]  # fmt: skip
for target, label, icon, rest in steps:
    left, right = st.columns([1, 3], vertical_alignment="center")
    left.page_link(target, label=label, icon=icon)
    right.markdown(rest)
st.caption("Curious how a convolution works at all? The Learn page computes one step by step.")


def markdown_table(rows: list[dict[str, str]]) -> str:
    """Rows of the same keys as a Markdown table, the keys as its header."""

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ") or " "

    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines)


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
# A Markdown table wraps long cells (the embedded subset's description), where an
# interactive dataframe cuts them at its column width; and unlike st.table it needs no
# pandas and pyarrow, which would add half a second to the lab's very first page.
st.markdown(markdown_table(rows))
