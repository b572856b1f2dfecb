"""The Learn page, run standalone with AppTest: defaults, settings, the window, bad edits."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.factories import REPO

PAGE = str(REPO / "pages" / "learn.py")


def edit(cells: dict[int, dict[str, object]]) -> dict[str, object]:
    """A data editor's edit state, as the browser sends it."""
    return {"edited_rows": cells, "added_rows": [], "deleted_rows": []}


@pytest.fixture
def at() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.run()
    assert not app.exception
    return app


def output_table(app: AppTest):
    """The output map: the last read-only table (after the image and the filter)."""
    return [d for d in app.dataframe if d.editing_mode == "read_only"][-1].value


def formula(app: AppTest) -> str:
    return app.latex[0].value.strip("$\n")


def shown_sum(app: AppTest) -> str:
    return next(m.value for m in app.metric if m.label == "Sum of the products")


def test_default_state_is_the_report_example(at):
    table = output_table(at)
    assert table.shape == (4, 4)
    assert table.iloc[0].tolist() == [-5, -4, 0, 8]
    assert table.iloc[3].tolist() == [-3, -2, -3, -16]
    assert formula(at).endswith(r"{6 + 2 \cdot 0 - 3}{1} \right\rfloor + 1 = 4")
    assert shown_sum(at) == "-5"
    assert "3×1 + 0×0 + 1×(-1)" in at.code[0].value
    assert len(at.get("download_button")) == 6  # every figure can be saved
    assert not at.error


def test_same_padding_keeps_six_by_six(at):
    at.radio(key="learn_padding").set_value("same").run()
    assert output_table(at).shape == (6, 6)
    assert formula(at).endswith(r"{6 + 2 \cdot 1 - 3}{1} \right\rfloor + 1 = 6")
    # The first window now covers a border of zeros: [[0,0,0],[0,3,0],[0,1,5]] -> 0 - 5.
    assert shown_sum(at) == "-5"


def test_stride_two_gives_two_by_two(at):
    at.radio(key="learn_stride").set_value(2).run()
    table = output_table(at)
    assert table.shape == (2, 2)
    assert table.values.tolist() == [[-5, 0], [0, -4]]  # every other value of figure 13
    assert formula(at).endswith("= 2")


def test_stride_two_same_padding_explains_the_uneven_border(at):
    at.radio(key="learn_padding").set_value("same")
    at.radio(key="learn_stride").set_value(2).run()
    assert output_table(at).shape == (3, 3)
    assert "(0 + 1)" in formula(at)
    assert any("0 before (top, left) and 1 after (bottom, right)" in m.value for m in at.markdown)


def test_moving_the_window_shows_the_right_sum(at):
    at.slider(key="learn_step").set_value(2).run()
    assert shown_sum(at) == "-4"
    assert "Output row 1, column 2." in [c.value for c in at.caption]
    at.slider(key="learn_step").set_value(16).run()
    assert shown_sum(at) == "-16"


def test_pooling_of_the_output(at):
    assert at.slider(key="learn_pool_step").max == 4
    at.slider(key="learn_pool_step").set_value(2).run()
    assert next(m.value for m in at.metric if m.label == "Largest in the window") == "8"


def test_editing_the_image_changes_the_output(at):
    at.session_state["learn_image"] = edit({0: {"1": 9}})
    at.run()
    assert output_table(at).iloc[0, 0] == 1  # 9·1 instead of 3·1: -5 + 6
    assert not at.error


def test_switching_filters(at):
    at.selectbox(key="learn_filter").set_value("horizontal").run()
    # Horizontal filter on the first window: top row 3+0+1 minus bottom row 2+7+2 = -7.
    assert output_table(at).iloc[0, 0] == -7
    assert any("top to bottom" in c.value for c in at.caption)


def test_custom_filter_starts_as_identity_and_is_editable(at):
    at.selectbox(key="learn_filter").set_value("custom").run()
    assert output_table(at).iloc[0].tolist() == [5, 8, 9, 3]  # the image, cropped
    at.session_state["learn_custom_filter"] = edit({1: {"2": 0.5}})
    at.run()
    assert output_table(at).iloc[0].tolist() == [2.5, 4.0, 4.5, 1.5]


