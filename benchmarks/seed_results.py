"""The source documents' models trained by the lab, beside the accuracy each document
reports: RESULTS.md.

    .venv/bin/python benchmarks/seed_results.py [--only 000-mnist 004-fashion]

Each row trains the document's architecture (the zoo model of that name) through the real
engine with the lab's training (config below), on the data available here, and prints
the document's figure beside the lab's test accuracy, epochs and training seconds. The
CIFAR-10 rows train on the first ready source (the embedded copy where nothing better is
installed); a row whose dataset no source holds prints the command that trains it online.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, run_to_end  # noqa: E402

from cnn_core.data import datasets  # noqa: E402
from cnn_core.runs import presets, run_config  # noqa: E402


@dataclass(frozen=True)
class Row:
    key: str
    document: str  # the document's short name (RESULTS.md's list) and the network's
    document_figure: str  # what the document reports, with its data
    config: run_config.RunConfig
    difference: str  # what the lab's training changes, and why it helps


def _mnist(model: str, **kw) -> run_config.RunConfig:
    return run_config.RunConfig(dataset="mnist", dataset_source="embedded", model=model,
                          validation_split=0.0, **kw)  # fmt: skip


def _cifar(model: str, **kw) -> run_config.RunConfig:
    return run_config.RunConfig(dataset="cifar10", model=model, validation_split=0.0,
                                augment_shift=0.1, augment_flip=True, lr_schedule="cosine",
                                **kw)  # fmt: skip


SHORTENED = "{} epochs instead of the 60 the lab's online recipe uses; shifts, flips, cosine"

ROWS = (
    Row("000-mnist", "tutorial (TF & Keras): simple ConvNet", "92.36% test (MNIST)",
        _mnist("simple_convnet", epochs=10, lr_schedule="cosine"),
        "Adam with a cosine learning-rate decay over 10 epochs; the document's figure is "
        "far below what this net reaches, so its training stopped early or overfitted."),
    Row("003-mnist", "TF tutorial notes: TensorFlow tutorial CNN", "not reported (the "
        "tutorial prints ~99% after 10,000 batches)",
        _mnist("tf_tutorial", epochs=10, lr_schedule="cosine"),
        "Adam at 1e-3 instead of 1e-4 (10× fewer steps needed), cosine decay."),
    Row("004-fashion", "Keras tutorial (Fashion-MNIST): Fashion-MNIST CNN", "not reported "
        "(two-conv nets in the Fashion-MNIST table: 87.6–93.4%)",
        presets.get_preset("overfitting").configs[0],
        "the tutorial's own training (Adam 1e-3, batch 64, 20% validation), 10 epochs."),
    Row("004-fashion-dropout", "Keras tutorial (Fashion-MNIST): Fashion-MNIST CNN with "
        "dropout", "not reported",
        presets.get_preset("overfitting").configs[1],
        "the same training; dropout trades a little training accuracy for less overfitting."),
    # CIFAR-10 on the embedded copy (40,000 training photos, tested on the held-out 10,000).
    # Each row is shortened to a few minutes of two cores (about an hour for all seven);
    # the epochs the documents trained for are given beside it.
    Row("000-cifar", "tutorial (TF & Keras): simple ConvNet", "47.97% test (CIFAR-10)",
        _cifar("simple_convnet", epochs=10), "10 epochs; shifts, flips, cosine schedule"),
    Row("001-cifar-lenet5", "ArthMx/ConvNet: LeNet-5", "79.8% (CIFAR-10)",
        _cifar("lenet5", epochs=20), SHORTENED.format(20)),
    Row("001-cifar-vgg", "ArthMx/ConvNet: VGG", "88.1% (CIFAR-10)", _cifar("vgg", epochs=5),
        SHORTENED.format(5)),
    Row("001-cifar-allcnn", "ArthMx/ConvNet: All-CNN", "90.3% (CIFAR-10)",
        _cifar("allcnn", epochs=6), SHORTENED.format(6) + "; a third of the paper's width"),
    Row("001-cifar-resnet", "ArthMx/ConvNet: ResNet", "91.0% (CIFAR-10)",
        _cifar("resnet", epochs=3), SHORTENED.format(3) + "; ResNet-20"),
    Row("001-cifar-wrn", "ArthMx/ConvNet: WideResNet", "92.2% (CIFAR-10)",
        _cifar("wideresnet", epochs=5),
        SHORTENED.format(5) + "; WRN-10-2 (the document gives no depth)"),
    Row("002-cifar", "project report: VGG-like with batch norm", "86.3% test after 20 "
        "epochs, 600 s on a TPU (CIFAR-10)", _cifar("vgg_like_bn", epochs=5),
        "5 epochs instead of the report's 20; its Adamax and layers, plus shifts, flips and "
        "a cosine schedule"),
)  # fmt: skip


def reproduce_command(cfg: run_config.RunConfig) -> str:
    """The CLI line that trains a row's config (online, after `download cifar10`)."""
    flags = f"--dataset {cfg.dataset} --model {cfg.model} --epochs {cfg.epochs}"
    if cfg.augment_shift:
        flags += f" --augment-shift {cfg.augment_shift:g}"
    if cfg.augment_flip:
        flags += " --augment-flip"
    if cfg.validation_split != run_config.RunConfig.validation_split:
        flags += f" --validation-split {cfg.validation_split:g}"
    if cfg.lr_schedule != "constant":
        flags += f" --lr-schedule {cfg.lr_schedule}"
    return f"python -m cnn_core download {cfg.dataset} && python -m cnn_core train {flags}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="row keys (default: all)")
    args = parser.parse_args()
    os.environ["CNN_LAB_HOME"] = tempfile.mkdtemp(prefix="cnn-lab-results-")
    print(machine())
    print("| document | model | data | the document's figure | lab's test accuracy | epochs "
          "| training time | what the lab's training changes |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for row in ROWS:
        if args.only and row.key not in args.only:
            continue
        cfg = row.config
        head = f"| {row.document} | `{cfg.model}` | {cfg.dataset} | {row.document_figure} |"
        if not datasets.is_available(cfg.dataset):
            print(f"{head} needs the download: `{reproduce_command(cfg)}` | {cfg.epochs} | — | "
                  f"{row.difference} |", flush=True)  # fmt: skip
            continue
        r = run_to_end(cfg)
        print(f"{head} {r['test_accuracy']:.2%} | {r['epochs']} | {r['seconds']:.0f} s | "
              f"{row.difference} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
