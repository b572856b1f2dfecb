"""The run directory: the only contract between the app and a training worker.

A run lives in ``<runs_home>/<run_id>/``; a worker on another machine with the same
storage would need nothing else::

    config.json       the RunConfig, written once (atomically)
    status.json       state and progress, rewritten atomically by whoever changes it
    metrics.jsonl     append-only: one JSON line per batch window and one per epoch
    checkpoints/      epoch-0000.keras (the untrained network), epoch-0001.keras, ...; a stop
                      mid-epoch saves epoch-0003-batch-0017.keras (17 batches of epoch 3
                      trained) holding its running metric sums too. Each is saved to a temp
                      name, then renamed.
    evaluation.json   test loss / accuracy / mse, written when training finishes
    model.keras       the final model
    tensorboard/      event files: ``tensorboard --logdir <run>/tensorboard``
    worker.log        the worker's stdout and stderr
    worker.lock       flock'ed by the live worker for its whole life
    stop.request      present while a stop is asked for
    name.json         the learner's name for the run, once renamed

Liveness comes from the lock, never from a pid: the kernel drops a flock when its process
dies, however it dies, so a run whose status says "running" while nobody holds the lock
is reported as "interrupted" (and can be resumed).

This module imports neither TensorFlow nor Keras, so a queued worker stays small.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from cnn_core import settings

OPTIMIZERS = ("adam", "adamw", "adamax", "sgd", "nesterov")
LR_SCHEDULES = ("constant", "cosine", "warmup_cosine")
# The share of a warmup_cosine run spent climbing to the full learning rate, and where the
# climb starts: the fast published CIFAR-10 recipes warm up over the first fifth of the
# steps from a fifth of the rate, because a high rate on untrained weights diverges.
WARMUP_SHARE = 0.2
WARMUP_START = 0.2
DISTRIBUTE_STRATEGIES = ("mirrored",)
DEFAULT_MOMENTUM = 0.9  # the usual SGD momentum; Adam and Adamax ignore it
MAX_LEARNING_RATE = 10.0
MAX_BATCH_SIZE = 4096
MAX_EPOCHS = 500
MAX_VALIDATION_SPLIT = 0.5
MAX_SHIFT = 0.5  # a larger translation moves most objects out of the picture
MAX_ROTATE_DEGREES = 180.0
MAX_ZOOM = 0.5  # zooming in further crops most of the object away
MAX_LABEL_SMOOTHING = 0.5  # beyond it the wrong classes' targets approach the right one's
MAX_THREADS = 256
MAX_NAME_LENGTH = 100


class ConfigError(ValueError):
    """A run configuration is invalid; the message names the field and what to fix."""


# ---------------------------------------------------------------- the configuration


@dataclass(frozen=True)
class RunConfig:
    """Everything a worker needs to train one run; stored as config.json.

    Only ``dataset`` and ``model`` matter to most users; every other field has a default
    that trains sensibly. ``validate_config`` fills the model-dependent defaults (None).
    """

    name: str = ""  # display name; "" = "<model> on <dataset>"
    dataset: str = "mnist"  # a key of datasets.list_datasets(), e.g. "user:flowers"
    dataset_source: str | None = None  # None = the first ready source, e.g. "embedded"
    # The version of a user dataset the run trains on (userdata.fingerprint), set by
    # jobs.start_run; the worker, Evaluate and Predict refuse other images under that name.
    dataset_fingerprint: str | None = None
    model: str = "simple_convnet"  # a key of zoo.MODELS
    layers: list[dict[str, Any]] | None = None  # the layer list, for model "custom" only
    # "adam" | "adamw" (Adam with decoupled weight decay) | "adamax" | "sgd" | "nesterov"
    # (SGD with Nesterov momentum and decoupled weight decay); None = the model's choice.
    optimizer: str | None = None
    learning_rate: float | None = None  # None = the model's recommended rate
    momentum: float | None = None  # SGD and Nesterov only; None = DEFAULT_MOMENTUM
    batch_size: int = 128  # on two AVX512 cores ~1.35x the images/s of 64 (BENCHMARKS.md)
    epochs: int = 5
    validation_split: float = 0.1  # fraction of the training images held out, 0 <= v < 0.5
    # "constant" | "cosine" (decays to 0 over all epochs) | "warmup_cosine" (climbs from
    # WARMUP_START × the rate over the first WARMUP_SHARE of the steps, then decays to 0)
    lr_schedule: str = "constant"
    augment_shift: float = 0.0  # random translation, as a fraction of height and width
    augment_rotate: float = 0.0  # random rotation, up to this many degrees either way
    # Random zoom in or out, up to this fraction, for height and width independently.
    augment_zoom: float = 0.0
    # Random horizontal flips. Allowed everywhere, but they hurt on digits and letters
    # (a flipped 2 is not a 2): use them for photos such as CIFAR-10.
    augment_flip: bool = False
    # Cross-entropy against targets of 1 - s + s/classes for the true class, s/classes for
    # the others: a network that cannot become certain over-fits a small training set less.
    # The losses reported (training and test) are against these smoothed targets.
    label_smoothing: float = 0.0
    seed: int = 42  # seeds shuffling, the validation split, augmentation and weights
    metrics_every_batches: int = 0  # batch-window length of the live metrics; 0 = ~2 lines/s
    checkpoint_every_epochs: int = 1  # every checkpoint is kept (epoch replay needs them)
    # True = "mixed_bfloat16": bfloat16 arithmetic, float32 weights. None = on where the CPU
    # computes bfloat16 natively (fast_bfloat16), which trains about 1.7x faster there.
    mixed_precision: bool | None = None
    distribute: str | None = None  # None or "mirrored" (tf.distribute, several GPUs)
    threads: int = 0  # TensorFlow intra-op threads; 0 = cores / jobs.max_workers()

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-able values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Builds a config from a dict such as a parsed config.json.

        Raises:
            ConfigError: the dict is not a dict, or has keys RunConfig does not know.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"A run config must be a JSON object, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"Unknown config key(s): {', '.join(unknown)}. "
                f"Known keys: {', '.join(sorted(known))}."
            )
        return cls(**data)

    @property
    def display_name(self) -> str:
        """The name given at the start, else "<model> on <dataset>" (the registry's "user:"
        prefix is the lab's own word, never shown)."""
        return self.name or f"{self.model} on {self.dataset.removeprefix('user:')}"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_int(name: str, value: Any, low: int, high: int, hint: str = "") -> None:
    if not _is_int(value) or not low <= value <= high:
        raise ConfigError(
            f"{name} must be a whole number from {low} to {high}, got {value!r}.{hint}"
        )


def _check_choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"Unknown {name} {value!r}. Choose one of: {', '.join(options)}.")


