"""Ready-made training recipes the Train page offers, each with the figure it is measured
against. Time estimates come from `benchmarks/` measurements (assets/benchmarks.json),
never from guesses; a preset without a measurement says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from cnn_core import settings
from cnn_core.models import sources
from cnn_core.runs.run_config import RunConfig

MEASUREMENTS = settings.ASSETS_DIR / "benchmarks.json"


def _conv(filters: int) -> dict:
    return {"type": "conv", "filters": filters, "kernel": 3, "activation": "relu"}


def vgg_bn_layers(dropout: tuple[float, float, float]) -> tuple[dict, ...]:
    """VGG's habit sized for a laptop, like the VGG-like network of the project report
    *Image Classification Using Convolutional Neural Network CNN*: two blocks of two
    3×3 convolutions (32, then 64 filters) with batch norm after each, a dense layer of
    128, and dropout at these three rates after each block and the dense layer. Batch norm
    trains with the fused kernel (cnn_core.models.batchnorm), about 2× faster here than
    Keras' own."""
    first, second, dense = dropout
    return (
        _conv(32), {"type": "batchnorm"}, _conv(32), {"type": "batchnorm"}, {"type": "maxpool"},
        {"type": "dropout", "rate": first},
        _conv(64), {"type": "batchnorm"}, _conv(64), {"type": "batchnorm"}, {"type": "maxpool"},
        {"type": "dropout", "rate": second}, {"type": "flatten"},
        {"type": "dense", "units": 128, "activation": "relu"}, {"type": "batchnorm"},
        {"type": "dropout", "rate": dense},
    )  # fmt: skip


# The strong dropout was mnist-99's before its three-block network (8,000 digits overfit
# quickly); benchmarks/batchnorm.py still times it. 60,000 clothes in 12 epochs underfit
# with it (training accuracy stayed below test accuracy), so fashion-best drops less.
VGG_BN_LAYERS = vgg_bn_layers((0.2, 0.3, 0.4))
VGG_BN_LIGHT_LAYERS = vgg_bn_layers((0.1, 0.2, 0.3))


def vgg_gap_layers() -> tuple[dict, ...]:
    """mnist-99's network: three blocks of two 3×3 convolutions (32, 64, then 128 filters)
    with batch norm after each, max pooling and dropout .1/.2/.3 after each block, then
    global average pooling straight into the output layer, with no flatten and no dense
    layer (about 290,000 weights, 60% of the two-block VGG's). Each epoch costs about 1.3×
    the two-block VGG's, so 13 epochs take about the time of its 16."""
    blocks = []
    for filters, rate in ((32, 0.1), (64, 0.2), (128, 0.3)):
        blocks += [_conv(filters), {"type": "batchnorm"}, _conv(filters), {"type": "batchnorm"},
                   {"type": "maxpool"}, {"type": "dropout", "rate": rate}]  # fmt: skip
    return (*blocks, {"type": "globalavgpool"})


VGG_GAP_LAYERS = vgg_gap_layers()


def cifar_blocks_layers(widths: tuple[int, int, int]) -> tuple[dict, ...]:
    """The network shape of Keller Jordan's airbench, the fastest published CIFAR-10
    training recipe: three blocks, each a 3×3 convolution, max pooling that halves the
    image, batch norm, a second 3×3 convolution and batch norm, then global average
    pooling into the output layer. Almost all of its work is done on 16×16 and smaller
    maps, so it sees a lot of the picture for little arithmetic (airbench's own widths are
    64, 256, 256)."""
    blocks = []
    for filters in widths:
        blocks += [_conv(filters), {"type": "maxpool"}, {"type": "batchnorm"},
                   _conv(filters), {"type": "batchnorm"}]  # fmt: skip
    return (*blocks, {"type": "globalavgpool"})


CIFAR_BEST_LAYERS = cifar_blocks_layers((64, 256, 256))  # about 1,960,000 weights
CIFAR_QUICK_LAYERS = cifar_blocks_layers((32, 128, 128))  # about 490,000: a quarter the work


