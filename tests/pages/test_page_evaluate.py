"""The Evaluate page: its numbers against the same predictions scored here, its cell browser
through AppTest and with real clicks in Chromium, replay of a run, and its error messages."""

import re
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from cnn_core import catalog
from cnn_core.data import datasets
from cnn_core.data.dataset import USER_PREFIX, DatasetUnavailable
from cnn_core.explain import evaluation, inference
from cnn_core.runs import run_folder
from devtools.browser import poll_until
from tests.factories import open_page

PRETRAINED = "pretrained:mnist"
CELL_LIMIT = 32  # pages/evaluate.py shows at most this many images of one cell
CELL_PX = 46  # and draws its clickable matrix with columns this wide
CLICK_TIMEOUT_S = 60  # for a click on a matrix cell to show that cell's images
SHOTS = Path("/tmp/shots")


@pytest.fixture(scope="module")
def reference():
    """The shipped model's test-split predictions and their scores, computed without the page."""
    model = catalog.load_trained(PRETRAINED)
    ds = datasets.load_dataset("mnist")
    probs = inference.predict_in_batches(model, ds.x_test)
    return ds, probs, evaluation.evaluate_predictions(ds.y_test, probs, ds.class_names)


def wait_for_images(page) -> None:
    """Until every image of the page has loaded, so a screenshot shows them."""
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    )


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def mistakes_by_size(confusion: np.ndarray) -> list[tuple[int, int]]:
    """Off-diagonal cells with images, largest first (reading order among equals)."""
    cells = [(int(confusion[t, p]), t, p) for t, p in np.ndindex(confusion.shape) if t != p]
    return [(t, p) for n, t, p in sorted(cells, key=lambda c: (-c[0], c[1], c[2])) if n > 0]


def choose_cell(at: AppTest, true_class: int, pred_class: int) -> AppTest:
    cell = [true_class, str(pred_class)]  # a row position and a column name (MNIST's "0".."9")
    at.session_state["evaluate_cells"] = {"selection": {"cells": [cell]}}
    return at.run()


def check_cell(at: AppTest, reference, true_class: int, pred_class: int) -> None:
    """The heading names the cell and every image shown lies in it."""
    ds, probs, ev = reference
    count = int(ev.confusion[true_class, pred_class])
    heading = next(m.value for m in at.markdown if m.value.startswith("**True "))
    assert heading.startswith(f"**True {true_class}, predicted {pred_class}**: {count} test image")
    captions = next(img.captions for img in at.get("image") if img.captions[0].startswith("#"))
    assert len(captions) == min(count, CELL_LIMIT)
    for caption in captions:
        index = int(re.match(r"#(\d+): ", caption).group(1))
        assert ds.y_test[index] == true_class and probs[index].argmax() == pred_class


def test_scores_equal_the_evaluation_of_the_same_predictions(lab_home, reference):
    ds, probs, ev = reference
    at = open_page("evaluate")
    assert metric(at, "Test accuracy") == f"{ev.accuracy:.2%}"
    assert metric(at, "Test loss") == f"{ev.loss:.4f}"
    assert metric(at, "Test images") == f"{len(ds.y_test):,}"
    assert metric(at, "Mistakes") == f"{int((probs.argmax(1) != ds.y_test).sum()):,}"
    report = next(d.value for d in at.dataframe if "precision" in d.value.columns)
    assert report["class"].tolist() == [*ds.class_names, "macro avg", "weighted avg"]
    for column in ("precision", "recall", "f1", "support"):
        expected = [record[column] for record in ev.report_records()]
        np.testing.assert_allclose(report[column].to_numpy(dtype=float), expected)
    keys = {b.key for b in at.get("download_button")}
    assert {"evaluate_report_csv", "evaluate_confusion_png", "evaluate_confusion_csv"} <= keys


def test_choosing_a_cell_shows_exactly_its_images(lab_home, reference):
    _, _, ev = reference
    at = open_page("evaluate")
    largest, *others = mistakes_by_size(ev.confusion)
    check_cell(at, reference, *largest)  # the page starts on the most common mistake
    matrix = next(d.value for d in at.dataframe if d.key == "evaluate_cells")
    np.testing.assert_array_equal(matrix.to_numpy(), ev.confusion)
    for cell in (others[-1], (3, 3)):  # a rare mistake, and right answers (more than the cap)
        choose_cell(at, *cell)
        assert not at.exception
        check_cell(at, reference, *cell)


