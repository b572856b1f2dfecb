"""The tiny things the tests build, in one place (not a test module; the fixtures that use it
are in tests/conftest.py): the repository's paths, a page opened through AppTest, a 12×12
three-class dataset saved as an own dataset ("user:tiny"), a tiny config on it, a tiny
trained run, and the checks of a run's history that several tests share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnn_core.data import userdata
from cnn_core.data.dataset import Dataset
from cnn_core.runs import metrics_log, run_config, store
from cnn_core.runs import status as run_status

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
APPTEST_TIMEOUT_S = 120  # one script run; a page with a model to load on two busy cores


def open_page(name: str, dataset: str = "mnist", **state) -> AppTest:
    """Runs app.py with `dataset` chosen and `state` in the session, then switches to
    pages/<name>.py, as a learner's click in the sidebar would; it must not raise."""
    from streamlit.testing.v1 import AppTest  # here: a run of the unit tests needs no Streamlit

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=APPTEST_TIMEOUT_S)
    at.session_state["dataset"] = dataset
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


# ---------------------------------------------------------------- the tiny dataset and runs

TINY_LAYERS = [
    {"type": "conv", "filters": 4, "kernel": 3, "padding": "same", "activation": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 8},
]


def save_tiny_dataset(n: int = 96, side: int = 12, name: str = "tiny") -> str:
    """Saves a learnable 3-class dataset (a bright band per class) under the lab home."""
    rng = np.random.default_rng(0)

    def make(count: int):
        y = rng.integers(0, 3, count).astype(np.int64)
        x = (rng.random((count, side, side, 1)) * 60).astype(np.uint8)
        band = side // 3
        for c in range(3):
            x[y == c, c * band : (c + 1) * band, :, 0] += 180
        return x, y

    x_train, y_train = make(n)
    x_test, y_test = make(48)
    data = Dataset(
        name, name, x_train, y_train, x_test, y_test, ("a", "b", "c"), "user", "test data"
    )
    return userdata.save_user_dataset(data, name)


def save_random_dataset(name: str, seed: int = 0) -> str:
    """96 random 12×12 images in 3 classes, saved as an own dataset, so runs take seconds."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (96, 12, 12, 1), dtype=np.uint8)
    y = np.arange(96) % 3
    ds = Dataset(name, name, x[:72], y[:72], x[72:], y[72:], ("a", "b", "c"), "user",
                          "test")  # fmt: skip
    return userdata.save_user_dataset(ds, name)


def tiny_config(**changes) -> run_config.RunConfig:
    base = dict(dataset="user:tiny", model="custom", layers=TINY_LAYERS, batch_size=16,
                epochs=2, validation_split=0.25)  # fmt: skip
    return run_config.RunConfig(**{**base, **changes})


def train_tiny_run(epochs: int) -> str:
    """A finished run on the tiny dataset (saved first) in the current lab home, trained in
    this process; checkpoints after each epoch."""
    from cnn_core.runs import training

    save_tiny_dataset()
    run_id = store.create_run(run_config.validate_config(tiny_config(epochs=epochs)))
    assert training.train_run(run_id) == 0
    return run_id


def run_on(key: str, fingerprint: str | None, state: str = "finished") -> str:
    """A run on a dataset made by hand (no worker), in the given state."""
    cfg = run_config.RunConfig(dataset=key, dataset_fingerprint=fingerprint, model="custom",
                         layers=TINY_LAYERS, epochs=1)  # fmt: skip
    run_id = store.create_run(cfg)
    run_status.update_status(run_id, state=state)
    return run_id


# ---------------------------------------------------------------- checks of a run's history


def epochs_logged(run_id: str) -> list[int]:
    return [r["epoch"] for r in metrics_log.epoch_records(metrics_log.read_metrics(run_id)[0])]


def assert_unbroken_history(run_id: str) -> None:
    records = metrics_log.read_metrics(run_id)[0]
    epochs = epochs_logged(run_id)
    assert epochs == list(range(1, len(epochs) + 1)), epochs
    keys = [(r["epoch"], r["batch"]) for r in records if r["kind"] == "batch"]
    assert len(keys) == len(set(keys)), "duplicate batch records"
    assert keys == sorted(keys), "batch records out of order"


# ---------------------------------------------------------------- references


def reference_center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Computed independently of the module: weighted mean of the pixel indices."""
    rows, cols = np.indices(image.shape)
    weights = image.astype(np.float64)
    return (rows * weights).sum() / weights.sum(), (cols * weights).sum() / weights.sum()


