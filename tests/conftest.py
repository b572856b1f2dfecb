"""Shared fixtures: an isolated lab home, the tiny dataset and run of tests/factories.py,
a real app server, and a real Chromium page."""

from __future__ import annotations

import pytest

from devtools.browser import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server
from tests.factories import ARTIFACTS


@pytest.fixture(autouse=True, scope="session")
def app_routed_as_served():
    """AppTest runs app.py as scripts/serve.py starts it: without Streamlit's legacy
    multipage mode, which a pages/ folder beside app.py turns on. AppTest resets that flag
    before every run and Streamlit sets it again from the folder, so every run would start
    in the legacy menu and run a page script without app.py."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a unit-test run without Streamlit installed
        yield
        return
    original = PagesManager.__init__

    def routed_by_navigation(self, *args, **kwargs):
        PagesManager.uses_pages_directory = False  # Streamlit only sets it while it is None
        original(self, *args, **kwargs)

    PagesManager.__init__ = routed_by_navigation
    yield
    PagesManager.__init__ = original


@pytest.fixture(autouse=True)
def no_background_calibration(monkeypatch):
    """No test starts this machine's calibration in the background: a TensorFlow process
    per test's lab home would slow the suite and time nothing useful
    (tests/runs/test_calibration.py starts the real one, on purpose)."""
    from cnn_core.runs import calibration

    monkeypatch.setattr(calibration, "start_calibration", lambda: False)


@pytest.fixture
def lab_home(tmp_path, monkeypatch):
    """An empty lab home (runs, user datasets) for one test."""
    home = tmp_path / "lab"
    monkeypatch.setenv("CNN_LAB_HOME", str(home))
    # No developer's own Keras download (full MNIST in ~/.keras) may change what a test sees.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return home


@pytest.fixture
def no_embedded_cifar10(tmp_path, monkeypatch):
    """CIFAR-10 as on a machine without the lab's embedded copy: with no archive or folder
    placed either, it is not available (the state a download or a copy fixes)."""
    from cnn_core.data import cifar_images

    monkeypatch.setattr(cifar_images, "CIFAR10_JPEG_ASSET", tmp_path / "no-embedded-cifar10.npz")


@pytest.fixture
def tiny(lab_home):
    """The learnable tiny dataset ("user:tiny": 96 + 48 images, 12×12, 3 classes), saved."""
    from tests.factories import save_tiny_dataset

    return save_tiny_dataset()


@pytest.fixture
def tiny_dataset(lab_home):
    """96 random 12×12 images in 3 classes (72 to train on), saved as "user:tiny"."""
    from tests.factories import save_random_dataset

    return save_random_dataset("tiny")


@pytest.fixture
def replay_run(lab_home):
    """A finished run on a tiny 12×12 dataset with checkpoints after epochs 1, 2 and 3."""
    from tests.factories import train_tiny_run

    return train_tiny_run(epochs=3)


PRECISION_POLICIES = ("float32", "mixed_bfloat16")


@pytest.fixture(params=PRECISION_POLICIES)
def precision(request):
    """Keras' global dtype policy for the models the test builds: "float32", then
    "mixed_bfloat16" (bfloat16 arithmetic, float32 weights: a run with mixed precision).
    The policy before the test is restored after it."""
    import keras

    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy(before)


@pytest.fixture
def half_model():
    """Builds tests/factories.half_model(side) inside the test, after `precision` set the
    policy: a model whose weights are set by hand and that sees one half of its image."""
    from tests.factories import half_model

    return half_model


@pytest.fixture
def evidence_model():
    """Builds tests/factories.evidence_model() inside the test (see half_model)."""
    from tests.factories import evidence_model

    return evidence_model


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
