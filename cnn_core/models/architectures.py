"""The networks of the source documents and of the classic papers, as Keras functional builders."""

from __future__ import annotations

from collections.abc import Callable

import keras

# Batch-norm running statistics follow each batch with weight 0.1 (PyTorch's default)
# instead of Keras' 0.01: with 0.01 they need ~300 batches to settle,
# so a one-epoch run on the 10,000-image MNIST subset would validate with stale statistics.
BN_MOMENTUM = 0.9
# Wide ResNet size (see _wideresnet): WRN-10-2, depth 6n+4 with n=1, widening k=2.
WRN_BLOCKS_PER_STAGE = 1  # depth 6n+4 = 10
WRN_WIDEN = 2  # k: stage widths 16k, 32k, 64k
PREDICTIONS = "predictions"


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


# --- Zoo builders: the networks of the source documents (cnn_core.models.sources) -----------------
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
