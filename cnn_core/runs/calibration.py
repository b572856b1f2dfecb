"""How fast this machine trains, measured once: the yardstick that turns the benchmark
table's seconds (measured on another machine) into seconds here.

The calibration step is one training step of a fixed small network, timed here and, in the
same run that measured the table, on the benchmark machine (benchmarks/zoo.py stores it in
assets/benchmarks.json under "calibration"). An epoch here then takes the table's seconds
times the ratio of the two steps, in the arithmetic the run will use. The result is cached
in `<lab home>/calibration.json` under what makes it machine-specific (CPU model and speed
flags, cores, threads a run gets, precision, TensorFlow version), so a lab home shared by
several machines keeps one figure per machine. A damaged cache is measured again, never an
error.

The page never measures in its own process: `start_calibration` starts
`python -m cnn_core.runs.calibration` in the background (a run's threads and precision,
and no global Keras state touched in the server), and the estimate says "uncalibrated"
until the figure is there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from cnn_core import settings
from cnn_core.runs import run_folder

FLOAT32 = "float32"
BFLOAT16 = "mixed_bfloat16"  # the policy a run with mixed precision trains in
BATCH = 128
SHAPE = (32, 32, 3)
WARMUP_STEPS = 3  # the first traces the graph; the others warm caches and thread pools
TIMED_STEPS = 15  # in blocks, so one hiccup of a shared host does not count
BLOCKS = 5
# The CPU flags that change how fast TensorFlow's kernels run.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
# A measurement that failed (a broken TensorFlow) is tried again after this long, not on
# every page view; a process started from here waits as long before another is started.
RETRY_S = 3600.0
SPAWN_GRACE_S = 600.0

_spawned: dict[str, float] = {}  # lab home -> when this process last started a measurement
_spawn_lock = threading.Lock()


def cache_path() -> Path:
    return settings.lab_home() / "calibration.json"


def run_precision() -> str:
    """The arithmetic a new run trains in here: bfloat16 only where the CPU has it."""
    return BFLOAT16 if settings.fast_bfloat16() else FLOAT32


def precisions_to_measure() -> tuple[str, ...]:
    return (FLOAT32, BFLOAT16) if settings.fast_bfloat16() else (FLOAT32,)


def precision_words(precision: str) -> str:
    return "bfloat16" if precision == BFLOAT16 else "float32"


# ---------------------------------------------------------------- what the figure is for


def _cpu_model_and_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, list[str]]:
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU", []
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
                 platform.machine() or "unknown CPU")  # fmt: skip
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    return model, sorted(set(flags) & set(SPEED_FLAGS))


def _package_version(*names: str) -> str:
    for name in names:
        with contextlib.suppress(PackageNotFoundError):
            return version(name)
    return "?"


def machine_key() -> dict:
    """What a step's speed depends on besides the network: the same dict, the same figure.

    The threads are those a run's worker gets (`pipeline.configure_threads`: the cores
    shared among the workers that may train at once); computed here without importing
    TensorFlow, which the page process need not load for this."""
    model, flags = _cpu_model_and_flags()
    cores = os.cpu_count() or 1
    return {
        "cpu": model,
        "flags": flags,
        "cores": cores,
        "threads": max(1, cores // settings.max_workers()),
        "tensorflow": _package_version("tensorflow-cpu", "tensorflow"),
        "keras": _package_version("keras"),
    }


def machine_words(key: dict) -> str:
    """The machine for people: "2 cores of AMD EPYC (avx2, fma)"."""
    flags = f" ({', '.join(key['flags'])})" if key.get("flags") else ""
    return f"{key.get('cores', '?')} cores of {key.get('cpu', 'an unknown CPU')}{flags}"


# ---------------------------------------------------------------- the step


def time_steps(
    step: Callable[[], None],
    warmup: int = WARMUP_STEPS,
    steps: int = TIMED_STEPS,
    blocks: int = BLOCKS,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds one call of `step` takes: the median of `blocks` blocks' mean after
    `warmup` untimed calls (the median, because a shared host stalls now and then and a
    stall says nothing about the CPU)."""
    for _ in range(warmup):
        step()
    per_block = max(1, steps // blocks)
    means = []
    for _ in range(blocks):
        start = clock()
        for _ in range(per_block):
            step()
        means.append((clock() - start) / per_block)
    return statistics.median(means)


def build_step(precision: str) -> Callable[[], None]:
    """One training step of the calibration network on a fixed random batch.

    Two 3×3 convolutions (16 and 32 filters) with max pooling between, global average
    pooling and a dense softmax over 10 classes, Adam, on 128 images of 32×32×3: the
    operations the zoo's networks spend their time in, small enough to time in a few
    seconds. The layers carry their own dtype policy, so Keras' global policy is left as
    it was."""
    import keras
    import numpy as np

    if precision not in (FLOAT32, BFLOAT16):
        raise ValueError(f"precision must be {FLOAT32!r} or {BFLOAT16!r}, got {precision!r}.")
    policy = keras.DTypePolicy(precision)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Rescaling(1 / 255, dtype=policy),
            keras.layers.Conv2D(16, 3, activation="relu", dtype=policy),
            keras.layers.MaxPooling2D(dtype=policy),
            keras.layers.Conv2D(32, 3, activation="relu", dtype=policy),
            keras.layers.GlobalAveragePooling2D(dtype=policy),
            keras.layers.Dense(10, activation="softmax", dtype=FLOAT32),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (BATCH, *SHAPE)).astype("float32")
    y = rng.integers(0, 10, BATCH)

    def step() -> None:
        model.train_on_batch(x, y)

    return step


