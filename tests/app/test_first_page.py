"""The first page at once: Home and every page that needs no model render without
TensorFlow, which the server imports in a thread of its own (pages/_shared.py), and a page
that needs it waits for that import under a spinner that says so."""

import ast
import json
import os
import subprocess
import sys
import threading

import pytest

from devtools.browser import poll_until
from pages import _shared
from tests.factories import REPO

# Runs app.py through AppTest in a fresh interpreter with the background import switched
# off, opens each page given, and prints which of TensorFlow and Keras got imported.
RENDER_WITHOUT_IMPORT = """
import json, sys
sys.path.insert(0, {repo!r})
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest
from pages import _shared

original = PagesManager.__init__
def routed_by_navigation(self, *args, **kwargs):  # as tests/conftest.py does
    PagesManager.uses_pages_directory = False
    original(self, *args, **kwargs)
PagesManager.__init__ = routed_by_navigation
_shared.import_tensorflow_in_background = lambda: None

heavy = lambda: sorted({{m.split(".")[0] for m in sys.modules}} & {{"tensorflow", "keras"}})
at = AppTest.from_file({app!r}, default_timeout=120).run()
seen = {{"home": [[e.message for e in at.exception], heavy()]}}
for script in sys.argv[1:]:
    at.switch_page(script).run()
    seen[script] = [[e.message for e in at.exception], heavy()]
print(json.dumps(seen))
"""


def app_pages() -> tuple[list[str], set[str]]:
    """app.py's page scripts and its NEEDS_TENSORFLOW, read from its source."""
    tree = ast.parse((REPO / "app.py").read_text())
    scripts = [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", None) == "Page"
        and isinstance(node.args[0], ast.Constant)
    ]
    needs = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and node.targets[0].id == "NEEDS_TENSORFLOW"
    )
    return scripts, needs


def render_in_fresh_interpreter(tmp_path, scripts: list[str]) -> dict:
    env = dict(
        os.environ,
        CNN_LAB_HOME=str(tmp_path / "lab"),
        KERAS_HOME=str(tmp_path / "keras"),
        CNN_LAB_DATA=str(tmp_path / "data"),
    )
    code = RENDER_WITHOUT_IMPORT.format(repo=str(REPO), app=str(REPO / "app.py"))
    done = subprocess.run(
        [sys.executable, "-c", code, *scripts],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_home_and_the_pages_without_a_model_render_without_tensorflow(tmp_path):
    """Fails when a module that Home, Data or Learn imports (app.py, pages/_shared.py, the
    cnn_core modules below them) imports Keras or TensorFlow at module level."""
    scripts, needs = app_pages()
    without = [s for s in scripts if s != "pages/home.py" and s.split("/")[-1][:-3] not in needs]
    assert {"pages/data.py", "pages/learn.py"} <= set(without)
    seen = render_in_fresh_interpreter(tmp_path, without)
    assert seen == {page: [[], []] for page in ["home", *without]}


def test_every_page_that_waits_for_tensorflow_is_one_of_the_app(tmp_path):
    scripts, needs = app_pages()
    assert needs < {s.split("/")[-1][:-3] for s in scripts}


class RecordedSpinner:
    """Stands in for st.spinner: records its text and whether it is still shown."""

    def __init__(self):
        self.texts, self.open = [], False

    def __call__(self, text):
        self.texts.append(text)
        return self

    def __enter__(self):
        self.open = True

    def __exit__(self, *exc):
        self.open = False


@pytest.fixture
def import_running(monkeypatch):
    """The background import as if it had started and not yet ended."""
    ready = threading.Event()
    monkeypatch.setattr(_shared, "_tensorflow_ready", ready)
    monkeypatch.setattr(_shared, "_tensorflow_thread", threading.Thread(target=lambda: None))
    spinner = RecordedSpinner()
    monkeypatch.setattr(_shared.st, "spinner", spinner)
    return ready, spinner


def test_a_page_waits_for_the_import_under_a_spinner_that_says_so(import_running):
    ready, spinner = import_running
    waiting = threading.Thread(target=_shared.wait_for_tensorflow)
    waiting.start()
    poll_until(lambda: spinner.open, 10, "the spinner to show")
    assert waiting.is_alive()  # it has not returned before the import ended
    ready.set()
    waiting.join(timeout=10)
    assert not waiting.is_alive() and not spinner.open
    assert spinner.texts == ["Loading TensorFlow (first start only)…"]


def test_once_the_import_has_ended_a_page_shows_no_spinner(import_running):
    ready, spinner = import_running
    ready.set()
    _shared.wait_for_tensorflow()
    assert spinner.texts == []


CHECK_BACKGROUND_IMPORT = """
import gc, sys, threading
sys.path.insert(0, {repo!r})
from pages import _shared
assert "tensorflow" not in sys.modules
_shared.import_tensorflow_in_background()
_shared.import_tensorflow_in_background()  # a second call starts no second thread
threads = [t.name for t in threading.enumerate() if t.name == "import-tensorflow"]
assert _shared._tensorflow_ready.wait(300), "the import did not end"
print(threads, "tensorflow" in sys.modules, "keras" in sys.modules, gc.get_freeze_count() > 0)
"""


def test_the_background_import_imports_tensorflow_once_and_freezes_its_objects():
    code = CHECK_BACKGROUND_IMPORT.format(repo=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "['import-tensorflow'] True True True"


# Runs scripts/serve.py's main up to the moment Streamlit would start, and prints which of
# the lab's heavy imports had been made by then.
SERVE_UNTIL_STREAMLIT = """
import json, runpy, sys
serve = runpy.run_path({script!r}, run_name="serve_under_test")
def started(app, argv):
    print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}}
                            & {{"numpy", "PIL", "cnn_core", "pages", "tensorflow"}})))
    raise SystemExit(0)
serve["main"].__globals__["serve"] = started
serve["main"]([])
"""


def test_the_server_starts_streamlit_before_importing_the_lab():
    done = subprocess.run(
        [sys.executable, "-c", SERVE_UNTIL_STREAMLIT.format(script=str(REPO / "scripts/serve.py"))],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    # Each of these takes seconds on two cores and would delay the first page by as much.
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_first_page_imports_no_scikit_learn():
    """app.py imports pages/_shared and the dataset registry before any page: scikit-learn
    (with scipy, ~1.8 s here) is only imported where a split is made."""
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); import pages._shared, pages._session; "
        "from cnn_core.data import datasets; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
