"""A full classroom over Streamlit's protocol: websocket learners predict while a run trains.

    .venv/bin/python benchmarks/classroom_ws.py [--sessions 20] [--seconds 60]
        [--think 1 3] [--max-workers N] [--json-out PATH]

`classroom.py` plays the learners with Chromium; on a two-core machine twenty browsers take
the CPU of the server they measure. Here each learner is a websocket client that sends and
receives what its browser tab would, and nothing more: the XSRF cookie from the server, a
websocket to `/_stcore/stream` with the subprotocols a browser offers ("streamlit" and the
XSRF token), and the protobufs of the installed `streamlit.proto` (BackMsg up, ForwardMsg
down). Each learner opens the Predict page (a `rerun_script` with the page's name, as the
browser sends for /predict) and then, in turn:

- draws: sends the canvas' new value as its frontend does (`setStateValue("drawing",
  {raw: Fabric.js JSON, data: PNG data URL})`, the json_value of the custom component's
  widget, found by its key in the deltas), one more stroke each time; after 3 strokes it
  presses Clear (the button's trigger), and the canvas comes back under a new widget id;
- uploads: asks for an upload URL (`file_urls_request` → `file_urls_response`), PUTs a
  digit PNG there with the XSRF header, reruns with the uploader's widget state, and after
  the answer removes the file (DELETE, then a rerun without it), as the Remove button does.

Every rerun carries the widget states the tab holds (the canvas drawing, the uploader),
and the states of widgets a run no longer shows are dropped, as the frontend does. A
widget inside an st.fragment (the Predict page's tabs are) reruns that fragment only: the
rerun names it, and only its own widgets are replaced by what the run shows. The
images a run shows are fetched once per learner (a browser's cache). Between actions a
learner thinks for a random 1–3 s (`--think`). The latency is from sending the rerun (for
an upload: from asking for its URL) to the answer's elements arriving, the same moments
`classroom.py` waits for in the browser: for a drawing, its first preprocessing image (after
the "Prediction" metric and its chart), for an upload, its top-3 list. The run's end
(`script_finished`, after the test gallery's images) is reported too.
Errors: timeouts (30 s), a run without its prediction, exception or error elements, a run
that does not finish successfully, failed HTTP requests, and closed websockets; a learner
who hits one reconnects, as a reloaded tab would.

The training run, the server's peak RSS, everyone's CPU and the queue check of 5
simultaneous training requests are `classroom_common.py`'s, shared with `classroom.py`.
Prints a table; exits 1 when any error was seen or the queue check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import io
import json
import random
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import classroom_common as common  # noqa: E402
from devtools.browser import digit_one_png, stroke_points  # noqa: E402

ACTION_TIMEOUT_S = 30.0  # a prediction slower than this counts as an error
OPEN_TIMEOUT_S = 300.0
STROKES_BEFORE_CLEAR = common.STROKES_BEFORE_CLEAR
PAGE = "predict"  # the url_pathname app.py's st.navigation gives pages/predict.py
CANVAS_SIZE = 280  # pages/predict.py's canvas, in CSS pixels (a tab at zoom 1)
STROKE_WIDTH = 20  # the page's default stroke width
XSRF_COOKIE = "_streamlit_xsrf"
HTTP_TIMEOUT_S = 30.0


class Failure(Exception):
    """Something a learner would see as broken: `kind` names it, `detail` says more."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(kind, detail)
        self.kind, self.detail = kind, detail

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind


def kind_of(exc: Exception) -> str:
    return exc.kind if isinstance(exc, Failure) else type(exc).__name__


def detail_of(exc: Exception) -> str:
    return exc.detail if isinstance(exc, Failure) else str(exc)


@dataclass
class Run:
    """One script run as the tab saw it."""

    elements: list[Any]  # every new Element proto, in order
    answered_s: float | None  # from sending to the first element `answer` accepted
    finished_s: float  # from sending to script_finished


