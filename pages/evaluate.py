"""Evaluate: a trained model on the whole test split, and the test images behind its numbers."""

import numpy as np
import pandas as pd
import streamlit as st

from cnn_core import catalog
from cnn_core.explain import evaluation, inference, plots
from cnn_core.models import summaries, test_time
from pages import _session as session
from pages._shared import (
    cached_dataset,
    choose_epoch,
    load_chosen_dataset,
    model_at,
    model_chooser,
    pixel_image,
)

CELL_LIMIT = 32
EXAMPLES = 16
IMAGE_SIZE = 96
CELL_PX = 46  # width of a class column in the clickable matrix
INDEX_PX = 110  # and of its first column, the true classes
ROW_PX = 35  # st.dataframe's row height: tables sized to show every class without scrolling
TOOLBAR_PX = 36  # a dataframe's toolbar (44 px) less the 1 rem gap above the table
INDEX_NAME = "true \\ predicted"
EPOCH_CAPTION = (
    "Every number and image below is for the model as it was after this epoch: watch "
    "the confusion matrix empty out off its diagonal as training goes on."
)

dataset = session.current_dataset()
st.title("Evaluate")
st.markdown(
    "How good is a trained model on images it never saw during training? Here it answers "
    "every image of its dataset's test split. Look beyond the accuracy: which classes does "
    "it mix up, and what do those mistakes look like?"
)


# ---------------------------------------------------------------- models and cached scores


@st.cache_data(show_spinner="Predicting every test image…", max_entries=32)
def test_scores(
    key: str,
    epoch: int | None,
    dataset: str,
    source: str,
    class_names: tuple[str, ...],
    fingerprint: str | None = None,
) -> tuple[np.ndarray, evaluation.Evaluation]:
    """The probabilities for the whole test split and their scores, once per model and epoch."""
    _, predictor = model_at(key, epoch)
    ds = cached_dataset(dataset, fingerprint)  # the images the run trained on
    probs = inference.predict_in_batches(predictor, ds.x_test)
    return probs, evaluation.evaluate_predictions(ds.y_test, probs, class_names)


@st.cache_data(show_spinner=False, max_entries=64)
def confusion_png(matrix: np.ndarray, names: tuple[str, ...], normalised: bool, title: str):
    return plots.figure_png(plots.confusion_figure(matrix, names, normalised, title=title))


# ---------------------------------------------------------------- views


def image_row(ds, indices: np.ndarray, captions: list[str]) -> None:
    if len(indices) == 0:
        st.caption("None.")
        return
    pictures = [pixel_image(ds.x_test[i], IMAGE_SIZE) for i in indices]
    st.image(pictures, caption=captions, width=IMAGE_SIZE)


def report_view(ev: evaluation.Evaluation, file_stem: str) -> None:
    st.subheader("Per-class report")
    st.markdown(
        "**Precision**: of the images the model called this class, the share that were. "
        "**Recall**: of the images of this class, the share it found. **F1** balances the "
        "two. A class with low recall is often the row of the matrix with big cells off "
        "its diagonal."
    )
    records = ev.report_records()
    score = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(
        pd.DataFrame(records),
        hide_index=True,
        height=(len(records) + 1) * ROW_PX + 3,
        column_config={
            "class": st.column_config.TextColumn(width=110),
            "precision": score,
            "recall": score,
            "f1": score,
        },
        key="evaluate_report",
    )
    st.download_button(
        "Report (CSV)",
        evaluation.report_csv(ev),
        file_name=f"{file_stem}-report.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key="evaluate_report_csv",
    )


