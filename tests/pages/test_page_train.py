"""The Train page through AppTest: start, watch, stop, resume and compare real runs."""

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.data import datasets
from cnn_core.runs import metrics_log, presets, run_config, store
from cnn_core.runs import status as run_status
from devtools.browser import poll_until, start_training_on_page, wait_for_epoch
from tests.factories import open_page, save_random_dataset

TINY_LAYERS = [{"type": "conv", "filters": 4, "kernel": 3}, {"type": "maxpool", "size": 2}]


def wait_for_state(
    run_id: str, states: tuple[str, ...], timeout: float = 120
) -> run_status.RunStatus:
    def reached() -> run_status.RunStatus | None:
        status = run_status.read_status(run_id)
        return status if status.state in states else None

    return poll_until(reached, timeout, f"{run_id} to be {' or '.join(states)}", interval=0.2)


def runs_table(at: AppTest):
    """The runs table's content (the form above it may show a layer table too)."""
    (table,) = [d.value for d in at.dataframe if "augmentation" in d.value.columns]
    return table


def start_custom_run(at: AppTest, epochs: int) -> str:
    at.selectbox(key="train_model").set_value("custom").run()
    at.session_state["custom_layers"] = TINY_LAYERS
    at.number_input[1].set_value(epochs)  # Epochs
    at.button[-1].click()  # the form's "Start training"
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at.session_state["run_id"]


def test_page_renders_the_model_summary_and_no_runs(lab_home):
    at = open_page("train", "mnist")
    assert not at.exception
    assert at.selectbox(key="train_model").value == "simple_convnet"
    assert any("34,506 parameters" in e.label for e in at.expander)
    assert any("No runs yet" in c.value for c in at.caption)


def test_a_run_started_on_the_page_finishes_and_shows_its_curves(tiny_dataset):
    at = open_page("train", tiny_dataset)
    run_id = start_custom_run(at, epochs=2)
    wait_for_state(run_id, ("finished",))
    at.run()
    assert not at.exception
    assert any("finished" in m.value for m in at.markdown)
    assert any("Test accuracy" in s.value for s in at.success)
    table = runs_table(at)
    assert table["state"].tolist() == ["finished"] and table["epochs"].tolist() == ["2/2"]
    downloads = {b.label for b in at.get("download_button")}
    assert {"Metrics (CSV)", "Model (.keras)", "loss per epoch", "accuracy per epoch"} <= downloads


def test_stop_and_resume_through_the_page_continue_the_epochs(tiny_dataset):
    at = open_page("train", tiny_dataset)
    run_id = start_custom_run(at, epochs=60)
    wait_for_state(run_id, ("running",))
    poll_until(lambda: run_status.read_status(run_id).epoch >= 2, 60, "epoch 2", interval=0.2)
    at.run()
    at.button(key=f"stop-{run_id}").click().run()
    stopped = wait_for_state(run_id, ("stopped",), timeout=30)
    at.run()
    at.button(key=f"resume-{run_id}").click().run()
    assert not at.exception
    wait_for_state(run_id, ("running", "finished"))
    poll_until(
        lambda: run_status.read_status(run_id).epoch > stopped.last_checkpoint + 1,
        60, "an epoch after the resumed one", interval=0.2,
    )  # fmt: skip
    at.run()
    at.button(key=f"stop-{run_id}").click().run()
    wait_for_state(run_id, ("stopped",), timeout=30)
    epochs = [r["epoch"] for r in metrics_log.epoch_records(metrics_log.read_metrics(run_id)[0])]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) > stopped.last_checkpoint


def test_an_impossible_layer_list_is_explained_before_training(tiny_dataset):
    at = open_page("train", tiny_dataset)
    at.selectbox(key="train_model").set_value("custom").run()
    at.session_state["custom_layers"] = [{"type": "maxpool", "size": 2}] * 5
    at.run()
    assert not at.exception
    assert "nothing left to pool" in at.error[0].value or "1×1" in at.error[0].value
    assert not store.list_runs()


