"""A full classroom: many browser sessions draw and upload digits while a run trains.

    .venv/bin/python benchmarks/classroom.py [--sessions 20] [--seconds 60] [--json-out PATH]

Starts its own server (`streamlit run app.py`, a free port, a lab home in a temp folder)
and one training run (simple_convnet on the embedded MNIST), then drives N sessions of
Debian's Chromium (one browser, one context per learner) on the Predict page: each draws a
stroke on the canvas, or every other time uploads a digit PNG, and waits until the new
prediction is on the page. The latency is what the learner sees: from releasing the mouse
(or picking the file) to the prediction being visible. Errors are timeouts, exception or
error boxes on the page, and closed websockets. The server's peak RSS (the process and its
children, from /proc) is sampled throughout, and the CPU that the server, the training
worker, the browsers and the machine's other users took during the load is reported: on a
small machine the browsers compete with the server they measure.

Then 5 training runs are requested at once: the queue must keep at most
CNN_LAB_MAX_WORKERS of them training and start the others only when a slot frees. Every
run is stopped at the end and the server shut down, so nothing is left running.

Prints a table; exits 1 when any error was seen or the queue check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnn_core import jobs, paths, runs  # noqa: E402
from tests.browser_helpers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    digit_one_png,
    poll_until,
    start_server,
    stop_server,
    stroke_points,
)

ACTION_TIMEOUT_S = 30.0  # a prediction slower than this counts as an error
OPEN_TIMEOUT_S = 600.0  # twenty pages opening at once on a busy two-core machine: minutes
STROKES_BEFORE_CLEAR = 3
QUEUE_REQUESTS = 5
QUEUE_OBSERVE_S = 2.0  # a queued worker polls its turn every 0.3 s
RUN_END_TIMEOUT_S = 90.0
RSS_EVERY_S = 0.5
POLL_S = 0.1
T = TypeVar("T")
# Enough epochs to outlast opening twenty pages on two cores; it is stopped after the load.
TRAINING = runs.RunConfig(name="classroom", dataset="mnist", model="simple_convnet", epochs=300)
QUEUED = runs.RunConfig(name="queue check", dataset="mnist", model="simple_convnet", epochs=5)

CANVAS_SRC_JS = """() => {
  const cap = [...document.querySelectorAll('[data-testid="stImageCaption"]')]
    .find((e) => e.textContent.trim() === 'canvas');
  return cap ? cap.parentElement.querySelector('img')?.src ?? null : null;
}"""
# A new drawing has been answered once the "canvas" step image is a new one: the page writes
# the Prediction metric before the step images, so the metric beside it is the new one too.
NEW_DRAWING_JS = f"""(previous) => {{
  const src = ({CANVAS_SRC_JS})();
  const metric = [...document.querySelectorAll('[data-testid="stMetricLabel"]')]
    .some((e) => e.textContent.includes('Prediction'));
  return Boolean(src && src !== previous && metric);
}}"""
UPLOAD_ANSWERED_JS = """(name) => {
  const cap = [...document.querySelectorAll('[data-testid="stImageCaption"]')]
    .find((e) => e.textContent.trim() === name);
  const answer = cap?.closest('[role="tabpanel"]')?.querySelector('li');
  return Boolean(answer && answer.offsetParent !== null);
}"""
UPLOAD_GONE_JS = """(name) => ![...document.querySelectorAll('[data-testid="stImageCaption"]')]
  .some((e) => e.textContent.trim() === name)"""
PAGE_ERRORS_JS = """() => {
  const boxes = [...document.querySelectorAll(
    '[data-testid="stException"], [data-testid="stAlertContentError"], [role="dialog"]')];
  return boxes.map((e) => e.innerText.trim().slice(0, 200));
}"""


@dataclass
class SessionStats:
    """What every learner saw, added up."""

    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)
    sessions_open: int = 0

    def error(self, kind: str, detail: str) -> None:
        self.kinds[kind] += 1
        self.errors.append(f"{kind}: {detail}"[:300])


@dataclass
class Figures:
    """The measured figures, as printed and as written by --json-out."""

    sessions: int
    seconds: float
    predictions: int
    draws: int
    uploads: int
    errors: int
    error_samples: list[str]
    error_kinds: dict[str, int]  # how many errors of each kind
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    server_peak_rss_mb: float
    worker_peak_rss_mb: float
    training_at_end_of_load: str
    max_workers: int
    queue: dict
    machine_load_before: float  # 1-minute load average when the script started
    browser_nice: int  # the browsers' nice value (19: the server and training go first)
    cores_used: dict[str, float]  # average busy cores during the load, per process group


T0 = time.monotonic()


def say(what: str) -> None:
    """Progress on stderr, so that the table alone goes to stdout."""
    print(f"[{time.monotonic() - T0:6.1f} s] {what}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- memory and CPU, from /proc


def process_tree(root: int) -> list[int]:
    """The pid and every descendant's pid (read from /proc/*/stat)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces
        parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def rss_mb(pids: list[int]) -> float:
    """The summed resident memory of these processes, in MB (gone ones count 0)."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def cpu_seconds(pids: list[int]) -> float:
    """The CPU time (user + system) these processes have used so far, in seconds."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime and stime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time spent by every core of the machine on anything but idling, from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Meter(threading.Thread):
    """Samples the server's tree and the training workers every RSS_EVERY_S and keeps their
    peak RSS; `mark()` at the start and the end of the load gives each group's CPU use."""

    def __init__(self, server_pid: int):
        super().__init__(daemon=True)
        self.server_pid = server_pid
        self.server_mb = 0.0
        self.workers_mb = 0.0
        self.marks: list[tuple[float, dict[str, float]]] = []
        self.done = threading.Event()

    def groups(self) -> dict[str, list[int]]:
        """The pids of the server, the training workers, this script, and the browsers (the
        rest of this script's process tree: Playwright's driver and Chromium)."""
        server = process_tree(self.server_pid)
        workers = [i.status.pid for i in runs.list_runs() if i.status.active and i.status.pid]
        others = set(server) | set(workers) | {os.getpid()}
        browsers = [pid for pid in process_tree(os.getpid()) if pid not in others]
        return {"server": server, "training": workers, "browsers": browsers,
                "load script": [os.getpid()]}  # fmt: skip

    def mark(self) -> None:
        cpu = {name: cpu_seconds(pids) for name, pids in self.groups().items()}
        cpu["whole machine"] = machine_busy_seconds()
        self.marks.append((time.monotonic(), cpu))

    def cores_used(self) -> dict[str, float]:
        """Each group's average number of busy cores between the first and the last mark,
        and the other users of the machine (the rest of its busy time)."""
        (t0, first), (t1, last) = self.marks[0], self.marks[-1]
        used = {name: (last[name] - first[name]) / max(t1 - t0, 1e-9) for name in first}
        used["other users"] = used.pop("whole machine") - sum(used.values())
        return {name: round(cores, 2) for name, cores in used.items()}

    def run(self) -> None:
        while not self.done.wait(RSS_EVERY_S):
            groups = self.groups()
            self.server_mb = max(self.server_mb, rss_mb(groups["server"]))
            self.workers_mb = max(self.workers_mb, rss_mb(groups["training"]))