def confusion_view(ev: evaluation.Evaluation, file_stem: str, normalised: bool) -> None:
    st.subheader("Confusion matrix")
    st.markdown(
        "Row = the true class, column = the model's answer. The diagonal holds the right "
        "answers; every other cell counts one kind of mistake. Row-normalised, each row "
        "shows the share of that class, so rare and common classes compare fairly."
    )
    matrix = ev.confusion_normalised if normalised else ev.confusion
    png = confusion_png(matrix, tuple(ev.class_names), normalised, "")
    st.image(png)
    left, right = st.columns(2)
    left.download_button(
        "Figure (PNG)",
        png,
        file_name=f"{file_stem}-confusion.png",
        mime="image/png",
        icon=":material/download:",
        on_click="ignore",
        key="evaluate_confusion_png",
    )
    right.download_button(
        "Matrix (CSV)",
        evaluation.confusion_csv(ev, normalised),
        file_name=f"{file_stem}-confusion{'-normalised' if normalised else ''}.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key="evaluate_confusion_csv",
    )


def styled_matrix(ev: evaluation.Evaluation, normalised: bool):
    """The matrix as a table: mistakes shaded by size, the diagonal in green."""
    names = list(ev.class_names)
    matrix = ev.confusion_normalised if normalised else ev.confusion
    frame = pd.DataFrame(matrix, index=pd.Index(names, name=INDEX_NAME), columns=names)
    diagonal = np.eye(len(names), dtype=bool)
    mistakes = np.where(diagonal, 0, matrix)
    peak = float(mistakes.max()) or 1.0
    green = np.where(diagonal, "background-color: #d8eed3", "")
    return (
        frame.style.background_gradient(cmap="Oranges", axis=None, gmap=mistakes, vmin=0, vmax=peak)
        .apply(lambda _: green, axis=None)
        .format("{:.0%}" if normalised else "{:d}")
    )


def open_in_inspect(choice: catalog.TrainedModel, epoch: int | None, index: int) -> None:
    """Show one test image on the Inspect page, for the same model and epoch."""
    epochs = catalog.checkpoint_epochs(choice.key)
    replayed = (epochs[-1] if epoch is None else epoch) if epochs else None
    session.open_test_image_in_inspect(choice.key, choice.dataset, index, replayed)
    st.switch_page("pages/inspect.py")


@st.fragment
def cell_view(choice, epoch, ev: evaluation.Evaluation, probs: np.ndarray, ds, normalised: bool):
    """The matrix as a clickable table; the chosen cell's test images below it."""
    st.subheader("The images behind a cell")
    names = list(ev.class_names)
    table, side = st.columns([2, 1], gap="medium")
    with table:
        # The table's toolbar floats TOOLBAR_PX above it on hover: room, so that it never
        # covers the heading (it did wherever a few classes made the table narrow).
        st.space(TOOLBAR_PX)
        worst = evaluation.largest_mistake(ev.confusion)
        default = {"selection": {"cells": [[worst[0], names[worst[1]]]]}} if worst else None
        event = st.dataframe(
            styled_matrix(ev, normalised),
            key=session.EVALUATE_CELLS,
            on_select="rerun",
            selection_mode="single-cell",
            selection_default=default,
            width="content",
            height=(len(names) + 1) * ROW_PX + 3,
            column_config={
                "_index": st.column_config.Column(width=INDEX_PX),
                **{n: st.column_config.Column(width=CELL_PX, help=n) for n in names},
            },
        )
    chosen = evaluation.selected_cell(event.selection.cells, names)
    if chosen is None and event.selection.cells:  # a cell of another dataset's matrix
        chosen = worst
    with side:
        st.caption(
            "Click a cell of the table to see its test images below. It starts on the most "
            "common mistake: the largest cell off the green diagonal. Colours: green = the "
            "right answers, orange = mistakes, the darker the more of them."
        )
        if chosen is None:
            st.info("No cell is chosen: click one to see the test images behind it.")
            return
        true_class, pred_class = chosen
        found = evaluation.cell_examples(
            ev.y_true, ev.y_pred, probs, true_class, pred_class, limit=CELL_LIMIT
        )
        total = int(ev.confusion[true_class, pred_class])
        shown = f", the {CELL_LIMIT} the model was surest of" if total > CELL_LIMIT else ""
        st.markdown(
            f"**True {names[true_class]}, predicted {names[pred_class]}**: "
            f"{total} test image{'' if total == 1 else 's'}{shown}"
        )
        if total:
            st.caption(
                "Under each image: its number in the test split and how sure the model was "
                f"of {names[pred_class]}. Would you have answered better?"
            )
            index = st.selectbox(
                "Why this answer? Look inside the model for image",
                found.indices.tolist(),
                format_func=lambda i: f"#{i}",
                key=f"evaluate_pick-{true_class}-{pred_class}",
            )
            if st.button("Open in Inspect", icon=":material/visibility:", key="evaluate_open"):
                open_in_inspect(choice, epoch, index)
    with st.container(key="evaluate_cell_images"):
        image_row(ds, found.indices, [f"#{i}: {s:.1%}" for i, s in zip(*found, strict=True)])


