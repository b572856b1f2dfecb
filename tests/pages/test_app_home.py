"""The entry page: AppTest for its logic, Chromium for what a learner sees."""

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.data import datasets
from tests.factories import REPO


def run_app() -> AppTest:
    return AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()


def test_home_lists_every_dataset_with_its_availability(lab_home, monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_DIR", tmp_path / "none")
    monkeypatch.setenv("CNN_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    at = run_app()
    assert not at.exception
    (markdown,) = [m.value for m in at.markdown if m.value.startswith("| dataset |")]
    lines = [[cell.strip() for cell in line.split("|")[1:-1]] for line in markdown.splitlines()]
    table = {key: [row[i] for row in lines[2:]] for i, key in enumerate(lines[0])}
    assert list(table["dataset"]) == ["MNIST", "Fashion-MNIST", "CIFAR-10"]
    assert list(table["ready"]) == ["yes", "no", "yes"]
    assert "embedded subset" in table["source"][0]
    assert "apt-get install dataset-fashion-mnist" in " ".join(
        table["to get it"]
    ) or "cnn_core download fashion_mnist" in " ".join(table["to get it"])
    assert table["source"][2].startswith("embedded copy") and "lossy" in table["source"][2]
    assert at.sidebar.caption[0].value == "In use: MNIST (embedded 10,000 subset)"


@pytest.mark.browser
def test_home_renders_in_chromium(app_server, page):
    page.goto(app_server["url"])
    page.get_by_text("hands-on lab for learning").wait_for()
    page.get_by_text("Datasets on this machine").wait_for()
    assert "Traceback" not in page.content()


def test_runs_keep_keras_state_but_still_close_figures(lab_home, monkeypatch):
    """app.py stops Streamlit's per-run keras.backend.clear_session (it threw away the
    predictors' kernels: ~40 ms a prediction) and keeps its closing of matplotlib figures.
    Fails too if a Streamlit upgrade moves the private hook app.py replaces."""
    import keras
    import matplotlib.pyplot as plt

    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: calls.append(a))
    plt.figure()  # left open, as a page's forgotten figure would be
    at = run_app()
    assert not at.exception
    assert calls == []
    assert plt.get_fignums() == []


def app_opened_at(**query) -> AppTest:
    """The app as a fresh session opened at an address with these query parameters."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.query_params.update(query)
    at.run()
    assert not at.exception
    return at


def test_the_dataset_chosen_is_kept_in_the_address_and_restored_from_it(lab_home):
    at = app_opened_at(dataset="fashion_mnist")
    assert at.sidebar.selectbox(key="dataset").value == "fashion_mnist"
    at.sidebar.selectbox(key="dataset").set_value("mnist").run()
    assert at.query_params["dataset"] == "mnist"  # a reload now brings MNIST back


def test_a_dataset_in_the_address_that_does_not_exist_is_ignored(lab_home):
    at = app_opened_at(dataset="user:../../etc")
    assert at.sidebar.selectbox(key="dataset").value == "mnist"


def test_the_model_chosen_survives_a_new_session_through_the_address(lab_home):
    from tests.factories import open_page, train_tiny_run

    first, second = train_tiny_run(epochs=1), train_tiny_run(epochs=1)
    at = open_page("predict", "user:tiny")
    at.selectbox(key="model_key").set_value(f"run:{first}").run()
    assert at.query_params["model"] == f"run:{first}"
    again = app_opened_at(dataset="user:tiny", model=f"run:{first}")
    again.switch_page("pages/predict.py").run()
    assert again.selectbox(key="model_key").value == f"run:{first}"
    assert second != first


@pytest.mark.browser
def test_a_reload_keeps_the_dataset_chosen_in_chromium(app_server, page):
    page.goto(app_server["url"] + "/data")
    page.get_by_test_id("stSidebarUserContent").get_by_role("combobox").click()
    page.get_by_role("option", name="Fashion-MNIST", exact=False).first.click()
    page.wait_for_url("**dataset=fashion_mnist**")
    page.reload()
    page.get_by_role("heading", name="Data: Fashion-MNIST").wait_for()
