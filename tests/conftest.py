"""Shared fixtures: an isolated lab home, a real app server, and a real Chromium page."""

import pytest

from tests.browser_helpers import CHROMIUM, CHROMIUM_ARGS, REPO, start_server, stop_server

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def lab_home(tmp_path, monkeypatch):
    """An empty lab home (runs, user datasets) for one test."""
    home = tmp_path / "lab"
    monkeypatch.setenv("CNN_LAB_HOME", str(home))
    return home


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