def test_row_normalised_matrix_and_its_exports(lab_home, reference):
    _, _, ev = reference
    at = open_page("evaluate")
    counts_figure = at.get("image")[0].value
    at.toggle(key="evaluate_normalised").set_value(True).run()
    assert not at.exception
    matrix = next(d.value for d in at.dataframe if d.key == "evaluate_cells")
    np.testing.assert_allclose(matrix.to_numpy(), ev.confusion_normalised)
    assert at.get("image")[0].value != counts_figure


def test_the_test_split_is_predicted_once_per_model(lab_home, monkeypatch):
    calls = []
    real = inference.predict_in_batches

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(inference, "predict_in_batches", counted)
    st.cache_data.clear()
    at = open_page("evaluate")
    choose_cell(at, 4, 9)
    at.toggle(key="evaluate_normalised").set_value(True).run()
    open_page("evaluate")  # another session
    assert not at.exception
    assert len(calls) == 1


def test_confident_mistakes_and_unsure_right_answers(lab_home, reference):
    ds, probs, ev = reference
    at = open_page("evaluate")
    grids = [img.captions for img in at.get("image") if img.captions[0][:1] not in ("", "#")]
    mistakes, unsure = grids
    worst = evaluation.confident_mistakes(ds.y_test, probs, 16)
    assert mistakes == [
        f"true {ds.y_test[i]}, predicted {probs[i].argmax()} ({s:.1%})"
        for i, s in zip(*worst, strict=True)
    ]
    least = evaluation.unsure_correct(ds.y_test, probs, 16)
    assert unsure == [f"{ds.y_test[i]} ({s:.1%})" for i, s in zip(*least, strict=True)]


def test_an_image_of_a_cell_opens_on_the_inspect_page(lab_home, reference):
    ds, probs, _ = reference
    # The model's most frequent mistake, read from its own predictions (not hard-coded).
    predicted = probs.argmax(axis=1)
    pairs = [(int(t), int(p)) for t, p in zip(ds.y_test, predicted, strict=True) if t != p]
    true, said = max(set(pairs), key=pairs.count)
    at = open_page("evaluate")
    choose_cell(at, true, said)
    index = at.selectbox(key=f"evaluate_pick-{true}-{said}").value
    at.button(key="evaluate_open").click().run()
    assert not at.exception
    captions = [c for img in at.get("image") for c in img.captions]
    assert f"test image {index} (true class {true}): the model says {said}" in " ".join(captions)
    assert any(c.value.startswith(f"Explaining {said} ") for c in at.caption)  # saliency tab


def test_a_dataset_without_models_shows_a_message(tiny):
    # Every built-in dataset ships a model; a learner's own dataset has none until trained.
    at = open_page("evaluate", tiny)  # "user:tiny"
    assert "No trained model" in at.info[0].value


def test_an_unavailable_test_split_shows_a_message(lab_home, monkeypatch):
    def unavailable(name, **kwargs):
        raise DatasetUnavailable(f"{name}: no source is ready; run the download.")

    monkeypatch.setattr(datasets, "load_dataset", unavailable)
    st.cache_resource.clear()  # forget the MNIST that other tests loaded
    at = open_page("evaluate")
    assert "no source is ready" in at.warning[0].value
    assert not at.metric


def test_replay_scores_each_epoch_of_a_run(replay_run):
    at = open_page("evaluate", f"{USER_PREFIX}tiny")
    key = f"run:{replay_run}"
    assert at.selectbox(key="evaluate_model").value == key
    at.select_slider(key=f"evaluate_epoch-{key}").set_value(1).run()
    assert not at.exception
    ds = datasets.load_dataset(f"{USER_PREFIX}tiny")
    probs = inference.predict_in_batches(catalog.load_checkpoint(key, 1), ds.x_test)
    ev = evaluation.evaluate_predictions(ds.y_test, probs, ds.class_names)
    assert metric(at, "Test accuracy") == f"{ev.accuracy:.2%}"
    assert metric(at, "Test loss") == f"{ev.loss:.4f}"


def test_a_cell_chosen_on_another_dataset_is_not_reused(replay_run):
    at = open_page("evaluate")
    choose_cell(at, 8, 8)  # MNIST's column "8": the tiny dataset has classes a, b and c
    at.session_state["dataset"] = f"{USER_PREFIX}tiny"  # the sidebar's choice
    at.run()
    assert not at.exception
    assert at.selectbox(key="evaluate_model").value == f"run:{replay_run}"


