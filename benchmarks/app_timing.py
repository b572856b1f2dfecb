"""App start, page switches and memory, seen from a real browser.

    .venv/bin/python benchmarks/app_timing.py [--starts 3] [--rounds 3] [--no-worker]

1. The first page: starts the lab (scripts/serve.py, an empty lab home, the embedded MNIST)
   and a bare one-line Streamlit app started the same way (scripts/serve.py's `serve`),
   alternating, --starts times each, and times each from the process' start to the health
   check answering and to its first page rendered in Debian's Chromium (title shown,
   Streamlit's status widget gone). Prints the medians and lab / bare as a ratio.
2. Page switches: on a fresh lab server, opens Home and clicks Train at once (the first
   page that needs TensorFlow, which the server imports in the background: does it say it
   is loading?), then clicks through every page in the sidebar, --rounds times, timing each
   click the same way. A first visit loads its models and data; later visits reuse
   Streamlit's caches, so both are reported.
3. Peak resident memory (the kernel's high-water mark, VmHWM) of the app server once
   every page, the shipped model and a confusion matrix on the held-out images have been
   loaded; and (unless --no-worker) of a training worker during one epoch of Fashion-MNIST
   (60,000 images, when Debian's dataset-fashion-mnist is installed; else the embedded MNIST).
4. Inspect's whole-network tab: a click on the row's − or + to the new unit's detail shown,
   and "Random" to a new test image's whole overview shown, in the browser.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine  # noqa: E402

sys.path.insert(0, str(REPO))
from cnn_core.data import datasets  # noqa: E402
from cnn_core.runs import jobs, presets  # noqa: E402
from cnn_core.runs import status as run_status  # noqa: E402
from devtools.browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    AppServer,
    start_server,
    stop_server,
)

PAGES = (("Data", "Data:"), ("Train", "Train"), ("Predict", "Predict"),
         ("Inspect", "Inspect"), ("Evaluate", "Evaluate"),
         ("Learn", "Learn: how a convolution"), ("Home", "CNN Lab"))  # fmt: skip
LAB_TITLE, BARE_TITLE = "CNN Lab", "A bare app"
BARE_APP = f'import streamlit as st; st.title("{BARE_TITLE}")\n'
# scripts/serve.py's start without the lab: Streamlit routed the same way, nothing imported.
SERVE_BARE = "import sys; sys.path.insert(0, 'scripts'); import serve; serve.serve(sys.argv[1], sys.argv[2:])"  # noqa: E501
TENSORFLOW_SPINNER = "Loading TensorFlow (first start only)"
TIMEOUT_MS = 120_000


def peak_rss_mb(pid: int) -> float:
    """The kernel's high-water mark of a process' resident memory, in MB (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def launch(home: Path, bare_app: Path | None = None) -> AppServer:
    """Starts the lab (or, given `bare_app`, that script) as scripts/serve.py does; returns
    once its health check answers."""
    if bare_app is None:
        return start_server(home)
    return start_server(home, serve=("-c", SERVE_BARE, str(bare_app)))


def settled(page, title: str) -> None:
    """Waits until the page shows its title and Streamlit is no longer running the script."""
    page.get_by_role("heading", name=title).first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS
    )


def first_page(browser, home: Path, bare_app: Path | None) -> tuple[float, float]:
    """(seconds to the health check, seconds to the first page rendered) of a fresh start."""
    t0 = time.perf_counter()
    server = launch(home, bare_app)
    healthy = time.perf_counter() - t0
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(server.url)
        settled(page, BARE_TITLE if bare_app else LAB_TITLE)
        return healthy, time.perf_counter() - t0
    finally:
        context.close()
        stop_server(server)


def click(page, name: str, title: str) -> float:
    start = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_text(name, exact=True).click()
    settled(page, title)
    return time.perf_counter() - start


def page_switches(browser, home: Path, rounds: int) -> tuple[float, bool, dict, float]:
    """On a fresh server: (Home to Train at once, s; was the spinner seen; every page's
    switch times; the server's peak RSS in MB)."""
    switches: dict[str, list[float]] = {name: [] for name, _ in PAGES}
    server = launch(home)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url)
        settled(page, LAB_TITLE)
        start = time.perf_counter()
        page.get_by_test_id("stSidebarNav").get_by_text("Train", exact=True).click()
        spinner = page.get_by_text(TENSORFLOW_SPINNER)
        try:
            spinner.wait_for(timeout=3000)
            seen = True
        except Exception:  # Playwright's TimeoutError: the import was done by then
            seen = False
        settled(page, "Train")
        to_train = time.perf_counter() - start
        for _ in range(rounds):
            for name, title in PAGES:
                switches[name].append(click(page, name, title))
        page.close()
        return to_train, seen, switches, peak_rss_mb(server.proc.pid)
    finally:
        stop_server(server)


CAPTIONS_JS = """() => Array.from(document.querySelectorAll('[data-testid="stCaptionContainer"]'))
    .map(c => c.innerText).filter(t => t.startsWith(%r)).join('|')"""


def changed_and_settled(page, starts_with: str, before: str) -> None:
    """Waits until the caption starting `starts_with` reads otherwise and the script is done."""
    page.wait_for_function(
        f"() => ({CAPTIONS_JS % starts_with})() !== {before!r} && "
        "!document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=TIMEOUT_MS,
    )