def test_zoom_and_label_smoothing_set_on_the_page_reach_the_run(tiny_dataset):
    at = open_page("train", tiny_dataset)
    at.selectbox(key="train_model").set_value("custom").run()
    at.session_state["custom_layers"] = TINY_LAYERS
    at.number_input[1].set_value(1)  # Epochs
    at.slider(key="train_zoom").set_value(0.1)
    at.slider(key="train_label_smoothing").set_value(0.15)
    at.button[-1].click()  # the form's "Start training"
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    run_id = at.session_state["run_id"]
    cfg = store.read_config(run_id)
    assert (cfg.augment_zoom, cfg.label_smoothing) == (0.1, 0.15)
    assert wait_for_state(run_id, ("finished", "failed")).state == "finished"


def test_a_batch_larger_than_the_dataset_is_refused(tiny_dataset):
    at = open_page("train", tiny_dataset)
    at.selectbox(key="train_model").set_value("custom").run()
    at.session_state["custom_layers"] = TINY_LAYERS
    at.select_slider[0].set_value(512)  # batch size, more than the 72 training images
    at.button[-1].click()
    at.run()
    assert not at.exception
    assert "batch" in at.error[0].value.lower()
    assert not store.list_runs()


def test_fashion_presets_include_the_overfitting_pair(lab_home):
    at = open_page("train", "fashion_mnist")
    assert not at.exception
    labels = [b.key for b in at.button]
    if datasets.is_available("fashion_mnist"):
        assert "preset-overfitting" in labels and "preset-fashion-quick" in labels
        quick = presets.measured("fashion-quick")[0]
        captions = " ".join(c.value for c in at.caption)
        assert f"{quick['test_accuracy']:.2%} after {quick['epochs']} epochs" in captions
    else:
        assert "not available" in at.warning[0].value


def test_a_second_session_follows_the_run_in_progress(tiny_dataset):
    first = open_page("train", tiny_dataset)
    run_id = start_custom_run(first, epochs=60)
    wait_for_state(run_id, ("running",))
    second = open_page("train", tiny_dataset)
    assert second.session_state["run_id"] == run_id
    assert any(run_id in b.key for b in second.button if b.key)  # its Stop button
    second.button(key=f"stop-{run_id}").click().run()
    wait_for_state(run_id, ("stopped",), timeout=30)


@pytest.mark.browser
def test_train_stop_resume_in_chromium_with_a_second_tab(app_server, page, monkeypatch):
    monkeypatch.setenv("CNN_LAB_HOME", str(app_server["home"]))
    save_random_dataset("browser-tiny")

    start_training_on_page(page, app_server["url"], "Own images: browser-tiny", epochs=200)

    assert wait_for_epoch(page, 2) >= 2
    charts = page.locator(".vega-embed")
    charts.first.wait_for()
    assert charts.count() >= 2

    other = page.context.new_page()  # a second tab shows the same live run
    other.goto(app_server["url"] + "/train")
    assert wait_for_epoch(other, 1) >= 1
    other.close()

    page.get_by_role("button", name="Stop").click()
    page.get_by_text("stopped", exact=True).first.wait_for(timeout=60_000)
    stopped_at = wait_for_epoch(page, 1)
    page.get_by_role("button", name="Resume").click()
    assert wait_for_epoch(page, stopped_at + 2) >= stopped_at + 2
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("stopped", exact=True).first.wait_for(timeout=60_000)


def test_a_finished_run_is_offered_for_prediction_without_loading_its_data(
    tiny_dataset, monkeypatch
):
    from cnn_core import catalog

    at = open_page("train", tiny_dataset)
    run_id = start_custom_run(at, epochs=1)
    wait_for_state(run_id, ("finished",))

    def no_loading(*args, **kwargs):
        raise AssertionError("listing trained models must not load a dataset")

    monkeypatch.setattr(datasets, "load_dataset", no_loading)
    (choice,) = [t for t in catalog.list_trained(tiny_dataset) if t.key == f"run:{run_id}"]
    assert choice.input_shape == (12, 12, 1) and choice.class_names == ("a", "b", "c")
    assert catalog.load_trained(choice.key).output_shape == (None, 3)


