"""The model zoo: the registry of CNNs built by name (`list_models`, `build_model`).

The builders are in `architectures`, the learner's own layer list in `layer_lists`, tables
and FLOPs in `summaries`.

Every model is a functional Keras 3 model (``keras.Input`` -> layer calls -> ``keras.Model``)
so that any layer's output can be tapped for feature maps and Grad-CAM. Layers carry short,
unique names ("conv1", "pool1", "predictions") that the inspection pages show to learners,
and the last layer is always a softmax ``Dense`` named "predictions".

Inputs are float32 images already scaled to [0, 1] by the training engine, so no model
contains a Rescaling layer. Nothing here downloads weights: every model starts untrained.

Typical use::

    model = build_model("simple_convnet", (28, 28, 1), num_classes=10)
    custom = build_model("custom", (28, 28, 1), 10, layers=layer_lists.default_custom_layers())
    table = summaries.summarize(model).to_records()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from cnn_core.models import sources
from cnn_core.models.architectures import (
    _allcnn,
    _fashion_cnn,
    _fashion_cnn_dropout,
    _lenet5,
    _resnet,
    _simple_convnet,
    _tf_tutorial,
    _vgg,
    _vgg_like_bn,
    _wideresnet,
)
from cnn_core.models.input_limits import (
    MIN_INPUT_SIDE,
    ModelError,
    _check_input_shape,
    _check_num_classes,
)
from cnn_core.models.layer_lists import CUSTOM, _custom


# --- Data types -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    """One entry of the zoo, as the pages list it.

    Attributes:
        key: The name to pass to ``build_model``.
        title: A short human title.
        description: Two sentences for learners: what it is and what to notice.
        source: The key in ``sources.SOURCES`` of the document it comes from, or None for
            the custom model.
        optimizer: Recommended optimizer name: "adam", "adamax" or "sgd".
        learning_rate: Recommended learning rate for that optimizer.
        builder: ``builder(input_shape, num_classes)`` (the custom builder also takes
            ``layers``); prefer ``build_model``, which validates the arguments first.
        min_input_side: The smallest image height and width the architecture allows.
    """

    key: str
    title: str
    description: str
    source: str | None
    optimizer: str
    learning_rate: float
    builder: Callable[..., keras.Model]
    min_input_side: int = MIN_INPUT_SIDE

    @property
    def citation(self) -> str:
        """Where the architecture comes from, as a sentence for learners ("" if nowhere)."""
        if self.source is None:
            return ""
        return f"From {sources.cite(self.source)}."


# --- Registry -------------------------------------------------------------------------------
_ZOO = (
    ModelInfo(
        "simple_convnet",
        "Simple ConvNet",
        "Three 3×3 convolutions of 32 filters and two max-pools, straight into the softmax: "
        "the smallest network here that still sees shapes. Notice how few parameters it "
        "needs, and how its first filters turn into edge and stroke detectors.",
        "tf_keras_tutorial",
        "adam",
        1e-3,
        _simple_convnet,
    ),
    ModelInfo(
        "tf_tutorial",
        "TensorFlow tutorial CNN",
        "Two 5×5 convolution blocks (16 and 36 filters) and a 128-unit dense layer, from "
        "TensorFlow Tutorial #02. Notice that it pools before the ReLU: the result is the "
        "same as ReLU-then-pool, computed on a quarter of the values.",
        # Hvass' notebook trains Adam at 1e-4 for 10,000 batches. One pass over 8,000 MNIST
        # images ends at loss 1.89 with 1e-4 and 0.62 with 1e-3, so a lab session uses 1e-3.
        "mnist_notes",
        "adam",
        1e-3,
        _tf_tutorial,
    ),
    ModelInfo(
        "fashion_cnn",
        "Fashion-MNIST CNN",
        "Three convolution blocks (32, 64, 128 filters) with leaky ReLUs and a 128-unit "
        "dense layer, for Fashion-MNIST. Notice how training accuracy pulls away from "
        "validation accuracy after a few epochs: it overfits.",
        "keras_fashion_tutorial",
        "adam",
        1e-3,
        _fashion_cnn,
    ),
    ModelInfo(
        "fashion_cnn_dropout",
        "Fashion-MNIST CNN with dropout",
        "The same network with dropout after each block and after the dense layer. Notice "
        "that training and validation accuracy now stay close together, at the price of "
        "slower progress per epoch.",
        "keras_fashion_tutorial",
        "adam",
        1e-3,
        _fashion_cnn_dropout,
    ),
    ModelInfo(
        "vgg_like_bn",
        "VGG-like with batch norm",
        "Ten 3×3 convolutions in four blocks with batch normalisation and growing dropout, "
        "then dense layers of 300 and 100: its authors reached 86% test accuracy on "
        "CIFAR-10 with it. Notice its 2,688 non-trainable parameters: the batch-norm "
        "running means and variances.",
        "cifar10_report",
        "adamax",
        3e-3,
        _vgg_like_bn,
        min_input_side=16,
    ),
    ModelInfo(
        "lenet5",
        "LeNet-5 (1998)",
        "The 1998 digit reader: two 5×5 convolutions with average pooling and tanh, then "
        "dense layers of 120 and 84 units. Notice its smooth, never-zero tanh feature maps "
        "next to the sparse ReLU maps of newer models.",
        "convnet_repository",
        "adam",
        1e-3,
        _lenet5,
        min_input_side=12,
    ),
    ModelInfo(
        "vgg",
        "VGG (small)",
        "Pairs of 3×3 convolutions before each max-pool, doubling the filters at each stage "
        "(32, 64, 128), then a 256-unit dense layer. Notice that two stacked 3×3 "
        "convolutions see a 5×5 patch with fewer weights than one 5×5 convolution.",
        "convnet_repository",
        "adam",
        1e-3,
        _vgg,
    ),
    ModelInfo(
        "allcnn",
        "All-CNN (small)",
        "Only convolutions: stride-2 convolutions shrink the image instead of max-pools, and "
        "global average pooling replaces the hidden dense layers. Notice the feature maps "
        "halve in size at the strided layers: downsampling that is learned, not fixed.",
        "convnet_repository",
        "adam",
        1e-3,
        _allcnn,
    ),
    ModelInfo(
        "resnet",
        "ResNet-20",
        "Twenty layers of residual blocks with batch normalisation, where each block adds "
        "its input back to its output. Notice the shortcut connections: they let the "
        "gradient reach the first layers, so a deep stack still trains.",
        # The paper trains SGD with momentum for 64k batches; after one pass over 8,000
        # MNIST images Adam validates at 94% and SGD (0.05, momentum 0.9) at 71%.
        "convnet_repository",
        "adam",
        1e-3,
        _resnet,
    ),
    ModelInfo(
        "wideresnet",
        "Wide ResNet 10-2",
        "Fewer but twice as wide residual blocks, with batch norm and ReLU before each "
        "convolution (pre-activation). Notice it has half the depth of ResNet-20 and about "
        "as many parameters: the capacity moved from depth into width.",
        "convnet_repository",
        "adam",
        1e-3,
        _wideresnet,  # Adam for the reason given at resnet
    ),
    ModelInfo(
        CUSTOM,
        "Custom layer stack",
        "Your own stack of layers, built from the table you edit; the flatten and softmax "
        "output are added for you. Notice how each change moves the output shapes and the "
        "parameter count before anything is trained.",
        None,
        "adam",
        1e-3,
        _custom,
    ),
)
MODELS: dict[str, ModelInfo] = {info.key: info for info in _ZOO}


def list_models() -> list[ModelInfo]:
    """Returns the zoo in display order (the custom model last)."""
    return list(MODELS.values())


def get_model_info(name: str) -> ModelInfo:
    """Looks up a model by key.

    Args:
        name: A key of ``MODELS``, e.g. "simple_convnet" (case and spaces are ignored).

    Returns:
        Its registry entry.

    Raises:
        ModelError: The name is unknown; the message lists the valid names.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in MODELS:
        raise ModelError(f"Unknown model {name!r}. Choose one of: {', '.join(MODELS)}.")
    return MODELS[key]


def build_model(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    layers: list[dict[str, Any]] | None = None,
) -> keras.Model:
    """Builds an untrained zoo model by name.

    Args:
        name: A key of ``MODELS`` (see ``list_models``).
        input_shape: (height, width, channels) of the images, e.g. (28, 28, 1).
        num_classes: Number of classes, at least 2.
        layers: The layer list; required for "custom", refused for the other models.

    Returns:
        A functional Keras model ending in a softmax Dense layer named "predictions".

    Raises:
        ModelError: Unknown name, bad input shape or class count, or misplaced layers.
        LayerSpecError: The custom layer list is invalid.
    """
    info = get_model_info(name)
    shape = _check_input_shape(input_shape, info.key, info.min_input_side)
    _check_num_classes(num_classes)
    if info.key == CUSTOM:
        if layers is None:
            raise ModelError(
                "The 'custom' model is built from a layer list: pass layers=[...], for "
                "example default_custom_layers()."
            )
        return info.builder(shape, int(num_classes), layers)
    if layers is not None:
        raise ModelError(
            f"'{info.key}' has a fixed architecture, so layers must be None; use the "
            "'custom' model to build from a layer list."
        )
    return info.builder(shape, int(num_classes))
