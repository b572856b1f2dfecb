"""Where CNN Lab keeps its files: the lab home, the runs, the data, the shipped assets.

Every location can be moved with an environment variable, so tests, CI and a
classroom server can each point the lab somewhere of their own.
"""

import os
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