def whole_network(browser, home: Path, repeats: int) -> tuple[list[float], list[float]]:
    """Inspect's whole-network tab in Chromium: (seconds from a click on the row's + or -
    to the new unit's detail shown, seconds from "Random" to a new test image's overview
    and detail shown)."""
    server = launch(home)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url + "/inspect")
        page.get_by_text("Every number behind one unit").wait_for(timeout=TIMEOUT_MS)
        settled(page, "Inspect")
        row = page.locator("[data-testid='stNumberInput']").filter(has_text="Row (")
        unit_times, image_times = [], []
        for i in range(repeats):
            before = page.evaluate(CAPTIONS_JS % "Receptive field")
            start = time.perf_counter()
            row.locator("button").nth(i % 2).click()  # − then +: the unit stays in the map
            changed_and_settled(page, "Receptive field", before)
            unit_times.append(time.perf_counter() - start)
        for _ in range(repeats):
            before = page.evaluate(CAPTIONS_JS % "test image")
            start = time.perf_counter()
            page.get_by_role("button", name="Random").click()
            changed_and_settled(page, "test image", before)
            image_times.append(time.perf_counter() - start)
        page.close()
        return unit_times, image_times
    finally:
        stop_server(server)


def worker_peak(dataset: str) -> tuple[str, float, float]:
    """Trains one epoch of the fashion-quick preset's model and returns its peak RSS."""
    cfg = presets.get_preset("fashion-quick").configs[0]
    cfg = presets.with_dataset(cfg, dataset)
    cfg = type(cfg)(**{**cfg.to_dict(), "epochs": 1, "dataset_source": None})
    ds = datasets.load_dataset(dataset)
    run_id = jobs.start_run(cfg, train_size=len(ds.y_train), input_shape=ds.input_shape)
    peak, start = 0.0, time.monotonic()
    while (status := run_status.read_status(run_id)).state not in ("finished", "failed", "stopped"):
        if status.pid:
            peak = max(peak, peak_rss_mb(status.pid))
        time.sleep(0.2)
    return f"{dataset} ({len(ds.y_train):,} images, {cfg.model})", peak, time.monotonic() - start


def median_pair(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3, help="fresh starts of each app")
    parser.add_argument("--rounds", type=int, default=3, help="clicks through every page")
    parser.add_argument("--no-worker", action="store_true", help="skip the training worker")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="cnn-lab-app-"))
    os.environ["CNN_LAB_HOME"] = str(home)
    bare_app = home / "bare_app.py"
    bare_app.write_text(BARE_APP)
    starts: dict[str, list[tuple[float, float]]] = {"lab": [], "bare": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for i in range(args.starts):
            order = ("bare", "lab") if i % 2 == 0 else ("lab", "bare")  # neither always first
            for kind in order:
                starts[kind].append(
                    first_page(browser, home / kind, bare_app if kind == "bare" else None)
                )
        to_train, spinner_seen, switches, server_peak = page_switches(
            browser, home / "switches", args.rounds
        )
        unit_times, image_times = whole_network(browser, home / "network", 2 * args.rounds)
        browser.close()

    print(machine())
    print(f"\n| first page, median of {args.starts} fresh starts each | health check s | "
          "first page s | every start, first page s |\n|---|---|---|---|")  # fmt: skip
    for kind, label in (("lab", "the lab (Home)"), ("bare", "a bare one-line app")):
        healthy, shown = median_pair(starts[kind])
        every = ", ".join(f"{s:.1f}" for _, s in starts[kind])
        print(f"| {label} | {healthy:.1f} | {shown:.1f} | {every} |")
    ratio = median_pair(starts["lab"])[1] / median_pair(starts["bare"])[1]
    print(f"\nfirst page, lab / bare: {ratio:.2f}x")
    print(f"\nHome, then Train at once on a fresh server: {to_train:.1f} s "
          f"(the TensorFlow spinner {'shown' if spinner_seen else 'not seen'})")  # fmt: skip
    print(f"\n| page switch ({args.rounds} rounds) | first visit s | later visits, median s |")
    print("|---|---|---|")
    for name, times in switches.items():
        later = statistics.median(times[1:]) if len(times) > 1 else float("nan")
        print(f"| {name} | {times[0]:.2f} | {later:.2f} |")
    slowest = max((statistics.median(t[1:]) for t in switches.values() if len(t) > 1), default=0)
    print(f"\nslowest page switch after the first visit (median): {slowest:.2f} s")
    print(f"\nInspect, the whole network (MNIST shipped model), {len(unit_times)} times each: "
          f"another unit's detail {statistics.median(unit_times):.2f} s (median; target ≤ 0.3), "
          f"a new image's overview {statistics.median(image_times):.2f} s (≤ 1)")  # fmt: skip
    print("\n| process | peak RSS MB |\n|---|---|")
    print(f"| app server after every page, the shipped model and a confusion matrix | "
          f"{server_peak:.0f} |")  # fmt: skip
    if not args.no_worker:
        fashion = "fashion_mnist" if datasets.is_available("fashion_mnist") else "mnist"
        data, worker_mb, worker_s = worker_peak(fashion)
        print(f"| training worker, one epoch of {data}, {worker_s:.0f} s | {worker_mb:.0f} |")


if __name__ == "__main__":
    main()
