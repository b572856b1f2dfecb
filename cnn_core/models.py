"""The model zoo: CNNs built by name, a layer-list builder, and summaries as data.

Every model is a functional Keras 3 model (``keras.Input`` -> layer calls -> ``keras.Model``)
so that any layer's output can be tapped for feature maps and Grad-CAM. Layers carry short,
unique names ("conv1", "pool1", "predictions") that the inspection pages show to learners,
and the last layer is always a softmax ``Dense`` named "predictions".

Inputs are float32 images already scaled to [0, 1] by the training engine, so no model
contains a Rescaling layer. Nothing here downloads weights: every model starts untrained.

Typical use::

    model = build_model("simple_convnet", (28, 28, 1), num_classes=10)
    rows = validate_layers(DEFAULT_CUSTOM_LAYERS, (28, 28, 1), num_classes=10)
    table = summarize(model).to_records()
"""

from __future__ import annotations

import copy
import math
import numbers
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras

from cnn_core import sources

# --- Input limits -------------------------------------------------------------------------
MIN_INPUT_SIDE = 8  # every model accepts at least 8x8 images unless its pooling needs more
MAX_INPUT_SIDE = 512  # beyond this a two-core classroom machine cannot train in useful time
MAX_CHANNELS = 4  # grey, colour, or colour with alpha; more means channels came first
MAX_CLASSES = 1000

# Batch-norm running statistics follow each batch with weight 0.1 (PyTorch's default)
# instead of Keras' 0.01: with 0.01 they need ~300 batches to settle,
# so a one-epoch run on the 10,000-image MNIST subset would validate with stale statistics.
BN_MOMENTUM = 0.9
# Wide ResNet size (see _wideresnet): WRN-10-2, depth 6n+4 with n=1, widening k=2.
WRN_BLOCKS_PER_STAGE = 1  # depth 6n+4 = 10
WRN_WIDEN = 2  # k: stage widths 16k, 32k, 64k

# --- Custom layer lists: allowed values (inclusive ranges) and budgets ----------------------
FILTERS_RANGE = (1, 1024)
KERNEL_RANGE = (1, 11)  # also the range of a pool's size and stride
STRIDE_RANGE = (1, 4)
UNITS_RANGE = (1, 4096)
MAX_CUSTOM_LAYERS = 64
MAX_CUSTOM_PARAMS = 20_000_000
# "leaky_relu" is Keras' own activation function, whose negative slope is 0.2.
ACTIVATIONS = ("relu", "linear", "tanh", "sigmoid", "leaky_relu")
PADDINGS = ("same", "valid")

# Defaults for the keys a layer dict may omit; a pool's stride of None means "its size".
LAYER_DEFAULTS: dict[str, dict[str, Any]] = {
    "conv": {"filters": 32, "kernel": 3, "stride": 1, "padding": "same", "activation": "relu"},
    "maxpool": {"size": 2, "stride": None, "padding": "valid"},
    "avgpool": {"size": 2, "stride": None, "padding": "valid"},
    "batchnorm": {},
    "dropout": {"rate": 0.25},
    "flatten": {},
    "globalavgpool": {},
    "dense": {"units": 128, "activation": "relu"},
}
LAYER_TYPES = tuple(LAYER_DEFAULTS)
KNOWN_KEYS = frozenset({"type"}.union(*LAYER_DEFAULTS.values()))
SPATIAL_TYPES = frozenset({"conv", "maxpool", "avgpool", "globalavgpool"})
NAME_PREFIXES = {
    "conv": "conv",
    "maxpool": "pool",
    "avgpool": "avgpool",
    "batchnorm": "bn",
    "dropout": "dropout",
    "flatten": "flatten",
    "globalavgpool": "gap",
    "dense": "dense",
}
PREDICTIONS = "predictions"
CUSTOM = "custom"

# A learner's starting point: two conv/pool blocks and a small dense layer (106k parameters
# on 28×28×1, a few seconds per MNIST epoch). Copy it (default_custom_layers()) to edit it.
DEFAULT_CUSTOM_LAYERS: list[dict[str, Any]] = [
    {
        "type": "conv",
        "filters": 16,
        "kernel": 3,
        "stride": 1,
        "padding": "same",
        "activation": "relu",
    },
    {"type": "maxpool", "size": 2, "stride": 2},
    {
        "type": "conv",
        "filters": 32,
        "kernel": 3,
        "stride": 1,
        "padding": "same",
        "activation": "relu",
    },
    {"type": "maxpool", "size": 2, "stride": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 64, "activation": "relu"},
    {"type": "dropout", "rate": 0.25},
]


class ModelError(ValueError):
    """A model cannot be built from the given name, shape or class count."""


class LayerSpecError(ModelError):
    """A custom layer list is invalid; the message names the layer and what to fix."""


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