def _check_basic_fields(cfg: RunConfig) -> None:
    """The checks that need neither the dataset nor the model zoo."""
    if not isinstance(cfg.name, str) or len(cfg.name) > MAX_NAME_LENGTH:
        raise ConfigError(f"name must be text of at most {MAX_NAME_LENGTH} characters.")
    _check_choice("optimizer", cfg.optimizer, OPTIMIZERS)
    lr = cfg.learning_rate
    if not _is_number(lr) or not 0 < lr <= MAX_LEARNING_RATE:
        raise ConfigError(
            f"learning_rate must be a number above 0 and at most {MAX_LEARNING_RATE:g}, got "
            f"{lr!r}. Typical values: 0.001 for Adam, 0.01 to 0.1 for SGD."
        )
    if not _is_number(cfg.momentum) or not 0 <= cfg.momentum < 1:
        raise ConfigError(f"momentum must be from 0 to below 1 (e.g. 0.9), got {cfg.momentum!r}.")
    _check_int("batch_size", cfg.batch_size, 1, MAX_BATCH_SIZE, " Try 32, 64 or 128.")
    _check_int("epochs", cfg.epochs, 1, MAX_EPOCHS)
    v = cfg.validation_split
    if not _is_number(v) or not 0 <= v < MAX_VALIDATION_SPLIT:
        raise ConfigError(
            f"validation_split must be from 0 to below {MAX_VALIDATION_SPLIT} (e.g. 0.1 holds "
            f"out 10% of the training images), got {v!r}."
        )
    _check_choice("lr_schedule", cfg.lr_schedule, LR_SCHEDULES)
    if not _is_number(cfg.augment_shift) or not 0 <= cfg.augment_shift <= MAX_SHIFT:
        raise ConfigError(
            f"augment_shift is a fraction of the image size from 0 to {MAX_SHIFT} (e.g. 0.1), "
            f"got {cfg.augment_shift!r}."
        )
    if not _is_number(cfg.augment_rotate) or not 0 <= cfg.augment_rotate <= MAX_ROTATE_DEGREES:
        raise ConfigError(
            f"augment_rotate is in degrees, from 0 to {MAX_ROTATE_DEGREES:g} (e.g. 10), got "
            f"{cfg.augment_rotate!r}."
        )
    if not _is_number(cfg.augment_zoom) or not 0 <= cfg.augment_zoom <= MAX_ZOOM:
        raise ConfigError(
            f"augment_zoom is a fraction of the image size from 0 to {MAX_ZOOM} (e.g. 0.1 zooms "
            f"by up to 10% in or out), got {cfg.augment_zoom!r}."
        )
    ls = cfg.label_smoothing
    if not _is_number(ls) or not 0 <= ls <= MAX_LABEL_SMOOTHING:
        raise ConfigError(
            f"label_smoothing must be from 0 (none) to {MAX_LABEL_SMOOTHING} (e.g. 0.1), got "
            f"{ls!r}."
        )
    for name in ("augment_flip", "mixed_precision"):
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(f"{name} must be true or false, got {getattr(cfg, name)!r}.")
    _check_int("seed", cfg.seed, 0, 2**31 - 1)
    _check_int("metrics_every_batches", cfg.metrics_every_batches, 0, 1_000_000,
               " Use 0 for about two lines a second.")  # fmt: skip
    _check_int("checkpoint_every_epochs", cfg.checkpoint_every_epochs, 1, MAX_EPOCHS)
    _check_int("threads", cfg.threads, 0, MAX_THREADS, " Use 0 for automatic.")
    if cfg.distribute is not None:
        _check_choice("distribute", cfg.distribute, DISTRIBUTE_STRATEGIES)


