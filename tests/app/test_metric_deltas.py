"""No page uses st.metric's delta as a label: Streamlit draws it with an arrow, which reads
as a change ("↑ 100.0% sure", "↑ 1 channel") where nothing changed."""

import ast

import pytest

from tests.factories import REPO

PAGES = sorted([REPO / "app.py", *(REPO / "pages").glob("*.py")])


def metric_deltas(path) -> list[str]:
    """`file:line` of every .metric(...) call given a delta (a third argument or delta=)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "metric":
            continue
        if len(node.args) > 2 or any(k.arg == "delta" for k in node.keywords):
            found.append(f"{path.name}:{node.lineno}")
    return found


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_no_metric_shows_a_value_as_a_change(path):
    assert not metric_deltas(path), "put the value or a caption there instead of a delta"


def test_the_check_finds_a_delta(tmp_path):
    page = tmp_path / "page.py"
    page.write_text('st.metric("a", 1, "2 sure")\ncols[0].metric("b", 1, delta="x")\n'
                    'st.metric("c", 3, help="fine")\n')  # fmt: skip
    assert metric_deltas(page) == ["page.py:1", "page.py:2"]