def test_a_finished_run_is_shared_and_imported_through_the_page(tiny_dataset):
    at = open_page("train", tiny_dataset)
    run_id = start_custom_run(at, epochs=1)
    wait_for_state(run_id, ("finished",))
    at.run()
    share = next(b for b in at.get("download_button") if b.label.startswith("Share"))
    assert share.proto.url  # the zip is served
    from cnn_core.runs import sharing

    data = sharing.export_run(run_id)
    at.file_uploader(key="import_run").set_value(("run.cnnlab.zip", data, "application/zip")).run()
    at.button(key="import_button").click().run()
    assert not at.exception
    assert "Imported" in at.success[-1].value
    assert len(store.list_runs()) == 2
    at.file_uploader(key="import_run").set_value(("bad.zip", b"nope", "application/zip")).run()
    at.button(key="import_button").click().run()
    assert "not a zip" in at.error[0].value


def test_an_interrupted_run_shows_no_speed_or_time_left(tiny_dataset):
    cfg = run_config.RunConfig(
        dataset=tiny_dataset, model="custom", layers=TINY_LAYERS, batch_size=16
    )
    run_id = store.create_run(run_config.validate_config(cfg))
    run_status.update_status(run_id, state="interrupted", epoch=2, batch=5, batches_per_epoch=10,
                             images_per_s=1200.0, eta_s=25.0,
                             message="The worker stopped.")  # fmt: skip
    at = open_page("train", tiny_dataset)
    at.session_state["run_id"] = run_id
    at.run()
    assert not at.exception
    text = " ".join(str(p.proto.text) for p in at.get("progress"))
    assert "epoch 2/" in text and "batch 5/10" in text
    assert "time left" not in text and "images/s" not in text


@pytest.mark.browser
def test_enter_in_a_number_box_of_the_form_starts_no_run(app_server, page, monkeypatch):
    monkeypatch.setenv("CNN_LAB_HOME", str(app_server["home"]))
    save_random_dataset("browser-enter", seed=1)
    before = {info.id for info in store.list_runs()}

    def new_runs() -> list[store.RunInfo]:
        return [info for info in store.list_runs() if info.id not in before]

    page.goto(app_server["url"] + "/train")
    page.get_by_test_id("stSidebarUserContent").get_by_role("combobox").click()
    page.get_by_role("option", name="Own images: browser-enter").click()
    page.get_by_text("Start training").wait_for()
    for label, value in (("Epochs", "4"), ("Learning rate", "0.00200")):
        field = page.get_by_label(label)
        field.fill(value)
        field.press("Enter")
    # A form submitted by Enter reruns the script at once; a few seconds show whether it did.
    with pytest.raises(TimeoutError):
        poll_until(new_runs, 6, "a run started by Enter")
    page.get_by_role("button", name="Start training").click()
    (started,) = poll_until(new_runs, 30, "the run started by the button")
    assert started.config.epochs == 4  # the typed values were kept, only not submitted
    page.get_by_role("button", name="Stop").click()
    poll_until(lambda: not run_status.read_status(started.id).active, 60, "the run to stop")