def measure_step(precision: str) -> float:
    """Seconds of one calibration step in this process, in `precision`."""
    return time_steps(build_step(precision))


# ---------------------------------------------------------------- the cache


def _valid_seconds(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def read_entries(path: Path | None = None) -> list[dict]:
    """The cache's entries; none from a missing or damaged file (it is measured again)."""
    try:
        data = json.loads((path or cache_path()).read_text())
    except (OSError, ValueError):
        return []
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("machine"), dict)
            and isinstance(e.get("precision"), str)]  # fmt: skip


def _find(entries: list[dict], key: dict, precision: str) -> dict | None:
    return next((e for e in entries if e["machine"] == key and e["precision"] == precision), None)


def cached_step(precision: str, key: dict | None = None) -> float | None:
    """This machine's calibration step in seconds for `precision`, or None when not yet
    measured (or only a failed attempt is on record)."""
    entry = _find(read_entries(), key or machine_key(), precision)
    if entry and _valid_seconds(entry.get("seconds_per_step")):
        return float(entry["seconds_per_step"])
    return None


def _needs_measuring(entries: list[dict], key: dict, precision: str, now: float) -> bool:
    entry = _find(entries, key, precision)
    if entry is None:
        return True
    if _valid_seconds(entry.get("seconds_per_step")):
        return False
    at = entry.get("at")  # a failed attempt: again after RETRY_S
    return not isinstance(at, int | float) or now - at > RETRY_S


def missing_precisions(key: dict | None = None, now: float | None = None) -> list[str]:
    """The precisions this machine still needs a calibration step for."""
    entries, key = read_entries(), key or machine_key()
    now = time.time() if now is None else now
    return [p for p in precisions_to_measure() if _needs_measuring(entries, key, p, now)]


def _record(entry: dict) -> None:
    """Adds or replaces one entry, atomically (another machine's entries are kept)."""
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = read_entries(path)
    same = _find(entries, entry["machine"], entry["precision"])
    entries = [e for e in entries if e is not same]
    run_folder.write_json_atomic(path, {"version": 1, "entries": [*entries, entry]})


@contextlib.contextmanager
def _measuring_lock(block: bool):
    """Held while a process measures, so two page sessions do not measure at once (and
    neither disturbs the other's timing). Yields False when another holds it."""
    path = settings.lab_home() / "calibration.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def calibrate(
    measure: Callable[[str], float] = measure_step, now: Callable[[], float] = time.time
) -> dict[str, float]:
    """Measures the precisions this machine lacks and caches them; returns every cached
    step for this machine by precision. A failed measurement is recorded (and tried again
    after RETRY_S) rather than raised: an estimate is never worth a crash.

    Args:
        measure: precision -> seconds per step (tests pass a fake one).
        now: the clock the entries are dated with.
    """
    key = machine_key()
    with _measuring_lock(block=True):
        for precision in missing_precisions(key, now()):
            entry = {"machine": key, "precision": precision, "at": now(),
                     "measured": time.strftime("%Y-%m-%d", time.gmtime(now())),
                     "batch_size": BATCH, "shape": list(SHAPE)}  # fmt: skip
            try:
                entry["seconds_per_step"] = float(measure(precision))
            except Exception as exc:  # noqa: BLE001 - recorded, the estimate says so
                entry["error"] = f"{type(exc).__name__}: {exc}"
            _record(entry)
    return {p: s for p in precisions_to_measure() if (s := cached_step(p, key)) is not None}


def measuring_now() -> bool:
    """Whether a calibration process holds the lock at this moment (False where the lab
    home cannot be written: the page says so elsewhere)."""
    try:
        with _measuring_lock(block=False) as free:
            return not free
    except OSError:
        return False


def start_calibration() -> bool:
    """Starts the calibration in a background process unless it is cached, already
    running, or was started from here recently; True when one was started. Returns at
    once: the page never waits for a measurement. Never where CNN_LAB_CALIBRATION=off."""
    if not settings.calibration_allowed():
        return False
    home = str(settings.lab_home())
    with _spawn_lock:
        if time.monotonic() - _spawned.get(home, -math.inf) < SPAWN_GRACE_S:
            return False
        if not missing_precisions() or measuring_now():
            return False
        _spawned[home] = time.monotonic()
    log = Path(home) / "calibration.log"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cnn_core.runs.calibration"],
                cwd=settings.REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
    except OSError:  # an unwritable lab home: no calibration, the estimate stays uncalibrated
        return False
    threading.Thread(target=proc.wait, name="reap-calibration", daemon=True).start()
    return True


def main() -> int:
    """The background process: a run's threads, then the missing steps, then exit."""
    with _measuring_lock(block=False) as free:
        if not free:
            return 0  # another process measures this lab home's machine right now
    from cnn_core.runs import pipeline

    pipeline.configure_threads()
    steps = calibrate()
    print(json.dumps({"machine": machine_key(), "seconds_per_step": steps}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
