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
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.classroom_common import (  # noqa: E402
    STROKES_BEFORE_CLEAR,
    Meter,
    ServerFigures,
    SessionStats,
    common_args,
    errors_row,
    hold_the_load,
    load_rows,
    markdown_table,
    percentile,
    report,
    run_classroom,
    say,
    sec,
    server_rows,
)
from devtools.browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    digit_one_png,
    stroke_points,
)

ACTION_TIMEOUT_S = 30.0  # a prediction slower than this counts as an error
OPEN_TIMEOUT_S = 600.0  # twenty pages opening at once on a busy two-core machine: minutes

CANVAS_SRC_JS = """() => {
  const cap = [...document.querySelectorAll('[data-testid="stImageCaption"]')]
    .find((e) => e.textContent.trim() === 'canvas');
  return cap ? cap.parentElement.querySelector('img')?.src ?? null : null;
}"""
# A new drawing has been answered once the "canvas" step image is a new one: the page writes
# the Prediction metric before the step images, so the metric beside it is the new one too.
# A stroke drawn while a fresh canvas (after Clear) was still settling can arrive cut short:
# the page then answers "No digit found", which is an answer all the same (each drawing
# starts from a cleared canvas, so that warning is always the new one).
NEW_DRAWING_JS = f"""(previous) => {{
  const src = ({CANVAS_SRC_JS})();
  const metric = [...document.querySelectorAll('[data-testid="stMetricLabel"]')]
    .some((e) => e.textContent.includes('Prediction'));
  const noDigit = [...document.querySelectorAll('[data-testid="stAlert"]')]
    .some((e) => e.textContent.includes('No digit found'));
  return Boolean((src && src !== previous && metric) || noDigit);
}}"""
# An upload's box is headed by its file name in bold, and holds its Prediction metric.
UPLOAD_TITLE_JS = """(name) => [
  ...document.querySelectorAll('[data-testid="stMarkdownContainer"] strong')
].find((e) => e.textContent.trim() === name)"""
UPLOAD_ANSWERED_JS = f"""(name) => {{
  const title = ({UPLOAD_TITLE_JS})(name);
  const panel = title?.closest('[role="tabpanel"]');
  const metric = [...(panel?.querySelectorAll('[data-testid="stMetricLabel"]') ?? [])]
    .find((e) => e.textContent.includes('Prediction'));
  return Boolean(metric && metric.offsetParent !== null);
}}"""
UPLOAD_GONE_JS = f"""(name) => !({UPLOAD_TITLE_JS})(name)"""
PAGE_ERRORS_JS = """() => {
  const boxes = [...document.querySelectorAll(
    '[data-testid="stException"], [data-testid="stAlertContentError"], [role="dialog"]')];
  return boxes.map((e) => e.innerText.trim().slice(0, 200));
}"""


@dataclass
class Figures(ServerFigures):
    """The measured figures, as printed and as written by --json-out."""

    sessions: int
    seconds: float
    predictions: int
    draws: int
    uploads: int
    strokes_lost: int  # strokes the browser never sent (not errors: no server was asked)
    errors: int
    error_samples: list[str]
    error_kinds: dict[str, int]  # how many errors of each kind
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    browser_nice: int  # the browsers' nice value (19: the server and training go first)


# ---------------------------------------------------------------- one learner


class StrokeLost(Exception):
    """The browser sent nothing to the server after a stroke: the input was lost on the
    client (a canvas replaced under the mouse), so no server was slow to answer."""


async def draw_and_wait(page, shift: float, timeout_ms: float, frames_sent: list[int]) -> float:
    """Draws a stroke; returns the seconds until its prediction is on the page.

    Raises:
        StrokeLost: no websocket message left the browser after the stroke.
    """
    previous = await page.evaluate(CANVAS_SRC_JS)
    first, *rest = stroke_points(await page.locator("canvas.upper-canvas").bounding_box(),
                                 shift=shift)  # fmt: skip
    sent_before = frames_sent[0]
    await page.mouse.move(*first)
    await page.mouse.down()
    for point in rest:
        await page.mouse.move(*point)
    await page.mouse.up()
    start = time.monotonic()
    try:
        await page.wait_for_function(NEW_DRAWING_JS, arg=previous, timeout=timeout_ms, polling=50)
    except Exception:
        if frames_sent[0] == sent_before:
            raise StrokeLost() from None
        raise
    return time.monotonic() - start