@dataclass
class WsStats(common.SessionStats):
    """common.SessionStats, plus what only a protocol client can tell apart."""

    draw_s: list[float] = field(default_factory=list)
    upload_s: list[float] = field(default_factory=list)
    finished_s: list[float] = field(default_factory=list)  # prediction runs, to script_finished
    other_runs_s: list[float] = field(default_factory=list)  # Clear and Remove reruns
    per_session: dict[int, dict[str, int]] = field(default_factory=dict)
    answers: Counter = field(default_factory=Counter)  # predicted class → count
    media_fetches: int = 0
    run_ends: list[float] = field(default_factory=list)  # when each script run ended
    window: tuple[float, float] = (0.0, 0.0)  # the metered load, from its first to last mark


def element_id(element) -> str:
    kind = element.WhichOneof("type")
    return getattr(getattr(element, kind), "id", "") if kind else ""


def user_key(widget_id: str) -> str:
    """The key a page gave a widget: Streamlit's ids for keyed widgets are $$ID-hash-key."""
    return widget_id.split("-", 2)[2] if widget_id.startswith("$$ID-") else widget_id


def shown_error(element) -> str | None:
    """The text of an exception or st.error element, None for any other element."""
    kind = element.WhichOneof("type")
    if kind == "exception":
        return f"{element.exception.type}: {element.exception.message}"
    if kind == "alert" and element.alert.format == element.alert.ERROR:
        return element.alert.body
    return None


def is_prediction(element) -> bool:
    return element.WhichOneof("type") == "metric" and element.metric.label == "Prediction"


def is_canvas_step(element) -> bool:
    """The drawing's first preprocessing image, which the page writes after the Prediction
    metric and its chart: what classroom.py waits for in the browser."""
    return element.WhichOneof("type") == "imgs" and any(
        img.caption == "canvas" for img in element.imgs.imgs
    )


def upload_titles(run: Run) -> set[str]:
    """The file names heading the Upload tab's boxes (each "**name**")."""
    return {e.markdown.body.strip("*") for e in run.elements
            if e.WhichOneof("type") == "markdown" and e.markdown.body.startswith("**")}  # fmt: skip


