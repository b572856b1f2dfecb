"""Every page is listed in app.py and runs through it, even when opened first by a deep link."""

import re

import pytest

from devtools.browser import assert_app_navigation, start_server, stop_server
from tests.factories import REPO

PAGE_FILES = sorted(p for p in (REPO / "pages").glob("*.py") if not p.name.startswith("_"))
# The url paths come from the file names (st.Page), and learners' bookmarks use them.
URL_PATHS = {"home", "data", "train", "predict", "inspect", "evaluate", "learn"}


def test_every_page_script_is_in_the_navigation():
    listed = set(re.findall(r'st\.Page\("pages/(\w+)\.py"', (REPO / "app.py").read_text()))
    assert listed == {p.stem for p in PAGE_FILES} == URL_PATHS


def test_the_server_is_started_with_the_legacy_pages_menu_switched_off(monkeypatch):
    # Streamlit treats a pages/ folder beside app.py as its legacy multipage app until some
    # session calls st.navigation: deep links opened on a fresh server would run a page
    # without app.py (no sidebar, Streamlit's own menu). scripts/serve.py switches it off.
    import runpy

    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    started = {}

    def fake_main(args, prog_name):
        started.update(args=args, legacy=PagesManager.uses_pages_directory)

    monkeypatch.setattr(PagesManager, "uses_pages_directory", None)
    monkeypatch.setattr(cli, "main", fake_main)
    runpy.run_path(str(REPO / "scripts" / "serve.py"), run_name="not_main")["main"](["--x"])
    assert started == {"args": ["run", str(REPO / "app.py"), "--x"], "legacy": False}


def test_every_way_of_starting_the_app_goes_through_the_launcher():
    starters = [
        REPO / "run.sh",
        *(REPO / "devtools").glob("*.py"),
        *(REPO / "benchmarks").glob("*.py"),
        *(REPO / "benchmarks").glob("*.sh"),
    ]
    for path in starters:
        text = path.read_text()
        assert "streamlit run app.py --" not in text and '"streamlit", "run"' not in text, path
    assert "scripts/serve.py" in (REPO / "run.sh").read_text()
    assert "scripts/serve.py" in (REPO / "devtools" / "browser.py").read_text()


@pytest.mark.browser
def test_a_deep_link_opened_first_on_a_fresh_server_runs_through_app_py(tmp_path, page):
    server = start_server(tmp_path / "lab")
    try:
        page.goto(server.url + "/predict")
        assert_app_navigation(page)
        page.get_by_text("Draw a digit").first.wait_for()
        links = page.get_by_test_id("stSidebarNavLink").all_inner_texts()
        titles = [text.split()[-1] for text in links]  # after the icon's ligature name
        assert titles == ["Home", "Data", "Train", "Predict", "Inspect", "Evaluate", "Learn"]
    finally:
        stop_server(server)


def test_every_form_is_submitted_by_its_button_only():
    # Enter in a number box would otherwise submit the form: a run started by accident.
    import ast

    for path in PAGE_FILES + [REPO / "pages" / "_shared.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "st.form":
                flags = {k.arg: ast.unparse(k.value) for k in node.keywords}
                assert flags.get("enter_to_submit") == "False", f"{path.name}:{node.lineno}"