def test_bad_custom_filter_value_shows_an_error_not_a_traceback(at):
    at.selectbox(key="learn_filter").set_value("custom").run()
    at.session_state["learn_custom_filter"] = edit({0: {"3": None}})
    at.run()
    assert not at.exception
    assert "Your filter, row 1, column 3 is empty or not a number" in at.error[0].value
    at.session_state["learn_custom_filter"] = edit({0: {"3": "abc"}})
    at.run()
    assert not at.exception
    assert "row 1, column 3" in at.error[0].value


def test_empty_image_cell_shows_an_error(at):
    at.session_state["learn_image"] = edit({4: {"6": None}})
    at.run()
    assert not at.exception
    assert "The input image, row 5, column 6 is empty" in at.error[0].value


def test_reset_brings_back_the_report_image(at):
    at.session_state["learn_image"] = edit({0: {"1": 9}})
    at.run()
    at.button(key="learn_reset").click().run()
    assert not at.exception
    assert output_table(at).iloc[0, 0] == -5


def window_caption(app: AppTest) -> str:
    return next(c.value for c in app.caption if c.value.startswith("Output row"))


def test_play_moves_the_window_by_itself_and_pause_stops_it(at):
    """While playing, each rerun of the window's fragment (Streamlit's timer triggers them
    every PLAY_INTERVAL_S in the browser) moves the window one position on."""
    assert window_caption(at) == "Output row 1, column 1."
    at.toggle(key="learn_play").set_value(True).run()
    assert window_caption(at) == "Output row 1, column 2."
    assert shown_sum(at) == "-4"
    at.run()
    assert window_caption(at) == "Output row 1, column 3."
    at.toggle(key="learn_play").set_value(False).run()
    at.run()
    assert window_caption(at) == "Output row 1, column 3."  # paused: it stays
    assert at.slider(key="learn_step").value == 3


def test_play_starts_again_after_the_last_position(at):
    at.slider(key="learn_step").set_value(16).run()
    at.toggle(key="learn_play").set_value(True).run()
    assert window_caption(at) == "Output row 1, column 1."


def test_play_survives_a_smaller_output(at):
    at.slider(key="learn_step").set_value(16).run()
    at.radio(key="learn_stride").set_value(2).run()  # 4 positions now
    assert not at.exception
    assert at.slider(key="learn_step").value == 4
    at.toggle(key="learn_play").set_value(True).run()
    assert window_caption(at) == "Output row 1, column 1."


def test_a_pixel_outside_0_to_255_is_named_in_a_warning(at):
    at.session_state["learn_image"] = edit({0: {"2": 300}, 5: {"6": -4}})
    at.run()
    assert not at.exception and not at.error
    message = at.warning[0].value
    assert "The input image, row 1, column 2 is 300" in message
    assert "0 (black) to 255 (white)" in message
    assert "row 6, column 6 is -4" in message
    # It still computes with the number as typed: 3·1 + 300·0 ... unchanged first window.
    assert output_table(at).iloc[0, 0] == -5
    assert output_table(at).iloc[0, 1] == -4 + 300  # the window at column 2 adds 300·1


def test_in_range_pixels_give_no_warning(at):
    at.session_state["learn_image"] = edit({0: {"1": 255}, 1: {"1": 0}})
    at.run()
    assert not at.warning


def test_the_image_editor_keeps_decimals(at):
    """A whole-number column rounds what is typed in the browser; the image's is not one."""
    editor = next(d for d in at.dataframe if d.editing_mode != "read_only")
    assert all(dtype.kind == "f" for dtype in editor.value.dtypes)
    at.session_state["learn_image"] = edit({0: {"1": 2.5}})
    at.run()
    assert output_table(at).iloc[0, 0] == -5.5  # 2.5·1 instead of 3·1


def test_the_toy_example_leads_to_the_same_arithmetic_on_a_trained_network(lab_home):
    from tests.factories import open_page

    at = open_page("learn")
    at.button(key="learn_to_network").click().run()
    assert not at.exception
    assert at.session_state["inspect_tab"] == "The whole network"
    assert any(s.value == "Every number behind one unit" for s in at.subheader)