class Tab:
    """One learner's browser tab, as the server sees it: a websocket session of the app."""

    def __init__(self, url: str, http: concurrent.futures.Executor, ended: list[float]):
        self.url, self.http, self.ended = url, http, ended  # ended: when each run finished
        self.ws = None
        self.xsrf = ""
        self.session_id = ""
        self.page_hash = ""
        self.widgets: dict[str, Any] = {}  # widget id → the WidgetState the tab holds
        self.ids: dict[str, str] = {}  # user key → widget id, from the last run
        self.fragments: dict[str, str] = {}  # widget id → the st.fragment it is in, if any
        self.fetched: set[str] = set()  # media URLs already in this tab's cache

    # ------------------------------------------------------------ transport

    async def http_call(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes, Any]:
        def call():
            request = urllib.request.Request(self.url + path, data=body, method=method,
                                             headers=headers or {})  # fmt: skip
            if self.xsrf:
                request.add_header("Cookie", f"{XSRF_COOKIE}={self.xsrf}")
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as r:
                return r.status, r.read(), r.headers

        try:
            return await asyncio.get_running_loop().run_in_executor(self.http, call)
        except OSError as exc:
            raise Failure(f"HTTP {method}", f"{path}: {exc}") from exc

    async def connect(self) -> Run:
        """What a tab opening /predict does: the health check that sets the XSRF cookie,
        the websocket, and the page's first run."""
        import websockets.asyncio.client

        _, _, headers = await self.http_call("GET", "/_stcore/health")
        for cookie in headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            if name.strip() == XSRF_COOKIE:
                self.xsrf = rest.split(";", 1)[0]
        self.ws = await websockets.asyncio.client.connect(
            self.url.replace("http", "ws", 1) + "/_stcore/stream",
            subprotocols=["streamlit", self.xsrf] if self.xsrf else ["streamlit"],
            origin=self.url, additional_headers={"Cookie": f"{XSRF_COOKIE}={self.xsrf}"},
            max_size=None, open_timeout=ACTION_TIMEOUT_S,
        )  # fmt: skip
        self.widgets.clear()
        self.fragments.clear()
        self.page_hash = ""
        run = await self.rerun()
        if not self.ids.get("canvas-0"):
            raise Failure("no canvas", f"ids {sorted(self.ids)}")
        return run

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def receive(self, deadline: float):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from websockets.exceptions import ConnectionClosed

        try:
            raw = await asyncio.wait_for(self.ws.recv(), max(deadline - time.monotonic(), 0))
        except TimeoutError as exc:
            raise Failure("timeout", f"no answer within {ACTION_TIMEOUT_S:.0f} s") from exc
        except ConnectionClosed as exc:
            raise Failure("websocket closed", str(exc)) from exc
        msg = ForwardMsg()
        msg.ParseFromString(raw)
        return msg

    async def send(self, back) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self.ws.send(back.SerializeToString())
        except ConnectionClosed as exc:
            raise Failure("websocket closed", str(exc)) from exc

    # ------------------------------------------------------------ script runs

    async def rerun(self, triggers: tuple = (), answer: Callable[[Any], bool] | None = None,
                    start: float | None = None, widget: str = "") -> Run:  # fmt: skip
        """Sends a rerun with every widget state the tab holds (and one-shot `triggers`),
        reads the run to its end, and keeps the widgets it showed, as the frontend does.

        A change of `widget` (an id) inside an st.fragment reruns that fragment only, as
        the frontend asks; the widgets outside it stay as they were.
        """
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        fragment = self.fragments.get(widget, "")
        done = (ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY if fragment
                else ForwardMsg.FINISHED_SUCCESSFULLY)  # fmt: skip
        back = BackMsg()
        state = back.rerun_script
        state.page_name = PAGE
        state.page_script_hash = self.page_hash
        state.fragment_id = fragment
        state.widget_states.widgets.extend([*self.widgets.values(), *triggers])
        start = time.monotonic() if start is None else start
        deadline = start + ACTION_TIMEOUT_S
        await self.send(back)
        elements, answered = [], None
        while True:
            msg = await self.receive(deadline)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.session_id = msg.new_session.initialize.session_id or self.session_id
            elif kind == "navigation":  # st.navigation's page: the frontend keeps its hash
                self.page_hash = msg.navigation.page_script_hash
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                elements.append(element)
                if element_id(element):
                    self.fragments[element_id(element)] = msg.delta.fragment_id
                error = shown_error(element)
                if error is not None:
                    raise Failure("error shown on the page", error[:200])
                if answered is None and answer is not None and answer(element):
                    answered = time.monotonic() - start
            elif kind == "page_not_found":
                raise Failure("page not found", msg.page_not_found.page_name)
            elif kind == "session_event" and msg.session_event.HasField(
                "script_compilation_exception"
            ):
                raise Failure("script compilation error", str(msg.session_event)[:200])
            elif kind == "script_finished":
                if msg.script_finished != done:
                    raise Failure("run not finished", f"status {msg.script_finished}")
                break
        self.ended.append(time.monotonic())
        finished = self.ended[-1] - start
        shown = {element_id(e) for e in elements} - {""}
        # A fragment's run replaces that fragment's widgets only; a full run, all of them.
        kept = {i for i in (*self.widgets, *self.ids.values())
                if fragment and self.fragments.get(i) != fragment}  # fmt: skip
        self.widgets = {i: w for i, w in self.widgets.items() if i in shown | kept}
        self.ids = {user_key(i): i for i in (*kept, *shown)}
        await self.fetch_media(elements)
        return Run(elements, answered, finished)

    async def fetch_media(self, elements: list) -> int:
        """GETs the images a run shows that this tab has not loaded yet."""
        urls = {img.url for e in elements if e.WhichOneof("type") == "imgs"
                for img in e.imgs.imgs if img.url.startswith("/")} - self.fetched  # fmt: skip
        await asyncio.gather(*(self.http_call("GET", u) for u in urls))
        self.fetched |= urls
        return len(urls)

    # ------------------------------------------------------------ a learner's actions

    async def draw(self, strokes: list[float]) -> Run:
        """The canvas' new value after the last of `strokes` (their shifts), as its frontend
        sends it: the Fabric.js JSON of the paths and the PNG the canvas shows."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        box = {"x": 0, "y": 0, "width": CANVAS_SIZE, "height": CANVAS_SIZE}
        image = Image.new("RGBA", (CANVAS_SIZE, CANVAS_SIZE), (0, 0, 0, 255))
        pen, paths = ImageDraw.Draw(image), []
        for shift in strokes:
            points = stroke_points(box, shift=shift)
            pen.line(points, fill=(255, 255, 255, 255), width=STROKE_WIDTH, joint="curve")
            paths.append({
                "type": "Path", "version": "6.7.1", "originX": "left", "originY": "top",
                "stroke": "#FFFFFF", "strokeWidth": STROKE_WIDTH, "fill": None,
                "strokeLineCap": "round", "strokeLineJoin": "round",
                "path": [["M", *points[0]], *(["L", *p] for p in points[1:])],
            })  # fmt: skip
        png = io.BytesIO()
        image.save(png, "PNG")
        value = {"drawing": {
            "raw": {"version": "6.7.1", "objects": paths, "background": "#000000"},
            "data": "data:image/png;base64," + base64.b64encode(png.getvalue()).decode(),
        }}  # fmt: skip
        canvas = self.canvas_id()
        self.widgets[canvas] = WidgetState(id=canvas, json_value=json.dumps(value))
        run = await self.rerun(answer=is_canvas_step, widget=canvas)
        if run.answered_s is None or not any(is_prediction(e) for e in run.elements):
            raise Failure("no prediction", "the drawing's run showed no Prediction metric")
        return run

    def canvas_id(self) -> str:
        return next(i for key, i in self.ids.items() if key.startswith("canvas-"))

    async def clear(self) -> Run:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        old = self.canvas_id()
        button = self.ids["clear"]
        press = WidgetState(id=button, trigger_value=True)
        run = await self.rerun(triggers=(press,), widget=button)
        if self.canvas_id() == old or not any(
            e.WhichOneof("type") == "alert" and e.alert.body.startswith("Draw a digit")
            for e in run.elements
        ):
            raise Failure("Clear did not clear", f"canvas id {self.canvas_id()}")
        return run

    async def upload(self, name: str, png: bytes) -> tuple[Run, Any]:
        """Picks a file in the uploader; returns its run and the file's URLs."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        start = time.monotonic()
        back = BackMsg()
        back.file_urls_request.request_id = request_id = uuid.uuid4().hex
        back.file_urls_request.file_names.append(name)
        back.file_urls_request.session_id = self.session_id
        await self.send(back)
        while True:
            msg = await self.receive(start + ACTION_TIMEOUT_S)
            if msg.WhichOneof("type") == "file_urls_response":
                response = msg.file_urls_response
                if response.response_id == request_id:
                    break
        if response.error_msg or not response.file_urls:
            raise Failure("upload URL refused", response.error_msg)
        urls = response.file_urls[0]
        boundary = uuid.uuid4().hex
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{name}"\r\nContent-Type: image/png\r\n\r\n').encode() + png + (
            f"\r\n--{boundary}--\r\n".encode())  # fmt: skip
        await self.http_call("PUT", urls.upload_url, body, {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-Xsrftoken": self.xsrf,
        })  # fmt: skip
        uploader = self.ids["uploads"]
        state = WidgetState(id=uploader)
        info = state.file_uploader_state_value.uploaded_file_info.add()
        info.name, info.size, info.file_id = name, len(png), urls.file_id
        info.file_urls.CopyFrom(urls)
        self.widgets[uploader] = state
        run = await self.rerun(answer=is_prediction, start=start, widget=uploader)
        if run.answered_s is None or name not in upload_titles(run):
            raise Failure("no prediction", f"the run after uploading {name} showed no answer")
        return run, urls

    async def remove(self, name: str, urls) -> Run:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        await self.http_call("DELETE", urls.delete_url, headers={"X-Xsrftoken": self.xsrf})
        uploader = self.ids["uploads"]
        state = WidgetState(id=uploader)
        state.file_uploader_state_value.SetInParent()
        self.widgets[uploader] = state
        run = await self.rerun(widget=uploader)
        if name in upload_titles(run):
            raise Failure("Remove left the file shown", name)
        return run


