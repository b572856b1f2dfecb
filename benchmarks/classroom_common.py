"""What the classroom load scripts share, whatever plays the learners (Chromium pages in
`classroom.py`, protocol-level websocket clients in `classroom_ws.py`): a lab home of their
own, one training run in progress, the server, its peak RSS and everyone's CPU from /proc,
the check that 5 simultaneous training requests queue within CNN_LAB_MAX_WORKERS, and
stopping everything at the end."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
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
from benchmarks.common import machine_cpu_ticks  # noqa: E402
from cnn_core import settings  # noqa: E402
from cnn_core.runs import jobs, run_config, store  # noqa: E402
from cnn_core.runs import status as run_status
from devtools.browser import poll_until, start_server, stop_server  # noqa: E402

# A learner draws one stroke, then clears: a "1" is a digit, but three side by side are
# not one, and the Predict page rightly answers them with "No digit found".
STROKES_BEFORE_CLEAR = 1
QUEUE_REQUESTS = 5
QUEUE_OBSERVE_S = 2.0  # a queued worker polls its turn every 0.3 s
RUN_END_TIMEOUT_S = 90.0
RSS_EVERY_S = 0.5
POLL_S = 0.1
T = TypeVar("T")
# Enough epochs to outlast opening the sessions on two cores; it is stopped after the load.
TRAINING = run_config.RunConfig(
    name="classroom", dataset="mnist", model="simple_convnet", epochs=300
)
QUEUED = run_config.RunConfig(name="queue check", dataset="mnist", model="simple_convnet", epochs=5)

_clock = [time.monotonic()]


def restart_clock() -> None:
    _clock[0] = time.monotonic()


def say(what: str) -> None:
    """Progress on stderr, so that the table alone goes to stdout."""
    print(f"[{time.monotonic() - _clock[0]:6.1f} s] {what}", file=sys.stderr, flush=True)


@dataclass
class SessionStats:
    """What every learner saw, added up."""

    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)
    sessions_open: int = 0
    strokes_lost: int = 0  # strokes that never left the browser (benchmarks/classroom.py)

    def error(self, kind: str, detail: str) -> None:
        self.kinds[kind] += 1
        self.errors.append(f"{kind}: {detail}"[:300])


@dataclass
class ServerFigures:
    """The figures of the server side, the same whatever plays the learners."""

    server_peak_rss_mb: float
    worker_peak_rss_mb: float
    training_at_end_of_load: str
    max_workers: int
    queue: dict
    machine_load_before: float  # 1-minute load average when the script started
    cores_used: dict[str, float]  # average busy cores during the load, per process group


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
    user, nice, system, _idle, _iowait, irq, softirq, steal = machine_cpu_ticks()[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Meter(threading.Thread):
    """Samples the server's tree and the training workers every RSS_EVERY_S and keeps their
    peak RSS; `mark()` at the start and the end of the load gives each group's CPU use."""

    def __init__(self, server_pid: int, clients: str | None = "browsers"):
        super().__init__(daemon=True)
        self.server_pid = server_pid
        self.clients = clients
        self.server_mb = 0.0
        self.workers_mb = 0.0
        self.marks: list[tuple[float, dict[str, float]]] = []
        self.done = threading.Event()

    def groups(self) -> dict[str, list[int]]:
        """The pids of the server, the training workers, this script, and, named `clients`,
        the rest of this script's process tree (Playwright's driver and Chromium)."""
        server = process_tree(self.server_pid)
        workers = [i.status.pid for i in store.list_runs() if i.status.active and i.status.pid]
        groups = {"server": server, "training": workers}
        if self.clients:
            others = set(server) | set(workers) | {os.getpid()}
            groups[self.clients] = [p for p in process_tree(os.getpid()) if p not in others]
        groups["load script"] = [os.getpid()]
        return groups

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


# ---------------------------------------------------------------- training and the queue


def wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    return poll_until(predicate, timeout, what, interval=POLL_S)  # a TimeoutError at the end


def training_now() -> list[str]:
    """Ids of the runs holding a training slot (running or saving before a stop)."""
    return [i.id for i in store.list_runs() if i.status.state in ("running", "stopping")]


def training(run_id: str) -> bool:
    """True once the run is past its first batch (TensorFlow loaded, the model built)."""
    status = run_status.read_status(run_id)
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
    wait_until(lambda: all(run_status.read_status(r).pid for r in ids), RUN_END_TIMEOUT_S,
               "every requested worker to start and queue")  # fmt: skip
    settle = time.monotonic() + QUEUE_OBSERVE_S
    while time.monotonic() < settle:
        peak = max(peak, len(training_now()))
        time.sleep(POLL_S)
    states = [run_status.read_status(r).state for r in ids]
    running = sum(s in ("running", "stopping") for s in states)
    queued = states.count("queued")
    waiting = [r for r, state in zip(ids, states, strict=True) if state == "queued"]
    freed_at = time.time()
    for run_id in training_now():
        jobs.stop_run(run_id)
    handover_s, started_later = None, False
    if waiting:

        def started() -> list[run_status.RunStatus]:
            nonlocal peak
            peak = max(peak, len(training_now()))
            now = [run_status.read_status(r) for r in waiting]
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
    for info in store.list_runs():
        if info.status.active:
            jobs.stop_run(info.id)
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not any(i.status.active for i in store.list_runs()),
                   RUN_END_TIMEOUT_S, "every run to stop")  # fmt: skip
    stuck = [i for i in store.list_runs() if run_status.worker_alive(i.id)]
    for info in stuck:  # only workers this script started, in its own lab home
        if info.status.pid:
            os.kill(info.status.pid, 9)
    return [i.id for i in stuck]


