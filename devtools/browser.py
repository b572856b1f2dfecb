"""A real app server, Chromium's settings, a polling helper and a drawn digit, shared by the
tests and by the benchmarks; it imports no pytest so that a benchmark can use it too."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from PIL import Image, ImageDraw

from cnn_core import settings

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT_S = 90
SERVER_STOP_TIMEOUT_S = 10
T = TypeVar("T")


class PollTimeout(AssertionError, TimeoutError):
    """What `poll_until` waited for did not come: a failed assertion to pytest, and a
    TimeoutError to a script that catches those."""


def poll_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Calls `predicate` every `interval` s until it returns something truthy; returns that.

    It is called once more at the deadline, so a slow last call still counts.

    Raises:
        PollTimeout: after `timeout` s, naming `what` and the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise PollTimeout(f"waited {timeout:g} s for {what}; the last value seen: {value!r}")
        time.sleep(interval)


@dataclass
class AppServer:
    """A `streamlit run app.py` process and where to reach it."""

    proc: subprocess.Popen
    url: str
    home: Path
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, proc: subprocess.Popen, timeout: float) -> None:
    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    poll_until(healthy, timeout, f"streamlit to answer on {url}", interval=0.2)


def start_server(
    home: Path, port: int | None = None, serve: tuple[str, ...] = ("scripts/serve.py",)
) -> AppServer:
    """Starts the app on a localhost port with its lab home at `home`; returns once healthy.

    `serve` is what the interpreter runs, before Streamlit's options (benchmarks/app_timing.py
    starts a bare app the same way). The log (`home/server.log`) is appended to, so a
    restarted server adds to it.
    """
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = home / "server.log"
    # Each test server's home is new, so each would time this machine's step: not asked for.
    env = dict(os.environ, CNN_LAB_HOME=str(home), **{settings.CALIBRATION_ENV: "off"})
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, *serve, "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = AppServer(proc, f"http://127.0.0.1:{port}", home, log)
    try:
        wait_for_health(server.url, proc, SERVER_START_TIMEOUT_S)
    except Exception:
        stop_server(server, signal.SIGKILL)
        raise
    return server


def stop_server(server: AppServer, sig: int = signal.SIGTERM) -> int:
    """Sends `sig` to the server and waits for it to exit (SIGKILL after a timeout).

    Returns:
        The server's exit code.
    """
    if server.proc.poll() is None:
        server.proc.send_signal(sig)
    try:
        return server.proc.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        return server.proc.wait()


def stroke_points(box: dict, steps: int = 20, shift: float = 0.0) -> list[tuple[float, float]]:
    """Mouse positions for a "1" drawn down a canvas' middle (`shift`: share of its width)."""
    x = box["x"] + box["width"] * (0.5 + shift)
    return [
        (x + step * 0.3, box["y"] + box["height"] * (0.15 + 0.035 * step))
        for step in range(steps + 1)
    ]


def digit_one_png(size: int = 280, ink=(255, 255, 255, 255), paper=(0, 0, 0, 255)) -> bytes:
    """A PNG of a thick vertical bar, which an MNIST model reads as a 1."""
    img = Image.new("RGBA", (size, size), paper)
    d = ImageDraw.Draw(img)
    d.line([(size * 0.5, size * 0.15), (size * 0.5, size * 0.85)], fill=ink, width=size // 12)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def start_training_on_page(page, url: str, dataset_option: str, epochs: int) -> None:
    """Opens the Train page, picks a dataset in the sidebar and starts the default model."""
    page.goto(url + "/train")
    page.get_by_test_id("stSidebarUserContent").get_by_role("combobox").click()
    page.get_by_role("option", name=dataset_option).click()
    page.get_by_text("Start training").wait_for()
    field = page.get_by_label("Epochs")
    field.fill(str(epochs))
    field.press("Tab")
    page.get_by_role("button", name="Start training").click()


def wait_for_epoch(page, at_least: int, epochs: int = 200, timeout: float = 90) -> int:
    """The epoch the Train page's progress line shows, once it is at least `at_least`."""

    def shown() -> int | None:
        # The text alone: page.content() would send the whole page's HTML (100 kB and more,
        # the charts' included) four times a second, on cores that the run trains on.
        found = re.search(rf"epoch (\d+)/{epochs}", page.evaluate("document.body.textContent"))
        return int(found.group(1)) if found and int(found.group(1)) >= at_least else None

    return poll_until(shown, timeout, f"the page to show epoch {at_least} or later", interval=0.25)


def assert_app_navigation(page, timeout_ms: float = 30_000) -> None:
    """app.py ran: its navigation and the dataset chooser are in the sidebar."""
    page.get_by_test_id("stSidebarUserContent").get_by_text("Dataset").wait_for(timeout=timeout_ms)
    assert page.get_by_test_id("stSidebarNav").get_by_text("Train", exact=True).is_visible()