# ---------------------------------------------------------------- learners


def answer_of(run: Run) -> str:
    """The predicted class of a draw or an upload: its Prediction metric's value."""
    return next((e.metric.body for e in run.elements if is_prediction(e)), "?")


async def learner(url: str, n: int, http, go: asyncio.Event, stop_at: list[float],
                  think: tuple[float, float], stats: WsStats) -> None:  # fmt: skip
    """One learner: open Predict, then draw and upload in turn until the end of the load."""
    rng = random.Random(n)
    png = digit_one_png(ink=(0, 0, 0, 255), paper=(255, 255, 255, 255))
    counts = stats.per_session.setdefault(n, {"draws": 0, "uploads": 0, "errors": 0})
    tab = Tab(url, http, stats.run_ends)
    strokes: list[float] = []
    try:
        await tab.connect()
    except Exception as exc:  # the page did not even open
        stats.error(f"open: {kind_of(exc)}", f"session {n}: {detail_of(exc)}")
        counts["errors"] += 1
        await tab.close()
        return
    stats.sessions_open += 1
    try:
        await go.wait()
        await asyncio.sleep(rng.uniform(0, think[1]))  # learners do not all start at once
        while time.monotonic() < stop_at[0]:
            action = "upload" if (counts["draws"] + counts["uploads"]) % 2 else "draw"
            try:
                if action == "draw":
                    if len(strokes) >= STROKES_BEFORE_CLEAR:
                        strokes = []
                        stats.other_runs_s.append((await tab.clear()).finished_s)
                    strokes.append(rng.uniform(-0.2, 0.2))
                    run = await tab.draw(strokes)
                    stats.draw_s.append(run.answered_s)
                else:
                    name = f"learner{n}-{counts['uploads']}.png"
                    run, urls = await tab.upload(name, png)
                    stats.upload_s.append(run.answered_s)
                counts[action + "s"] += 1
                stats.latencies_s.append(run.answered_s)
                stats.finished_s.append(run.finished_s)
                stats.answers[answer_of(run)] += 1
                if action == "upload":
                    stats.other_runs_s.append((await tab.remove(name, urls)).finished_s)
            except Exception as exc:  # the learner is stuck: reload the tab
                stats.error(f"{action}: {kind_of(exc)}", f"session {n}: {detail_of(exc)}")
                counts["errors"] += 1
                strokes = []
                await tab.close()
                try:
                    await tab.connect()
                except Exception as again:
                    stats.error(f"reload: {kind_of(again)}", f"session {n}: {detail_of(again)}")
                    break
            # Thinking past the end of the load would only keep the others waiting.
            await asyncio.sleep(min(rng.uniform(*think), max(stop_at[0] - time.monotonic(), 0)))
    finally:
        stats.media_fetches += len(tab.fetched)
        await tab.close()