@dataclass(frozen=True)
class LayerShape:
    """What one layer of a custom list will be, computed without building Keras layers.

    Attributes:
        number: 1-based position in the user's list; None for a layer added automatically
            (a Flatten before a Dense or before the output, and the output layer itself).
        name: The Keras layer name the builder gives it ("conv1", "predictions").
        kind: The layer type ("conv", "maxpool", ..., "dense").
        label: A short description for tables and messages ("conv 32 3×3").
        output_shape: Output shape without the batch dimension.
        params: Number of parameters (weights, biases and batch-norm statistics).
        spec: The layer dict with every default filled in.
    """

    number: int | None
    name: str
    kind: str
    label: str
    output_shape: tuple[int, ...]
    params: int
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def auto(self) -> bool:
        """Whether the builder added this layer rather than the user."""
        return self.number is None


@dataclass(frozen=True)
class LayerRow:
    """One row of a model summary table."""

    name: str
    type: str
    output_shape: tuple[int | None, ...]
    params: int


@dataclass(frozen=True)
class ModelSummary:
    """A model summary as data: one row per layer plus the parameter totals."""

    name: str
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int

    def to_records(self) -> list[dict[str, Any]]:
        """Returns one plain dict per layer, ready for a table (shape as text)."""
        return [
            {
                "name": row.name,
                "type": row.type,
                "output_shape": format_shape(row.output_shape),
                "params": row.params,
            }
            for row in self.rows
        ]


# --- Small helpers --------------------------------------------------------------------------
def format_shape(shape: Sequence[int | None]) -> str:
    """Formats a shape without batch dimension for learners: (28, 28, 32) -> "28 × 28 × 32"."""
    return " × ".join("?" if dim is None else str(dim) for dim in shape)


def default_custom_layers() -> list[dict[str, Any]]:
    """Returns a fresh copy of DEFAULT_CUSTOM_LAYERS that a caller may edit freely."""
    return copy.deepcopy(DEFAULT_CUSTOM_LAYERS)


def _window_output(size: int, window: int, stride: int, padding: str) -> int:
    """Output length of a conv or pool along one axis, as Keras computes it (0 = empty)."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1 if size >= window else 0


def _conv(x, filters: int, kernel: int, name: str, **kwargs):
    """A same-padded Conv2D call, the building block of most zoo models."""
    return keras.layers.Conv2D(filters, kernel, padding="same", name=name, **kwargs)(x)


def _batch_norm(name: str) -> keras.layers.BatchNormalization:
    """A BatchNormalization layer whose running statistics settle quickly (BN_MOMENTUM)."""
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def _he_conv(x, filters: int, kernel: int, name: str, stride: int = 1, **kwargs):
    """A same-padded conv with He initialisation, which keeps ReLU networks' signals steady."""
    return _conv(x, filters, kernel, name, strides=stride, kernel_initializer="he_normal", **kwargs)


def _predictions(x, num_classes: int):
    """The softmax output every model ends with.

    It is float32 even under a mixed-precision policy, so probabilities sum to 1 precisely.
    """
    output = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name=PREDICTIONS
    )
    return output(x)


def _model(input_shape: tuple[int, int, int], key: str, body: Callable) -> keras.Model:
    """Wraps ``body(inputs) -> outputs`` into a functional model named after its key."""
    inputs = keras.Input(shape=input_shape, name="input")
    return keras.Model(inputs, body(inputs), name=key)


