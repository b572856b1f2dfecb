"""Where CNN Lab keeps its files: the lab home, the runs, the data, the shipped assets.

Every location can be moved with an environment variable, so tests, CI and a
classroom server can each point the lab somewhere of their own.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
HOME_ENV = "CNN_LAB_HOME"  # default ~/.cnn_lab
DATA_ENV = "CNN_LAB_DATA"  # default $CNN_LAB_HOME/data
KERAS_HOME_ENV = "KERAS_HOME"  # Keras' own cache, default ~/.keras


def lab_home() -> Path:
    """The lab's home folder (runs, user data, downloads)."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cnn_lab").expanduser()


def data_dir() -> Path:
    """The folder where the user may place dataset files (e.g. cifar-10-python.tar.gz)."""
    return Path(os.environ.get(DATA_ENV) or lab_home() / "data").expanduser()


def runs_dir() -> Path:
    """The folder holding one sub-folder per training run."""
    return lab_home() / "runs"


def keras_datasets_dir() -> Path:
    """Keras' download cache, where `keras.datasets.*.load_data()` stores its files."""
    return Path(os.environ.get(KERAS_HOME_ENV) or Path.home() / ".keras").expanduser() / "datasets"


def fast_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bfloat16 instructions (AMX or AVX512_BF16).

    There mixed precision trains the zoo's models about 1.7x faster than float32 at the
    same accuracy (benchmarks/hardware.py, BENCHMARKS.md); elsewhere bfloat16 is emulated
    and slower, so runs stay float32.
    """
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return re.search(r"\b(amx_bf16|avx512_bf16)\b", flags) is not None


MAX_WORKERS_ENV = "CNN_LAB_MAX_WORKERS"  # default: half the cores (at least one)
# "off": never time this machine's training step in the background (runs/calibration.py).
# Test servers set it: each has a lab home of its own, so each would start a measurement,
# and a TensorFlow process timing steps beside the browsers is load no test asked for.
CALIBRATION_ENV = "CNN_LAB_CALIBRATION"


def calibration_allowed() -> bool:
    """Whether a page may start the calibration (env CNN_LAB_CALIBRATION is not "off")."""
    return os.environ.get(CALIBRATION_ENV, "").strip().lower() != "off"


def max_workers() -> int:
    """How many runs may train at once (env CNN_LAB_MAX_WORKERS, else cores // 2, min 1)."""
    raw = os.environ.get(MAX_WORKERS_ENV, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return max(1, (os.cpu_count() or 1) // 2)