async def clear_canvas(page, timeout_ms: float) -> None:
    """Clears the drawing and waits for the new, empty canvas: Clear gives the canvas a new
    key, so the page mounts a new one, and a stroke drawn on the old one before it goes is
    lost."""
    old = await page.locator("canvas.upper-canvas").element_handle(timeout=timeout_ms)
    await page.locator(".st-key-clear button").click()
    await page.get_by_text("Draw a digit on the black square").wait_for(timeout=timeout_ms)
    await page.wait_for_function("(e) => !e.isConnected", arg=old, timeout=timeout_ms,
                                 polling=50)  # fmt: skip
    await page.locator("canvas.upper-canvas").wait_for(timeout=timeout_ms)


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
    frames_sent = [0]  # websocket messages from the browser: each rerun request is one

    def watch(ws) -> None:
        ws.on("close", lambda _: closed.append(ws.url))
        ws.on("framesent", lambda _: frames_sent.__setitem__(0, frames_sent[0] + 1))

    page.on("websocket", watch)
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
                    try:
                        latency = await draw_and_wait(page, rng.uniform(-0.2, 0.2), timeout_ms,
                                                      frames_sent)  # fmt: skip
                    except StrokeLost:
                        stats.strokes_lost += 1  # drawn again, after a Clear
                        strokes = STROKES_BEFORE_CLEAR
                        continue
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
            await hold_the_load(stats, sessions, seconds, ready, meter, OPEN_TIMEOUT_S, go, stop_at)
            done = await asyncio.gather(*tasks)
        finally:
            await browser.close()
    return stats, sum(d for d, _ in done), sum(u for _, u in done)


def measure(sessions: int, seconds: float, pause_s: float, max_workers: int,
            browser_nice: int = 0) -> Figures:  # fmt: skip
    """Runs the whole classroom and returns its figures; leaves nothing running."""

    def load(url, ready, meter):
        say(f"opening {sessions} sessions")
        return drive_sessions(url, sessions, seconds, pause_s, ready, meter)

    (stats, draws, uploads), server, stuck = run_classroom(load, max_workers, nice=browser_nice)
    if stuck:
        stats.error("runs left training, killed", str(stuck))
    lat = stats.latencies_s
    return Figures(
        **vars(server), sessions=sessions, seconds=seconds, predictions=len(lat), draws=draws,
        uploads=uploads, strokes_lost=stats.strokes_lost, errors=len(stats.errors),
        error_samples=stats.errors[:10],
        error_kinds=dict(stats.kinds), p50_s=percentile(lat, 50), p95_s=percentile(lat, 95),
        max_s=max(lat) if lat else None, browser_nice=browser_nice,
    )  # fmt: skip


def format_table(f: Figures) -> str:
    rows = load_rows(f, "sessions") + [
        ("browsers' nice value", f.browser_nice),
        ("predictions done", f"{f.predictions} ({f.draws} drawn, {f.uploads} uploaded)"),
        ("strokes the browser never sent (drawn again)", f.strokes_lost),
        errors_row(f),
        ("p50 latency", sec(f.p50_s)),
        ("p95 latency (target ≤ 1 s)", sec(f.p95_s)), ("max latency", sec(f.max_s)),
    ]  # fmt: skip
    return markdown_table(rows + server_rows(f))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_args(parser, "browser sessions")
    parser.add_argument(
        "--pause",
        type=float,
        default=1.0,
        help="a learner's look at each answer, in seconds (1.0 ± 50%%)",
    )
    parser.add_argument(
        "--browser-nice",
        type=int,
        default=0,
        help="run Chromium at this nice value; 19 gives the server and the training run the "
        "CPU first, as if the browsers were on other machines (default 0)",
    )
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    figures = measure(args.sessions, args.seconds, args.pause, args.max_workers, args.browser_nice)
    return report(figures, format_table(figures), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