def test_a_model_that_cannot_be_loaded_shows_a_message(replay_run):
    run_folder.run_paths(replay_run).checkpoint(2).write_bytes(b"not a keras file")
    at = open_page("evaluate", f"{USER_PREFIX}tiny")
    at.select_slider(key=f"evaluate_epoch-run:{replay_run}").set_value(2).run()
    assert not at.exception
    assert "cannot be loaded" in at.error[0].value


def settled_box(locator) -> dict:
    """The element's bounding box once two reads 0.2 s apart agree (images above it loaded,
    the page no longer moving it), so a click aimed from it lands where it was aimed."""
    last: list[dict | None] = [None]

    def same() -> dict | None:
        box = locator.bounding_box()
        steady = box if box and box["width"] and box == last[0] else None
        last[0] = box
        return steady

    return poll_until(same, 30, "the element to stop moving", interval=0.2)


def click_matrix_cell(page, true_class: int, pred_class: int) -> None:
    """Clicks the matrix's cell (true_class, pred_class) with the mouse until the page names it.

    Glide's grid draws the table on a canvas; its accessible twin inside the canvas gives the
    rows (the header and one per class) and columns, and says which cell the grid has
    selected. The click is aimed from the canvas' settled box: rows share its height, the
    class columns (CELL_PX each) are its right-hand columns. A click is only repeated while
    the grid has not selected the cell (one lost to a rerun or a late layout shift), so a
    second click cannot undo the first; a click that selects a cell whose images the page
    does not show still fails the test.
    """
    table = page.locator(".st-key-evaluate_cells")
    canvas = table.get_by_test_id("data-grid-canvas")
    grid = canvas.locator("table[role=grid]")
    grid.wait_for(state="attached")
    rows, columns = (int(grid.get_attribute(a)) for a in ("aria-rowcount", "aria-colcount"))
    classes = rows - 1
    assert columns == classes + 1  # the true classes, then one column a predicted class
    target = canvas.get_by_test_id(f"glide-cell-{pred_class + 1}-{true_class}")
    heading = page.get_by_text(f"True {true_class}, predicted {pred_class}", exact=True)

    def shown() -> bool:
        if heading.is_visible():
            return True
        if target.get_attribute("aria-selected") != "true":  # not (yet) chosen: click it
            table.scroll_into_view_if_needed()
            box = settled_box(canvas)
            row_px = box["height"] / rows
            page.mouse.click(
                box["x"] + box["width"] - (classes - pred_class - 0.5) * CELL_PX,
                box["y"] + (true_class + 1.5) * row_px,  # below the header row
            )
        return False

    poll_until(shown, CLICK_TIMEOUT_S, f"a click on cell {true_class}, {pred_class}", 1.0)


@pytest.mark.browser
def test_clicking_a_matrix_cell_in_chromium_shows_its_images(app_server, page, reference):
    ds, probs, ev = reference
    first, (true_class, pred_class) = mistakes_by_size(ev.confusion)[:2]
    count = int(ev.confusion[true_class, pred_class])
    page.goto(app_server["url"] + "/evaluate")
    page.get_by_text(f"True {first[0]}, predicted {first[1]}", exact=True).wait_for()
    wait_for_images(page)  # the figures above the matrix have their height
    click_matrix_cell(page, true_class, pred_class)  # not the cell shown first
    found = evaluation.cell_examples(ds.y_test, None, probs, true_class, pred_class, CELL_LIMIT)
    expected = [f"#{i}: {s:.1%}" for i, s in zip(*found, strict=True)]
    images = page.locator(".st-key-evaluate_cell_images")
    images.get_by_text(expected[-1], exact=True).wait_for()  # not the first cell's images
    texts = images.get_by_test_id("stImageCaption").all_inner_texts()
    assert texts == expected and len(texts) == min(count, CELL_LIMIT)
    for text in texts:
        index = int(re.match(r"#(\d+): ", text).group(1))
        assert ds.y_test[index] == true_class and probs[index].argmax() == pred_class
    SHOTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 3000})
    page.get_by_text("Most confident mistakes").wait_for()
    wait_for_images(page)
    page.screenshot(path=str(SHOTS / "evaluate.png"))

    # The first image of the cell, opened on the Inspect page with the same model.
    page.get_by_role("button", name="Open in Inspect").click()
    first = int(re.match(r"#(\d+): ", texts[0]).group(1))
    page.get_by_text(f"test image {first} (true class {true_class})").wait_for()
    page.get_by_text(f"Explaining {pred_class} ").wait_for()
    page.get_by_test_id("stImage").nth(1).wait_for()  # the saliency figure
    wait_for_images(page)
    page.screenshot(path=str(SHOTS / "inspect.png"))