def _check_dataset(cfg: RunConfig) -> None:
    from cnn_core.data import datasets

    if not isinstance(cfg.dataset, str) or cfg.dataset not in datasets.list_datasets():
        raise ConfigError(
            f"Unknown dataset {cfg.dataset!r}. Choose one of: "
            f"{', '.join(datasets.list_datasets())}."
        )
    sources = datasets.dataset_status(cfg.dataset)
    if cfg.dataset_source is not None:
        named = [s for s in sources if s.source == cfg.dataset_source]
        if not named:
            raise ConfigError(
                f"{cfg.dataset.removeprefix('user:')} has no source "
                f"{cfg.dataset_source!r}; its sources are: "
                f"{', '.join(s.source for s in sources)}."
            )
        sources = named
    if not any(s.available for s in sources):
        hints = "; or ".join(s.detail for s in sources)
        raise ConfigError(
            f"{cfg.dataset.removeprefix('user:')} is not available on this machine. "
            f"To get it: {hints}."
        )


def _load_facts(cfg: RunConfig) -> tuple[int, tuple[int, int, int]]:
    """Training-set size and image shape, read from the dataset itself."""
    from cnn_core.data import datasets
    from cnn_core.data.dataset import DatasetError

    try:
        data = datasets.load_dataset(cfg.dataset, source=cfg.dataset_source)
    except DatasetError as exc:
        raise ConfigError(str(exc)) from exc
    return len(data.x_train), data.input_shape


def _check_model(cfg: RunConfig, input_shape: tuple[int, int, int] | None) -> None:
    from cnn_core.models import input_limits, layer_lists, zoo  # lazy: imports Keras

    info = zoo.MODELS[cfg.model]
    if cfg.model == layer_lists.CUSTOM:
        if not cfg.layers:
            raise ConfigError(
                "The 'custom' model needs a layer list, e.g. "
                '[{"type": "conv", "filters": 16}, {"type": "maxpool"}, {"type": "dense"}].'
            )
        if input_shape is not None:
            try:
                layer_lists.validate_layers(cfg.layers, input_shape)
            except input_limits.ModelError as exc:
                raise ConfigError(str(exc)) from exc
    elif cfg.layers is not None:
        raise ConfigError(
            f"layers is only used by the 'custom' model; '{cfg.model}' has a fixed "
            "architecture. Remove layers, or choose model 'custom'."
        )
    side = info.min_input_side
    if input_shape is not None and min(input_shape[:2]) < side:
        raise ConfigError(
            f"'{cfg.model}' needs images of at least {side}×{side} pixels, but "
            f"{cfg.dataset.removeprefix('user:')} has "
            f"{input_shape[0]}×{input_shape[1]}. Choose another model."
        )


def _check_sizes(cfg: RunConfig, train_size: int) -> None:
    held_out = int(train_size * cfg.validation_split)
    if cfg.validation_split > 0 and held_out == 0:
        raise ConfigError(
            f"validation_split {cfg.validation_split} of {train_size} training images holds out "
            "no image. Raise it, or set it to 0."
        )
    left = train_size - held_out
    if cfg.batch_size > left:
        raise ConfigError(
            f"batch_size {cfg.batch_size} is larger than the {left} training images left after "
            f"the validation split. Use a batch size of at most {left}."
        )


def validate_config(
    cfg: RunConfig,
    *,
    train_size: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
) -> RunConfig:
    """Checks a config before any worker starts and fills the model's defaults.

    Args:
        cfg: the config as the user set it.
        train_size: number of training images, when the caller has the dataset at hand;
            enables the batch-size-versus-data check.
        input_shape: (height, width, channels) of the images, when known. For the custom
            model it is read from the dataset when not given, to check the layer list.

    Returns:
        The config with optimizer, learning_rate, momentum and mixed_precision filled in.

    Raises:
        ConfigError: the message names the field and what to fix.
    """
    from cnn_core.models import layer_lists, zoo

    if not isinstance(cfg.model, str) or cfg.model not in zoo.MODELS:
        raise ConfigError(f"Unknown model {cfg.model!r}. Choose one of: {', '.join(zoo.MODELS)}.")
    info = zoo.MODELS[cfg.model]
    cfg = replace(
        cfg,
        optimizer=cfg.optimizer or info.optimizer,
        learning_rate=info.learning_rate if cfg.learning_rate is None else cfg.learning_rate,
        momentum=DEFAULT_MOMENTUM if cfg.momentum is None else cfg.momentum,
        mixed_precision=(
            settings.fast_bfloat16() if cfg.mixed_precision is None else cfg.mixed_precision
        ),
    )
    _check_basic_fields(cfg)
    _check_dataset(cfg)
    if cfg.model == layer_lists.CUSTOM and input_shape is None and cfg.layers:
        train_size, input_shape = _load_facts(cfg)
    _check_model(cfg, input_shape)
    if train_size is not None:
        _check_sizes(cfg, train_size)
    return cfg