# ---------------------------------------------------------------- one learner


async def draw_and_wait(page, shift: float, timeout_ms: float) -> float:
    """Draws a stroke; returns the seconds until its prediction is on the page."""
    previous = await page.evaluate(CANVAS_SRC_JS)
    first, *rest = stroke_points(await page.locator("canvas.upper-canvas").bounding_box(),
                                 shift=shift)  # fmt: skip
    await page.mouse.move(*first)
    await page.mouse.down()
    for point in rest:
        await page.mouse.move(*point)
    await page.mouse.up()
    start = time.monotonic()
    await page.wait_for_function(NEW_DRAWING_JS, arg=previous, timeout=timeout_ms, polling=50)
    return time.monotonic() - start


async def clear_canvas(page, timeout_ms: float) -> None:
    await page.locator(".st-key-clear button").click()
    await page.get_by_text("Draw a digit on the black square").wait_for(timeout=timeout_ms)


async def upload_and_wait(page, png: bytes, name: str, timeout_ms: float) -> float:
    """Uploads a digit; returns the seconds until its answers are shown. Removes it after."""
    await page.get_by_role("tab", name="Upload").click()
    files = page.locator("[data-testid='stFileUploaderDropzoneInput']")
    await files.set_input_files({"name": name, "mimeType": "image/png", "buffer": png})
    start = time.monotonic()
    await page.wait_for_function(UPLOAD_ANSWERED_JS, arg=name, timeout=timeout_ms, polling=50)
    latency = time.monotonic() - start
    await page.get_by_role("button", name=f"Remove {name}").click()
    await page.wait_for_function(UPLOAD_GONE_JS, arg=name, timeout=timeout_ms, polling=100)
    await page.get_by_role("tab", name="Draw").click()
    return latency