async def drive_tabs(url: str, sessions: int, seconds: float, think: tuple[float, float],
                     ready: Callable[[], bool], meter: common.Meter) -> WsStats:  # fmt: skip
    """Opens every tab, waits for `ready()`, then lets them all work for `seconds`."""
    stats, go, stop_at = WsStats(), asyncio.Event(), [float("inf")]
    with concurrent.futures.ThreadPoolExecutor(min(64, 2 * sessions + 2)) as http:
        teacher = Tab(url, http, [])  # the teacher opens the app first, as in a classroom
        try:
            await teacher.connect()
        finally:
            await teacher.close()
        tasks = [
            asyncio.create_task(learner(url, n, http, go, stop_at, think, stats))
            for n in range(sessions)
        ]
        await common.hold_the_load(
            stats, sessions, seconds, ready, meter, OPEN_TIMEOUT_S, go, stop_at
        )
        stats.window = (meter.marks[0][0], meter.marks[-1][0])
        await asyncio.gather(*tasks)
    return stats


# ---------------------------------------------------------------- figures


@dataclass
class Figures(common.ServerFigures):
    """The measured figures, as printed and as written by --json-out."""

    sessions: int
    seconds: float
    think_s: tuple[float, float]
    predictions: int
    draws: int
    uploads: int
    other_reruns: int  # Clear and Remove
    media_fetches: int
    sessions_with_both: int  # sessions that got a drawn and an uploaded prediction
    errors: int
    error_samples: list[str]
    error_kinds: dict[str, int]
    answers: dict[str, int]  # predicted class → count (the strokes and the PNG are "1"s)
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    draw_p50_s: float | None
    draw_p95_s: float | None
    upload_p50_s: float | None
    upload_p95_s: float | None
    finished_p95_s: float | None  # the prediction runs, to script_finished
    other_p95_s: float | None
    server_cpu_ms_per_run: float | None  # server CPU during the load / script runs in it
    per_session: dict[int, dict[str, int]]