# ---------------------------------------------------------------- the whole measurement


@contextlib.contextmanager
def isolated_lab(max_workers: int) -> Iterator[Path]:
    """A temporary lab home and worker limit for this process, its server and its workers."""
    saved = {k: os.environ.get(k) for k in (settings.HOME_ENV, settings.MAX_WORKERS_ENV)}
    with tempfile.TemporaryDirectory(prefix="classroom-") as tmp:
        os.environ[settings.HOME_ENV] = str(Path(tmp) / "lab")
        os.environ[settings.MAX_WORKERS_ENV] = str(max_workers)
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


Load = Callable[[str, Callable[[], bool], Meter], Coroutine[Any, Any, T]]


def run_classroom(load: Load, max_workers: int, clients: str | None = "browsers",
                  nice: int = 0) -> tuple[T, ServerFigures, list[str]]:  # fmt: skip
    """Starts the training run and the server, awaits `load(url, ready, meter)` (which must
    wait for `ready()`, the run training, and `meter.mark()` at the start and the end of its
    load), then checks the queue and stops everything.

    Returns:
        What `load` returned, the server's figures, and the runs that would not stop.
    """
    restart_clock()
    machine_load = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    server = meter = None
    with isolated_lab(max_workers) as home:
        say(f"starting the training run, lab home {home}")
        run_id = jobs.start_run(TRAINING)  # first: its worker loads TensorFlow meanwhile
        try:
            say(f"run {run_id} queued; starting the server")
            server = start_server(home)
            say(f"server up at {server.url}")
            meter = Meter(server.proc.pid, clients)
            meter.start()
            result = run_in_own_thread(load(server.url, lambda: training(run_id), meter), nice)
            during = run_status.read_status(run_id)
            trained = f"epoch {during.epoch}, {during.state}"
            say(f"load over; requesting {QUEUE_REQUESTS} training runs at once")
            queue = check_queue(max_workers)
        finally:
            say("stopping every run")
            stuck = stop_every_run()
            if meter is not None:
                meter.done.set()
                meter.join()
            if server is not None:
                stop_server(server)
            say("server stopped")
    figures = ServerFigures(
        server_peak_rss_mb=round(meter.server_mb, 1),
        worker_peak_rss_mb=round(meter.workers_mb, 1), training_at_end_of_load=trained,
        max_workers=max_workers, queue=queue, machine_load_before=machine_load,
        cores_used=meter.cores_used(),
    )  # fmt: skip
    return result, figures, stuck


def sec(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f} s"


def load_rows(f, sessions_label: str) -> list[tuple[str, Any]]:
    """The first rows of a printed table: the load and how busy the machine was."""
    return [
        (sessions_label, f.sessions), ("duration", f"{f.seconds:.0f} s"),
        ("machine load average before", f"{f.machine_load_before:.1f}"),
    ]  # fmt: skip


def errors_row(f) -> tuple[str, str]:
    kinds = ", ".join(f"{kind} ×{count}" for kind, count in f.error_kinds.items())
    return ("errors (target 0)", f"{f.errors} {kinds}".strip())


def server_rows(f: ServerFigures) -> list[tuple[str, Any]]:
    """The server side's rows of a printed table."""
    q = f.queue
    return [
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


def markdown_table(rows: list[tuple[str, Any]]) -> str:
    return "\n".join(["| figure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


async def hold_the_load(stats: SessionStats, sessions: int, seconds: float,
                        ready: Callable[[], bool], meter: Meter, open_timeout: float,
                        go: asyncio.Event, stop_at: list[float]) -> None:  # fmt: skip
    """Waits until every session is open (or has failed) and `ready()`, then releases them
    (`go`) to work for `seconds` (until `stop_at[0]`) between two marks of the meter."""
    deadline = time.monotonic() + open_timeout
    while stats.sessions_open + len(stats.errors) < sessions or not ready():
        if time.monotonic() > deadline:
            stats.error("not ready in time", f"after {open_timeout:.0f} s")
            break
        await asyncio.sleep(POLL_S)
    stop_at[0] = time.monotonic() + seconds
    meter.mark()
    go.set()
    say(f"{stats.sessions_open} sessions open; load for {seconds:.0f} s")
    await asyncio.sleep(seconds)
    meter.mark()  # before the sessions close (and Chromium's processes end)


def common_args(parser, sessions_help: str) -> None:
    """The options both load scripts take: --sessions, --seconds, --max-workers, --json-out."""
    parser.add_argument("--sessions", type=int, default=20, help=f"{sessions_help} (20)")
    parser.add_argument("--seconds", type=float, default=60, help="length of the load (60)")
    parser.add_argument(
        "--max-workers",
        type=int,
        default=settings.max_workers(),
        help="training runs at once (default: CNN_LAB_MAX_WORKERS or cores/2)",
    )
    parser.add_argument("--json-out", type=Path, help="also write the figures here as JSON")


def report(figures, table: str, json_out: Path | None) -> int:
    """Prints the table and the first errors, writes the JSON; the exit status: 1 on any
    error or a failed queue check."""
    print(table)
    for line in figures.error_samples:
        print("error:", line)
    if json_out:
        json_out.write_text(json.dumps(asdict(figures), indent=2) + "\n")
    return 1 if figures.errors or not figures.queue["ok"] else 0
