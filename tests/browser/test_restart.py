"""A real server restart while a worker trains: the run carries on, or becomes resumable,
and the Train page in Chromium says which."""

import os
import re
import signal
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from cnn_core.runs import run_folder, store
from cnn_core.runs import status as run_status
from devtools.browser import (
    assert_app_navigation,
    free_port,
    poll_until,
    start_server,
    start_training_on_page,
    stop_server,
    wait_for_epoch,
)
from tests.factories import ARTIFACTS, assert_unbroken_history, epochs_logged, save_tiny_dataset

# About 1 s each here (3,000 images of 12×12): the run that trains through a restart is
# still training when both tabs have shown it again (by epoch 23 to 27), then it finishes.
EPOCHS = 38
DATASET_OPTION = "Own images: long"
FINISH_TIMEOUT_S = 240


class Lab:
    """A lab home and the app server on it, which a test stops and starts again."""

    def __init__(self, home: Path):
        self.home, self.port = home, free_port()
        self.server = start_server(home, self.port)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self, sig: int) -> int:
        return stop_server(self.server, sig)

    def start(self) -> None:
        """Starts a new server on the same port, so that open tabs reconnect to it."""
        self.server = start_server(self.home, self.port)


@pytest.fixture
def lab(lab_home):
    save_tiny_dataset(n=3000, name="long")
    lab = Lab(lab_home)
    yield lab
    lab.stop(signal.SIGTERM)
    for info in store.list_runs():
        if run_status.worker_alive(info.id) and info.status.pid:
            os.kill(info.status.pid, signal.SIGKILL)  # only workers this test started


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def stop_the_server_while_training(lab: Lab, page, sig: int) -> tuple[str, run_status.RunStatus]:
    """Starts a run from the Train page (so the server spawns its worker), lets it reach its
    second epoch, then stops the server with `sig`; returns the run's id and its status read
    just before that stop. The worker must outlive the server."""
    start_training_on_page(page, lab.url, DATASET_OPTION, EPOCHS)
    wait_for_epoch(page, 2, EPOCHS, timeout=120)
    (info,) = store.list_runs()
    assert parent_pid(info.status.pid) == lab.server.proc.pid  # the server started the worker
    lab.stop(sig)
    assert lab.server.proc.returncode is not None
    assert run_status.worker_alive(info.id)  # not even a killed server takes the worker with it
    return info.id, info.status


def metrics_size(run_id: str) -> int:
    return run_folder.run_paths(run_id).metrics.stat().st_size


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def watched_state(page, state: str):
    """The state of the run shown at the top of the Train page (not the table's cell)."""
    exactly = re.compile(f"^{state}$")
    return page.locator("[data-testid='stMarkdownContainer'] strong", has_text=exactly)


def select_first_run(page) -> None:
    """Clicks the checkbox of the first row of the runs table, as a learner would.

    Only once the page has settled: its script has run to the end and no widget is still a
    placeholder. A widget drawn late pushes the table down, and a click aimed before that
    lands beside the checkbox (about one try in eight on a fresh server).
    """
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for()
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stSkeleton], [data-testid=stSkeletonElement]')"
    )
    # Under the 35 px header, left of "name"; Playwright waits until the table holds still.
    # The runs table is the page's first table (the new-run form below may hold others).
    page.get_by_test_id("stDataFrame").first.click(position={"x": 16, "y": 52})


@pytest.mark.browser
@pytest.mark.slow
def test_a_run_keeps_training_through_a_server_restart(lab, page):
    run_id, status = stop_the_server_while_training(lab, page, signal.SIGTERM)
    grown = metrics_size(run_id)
    poll_until(lambda: metrics_size(run_id) > grown, 60, "new metrics with the server down")

    lab.start()
    # The tab left open reconnects by itself and follows the run again; so does a new tab,
    # opened meanwhile (both wait for the fresh server's first run of the page).
    fresh = page.context.new_page()
    fresh.goto(lab.url + "/train")
    shown = wait_for_epoch(page, status.epoch + 1, EPOCHS)
    assert_app_navigation(page)
    wait_for_epoch(fresh, shown, EPOCHS)
    watched_state(fresh, "running").wait_for()
    fresh.get_by_role("button", name="Stop").wait_for()
    assert_app_navigation(fresh)
    screenshot(fresh, "restart-still-training")

    watched_state(fresh, "finished").wait_for(timeout=FINISH_TIMEOUT_S * 1000)
    fresh.get_by_text(re.compile(r"^Test accuracy \d")).wait_for()
    screenshot(fresh, "restart-finished")
    assert run_status.read_status(run_id).state == "finished"
    assert epochs_logged(run_id) == list(range(1, EPOCHS + 1))


@pytest.mark.browser
@pytest.mark.slow
def test_a_worker_killed_while_the_server_is_down_is_resumed_from_the_page(lab, page):
    run_id, status = stop_the_server_while_training(lab, page, signal.SIGKILL)
    os.kill(status.pid, signal.SIGKILL)
    poll_until(lambda: not run_status.worker_alive(run_id), 10, "the worker's lock to be released")

    page.goto("about:blank")  # a fresh session after the restart, not a reconnected one
    lab.start()
    page.goto(lab.url + "/train")
    page.get_by_text("Runs on this machine").wait_for()
    assert_app_navigation(page)
    select_first_run(page)
    watched_state(page, "interrupted").wait_for()
    page.get_by_text("Resume to continue from the last checkpoint").wait_for()
    page.get_by_role("button", name="Resume").wait_for()
    page.locator(".vega-embed").nth(3).wait_for()  # all four charts drawn
    screenshot(page, "restart-interrupted")
    checkpoint = run_status.read_status(run_id).last_checkpoint
    assert checkpoint

    page.get_by_role("button", name="Resume").click()
    assert wait_for_epoch(page, checkpoint + 2, EPOCHS, timeout=120) >= checkpoint + 2
    watched_state(page, "running").wait_for()
    screenshot(page, "restart-resumed")
    page.get_by_role("button", name="Stop").click()
    watched_state(page, "stopped").wait_for(timeout=60_000)
    assert_unbroken_history(run_id)


@pytest.mark.browser
def test_tabs_reconnecting_at_once_to_a_fresh_server_get_the_app_navigation(lab, page):
    """After a restart every open tab reconnects at the same moment, each on its own page.

    Streamlit's legacy multipage mode, which the `pages/` folder beside app.py turns on until
    some session calls st.navigation, used to draw such tabs with its own menu ("app",
    "shared", ...) and no dataset chooser; scripts/serve.py switches it off.
    """
    tabs = [page] + [page.context.new_page() for _ in range(2)]
    for tab, path in zip(tabs, ("/train", "/predict", "/learn"), strict=True):
        tab.goto(lab.url + path)
    legacy = []
    for tab in tabs:
        try:
            assert_app_navigation(tab, timeout_ms=20_000)
        except PlaywrightTimeoutError:
            legacy.append((tab.url, tab.get_by_test_id("stSidebarNav").inner_text().split()))
    assert not legacy, f"tabs drawn without app.py's navigation: {legacy}"