def cifar_config(
    name: str,
    layers: tuple[dict, ...],
    epochs: int,
    label_smoothing: float,
    optimizer: str = "adamw",
) -> RunConfig:
    """A CIFAR-10 recipe on the embedded copy's 40,000 training photos, tested on its
    held-out 10,000: batches of 256, left-right flips, shifts of up to 4 pixels and label
    smoothing, with AdamW (Adam with weight decay) and a cosine decay, or with SGD's
    Nesterov momentum, weight decay and a warm-up before the cosine decay, the optimizer of
    the fast published recipes (in 8 epochs of CIFAR-10 quick it scored 82.1% against
    AdamW's 79.9%, BENCHMARKS.md)."""
    nesterov = optimizer == "nesterov"
    return RunConfig(
        name=name,
        dataset="cifar10",
        model="custom",
        layers=[dict(layer) for layer in layers],
        optimizer=optimizer,
        batch_size=256,
        epochs=epochs,
        learning_rate=0.2 if nesterov else 2e-3,
        lr_schedule="warmup_cosine" if nesterov else "cosine",
        augment_flip=True,
        augment_shift=0.125,
        label_smoothing=label_smoothing,
        validation_split=0.0,
    )


@dataclass(frozen=True)
class Preset:
    """One recipe: one run, or a pair of runs meant to be compared."""

    key: str
    title: str
    lesson: str  # what a learner should notice
    configs: tuple[RunConfig, ...]
    target: str  # the figure it aims at, with the source document's beside it