def examples_column(column, title: str, caption: str, ds, found, captions: list[str]) -> None:
    """One column of examples: a heading, what they are, and their test images."""
    with column:
        st.subheader(title)
        st.caption(caption)
        image_row(ds, found.indices, captions)


def examples_view(ev: evaluation.Evaluation, probs: np.ndarray, ds) -> None:
    names = ev.class_names
    left, right = st.columns(2, gap="large")
    found = evaluation.confident_mistakes(ev.y_true, probs, EXAMPLES)
    examples_column(
        left, "Most confident mistakes",
        "Wrong answers given with the highest probability. Some are badly written or "
        "even mislabelled; others show a shape the model has not understood.",
        ds, found,
        [f"true {names[ev.y_true[i]]}, predicted {names[ev.y_pred[i]]} ({s:.1%})"
         for i, s in zip(*found, strict=True)],
    )  # fmt: skip
    found = evaluation.unsure_correct(ev.y_true, probs, EXAMPLES)
    examples_column(
        right, "Least confident right answers",
        "Right answers the model was least sure of: the borderline cases, often "
        "between the same classes as the mistakes.",
        ds, found, [f"{names[ev.y_true[i]]} ({s:.1%})" for i, s in zip(*found, strict=True)],
    )  # fmt: skip


# ---------------------------------------------------------------- the page

choice = model_chooser(dataset, key=session.EVALUATE_MODEL)
if choice is None:
    st.stop()
ds = load_chosen_dataset(choice.dataset, choice.dataset_fingerprint)
if ds is None:
    st.stop()
if tuple(ds.input_shape) != tuple(choice.input_shape):
    st.warning(
        f"The test images of {ds.title} are {summaries.format_shape(ds.input_shape)}, but this "
        f"model takes {summaries.format_shape(choice.input_shape)}: it cannot be evaluated on them."
    )
    st.stop()
epoch = choose_epoch(choice.key, session.EVALUATE_EPOCH, EPOCH_CAPTION)
try:
    probs, ev = test_scores(
        choice.key, epoch, choice.dataset, ds.source, choice.class_names, choice.dataset_fingerprint
    )
except (catalog.TrainedModelError, ValueError) as exc:
    st.error(f"This model cannot be evaluated: {exc}")
    st.stop()

file_stem = choice.key.replace(":", "-") + ("" if epoch is None else f"-epoch{epoch}")
mistakes = int(ev.count - np.trace(ev.confusion))
cols = st.columns(4)
cols[0].metric("Test accuracy", f"{ev.accuracy:.2%}")
cols[1].metric("Test loss", f"{ev.loss:.4f}", help="Mean cross-entropy: lower is better.")
cols[2].metric("Test images", f"{ev.count:,}")
cols[3].metric("Mistakes", f"{mistakes:,}")
st.caption(f"Test split of {ds.title}. The model never trained on these images.")
if choice.average_flips:
    st.caption(test_time.EXPLANATION)

normalised = st.toggle("Row-normalised (share of each true class)", key="evaluate_normalised")
report, confusion = st.columns([2, 3], gap="large")
with report:
    report_view(ev, file_stem)
with confusion:
    confusion_view(ev, file_stem, normalised)
st.divider()
cell_view(choice, epoch, ev, probs, ds, normalised)
st.divider()
examples_view(ev, probs, ds)