def measure(sessions: int, seconds: float, think: tuple[float, float],
            max_workers: int) -> Figures:  # fmt: skip
    """Runs the whole classroom and returns its figures; leaves nothing running."""

    def load(url, ready, meter):
        common.say(f"opening {sessions} websocket sessions")
        return drive_tabs(url, sessions, seconds, think, ready, meter)

    stats, server, stuck = common.run_classroom(load, max_workers, clients=None)
    if stuck:
        stats.error("runs left training, killed", str(stuck))
    lat, pct = stats.latencies_s, common.percentile
    # Server CPU per script run: over the metered window, and the runs that ended in it.
    (start, end), server_cpu = stats.window, server.cores_used["server"] * seconds
    runs_done = sum(start <= t <= end for t in stats.run_ends)
    return Figures(
        **vars(server), sessions=sessions, seconds=seconds, think_s=think,
        predictions=len(lat), draws=len(stats.draw_s), uploads=len(stats.upload_s),
        other_reruns=len(stats.other_runs_s), media_fetches=stats.media_fetches,
        sessions_with_both=sum(c["draws"] > 0 and c["uploads"] > 0
                               for c in stats.per_session.values()),
        errors=len(stats.errors), error_samples=stats.errors[:10],
        error_kinds=dict(stats.kinds), answers=dict(stats.answers),
        p50_s=pct(lat, 50), p95_s=pct(lat, 95), max_s=max(lat, default=None),
        draw_p50_s=pct(stats.draw_s, 50), draw_p95_s=pct(stats.draw_s, 95),
        upload_p50_s=pct(stats.upload_s, 50), upload_p95_s=pct(stats.upload_s, 95),
        finished_p95_s=pct(stats.finished_s, 95), other_p95_s=pct(stats.other_runs_s, 95),
        server_cpu_ms_per_run=round(1000 * server_cpu / runs_done, 1) if runs_done else None,
        per_session=stats.per_session,
    )  # fmt: skip


def format_table(f: Figures) -> str:
    rows = common.load_rows(f, "sessions (websocket clients)") + [
        ("think time between actions", f"{f.think_s[0]:g}–{f.think_s[1]:g} s, uniform"),
        ("predictions done", f"{f.predictions} ({f.draws} drawn, {f.uploads} uploaded); "
         f"{f.other_reruns} Clear/Remove reruns; {f.media_fetches} images fetched"),
        ("sessions with a drawn and an uploaded prediction", f"{f.sessions_with_both}"),
        ("answers", ", ".join(f"{k} ×{v}" for k, v in sorted(f.answers.items()))),
        common.errors_row(f),
        ("prediction latency p50 / p95 / max (target p95 ≤ 1 s)",
         f"{common.sec(f.p50_s)} / {common.sec(f.p95_s)} / {common.sec(f.max_s)}"),
        ("drawn: p50 / p95", f"{common.sec(f.draw_p50_s)} / {common.sec(f.draw_p95_s)}"),
        ("uploaded (URL, PUT, rerun): p50 / p95",
         f"{common.sec(f.upload_p50_s)} / {common.sec(f.upload_p95_s)}"),
        ("prediction runs to script_finished, p95", common.sec(f.finished_p95_s)),
        ("Clear / Remove reruns, p95", common.sec(f.other_p95_s)),
        ("server CPU per script run", "—" if f.server_cpu_ms_per_run is None
         else f"{f.server_cpu_ms_per_run:.0f} ms"),
    ]  # fmt: skip
    return common.markdown_table(rows + common.server_rows(f))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.common_args(parser, "learners, each a websocket session")
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(1.0, 3.0),
        metavar=("MIN", "MAX"),
        help="a learner's pause between actions, uniform, in s (1 3)",
    )
    args = parser.parse_args(argv)
    figures = measure(args.sessions, args.seconds, tuple(args.think), args.max_workers)
    return common.report(figures, format_table(figures), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