# bfloat16 keeps 8 significant bits (a relative step of 2^-8, about 0.004): where a test
# compares probabilities of a mixed_bfloat16 model with a float32 computation of its own
# (a softmax of the bfloat16 logits, say), it allows this much instead of its float32
# tolerance. Only the "mixed_bfloat16" case of the `precision` fixture loosens.
BFLOAT16_ATOL = 5e-3


def atol_for(precision: str, float32_atol: float) -> float:
    """`float32_atol` under "float32"; BFLOAT16_ATOL (if larger) under "mixed_bfloat16"."""
    return float32_atol if precision == "float32" else max(float32_atol, BFLOAT16_ATOL)


# ---------------------------------------------------------------- hand-weighted models
HAND_MODEL_SIDE = 8  # the hand-weighted models see 8×8 grey images


def half_model(side: str):
    """A model that only sees one half of an 8×8 image, with weights set by hand.

    The other half is multiplied by 0 before the only conv layer, whose two 3×3 filters
    are positive; the class-0 logit adds up every activation with positive weights and
    class 1 with negative ones. So class 0's evidence lies exactly where the conv layer
    sees the visible half, and the hidden pixels cannot change any score.
    """
    import keras  # here: only tests of explanations need TensorFlow

    keras.utils.set_random_seed(1)
    mask = np.zeros((1, HAND_MODEL_SIDE, HAND_MODEL_SIDE, 1), np.float32)
    if side == "left":
        mask[:, :, : HAND_MODEL_SIDE // 2] = 1
    else:
        mask[:, :, HAND_MODEL_SIDE // 2 :] = 1
    inputs = keras.Input((HAND_MODEL_SIDE, HAND_MODEL_SIDE, 1), name="input")
    x = keras.layers.Lambda(lambda t: t * mask, name="visible_half")(inputs)
    conv = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv1")
    x = conv(x)
    x = keras.layers.Flatten(name="flatten")(x)
    dense = keras.layers.Dense(3, activation="softmax", name="predictions")
    outputs = dense(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    conv.set_weights([rng.uniform(0.1, 1.0, (3, 3, 1, 2)), np.zeros(2)])
    kernel = np.stack(
        [rng.uniform(0.1, 1, 128), -rng.uniform(0.1, 1, 128), rng.normal(size=128)], axis=1
    )
    dense.set_weights([kernel, np.zeros(3)])
    return model


def evidence_model():
    """1×1 convs set by hand: conv1 = x - 0.5 (linear), conv2 = relu(conv1); flattened.

    Class 0 adds up conv2 with weight -1, class 1 with +1. For class 0, conv2's maps are
    >= 0 and their mean gradient < 0, so its Grad-CAM is empty; conv1 is negative on the
    dark pixels, where it then shows the (negative times negative) evidence.
    """
    import keras  # here: only tests of explanations need TensorFlow

    inputs = keras.Input((HAND_MODEL_SIDE, HAND_MODEL_SIDE, 1))
    conv1 = keras.layers.Conv2D(1, 1, name="conv1")
    conv2 = keras.layers.Conv2D(1, 1, activation="relu", name="conv2")
    dense = keras.layers.Dense(2, activation="softmax", name="predictions")
    outputs = dense(keras.layers.Flatten()(conv2(conv1(inputs))))
    model = keras.Model(inputs, outputs)
    conv1.set_weights([np.ones((1, 1, 1, 1)), np.array([-0.5])])
    conv2.set_weights([np.ones((1, 1, 1, 1)), np.zeros(1)])
    ones = np.ones((HAND_MODEL_SIDE * HAND_MODEL_SIDE, 1))
    dense.set_weights([np.hstack([-ones, ones]), np.zeros(2)])
    return model
