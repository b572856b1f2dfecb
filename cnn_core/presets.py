"""Ready-made training recipes the Train page offers, each with the figure it is measured
against. Time estimates come from `benchmarks/` measurements (assets/benchmarks.json),
never from guesses; a preset without a measurement says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from cnn_core import paths
from cnn_core.runs import RunConfig

MEASUREMENTS = paths.ASSETS_DIR / "benchmarks.json"


@dataclass(frozen=True)
class Preset:
    """One recipe: one run, or a pair of runs meant to be compared."""

    key: str
    title: str
    lesson: str  # what a learner should notice
    configs: tuple[RunConfig, ...]
    target: str  # the figure it aims at, with the seed's beside it


PRESETS: tuple[Preset, ...] = (
    Preset(
        key="mnist-99",
        title="MNIST (embedded): 99% in under 3 minutes",
        lesson="A slightly larger network with dropout, and small shifts and rotations of the "
        "training digits, beats the seed's simple ConvNet (92.36%) by a wide margin on the "
        "same data.",
        configs=(
            RunConfig(
                name="MNIST 99%",
                dataset="mnist",
                dataset_source="embedded",
                model="fashion_cnn_dropout",
                batch_size=64,
                epochs=15,
                lr_schedule="cosine",
                learning_rate=2e-3,
                augment_shift=0.1,
                augment_rotate=10.0,
                validation_split=0.0,
            ),
        ),  # fmt: skip
        target="≥ 99.0% on the held-out 2,000; seed 000: 92.36%, seed 001: 99% (full data)",
    ),
    Preset(
        key="fashion-quick",
        title="Fashion-MNIST quick: 91% in a minute",
        lesson="Three epochs of a small three-layer network already separate most clothes; "
        "shirts, T-shirts and pullovers stay the hard classes.",
        configs=(
            RunConfig(
                name="Fashion quick",
                dataset="fashion_mnist",
                model="fashion_cnn",
                batch_size=128,
                epochs=3,
                learning_rate=2e-3,
                lr_schedule="cosine",
                validation_split=0.0,
            ),
        ),  # fmt: skip
        target="≥ 91% test accuracy within 60 s of training",
    ),
    Preset(
        key="fashion-best",
        title="Fashion-MNIST best: 93.5% in ten minutes",
        lesson="Batch normalisation, dropout, augmentation and a cosine learning-rate schedule "
        "together: the same ideas as the seed's VGG-like network, sized for a laptop.",
        configs=(
            RunConfig(
                name="Fashion best",
                dataset="fashion_mnist",
                model="fashion_cnn_dropout",
                batch_size=128,
                epochs=15,
                learning_rate=2e-3,
                lr_schedule="cosine",
                augment_shift=0.08,
                augment_flip=True,
                validation_split=0.0,
            ),
        ),  # fmt: skip
        target="≥ 93.5% test accuracy within 10 minutes; AutoML reports 93.9% after 24 hours",
    ),
    Preset(
        key="overfitting",
        title="Over-fitting lesson: the same net with and without dropout",
        lesson="Without dropout, training accuracy keeps climbing while validation accuracy "
        "stalls and validation loss rises: the network memorises. Dropout closes the gap "
        "(seed 004).",
        configs=tuple(
            RunConfig(
                name=f"Fashion CNN {label}",
                dataset="fashion_mnist",
                model=model,
                batch_size=64,
                epochs=10,
                learning_rate=1e-3,
                validation_split=0.2,
            )
            for label, model in (
                ("without dropout", "fashion_cnn"),
                ("with dropout", "fashion_cnn_dropout"),
            )
        ),  # fmt: skip
        target="seed 004: the dropout model's validation loss keeps falling, the other's rises",
    ),
)


def get_preset(key: str) -> Preset:
    """The preset with that key."""
    for preset in PRESETS:
        if preset.key == key:
            return preset
    raise KeyError(f"Unknown preset {key!r}; known: {', '.join(p.key for p in PRESETS)}.")


def presets_for(dataset: str) -> list[Preset]:
    """The presets that train on a dataset."""
    return [p for p in PRESETS if p.configs[0].dataset == dataset]


def seconds_per_epoch(model: str, input_shape: tuple[int, int, int], images: int) -> float | None:
    """Measured seconds for one epoch of a zoo model over `images` images of that shape on
    this kind of machine, scaled from the benchmark's own image count; None when the
    model was not measured for that shape."""
    try:
        table = json.loads(MEASUREMENTS.read_text())["seconds_per_epoch"]
    except (OSError, ValueError, KeyError):
        return None
    entry = table.get(model, {}).get("x".join(str(v) for v in input_shape))
    if not entry:
        return None
    return entry["seconds"] * images / entry["images"]


def with_dataset(cfg: RunConfig, dataset: str) -> RunConfig:
    """A copy of a config trained on another dataset."""
    return replace(cfg, dataset=dataset, dataset_source=None)