def test_the_live_panel_and_the_table_say_the_same_of_a_queued_run(tiny_dataset, monkeypatch):
    import os

    from cnn_core.runs import runboard

    monkeypatch.setenv("CNN_LAB_MAX_WORKERS", "1")
    cfg = run_config.validate_config(run_config.RunConfig(dataset=tiny_dataset, model="custom",
                                              layers=TINY_LAYERS, batch_size=16))  # fmt: skip
    training, waiting = store.create_run(cfg), store.create_run(cfg)
    lock = run_status.acquire_worker_lock(training)
    try:
        run_status.update_status(training, state="running", epoch=1, batch=2, batches_per_epoch=4)
        run_status.update_status(
            waiting, message="Waiting for a free training slot (0 runs ahead)."
        )
        store.rename_run(training, "the training one")
        store.rename_run(waiting, "the waiting one")
        at = open_page("train", tiny_dataset, run_id=waiting)
        expected = runboard.row(waiting).state_text
        assert "waiting while 1 run training" in expected
        assert any(expected in m.value for m in at.markdown)  # the live panel
        assert "0 runs ahead" not in " ".join(m.value for m in at.markdown)
        table = runs_table(at)
        states = dict(zip(table["name"], table["state"], strict=True))
        assert states["the waiting one"] == expected
        assert states["the training one"] == runboard.row(training).state_text
        assert "None" not in table.to_string()
    finally:
        os.close(lock)


def test_a_new_session_watches_the_training_run_not_a_queued_one(tiny_dataset, monkeypatch):
    import os

    monkeypatch.setenv("CNN_LAB_MAX_WORKERS", "1")
    cfg = run_config.validate_config(run_config.RunConfig(dataset=tiny_dataset, model="custom",
                                              layers=TINY_LAYERS, batch_size=16))  # fmt: skip
    training = store.create_run(cfg)
    store.create_run(cfg)  # newer, queued: listed first
    lock = run_status.acquire_worker_lock(training)
    try:
        run_status.update_status(training, state="running", epoch=1, batch=2, batches_per_epoch=4)
        at = open_page("train", tiny_dataset)
        assert at.session_state["run_id"] == training
    finally:
        os.close(lock)


def test_a_run_is_renamed_and_deleted_on_the_page(tiny_dataset):
    cfg = run_config.validate_config(run_config.RunConfig(dataset=tiny_dataset, model="custom",
                                              layers=TINY_LAYERS, batch_size=16))  # fmt: skip
    run_id = store.create_run(cfg)
    run_status.update_status(run_id, state="stopped", message="Stopped.")
    at = open_page("train", tiny_dataset, run_id=run_id)
    at.text_input(key=f"name-{run_id}").set_value("Lesson 1: small filters")
    at.button(key=f"rename-{run_id}").click().run()
    assert not at.exception
    assert store.run_name(run_id) == "Lesson 1: small filters"
    assert "Lesson 1: small filters" in runs_table(at)["name"].tolist()
    at.button(key=f"delete-{run_id}").click().run()
    assert not at.exception
    assert store.list_runs() == []


@pytest.mark.browser
def test_a_training_run_is_renamed_in_chromium_while_its_panel_redraws(
    app_server, page, monkeypatch
):
    monkeypatch.setenv("CNN_LAB_HOME", str(app_server["home"]))
    save_random_dataset("browser-rename", seed=2)
    start_training_on_page(page, app_server["url"], "Own images: browser-rename", epochs=200)
    assert wait_for_epoch(page, 1) >= 1
    page.get_by_role("button", name="Rename").click()
    field = page.get_by_role("textbox", name="Name")
    field.fill("")
    for word in ("Lesson ", "one: ", "tiny ", "filters"):  # typed across several redraws
        field.press_sequentially(word, delay=150)
    page.get_by_role("button", name="Save the name").click()
    active = poll_until(
        lambda: [i for i in store.list_runs() if i.status.active], 30, "the training run"
    )
    poll_until(lambda: store.run_name(active[0].id) == "Lesson one: tiny filters", 30,
               "the new name to be saved")  # fmt: skip
    page.get_by_role("heading", name="Lesson one: tiny filters").wait_for()
    page.get_by_role("button", name="Stop").click()
    poll_until(lambda: not run_status.read_status(active[0].id).active, 60, "the run to stop")
