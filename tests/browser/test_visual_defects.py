"""What a learner sees in Chromium: no covered heading, no cut cell, no black zero, and a
Learn page that plays by itself. Each of these once looked wrong in front of a class."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from devtools.browser import poll_until

pytestmark = pytest.mark.browser


def settle(page) -> None:
    """Waits until the script has run to its end and no element is still a placeholder."""
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for()
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stSkeleton], [data-testid=stSkeletonElement]')"
    )


TOOLBAR_BOXES = """els => els.map(e => e.getBoundingClientRect())
    .filter(r => r.width > 0 && r.height > 0)
    .map(r => ({x: r.x, y: r.y, width: r.width, height: r.height}))"""


def overlaps_vertically(a: dict, b: dict) -> bool:
    return a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def test_the_table_toolbar_leaves_its_heading_readable(app_server, page):
    """The dataframe's toolbar floats above the table's top edge; it once sat on the line
    of "The images behind a cell", and covered it wherever the table was narrow."""
    page.goto(app_server["url"] + "/evaluate")
    heading = page.get_by_role("heading", name="The images behind a cell")
    heading.wait_for(timeout=120_000)
    settle(page)
    table = page.get_by_test_id("stDataFrame").filter(has_text="true \\ predicted")
    table.hover()
    box = table.bounding_box()

    def toolbar_of_the_table() -> dict | None:
        shown = page.get_by_test_id("stElementToolbar").evaluate_all(TOOLBAR_BOXES)
        near = [b for b in shown if box["y"] - 80 <= b["y"] <= box["y"] + box["height"]]
        return next((b for b in near if box["x"] <= b["x"] <= box["x"] + box["width"]), None)

    toolbar = poll_until(toolbar_of_the_table, 10, "the table's toolbar to show on hover")
    assert not overlaps_vertically(toolbar, heading.bounding_box()), (toolbar, box)


def test_home_shows_every_dataset_cell_whole(app_server, page):
    page.goto(app_server["url"])
    page.get_by_text("Datasets on this machine").wait_for()
    settle(page)
    table = page.get_by_test_id("stMarkdown").locator("table").filter(has_text="to get it")
    cells = table.locator("td")
    assert cells.count() >= 12  # three datasets, four columns
    cut = cells.evaluate_all(
        "cells => cells.filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.innerText)"
    )
    assert cut == []
    assert "stratified" in table.inner_text()  # the end of a long one


def dark_share(png: bytes) -> float:
    with Image.open(io.BytesIO(png)) as image:
        grey = np.asarray(image.convert("L"), dtype=np.float32)
    return float((grey < 60).mean())


def test_learn_pools_a_stride_two_output_in_its_colours_and_plays(app_server, page):
    page.goto(app_server["url"] + "/learn")
    page.get_by_text("Max-pooling, 2×2").wait_for(timeout=60_000)
    settle(page)
    page.get_by_test_id("stRadio").filter(has_text="Stride").get_by_text("2", exact=True).click()
    page.get_by_text("the output is 2 × 2").wait_for()
    settle(page)
    # The pooled map is the page's last figure: one cell holding 0, drawn white as the
    # zeros of the convolution output beside it, not black.
    pooled = page.get_by_test_id("stImage").last
    assert dark_share(pooled.screenshot()) < 0.1

    page.get_by_text("Play: move the window by itself").click()
    # It moves on by itself to the last of the four positions, then starts again.
    page.get_by_text("Output row 2, column 2.").wait_for(timeout=20_000)
    page.get_by_text("Output row 1, column 1.").wait_for(timeout=10_000)