PRESETS: tuple[Preset, ...] = (
    Preset(
        key="mnist-99",
        title="MNIST (embedded): 99% in 13 epochs",
        lesson="Three blocks of two convolutions with batch normalisation after each, "
        "global average pooling instead of a flattened dense layer, dropout, small shifts "
        "and rotations of the training digits, a cosine learning-rate decay and label "
        "smoothing (the right answer's target is 91%, not 100%, and each other class's 1%) "
        "take the same 8,000 digits from the simple ConvNet's 92.36% to about 99.2%: some "
        "16 mistakes in 2,000.",
        configs=(
            RunConfig(
                name="MNIST 99%",
                dataset="mnist",
                dataset_source="embedded",
                model="custom",
                layers=[dict(layer) for layer in VGG_GAP_LAYERS],
                batch_size=64,
                epochs=13,
                lr_schedule="cosine",
                learning_rate=2e-3,
                augment_shift=0.1,
                augment_rotate=10.0,
                label_smoothing=0.1,
                validation_split=0.0,
            ),
        ),  # fmt: skip
        target="≥ 99.0% on the held-out 2,000. The simple ConvNet of "
        f"{sources.cite('tf_keras_tutorial', markdown=False)}: 92.36% on MNIST; the "
        f"small VGG-like model of {sources.cite('convnet_repository', markdown=False)}: "
        "99% (on all 60,000 digits)",
    ),
    Preset(
        key="fashion-quick",
        title="Fashion-MNIST quick: 91% in three epochs",
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
        title="Fashion-MNIST best: about 94% in 12 epochs",
        lesson="A small VGG-style network (two stacked 3×3 convolutions per block) with "
        "batch normalisation after each, light dropout, left-right flips of the clothes and "
        "a learning rate that decays along a cosine: about 94%, above every two-convolution "
        "network in the Fashion-MNIST table and near AutoML's 93.9% after 24 hours.",
        configs=(
            RunConfig(
                name="Fashion best",
                dataset="fashion_mnist",
                model="custom",
                layers=[dict(layer) for layer in VGG_BN_LIGHT_LAYERS],
                batch_size=128,
                epochs=12,
                learning_rate=3e-3,
                lr_schedule="cosine",
                augment_flip=True,
                validation_split=0.0,
            ),
        ),  # fmt: skip
        target="≥ 93.5% test accuracy within 10 minutes; AutoML reports 93.9% after 24 hours",
    ),
    Preset(
        key="cifar-quick",
        title="CIFAR-10 quick: a photo classifier in 10 minutes",
        lesson="The shape of the fastest published CIFAR-10 recipe (pool early, then work on "
        "small maps) at half its width: 32, 128 and 128 filters, a quarter of the "
        "arithmetic of CIFAR-10 best. Flips, shifts and label smoothing keep it from "
        "memorising, and it answers from each photo and its mirror image. Watch the "
        "training and test accuracy stay close: a small network has little room to learn "
        "photos by heart.",
        configs=(
            cifar_config("CIFAR-10 quick", CIFAR_QUICK_LAYERS, epochs=14, label_smoothing=0.2),
        ),
        target="≥ 80% on the held-out 10,000 within 10 minutes of training",
    ),
    Preset(
        key="cifar-best",
        title="CIFAR-10 best: 88% in 48 minutes",
        lesson="A network that pools early and works on small maps (the shape of the "
        "fastest published CIFAR-10 recipe), at 64, 256 and 256 filters: about 2 million "
        "weights, trained with SGD's Nesterov momentum, weight decay and a learning rate "
        "that warms up, then decays. So wide a network learns its 40,000 training photos by "
        "heart unless held back: with flips, shifts, weight decay and label smoothing it "
        "still reaches 97% on them and 87% on photos it never saw, 88.6% when it answers "
        "from each photo and its mirror image. "
        f"The VGG-like net of {sources.cite('cifar10_report', markdown=False)} reports "
        "86.3% after 20 epochs on a TPU.",
        configs=(
            cifar_config(
                "CIFAR-10 best",
                CIFAR_BEST_LAYERS,
                epochs=25,
                label_smoothing=0.2,
                optimizer="nesterov",
            ),
        ),
        target="≥ 90% on the held-out 10,000 within 45 minutes of training; the VGG-like "
        f"net of {sources.cite('cifar10_report', markdown=False)}: 86.3%",
    ),
    Preset(
        key="overfitting",
        title="Over-fitting lesson: the same net with and without dropout",
        lesson="Without dropout, training accuracy keeps climbing while validation accuracy "
        "stalls and validation loss rises: the network memorises. Dropout closes the gap, "
        f"as in {sources.cite('keras_fashion_tutorial')}.",
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
        target="As in the tutorial: the dropout model's validation loss keeps falling, the "
        "other's rises",
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


def measured_entry(model: str, input_shape: tuple[int, int, int]) -> dict | None:
    """benchmarks/zoo.py's record of one zoo model at one input shape (seconds, images,
    mixed_precision, calibration_step_s, ...), or None when it was not measured."""
    try:
        table = json.loads(MEASUREMENTS.read_text())["seconds_per_epoch"]
        entry = table.get(model, {}).get("x".join(str(v) for v in input_shape))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return entry if isinstance(entry, dict) and entry else None


def seconds_per_epoch(model: str, input_shape: tuple[int, int, int], images: int) -> float | None:
    """Measured seconds for one epoch of a zoo model over `images` images of that shape on
    the benchmark machine, scaled from the benchmark's own image count; None when the
    model was not measured for that shape. cnn_core.runs.estimates turns it into seconds
    on this machine."""
    entry = measured_entry(model, input_shape)
    if not entry:
        return None
    return entry["seconds"] * images / entry["images"]


def measured_with_bfloat16(model: str, input_shape: tuple[int, int, int]) -> bool:
    """Whether the benchmark figure behind seconds_per_epoch was trained in bfloat16."""
    return bool((measured_entry(model, input_shape) or {}).get("mixed_precision"))


def measured(key: str) -> list[dict] | None:
    """The last benchmark of a preset, one dict per run (name, epochs, seconds,
    test_accuracy, measured date), or None when benchmarks/presets.py has not measured it."""
    try:
        rows = json.loads(MEASUREMENTS.read_text())["presets"][key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return rows if isinstance(rows, list) and rows else None


def with_dataset(cfg: RunConfig, dataset: str) -> RunConfig:
    """A copy of a config trained on another dataset."""
    return replace(cfg, dataset=dataset, dataset_source=None)
