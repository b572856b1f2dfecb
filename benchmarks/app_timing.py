"""App start, page switches and memory, seen from a real browser.

    .venv/bin/python benchmarks/app_timing.py [--rounds 3]

1. Starts `streamlit run app.py` (an empty lab home, the embedded MNIST) and times it to
   the health check answering and to the Home page rendered in Debian's Chromium.
2. Clicks through every page in the sidebar, --rounds times, timing each click until the
   page's title is shown and Streamlit has finished running the script (its status
   widget gone). The first visit of a page loads its models and data; later visits
   reuse Streamlit's caches, so both are reported.
3. Peak resident memory (the kernel's high-water mark, VmHWM) of the app server once
   every page, the shipped model and a confusion matrix on the held-out images have been
   loaded; and of a training worker during one epoch of Fashion-MNIST (60,000 images,
   when Debian's dataset-fashion-mnist is installed; else the embedded MNIST).
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
from cnn_core.runs import status as run_status
from devtools.browser import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server  # noqa: E402

PAGES = (("Data", "Data:"), ("Train", "Train"), ("Predict", "Predict"),
         ("Inspect", "Inspect"), ("Evaluate", "Evaluate"),
         ("Learn", "Learn: how a convolution"), ("Home", "CNN Lab"))  # fmt: skip
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


def settled(page, title: str) -> None:
    """Waits until the page shows its title and Streamlit is no longer running the script."""
    page.get_by_role("heading", name=title).first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS
    )


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="cnn-lab-app-"))
    os.environ["CNN_LAB_HOME"] = str(home)
    t0 = time.perf_counter()
    server = start_server(home)
    healthy = time.perf_counter() - t0
    switches: dict[str, list[float]] = {name: [] for name, _ in PAGES}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server.url)
            settled(page, "CNN Lab")
            first_page = time.perf_counter() - t0
            for _ in range(args.rounds):
                for name, title in PAGES:
                    start = time.perf_counter()
                    page.get_by_test_id("stSidebarNav").get_by_text(name, exact=True).click()
                    settled(page, title)
                    switches[name].append(time.perf_counter() - start)
            browser.close()
        server_peak = peak_rss_mb(server.proc.pid)
    finally:
        stop_server(server)
    fashion = "fashion_mnist" if datasets.is_available("fashion_mnist") else "mnist"
    worker_data, worker_mb, worker_s = worker_peak(fashion)

    print(machine())
    print("\n| step | seconds |\n|---|---|")
    print(f"| `streamlit run` to the health check answering | {healthy:.1f} |")
    print(f"| `streamlit run` to the Home page rendered in Chromium | {first_page:.1f} |")
    print(f"\n| page switch ({args.rounds} rounds) | first visit s | later visits, median s |")
    print("|---|---|---|")
    for name, times in switches.items():
        later = statistics.median(times[1:]) if len(times) > 1 else float("nan")
        print(f"| {name} | {times[0]:.2f} | {later:.2f} |")
    print("\n| process | peak RSS MB |\n|---|---|")
    print(f"| app server after every page, the shipped model and a confusion matrix | "
          f"{server_peak:.0f} |")  # fmt: skip
    print(f"| training worker, one epoch of {worker_data}, {worker_s:.0f} s | {worker_mb:.0f} |")


if __name__ == "__main__":
    main()
