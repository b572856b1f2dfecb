"""The run store stays small: importing it pulls in neither TensorFlow nor Keras.

The app reads the run store on every page and a queued worker waits on it; TensorFlow costs
hundreds of megabytes and seconds to import, so only training and loading a model import it.
The check runs in a fresh interpreter, where nothing else has imported TensorFlow first.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STORE_MODULES = (
    "cnn_core.runs.run_config",
    "cnn_core.runs.run_folder",
    "cnn_core.runs.store",
    "cnn_core.runs.status",
    "cnn_core.runs.metrics_log",
    "cnn_core.runs.checkpointing",
)
HEAVY = ("tensorflow", "keras")

PROBE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(",".join(sorted(m for m in {heavy} if m in sys.modules)))
"""


def heavy_modules_after_importing(*modules: str, prelude: str = "") -> list[str]:
    code = prelude + PROBE.format(heavy=repr(HEAVY))
    result = subprocess.run(
        [sys.executable, "-c", code, *modules], cwd=REPO, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    out = result.stdout.strip().splitlines()
    return [m for m in (out[-1] if out else "").split(",") if m]


def test_the_run_store_modules_import_no_tensorflow_or_keras():
    assert heavy_modules_after_importing(*STORE_MODULES) == []


@pytest.mark.parametrize("module", STORE_MODULES)
def test_each_store_module_alone_imports_no_tensorflow_or_keras(module):
    assert heavy_modules_after_importing(module) == []


def test_the_probe_sees_keras_when_something_imports_it():
    """The check itself: a module that imports Keras at the top is caught."""
    prelude = "import keras\n"
    assert "keras" in heavy_modules_after_importing("cnn_core.runs.store", prelude=prelude)