# --- Zoo builders: the networks of the source documents (cnn_core.sources) -----------------
def _simple_convnet(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The tutorial *Implementing Convolutional Neural Networks in TensorFlow and Keras*:
    three 3×3 convolutions of 32 filters, pooling after the 2nd and 3rd.

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: Number of output classes.

    Returns:
        The untrained model (about 35k parameters on 28×28×1 with 10 classes).
    """

    def body(x):
        x = _conv(x, 32, 3, "conv1", activation="relu")
        x = _conv(x, 32, 3, "conv2", activation="relu")
        x = keras.layers.MaxPooling2D(2, name="pool1")(x)
        x = _conv(x, 32, 3, "conv3", activation="relu")
        x = keras.layers.MaxPooling2D(2, name="pool2")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        return _predictions(x, num_classes)

    return _model(input_shape, "simple_convnet", body)


def _tf_tutorial(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The notes *Use a CNN to recognize handwritten digits from the MNIST data-set* (Hvass'
    TensorFlow Tutorial #02): conv 5×5 → max-pool → ReLU, twice.

    The notes apply ReLU after pooling; the result equals ReLU-then-pool because both are
    monotonic, and the ReLU runs on a quarter of the values. Pools use same padding as the
    notes' ``tf.nn.max_pool(padding="SAME")``.

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: Number of output classes.

    Returns:
        The untrained model (about 242k parameters on 28×28×1 with 10 classes).
    """

    def body(x):
        for block, filters in ((1, 16), (2, 36)):
            x = _conv(x, filters, 5, f"conv{block}")
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{block}")(x)
            x = keras.layers.ReLU(name=f"relu{block}")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(128, activation="relu", name="dense1")(x)
        return _predictions(x, num_classes)

    return _model(input_shape, "tf_tutorial", body)


def _fashion_body(x, num_classes: int, dropout: bool):
    """The three conv/LeakyReLU/pool blocks of the tutorial *Convolutional Neural Networks
    in Python with Keras*, optionally with the tutorial's dropout."""
    block_dropout = (0.25, 0.25, 0.4)
    for block, filters in enumerate((32, 64, 128), start=1):
        x = _conv(x, filters, 3, f"conv{block}", activation="linear")
        x = keras.layers.LeakyReLU(negative_slope=0.1, name=f"leaky_relu{block}")(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{block}")(x)
        if dropout:
            x = keras.layers.Dropout(block_dropout[block - 1], name=f"dropout{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, activation="linear", name="dense1")(x)
    x = keras.layers.LeakyReLU(negative_slope=0.1, name="leaky_relu4")(x)
    if dropout:
        x = keras.layers.Dropout(0.3, name="dropout4")(x)
    return _predictions(x, num_classes)


def _fashion_cnn(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The Fashion-MNIST tutorial's first model, without dropout (``_fashion_body``).

    Conv 32/64/128 (3×3, same, linear) each followed by LeakyReLU(0.1) and a same-padded
    2×2 max-pool; Dense 128 + LeakyReLU(0.1); softmax. 356,234 parameters on 28×28×1 with
    10 classes, as in the tutorial.

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: Number of output classes.

    Returns:
        The untrained model.
    """
    return _model(input_shape, "fashion_cnn", lambda x: _fashion_body(x, num_classes, False))


def _fashion_cnn_dropout(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The Fashion-MNIST tutorial's second model: the same layers plus dropout.

    Dropout 0.25 after the first and second pool, 0.4 after the third and 0.3 after the
    dense LeakyReLU. Same parameter count as ``fashion_cnn`` (dropout has no weights).

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: Number of output classes.

    Returns:
        The untrained model.
    """
    return _model(input_shape, "fashion_cnn_dropout", lambda x: _fashion_body(x, num_classes, True))


def _vgg_like_bn(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The project report *Image Classification Using Convolutional Neural Network CNN*
    (CIFAR-10): VGG-like blocks with batch norm and dropout.

    Blocks of 3×3 same convs, each conv → ReLU → BatchNorm in the report's order: 32,32 |
    64,64 | 128,128,128 | 256,256,256, each block closed by a 2×2 max-pool and dropout
    0.2/0.3/0.4/0.5; then Flatten, Dense 300, Dense 100, softmax. As in the report, the two
    hidden Dense layers have no activation (so together they are one linear map); kept as
    published so the lab reproduces the report. 2,253,906 parameters (2,251,218 trainable,
    2,688 non-trainable batch-norm statistics) on 32×32×3 with 10 classes. The four
    unpadded pools need images of at least 16×16. Batch norm uses BN_MOMENTUM (0.9), not
    Keras' 0.99 of the report: no weight changes, the running statistics just settle sooner.

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: Number of output classes.

    Returns:
        The untrained model.
    """
    blocks = (((32, 32), 0.2), ((64, 64), 0.3), ((128,) * 3, 0.4), ((256,) * 3, 0.5))

    def body(x):
        for block, (widths, rate) in enumerate(blocks, start=1):
            for i, filters in enumerate(widths, start=1):
                x = _conv(x, filters, 3, f"conv{block}_{i}")
                x = keras.layers.ReLU(name=f"relu{block}_{i}")(x)
                x = _batch_norm(name=f"bn{block}_{i}")(x)
            x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
            x = keras.layers.Dropout(rate, name=f"dropout{block}")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(300, name="dense1")(x)
        x = keras.layers.Dense(100, name="dense2")(x)
        return _predictions(x, num_classes)

    return _model(input_shape, "vgg_like_bn", body)


# --- Zoo builders: the classic papers of *Convolutional Networks for image recognition* ---
def _lenet5(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """LeNet-5 (LeCun et al. 1998), full size: it is already tiny (~62k parameters).

    C1: 6 filters 5×5 (same padding, standing in for the paper's 2-pixel border around
    28×28 digits) → 2×2 average pool → C3: 16 filters 5×5 valid → 2×2 average pool →
    Dense 120 → Dense 84 → softmax, all tanh, as in 1998 (plain average pooling replaces
    the paper's trainable subsampling, and a softmax its RBF output layer). Needs images of
    at least 12×12 so the unpadded C3 and the second pool keep at least one pixel.

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: Number of output classes.

    Returns:
        The untrained model.
    """

    def body(x):
        x = _conv(x, 6, 5, "conv1", activation="tanh")
        x = keras.layers.AveragePooling2D(2, name="pool1")(x)
        x = keras.layers.Conv2D(16, 5, activation="tanh", name="conv2")(x)
        x = keras.layers.AveragePooling2D(2, name="pool2")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(120, activation="tanh", name="dense1")(x)
        x = keras.layers.Dense(84, activation="tanh", name="dense2")(x)
        return _predictions(x, num_classes)

    return _model(input_shape, "lenet5", body)


def _vgg(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """VGG (Simonyan & Zisserman 2015), width-reduced for 28-32 pixel images.

    Three stages of two 3×3 same convs (32, 64, 128 filters, ReLU) each closed by a 2×2
    max-pool, then Dense 256 + dropout 0.5 and softmax. VGG-16 has five stages of 64-512
    filters and two 4096-unit dense layers (138M parameters); on 28×28 images five halvings
    would leave nothing. These widths cost about 75 s per 60,000-image epoch at batch 128
    on two cores (0.58M parameters on 28×28×1, 0.81M on 32×32×3).
    No batch norm, as in the paper (``vgg_like_bn`` is the batch-norm version).

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: Number of output classes.

    Returns:
        The untrained model.
    """

    def body(x):
        for stage, filters in enumerate((32, 64, 128), start=1):
            x = _conv(x, filters, 3, f"conv{stage}_1", activation="relu")
            x = _conv(x, filters, 3, f"conv{stage}_2", activation="relu")
            x = keras.layers.MaxPooling2D(2, name=f"pool{stage}")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(256, activation="relu", name="dense1")(x)
        x = keras.layers.Dropout(0.5, name="dropout1")(x)
        return _predictions(x, num_classes)

    return _model(input_shape, "vgg", body)


def _allcnn(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """All-CNN-C (Springenberg et al. 2015) at one third of the width: 32/64 filters.

    3×3 convs only (ReLU, same padding): 32, 32, 32 with stride 2 (in place of a max-pool),
    dropout; 64, 64, 64 with stride 2, dropout; 64 3×3, 64 1×1; global average pooling.
    The paper ends with a 1×1 conv to the class count before the average; the final Dense
    here applies the same linear map after the average (they commute), so there is still
    no hidden dense layer. The 3×3 conv7 uses same padding (the paper's is unpadded) so any
    image from 8×8 works. The paper's 96/192 filters would cost nine times the compute;
    these cost about 70 s per 60,000-image epoch at batch 128 on two cores (0.15M
    parameters). Dropout is 0.3 rather than 0.5 because the narrower net has less to spare.
    No batch norm, as in the paper, so it starts slower than the batch-norm models.

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: Number of output classes.

    Returns:
        The untrained model.
    """

    def body(x):
        layer = 0
        for stage, filters in enumerate((32, 64), start=1):
            for stride in (1, 1, 2):
                layer += 1
                x = _he_conv(x, filters, 3, f"conv{layer}", stride, activation="relu")
            x = keras.layers.Dropout(0.3, name=f"dropout{stage}")(x)
        x = _he_conv(x, 64, 3, "conv7", activation="relu")
        x = _he_conv(x, 64, 1, "conv8", activation="relu")
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        return _predictions(x, num_classes)

    return _model(input_shape, "allcnn", body)


def _residual_block(x, filters: int, stride: int, name: str):
    """He et al.'s basic block: conv-BN-ReLU-conv-BN, plus the input, then ReLU.

    The shortcut becomes a 1×1 strided conv + BN (projection) when the shape changes.
    Convs before a batch norm have no bias: the norm's beta already shifts the output.
    """
    y = _he_conv(x, filters, 3, f"{name}_conv1", stride, use_bias=False)
    y = _batch_norm(name=f"{name}_bn1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = _he_conv(y, filters, 3, f"{name}_conv2", use_bias=False)
    y = _batch_norm(name=f"{name}_bn2")(y)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _he_conv(x, filters, 1, f"{name}_shortcut_conv", stride, use_bias=False)
        shortcut = _batch_norm(name=f"{name}_shortcut_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _resnet(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """ResNet-20 (He et al. 2015, the CIFAR-10 variant): depth 6n+2 with n=3, widths 16/32/64.

    Conv 16 → BN → ReLU, then three stages of three basic blocks (16, 32, 64 filters; the
    2nd and 3rd stages start with stride 2 and a projection shortcut), global average pooling
    and softmax: 0.27M parameters. This is the paper's own smallest CIFAR net; its ImageNet
    ResNets assume 224-pixel images. Twenty layers are enough to show why shortcuts matter
    while an epoch of 60,000 images at batch 128 stays near 2.7 minutes on two cores
    (the most expensive of the classic papers' models; a CPU-time estimate).

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: Number of output classes.

    Returns:
        The untrained model.
    """

    def body(x):
        x = _he_conv(x, 16, 3, "conv1", use_bias=False)
        x = _batch_norm(name="bn1")(x)
        x = keras.layers.ReLU(name="relu1")(x)
        for stage, filters in enumerate((16, 32, 64), start=1):
            for block in range(1, 4):
                stride = 2 if stage > 1 and block == 1 else 1
                x = _residual_block(x, filters, stride, f"stage{stage}_block{block}")
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        return _predictions(x, num_classes)

    return _model(input_shape, "resnet", body)


def _wide_block(x, filters: int, stride: int, name: str):
    """Zagoruyko & Komodakis' pre-activation block: BN-ReLU-conv, BN-ReLU-conv, plus input.

    When the shape changes, the shortcut is a 1×1 strided conv of the pre-activated input.
    """
    pre = _batch_norm(name=f"{name}_bn1")(x)
    pre = keras.layers.ReLU(name=f"{name}_relu1")(pre)
    y = _he_conv(pre, filters, 3, f"{name}_conv1", stride, use_bias=False)
    y = _batch_norm(name=f"{name}_bn2")(y)
    y = keras.layers.ReLU(name=f"{name}_relu2")(y)
    y = _he_conv(y, filters, 3, f"{name}_conv2", use_bias=False)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _he_conv(pre, filters, 1, f"{name}_shortcut_conv", stride, use_bias=False)
    return keras.layers.Add(name=f"{name}_add")([y, shortcut])


def _wideresnet(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """Wide ResNet WRN-10-2 (Zagoruyko & Komodakis 2017): depth 6n+4 with n=1, k=2.

    Conv 16, then three stages of one pre-activation wide block (32, 64, 128 filters;
    stride 1, 2, 2; 1×1 projection shortcuts since every stage changes the width), a final
    BN → ReLU, global average pooling and softmax: 0.30M parameters. The paper's
    WRN-28-10 (36M parameters) would take hours per epoch on two cores and WRN-16-2 about
    five minutes; WRN-10-2 keeps the idea (fewer, wider blocks than ``resnet``) at about
    2.5 minutes per 60,000-image epoch at batch 128, a little under ResNet-20.

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: Number of output classes.

    Returns:
        The untrained model.
    """

    def body(x):
        x = _he_conv(x, 16, 3, "conv1", use_bias=False)
        for stage, base in enumerate((16, 32, 64), start=1):
            for block in range(1, WRN_BLOCKS_PER_STAGE + 1):
                stride = 2 if stage > 1 and block == 1 else 1
                x = _wide_block(x, base * WRN_WIDEN, stride, f"stage{stage}_block{block}")
        x = _batch_norm(name="bn_final")(x)
        x = keras.layers.ReLU(name="relu_final")(x)
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        return _predictions(x, num_classes)

    return _model(input_shape, "wideresnet", body)


# --- Custom layer lists ---------------------------------------------------------------------
def _is_missing(value: Any) -> bool:
    """None and NaN (an empty cell of an edited table) both mean "use the default"."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _whole_number(value: Any, key: str, bounds: tuple[int, int], where: str) -> int:
    """Checks an integer setting; integral floats (32.0 from a table) are accepted."""
    low, high = bounds
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not is_number or not float(value).is_integer():
        raise LayerSpecError(
            f"{where}: {key} must be a whole number from {low} to {high}, got {value!r}."
        )
    if not low <= value <= high:
        raise LayerSpecError(f"{where}: {key} must be from {low} to {high}, got {int(value)}.")
    return int(value)


def _choice(value: Any, key: str, options: Sequence[str], where: str) -> str:
    """Checks a text setting against its options, ignoring case and surrounding spaces."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in options:
        raise LayerSpecError(f"{where}: {key} must be one of {', '.join(options)}, got {value!r}.")
    return text


def _dropout_rate(value: Any, where: str) -> float:
    """Checks a dropout rate: 0 keeps everything, 1 would drop everything."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not is_number or not 0 <= value < 1:
        raise LayerSpecError(
            f"{where}: rate must be a number from 0 to below 1 (the share of values "
            f"dropped), e.g. 0.25, got {value!r}."
        )
    return float(value)


def _layer_type(raw: Any, number: int) -> str:
    """Reads and checks the "type" of one layer dict."""
    where = f"Layer {number}"
    if not isinstance(raw, dict):
        raise LayerSpecError(
            f"{where}: each layer must be a dict such as {{'type': 'conv', 'filters': 32}}, "
            f"got {raw!r}."
        )
    kind = raw.get("type")
    kind = kind.strip().lower() if isinstance(kind, str) else kind
    if kind not in LAYER_DEFAULTS:
        missing = "has no type" if _is_missing(kind) else f"has unknown type {raw['type']!r}"
        raise LayerSpecError(f"{where} {missing}. Choose one of: {', '.join(LAYER_TYPES)}.")
    return kind


def _normalize_layer(raw: Any, number: int) -> dict[str, Any]:
    """Returns the layer dict with defaults filled in and every value checked.

    Keys that belong to other layer types are ignored (a table row keeps every column),
    but keys no layer type knows are reported, since they are almost always typos.
    """
    kind = _layer_type(raw, number)
    where = f"Layer {number} ({kind})"
    unknown = sorted(str(key) for key in raw if key not in KNOWN_KEYS)
    if unknown:
        allowed = ", ".join(LAYER_DEFAULTS[kind]) or "no settings besides type"
        raise LayerSpecError(f"{where}: unknown setting {unknown[0]!r}. It takes: {allowed}.")
    spec: dict[str, Any] = {"type": kind}
    for key, default in LAYER_DEFAULTS[kind].items():
        value = raw.get(key)
        spec[key] = default if _is_missing(value) else value
    return _check_settings(spec, where)


def _check_settings(spec: dict[str, Any], where: str) -> dict[str, Any]:
    """Checks every setting of a layer dict whose defaults are filled in; returns it cleaned."""
    kind = spec["type"]
    if kind == "conv":
        spec["filters"] = _whole_number(spec["filters"], "filters", FILTERS_RANGE, where)
        spec["kernel"] = _whole_number(spec["kernel"], "kernel", KERNEL_RANGE, where)
        spec["stride"] = _whole_number(spec["stride"], "stride", STRIDE_RANGE, where)
    elif kind in ("maxpool", "avgpool"):
        spec["size"] = _whole_number(spec["size"], "size", KERNEL_RANGE, where)
        stride = spec["size"] if spec["stride"] is None else spec["stride"]
        spec["stride"] = _whole_number(stride, "stride", KERNEL_RANGE, where)
    elif kind == "dense":
        spec["units"] = _whole_number(spec["units"], "units", UNITS_RANGE, where)
    elif kind == "dropout":
        spec["rate"] = _dropout_rate(spec["rate"], where)
    if "padding" in spec:
        spec["padding"] = _choice(spec["padding"], "padding", PADDINGS, where)
    if "activation" in spec:
        spec["activation"] = _choice(spec["activation"], "activation", ACTIVATIONS, where)
    return spec


def _layer_label(spec: dict[str, Any]) -> str:
    """A short description of a normalized layer, e.g. "conv 32 3×3" or "max-pool 2×2"."""
    kind = spec["type"]
    if kind == "conv":
        label = f"conv {spec['filters']} {spec['kernel']}×{spec['kernel']}"
        return label + (f" stride {spec['stride']}" if spec["stride"] > 1 else "")
    if kind in ("maxpool", "avgpool"):
        label = f"{kind[:3]}-pool {spec['size']}×{spec['size']}"
        return label + (f" stride {spec['stride']}" if spec["stride"] != spec["size"] else "")
    if kind == "dense" and spec["activation"] == "softmax":
        return f"softmax output {spec['units']}"
    if kind == "dense":
        return f"dense {spec['units']}"
    if kind == "dropout":
        return f"dropout {spec['rate']:g}"
    return {"batchnorm": "batch-norm", "globalavgpool": "global-avg-pool"}.get(kind, kind)


def _windowed_shape(spec: dict[str, Any], shape: tuple[int, ...], where: str):
    """Output (height, width) of a conv or pool, or a LayerSpecError if nothing is left."""
    height, width = shape[:2]
    window = spec["kernel"] if spec["type"] == "conv" else spec["size"]
    out = tuple(_window_output(n, window, spec["stride"], spec["padding"]) for n in shape[:2])
    if min(out) >= 1:
        return out
    if spec["type"] != "conv" and (height, width) == (1, 1):
        raise LayerSpecError(
            f"{where}: its input is only 1×1, so there is nothing left to pool. "
            "Remove this layer or pool less earlier."
        )
    raise LayerSpecError(
        f"{where}: its input is only {height}×{width}, smaller than its {window}×{window} "
        "window, so its output would be empty. Use padding 'same', a smaller window, "
        "or shrink the image less in earlier layers."
    )


def _layer_output(spec: dict[str, Any], shape: tuple[int, ...], where: str):
    """Output shape and parameter count of one normalized layer on an input shape."""
    kind = spec["type"]
    if kind == "conv":
        height, width = _windowed_shape(spec, shape, where)
        params = spec["kernel"] ** 2 * shape[-1] * spec["filters"] + spec["filters"]
        return (height, width, spec["filters"]), params
    if kind in ("maxpool", "avgpool"):
        return (*_windowed_shape(spec, shape, where), shape[-1]), 0
    if kind == "batchnorm":
        # gamma and beta are trained; the moving mean and variance are not, but still count.
        return shape, 4 * shape[-1]
    if kind == "flatten":
        return (math.prod(shape),), 0
    if kind == "globalavgpool":
        return (shape[-1],), 0
    if kind == "dense":
        return (spec["units"],), shape[-1] * spec["units"] + spec["units"]
    return shape, 0  # dropout


def _check_not_flat(spec: dict[str, Any], shape: tuple[int, ...], where: str, flat_at: str):
    """A conv or pool needs an image grid; after flatten/dense/global pooling there is none."""
    if spec["type"] in SPATIAL_TYPES and len(shape) == 1:
        raise LayerSpecError(
            f"{where}: it comes after {flat_at}, which turned the image into a flat list of "
            f"{shape[0]} numbers, so there is no grid left to slide over. Move this layer "
            "before it, or remove it."
        )


def _check_param_budget(rows: list[LayerShape]) -> None:
    """Rejects stacks over MAX_CUSTOM_PARAMS, naming the layer that holds the most."""
    total = sum(row.params for row in rows)
    if total <= MAX_CUSTOM_PARAMS:
        return
    biggest = max(rows, key=lambda row: row.params)
    over = f"so the model would have {total:,}, more than the {MAX_CUSTOM_PARAMS:,} allowed"
    if biggest.auto:  # only the output layer has parameters among the added layers
        inputs = biggest.params // biggest.output_shape[0] - 1
        raise LayerSpecError(
            f"The output layer has {biggest.params:,} parameters because it receives "
            f"{inputs:,} values, {over}. Pool, stride or add a globalavgpool before the end."
        )
    raise LayerSpecError(
        f"Layer {biggest.number} ({biggest.label}) has {biggest.params:,} parameters, "
        f"{over}. Use fewer filters or units, or pool / stride more before it."
    )


def _plan_row(
    spec: dict[str, Any], number: int | None, name: str, shape: tuple[int, ...], where: str
) -> LayerShape:
    """Plans one layer: its label, output shape and parameter count on ``shape``."""
    out_shape, params = _layer_output(spec, shape, where)
    return LayerShape(number, name, spec["type"], _layer_label(spec), out_shape, params, spec)


def _plan_layers(
    layers: Any, input_shape: tuple[int, int, int], num_classes: int | None
) -> list[LayerShape]:
    """Walks the layer list with shape arithmetic only; see ``validate_layers``."""
    if not isinstance(layers, (list, tuple)):
        raise LayerSpecError(
            f"The layer list must be a list of dicts, got {type(layers).__name__}."
        )
    if len(layers) > MAX_CUSTOM_LAYERS:
        raise LayerSpecError(
            f"The layer list has {len(layers)} layers; at most {MAX_CUSTOM_LAYERS} are allowed."
        )
    counts: Counter[str] = Counter()
    rows: list[LayerShape] = []
    shape: tuple[int, ...] = tuple(input_shape)
    flat_at = ""

    def next_name(kind: str) -> str:
        counts[kind] += 1
        return f"{NAME_PREFIXES[kind]}{counts[kind]}"

    for number, raw in enumerate(layers, start=1):
        spec = _normalize_layer(raw, number)
        where = f"Layer {number} ({_layer_label(spec)})"
        _check_not_flat(spec, shape, where, flat_at)
        if spec["type"] == "dense" and len(shape) == 3:
            # Keras' Dense would act on the channel axis alone; learners expect a flat input.
            rows.append(_plan_row({"type": "flatten"}, None, next_name("flatten"), shape, ""))
            shape = rows[-1].output_shape
        rows.append(_plan_row(spec, number, next_name(spec["type"]), shape, where))
        shape = rows[-1].output_shape
        if len(shape) == 1 and not flat_at:
            flat_at = f"layer {number} ({rows[-1].label})"
    if len(shape) == 3:
        rows.append(_plan_row({"type": "flatten"}, None, next_name("flatten"), shape, ""))
        shape = rows[-1].output_shape
    if num_classes is not None:
        output = {"type": "dense", "units": num_classes, "activation": "softmax"}
        rows.append(_plan_row(output, None, PREDICTIONS, shape, "the output layer"))
    _check_param_budget(rows)
    return rows


def validate_layers(
    layers: list[dict[str, Any]],
    input_shape: tuple[int, int, int],
    num_classes: int | None = None,
) -> list[LayerShape]:
    """Computes every layer's output shape and parameters, without building Keras layers.

    Pure arithmetic, so a page can call it on every edit of the layer table. The result
    lists the layers the builder will create, in order: the user's layers, a Flatten
    inserted automatically before a Dense or at the end when the data is still an image,
    and, when ``num_classes`` is given, the softmax output layer "predictions".

    Layer dicts (JSON-ready; omitted, None or NaN values take the ``LAYER_DEFAULTS``)::

        {"type": "conv", "filters": 32, "kernel": 3, "stride": 1, "padding": "same",
         "activation": "relu"}        # activation: relu, linear, tanh, sigmoid, leaky_relu
        {"type": "maxpool" | "avgpool", "size": 2, "stride": 2, "padding": "valid"}
        {"type": "batchnorm"}  {"type": "dropout", "rate": 0.25}  {"type": "flatten"}
        {"type": "globalavgpool"}  {"type": "dense", "units": 128, "activation": "relu"}

    A pool's stride defaults to its size. Ranges: filters 1-1024, kernel and pool size
    1-11, conv stride 1-4, units 1-4096, rate in [0, 1); at most 64 layers and 20 million
    parameters.

    Args:
        layers: The layer dicts, input to output.
        input_shape: (height, width, channels) of the images.
        num_classes: Number of classes; when given, the output layer is included (and
            counts towards the parameter limit).

    Returns:
        One ``LayerShape`` per layer the model will have after its input.

    Raises:
        LayerSpecError: A layer is invalid; the message names the layer and what to fix.
        ModelError: The input shape or class count is invalid.
    """
    shape = _check_input_shape(input_shape, MODELS[CUSTOM])
    if num_classes is not None:
        _check_num_classes(num_classes)
    return _plan_layers(layers, shape, num_classes)


def _keras_layer(row: LayerShape) -> keras.layers.Layer:
    """The Keras layer for one planned row."""
    spec, name = row.spec, row.name
    kind = spec["type"]
    if kind == "conv":
        return keras.layers.Conv2D(
            spec["filters"],
            spec["kernel"],
            strides=spec["stride"],
            padding=spec["padding"],
            activation=spec["activation"],
            name=name,
        )
    if kind in ("maxpool", "avgpool"):
        pool = keras.layers.MaxPooling2D if kind == "maxpool" else keras.layers.AveragePooling2D
        return pool(spec["size"], strides=spec["stride"], padding=spec["padding"], name=name)
    if kind == "dense":
        # The output layer stays float32 under mixed precision (see _predictions).
        dtype = "float32" if name == PREDICTIONS else None
        return keras.layers.Dense(
            spec["units"], activation=spec["activation"], dtype=dtype, name=name
        )
    if kind == "dropout":
        return keras.layers.Dropout(spec["rate"], name=name)
    simple = {
        "batchnorm": _batch_norm,
        "flatten": keras.layers.Flatten,
        "globalavgpool": keras.layers.GlobalAveragePooling2D,
    }
    return simple[kind](name=name)


def _custom(
    input_shape: tuple[int, int, int], num_classes: int, layers: list[dict[str, Any]]
) -> keras.Model:
    """Builds a model from a layer list (see ``validate_layers`` for the format).

    Args:
        input_shape: (height, width, channels) of the images.
        num_classes: Number of output classes.
        layers: The layer dicts; a Flatten and the softmax output are added as needed.

    Returns:
        The untrained model; its layers match ``validate_layers`` one to one.

    Raises:
        LayerSpecError: The layer list is invalid.
    """
    rows = _plan_layers(layers, input_shape, num_classes)

    def body(x):
        for row in rows:
            x = _keras_layer(row)(x)
        return x

    return _model(input_shape, CUSTOM, body)


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


def _check_input_shape(input_shape: Any, info: ModelInfo) -> tuple[int, int, int]:
    """Checks (height, width, channels) against the model's limits; returns it as a tuple."""
    example = "e.g. (28, 28, 1) for MNIST or (32, 32, 3) for CIFAR-10"
    dims = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else ()
    if len(dims) != 3 or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1 for d in dims
    ):
        raise ModelError(
            f"input_shape must be three positive whole numbers (height, width, channels), "
            f"{example}; got {input_shape!r}."
        )
    height, width, channels = (int(d) for d in dims)
    if channels > MAX_CHANNELS:
        raise ModelError(
            f"input_shape has {channels} channels, but images have 1 (grey), 3 (colour) "
            f"or {MAX_CHANNELS} (with alpha). Put the channels last: (height, width, channels)."
        )
    low, high = info.min_input_side, MAX_INPUT_SIDE
    if not (low <= height <= high and low <= width <= high):
        raise ModelError(
            f"'{info.key}' needs images from {low}×{low} to {high}×{high} pixels, got "
            f"{height}×{width}. Resize the images, or choose another model (smaller images "
            "run out of pixels in its pooling layers)."
        )
    return height, width, channels


def _check_num_classes(num_classes: Any) -> None:
    """A classifier needs at least two classes to choose between."""
    if (
        not isinstance(num_classes, numbers.Integral)
        or isinstance(num_classes, bool)
        or not 2 <= num_classes <= MAX_CLASSES
    ):
        raise ModelError(
            f"num_classes must be a whole number from 2 to {MAX_CLASSES} (one output per "
            f"class), got {num_classes!r}."
        )


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
    shape = _check_input_shape(input_shape, info)
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


# --- Summaries and layer lookup -------------------------------------------------------------
def _count(weights: list) -> int:
    return sum(math.prod(w.shape) for w in weights)


def summarize(model: keras.Model) -> ModelSummary:
    """Describes a built model as data: its layers, their output shapes and parameters.

    Args:
        model: A built functional model (as from ``build_model`` or a loaded .keras file).

    Returns:
        One row per layer (the input layer first) and the parameter totals, which equal
        Keras' own ``model.count_params()`` and ``model.summary()``.
    """
    rows = [
        LayerRow(
            name=layer.name,
            type=type(layer).__name__,
            output_shape=tuple(layer.output.shape[1:]),
            params=layer.count_params(),
        )
        for layer in model.layers
    ]
    return ModelSummary(
        name=model.name,
        rows=rows,
        total_params=model.count_params(),
        trainable_params=_count(model.trainable_weights),
        non_trainable_params=_count(model.non_trainable_weights),
    )


def conv_layer_names(model: keras.Model) -> list[str]:
    """Names of the model's Conv2D layers, input to output (the last one suits Grad-CAM)."""
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def tappable_layer_names(model: keras.Model) -> list[str]:
    """Names of the conv and pooling layers whose outputs are feature maps, input to output."""
    kinds = (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    return [
        layer.name
        for layer in model.layers
        if isinstance(layer, kinds) and len(layer.output.shape) == 4
    ]


def training_flops(model: keras.Model) -> tuple[int, int]:
    """Floating-point operations per image of the convolutions and dense layers.

    A multiply-add counts as two operations. Training costs the forward pass, the gradient
    with respect to each layer's weights (as much again) and the gradient with respect to
    its input (as much again, except for the first weighted layer, whose input is the
    image). Biases, activations, pooling and the optimizer are left out: they are a few
    percent of the total for these models.

    Args:
        model: A built functional model.

    Returns:
        (forward FLOPs, training FLOPs) for one image.
    """
    forward = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense):
            kernel = layer.kernel.shape  # conv: (kh, kw, cin / groups, cout); dense: (in, out)
            macs = math.prod(layer.output.shape[1:]) * math.prod(kernel[:-1])
            forward.append(2 * macs)
    if not forward:
        return 0, 0
    return sum(forward), 3 * sum(forward) - forward[0]