async def open_predict(page, url: str) -> None:
    """Opens the Predict page and waits for its canvas and app.py's sidebar."""
    await page.goto(url + "/predict", timeout=OPEN_TIMEOUT_S * 1000)
    await page.locator("canvas.upper-canvas").wait_for(timeout=OPEN_TIMEOUT_S * 1000)
    sidebar = page.get_by_test_id("stSidebarUserContent")
    await sidebar.get_by_text("Dataset").wait_for(timeout=OPEN_TIMEOUT_S * 1000)


async def reopen(page, url: str, n: int, stats: SessionStats) -> bool:
    """What a stuck learner does: load the page again. False if even that fails."""
    try:
        await open_predict(page, url)
    except Exception as exc:
        stats.error(f"reload: {type(exc).__name__}", f"session {n}: {exc}")
        return False
    return True


async def learner(browser, url: str, n: int, go: asyncio.Event, stop_at: list[float],
                  pause_s: float, stats: SessionStats) -> tuple[int, int]:  # fmt: skip
    """One learner: open Predict, then draw and upload in turn until the end of the load."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    closed = []
    page = await context.new_page()
    page.on("websocket", lambda ws: ws.on("close", lambda _: closed.append(ws.url)))
    rng = random.Random(n)
    png = digit_one_png(ink=(0, 0, 0, 255), paper=(255, 255, 255, 255))
    timeout_ms = ACTION_TIMEOUT_S * 1000
    draws = uploads = strokes = 0
    try:
        await open_predict(page, url)
        stats.sessions_open += 1
        await go.wait()
        while time.monotonic() < stop_at[0]:
            action = "upload" if (draws + uploads) % 2 else "draw"
            try:
                if action == "draw":
                    if strokes >= STROKES_BEFORE_CLEAR:
                        await clear_canvas(page, timeout_ms)
                        strokes = 0
                    latency = await draw_and_wait(page, rng.uniform(-0.2, 0.2), timeout_ms)
                    draws, strokes = draws + 1, strokes + 1
                else:
                    name = f"learner{n}-{uploads}.png"
                    latency = await upload_and_wait(page, png, name, timeout_ms)
                    uploads += 1
                stats.latencies_s.append(latency)
            except Exception as exc:  # a timeout or a vanished element: the learner is stuck
                stats.error(f"{action}: {type(exc).__name__}", f"session {n}: {exc}")
                strokes = 0
                if not await reopen(page, url, n, stats):
                    break
                closed.clear()  # loading the page again closed the old websocket itself
                continue
            shown = await page.evaluate(PAGE_ERRORS_JS)
            if shown:
                stats.error(f"{action}: error shown on the page", f"session {n}: {shown[0]!r}")
            if closed:
                stats.error("websocket closed", f"session {n}: {closed[0]}")
                closed.clear()
            await asyncio.sleep(pause_s * rng.uniform(0.5, 1.5))
    except Exception as exc:  # the page did not even open
        stats.error(f"open: {type(exc).__name__}", f"session {n}: {exc}")
    finally:
        await context.close()
    return draws, uploads


async def drive_sessions(url: str, sessions: int, seconds: float, pause_s: float,
                         ready: Callable[[], bool],
                         meter: Meter) -> tuple[SessionStats, int, int]:  # fmt: skip
    """Opens every session, waits for `ready()`, then lets them all work for `seconds`."""
    from playwright.async_api import async_playwright

    stats, go, stop_at = SessionStats(), asyncio.Event(), [float("inf")]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # The teacher opens the app first, as in a classroom.
            teacher = await browser.new_page()
            await open_predict(teacher, url)
            await teacher.close()
            tasks = [
                asyncio.create_task(learner(browser, url, n, go, stop_at, pause_s, stats))
                for n in range(sessions)
            ]
            deadline = time.monotonic() + OPEN_TIMEOUT_S
            while stats.sessions_open + len(stats.errors) < sessions or not ready():
                if time.monotonic() > deadline:
                    stats.error("not ready in time", f"after {OPEN_TIMEOUT_S:.0f} s")
                    break
                await asyncio.sleep(POLL_S)
            stop_at[0] = time.monotonic() + seconds
            meter.mark()
            go.set()
            say(f"{stats.sessions_open} sessions open; load for {seconds:.0f} s")
            await asyncio.sleep(seconds)
            meter.mark()  # before the sessions close their pages and Chromium's processes end
            done = await asyncio.gather(*tasks)
        finally:
            await browser.close()
    return stats, sum(d for d, _ in done), sum(u for _, u in done)


# ---------------------------------------------------------------- training and the queue


def wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    return poll_until(predicate, timeout, what, interval=POLL_S)  # a TimeoutError at the end


def training_now() -> list[str]:
    """Ids of the runs holding a training slot (running or saving before a stop)."""
    return [i.id for i in runs.list_runs() if i.status.state in ("running", "stopping")]


def training(run_id: str) -> bool:
    """True once the run is past its first batch (TensorFlow loaded, the model built)."""
    status = runs.read_status(run_id)
    if status.state not in ("queued", "running"):
        raise RuntimeError(f"the training run is {status.state}: {status.message}")
    return status.epoch > 1 or status.batch > 0


def request_at_once(n: int) -> list[str]:
    """Starts n runs from n threads released together, like n learners clicking Start."""
    barrier, ids = threading.Barrier(n), []

    def request() -> None:
        barrier.wait()
        ids.append(jobs.start_run(QUEUED))

    threads = [threading.Thread(target=request) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ids


def check_queue(max_workers: int) -> dict:
    """Requests QUEUE_REQUESTS runs at once while the classroom run trains.

    The peak of runs training at once is watched throughout; then everything training is
    stopped, and a queued request must take the freed slot (it starts later).
    """
    peak = len(training_now())
    ids = request_at_once(QUEUE_REQUESTS)
    wait_until(lambda: all(runs.read_status(r).pid for r in ids), RUN_END_TIMEOUT_S,
               "every requested worker to start and queue")  # fmt: skip
    settle = time.monotonic() + QUEUE_OBSERVE_S
    while time.monotonic() < settle:
        peak = max(peak, len(training_now()))
        time.sleep(POLL_S)
    states = [runs.read_status(r).state for r in ids]
    running = sum(s in ("running", "stopping") for s in states)
    queued = states.count("queued")
    waiting = [r for r, state in zip(ids, states, strict=True) if state == "queued"]
    freed_at = time.time()
    for run_id in training_now():
        jobs.stop_run(run_id)
    handover_s, started_later = None, False
    if waiting:

        def started() -> list[runs.RunStatus]:
            nonlocal peak
            peak = max(peak, len(training_now()))
            now = [runs.read_status(r) for r in waiting]
            return [s for s in now if s.started is not None]

        first = wait_until(started, RUN_END_TIMEOUT_S, "a queued run to start")
        handover_s = min(s.started for s in first) - freed_at
        started_later = all(s.started > freed_at for s in first)
    ok = peak <= max_workers and running + queued == len(ids) and (not queued or started_later)
    return {
        "requests": len(ids), "running": running, "queued": queued, "peak_training": peak,
        "max_workers": max_workers, "handover_s": handover_s, "started_later": started_later,
        "ok": ok,
    }  # fmt: skip


def stop_every_run() -> list[str]:
    """Stops every active run and waits for its worker; returns the ones that would not end."""
    for info in runs.list_runs():
        if info.status.active:
            jobs.stop_run(info.id)
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not any(i.status.active for i in runs.list_runs()),
                   RUN_END_TIMEOUT_S, "every run to stop")  # fmt: skip
    stuck = [i for i in runs.list_runs() if runs.worker_alive(i.id)]
    for info in stuck:  # only workers this script started, in its own lab home
        if info.status.pid:
            os.kill(info.status.pid, 9)
    return [i.id for i in stuck]


# ---------------------------------------------------------------- the whole measurement


@contextlib.contextmanager
def isolated_lab(max_workers: int) -> Iterator[Path]:
    """A temporary lab home and worker limit for this process, its server and its workers."""
    saved = {k: os.environ.get(k) for k in (paths.HOME_ENV, jobs.MAX_WORKERS_ENV)}
    with tempfile.TemporaryDirectory(prefix="classroom-") as tmp:
        os.environ[paths.HOME_ENV] = str(Path(tmp) / "lab")
        os.environ[jobs.MAX_WORKERS_ENV] = str(max_workers)
        try:
            yield Path(tmp) / "lab"
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def percentile(samples: list[float], q: float) -> float | None:
    return float(np.percentile(samples, q)) if samples else None


def run_in_own_thread(coroutine: Coroutine[Any, Any, T], nice: int = 0) -> T:
    """asyncio.run in a thread of its own, so that a caller whose thread already has an
    event loop (pytest beside Playwright's sync API) can measure too. Linux keeps a nice
    value per thread, and the processes started from it (Chromium) inherit this one."""

    def run() -> T:
        os.nice(nice)
        return asyncio.run(coroutine)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def measure(sessions: int, seconds: float, pause_s: float, max_workers: int,
            browser_nice: int = 0) -> Figures:  # fmt: skip
    """Runs the whole classroom and returns its figures; leaves nothing running."""
    global T0
    T0 = time.monotonic()
    machine_load = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    server = sampler = None
    with isolated_lab(max_workers) as home:
        say(f"starting the training run, lab home {home}")
        run_id = jobs.start_run(TRAINING)  # first: its worker loads TensorFlow meanwhile
        try:
            say(f"run {run_id} queued; starting the server")
            server = start_server(home)
            say(f"server up at {server.url}; opening {sessions} sessions")
            sampler = Meter(server.proc.pid)
            sampler.start()
            load = drive_sessions(server.url, sessions, seconds, pause_s,
                                  lambda: training(run_id), sampler)  # fmt: skip
            stats, draws, uploads = run_in_own_thread(load, browser_nice)
            during = runs.read_status(run_id)
            trained = f"epoch {during.epoch}, {during.state}"
            say(f"load over; requesting {QUEUE_REQUESTS} training runs at once")
            queue = check_queue(max_workers)
        finally:
            say("stopping every run")
            stuck = stop_every_run()
            if sampler is not None:
                sampler.done.set()
                sampler.join()
            if server is not None:
                stop_server(server)
            say("server stopped")
        if stuck:
            stats.error("runs left training, killed", str(stuck))
    lat = stats.latencies_s
    return Figures(
        sessions=sessions, seconds=seconds, predictions=len(lat), draws=draws, uploads=uploads,
        errors=len(stats.errors), error_samples=stats.errors[:10], error_kinds=dict(stats.kinds),
        p50_s=percentile(lat, 50),
        p95_s=percentile(lat, 95), max_s=max(lat) if lat else None,
        server_peak_rss_mb=round(sampler.server_mb, 1),
        worker_peak_rss_mb=round(sampler.workers_mb, 1), training_at_end_of_load=trained,
        max_workers=max_workers, queue=queue, machine_load_before=machine_load,
        browser_nice=browser_nice,
        cores_used=sampler.cores_used(),
    )  # fmt: skip


def format_table(f: Figures) -> str:
    def sec(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f} s"

    q = f.queue
    kinds = ", ".join(f"{kind} ×{count}" for kind, count in f.error_kinds.items())
    rows = [
        ("sessions", f.sessions), ("duration", f"{f.seconds:.0f} s"),
        ("machine load average before", f"{f.machine_load_before:.1f}"),
        ("browsers' nice value", f.browser_nice),
        ("predictions done", f"{f.predictions} ({f.draws} drawn, {f.uploads} uploaded)"),
        ("errors (target 0)", f"{f.errors} {kinds}".strip()),
        ("p50 latency", sec(f.p50_s)),
        ("p95 latency (target ≤ 1 s)", sec(f.p95_s)), ("max latency", sec(f.max_s)),
        ("server peak RSS", f"{f.server_peak_rss_mb:.0f} MB"),
        ("training worker peak RSS", f"{f.worker_peak_rss_mb:.0f} MB"),
        (f"CPU during the load, cores (of {os.cpu_count()})",
         ", ".join(f"{name} {cores:.2f}" for name, cores in f.cores_used.items())),
        ("training run at the end of the load", f.training_at_end_of_load),
        (f"{q['requests']} training requests at once",
         f"{q['running']} running, {q['queued']} queued (max workers {q['max_workers']}, "
         f"peak training {q['peak_training']})"),
        ("queued run started after a slot freed", f"{q['started_later']} "
         f"(after {sec(q['handover_s'])})"),
    ]  # fmt: skip
    return "\n".join(["| figure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help="browser sessions (20)")
    parser.add_argument("--seconds", type=float, default=60, help="length of the load (60)")
    parser.add_argument(
        "--pause",
        type=float,
        default=1.0,
        help="a learner's look at each answer, in seconds (1.0 ± 50%%)",
    )
    parser.add_argument(
        "--max-workers",
        type=int,
        default=jobs.max_workers(),
        help="training runs at once (default: CNN_LAB_MAX_WORKERS or cores/2)",
    )
    parser.add_argument(
        "--browser-nice",
        type=int,
        default=0,
        help="run Chromium at this nice value; 19 gives the server and the training run the "
        "CPU first, as if the browsers were on other machines (default 0)",
    )
    parser.add_argument("--json-out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)  # fmt: skip
    if not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    figures = measure(args.sessions, args.seconds, args.pause, args.max_workers, args.browser_nice)
    print(format_table(figures))
    for line in figures.error_samples:
        print("error:", line)
    if args.json_out:
        args.json_out.write_text(json.dumps(asdict(figures), indent=2) + "\n")
    return 1 if figures.errors or not figures.queue["ok"] else 0


if __name__ == "__main__":
    sys.exit(main())
