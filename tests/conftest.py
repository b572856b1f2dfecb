"""Shared fixtures: an isolated lab home, a real app server, and a real Chromium page; and
`open_page`, which opens one page of the app through AppTest."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser_helpers import CHROMIUM, CHROMIUM_ARGS, REPO, start_server, stop_server

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

ARTIFACTS = REPO / "test-artifacts"
APPTEST_TIMEOUT_S = 120  # one script run; a page with a model to load on two busy cores


def open_page(name: str, dataset: str = "mnist", **state) -> AppTest:
    """Runs app.py with `dataset` chosen and `state` in the session, then switches to
    pages/<name>.py, as a learner's click in the sidebar would; it must not raise."""
    from streamlit.testing.v1 import AppTest  # here: a run of the unit tests needs no Streamlit

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=APPTEST_TIMEOUT_S)
    at.session_state["dataset"] = dataset
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.fixture
def lab_home(tmp_path, monkeypatch):
    """An empty lab home (runs, user datasets) for one test."""
    home = tmp_path / "lab"
    monkeypatch.setenv("CNN_LAB_HOME", str(home))
    # No developer's own Keras download (full MNIST in ~/.keras) may change what a test sees.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return home


@pytest.fixture
def replay_run(lab_home):
    """A finished run on a tiny 12×12 dataset with checkpoints after epochs 1, 2 and 3."""
    from tests.runs.test_runs import train_tiny_run

    return train_tiny_run(epochs=3)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """The real app, started with `streamlit run` on a free localhost port."""
    server = start_server(tmp_path_factory.mktemp("lab-home"))
    try:
        yield {"url": server.url, "home": server.home, "log": server.log}
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    """A fresh Chromium page; on failure its screenshot goes to test-artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report
