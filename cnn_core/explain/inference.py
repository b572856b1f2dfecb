"""Fast predictions for the canvas and for whole test sets.

`model.predict` costs ~49 ms a call on this CPU (it builds a dataset pipeline every
time), a compiled forward pass ~1 ms. `Predictor` traces the model once into a
`tf.function` with a fixed input signature, so every later call, from any Streamlit
session's thread, reuses the same graph.

Thread safety: calling a traced function on a model whose weights nobody changes is
safe from many threads at once. A Predictor is therefore meant for read-only models
(e.g. shared with `st.cache_resource`): never `fit`, compile or load weights into a
model a Predictor serves; build a new Predictor for new weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from cnn_core.models import test_time

DEFAULT_BATCH_SIZE = 512  # large enough to amortise the call, small enough for 2 cores' RAM
RANGE_SLACK = 1e-6  # float inputs may overshoot [0, 1] by rounding, not by more


class Predictor:
    """A compiled, read-only forward pass of a single-input, single-output Keras model.

    Args:
        model: a built Keras model taking (batch, H, W, C) images in [0, 1].
        from_logits: the model outputs logits; apply a softmax to get probabilities.
        average_flips: average the probabilities of each image and its mirror image, for a
            model trained with random flips (see `cnn_core.models.test_time`).

    Raises:
        ValueError: the model is not built, or has several inputs or outputs.
    """

    def __init__(
        self, model: keras.Model, *, from_logits: bool = False, average_flips: bool = False
    ) -> None:
        self.model = model
        self.average_flips = average_flips
        self.image_shape = _image_shape_of(model)
        self.num_classes = int(_single(model.output_shape, "output")[-1])
        self.from_logits = from_logits
        signature = [tf.TensorSpec((None, *self.image_shape), tf.float32)]
        forward = tf.function(self._forward, input_signature=signature, reduce_retracing=True)
        # Trace now, once, in this thread: later calls from any thread reuse the graph
        # and the first canvas prediction is not the slow one.
        self._compiled = forward.get_concrete_function()

    def _forward(self, images: tf.Tensor) -> tf.Tensor:
        return test_time.over_flips(self._probabilities, images, average_flips=self.average_flips)

    def _probabilities(self, images: tf.Tensor) -> tf.Tensor:
        # float32 out even for a mixed-precision (bfloat16) model, so callers get one dtype.
        outputs = tf.cast(self.model(images, training=False), tf.float32)
        return tf.nn.softmax(outputs, axis=-1) if self.from_logits else outputs

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities for one image or a batch.

        Args:
            x: (H, W, C) or (N, H, W, C), float in [0, 1]; uint8 is scaled by 1/255.

        Returns:
            (N, classes) float32 probabilities; N is 1 for a single image.

        Raises:
            ValueError: the shape does not match the model's input, or float values are
                outside [0, 1].
        """
        batch = as_model_batch(x, self.image_shape)
        if batch.shape[0] == 0:
            return np.zeros((0, self.num_classes), np.float32)
        return self._compiled(tf.constant(batch)).numpy()

    @staticmethod
    def top_k(probs: np.ndarray, k: int, class_names: Sequence[str]) -> list[tuple[str, float]]:
        """The k most probable classes; see the module-level `top_k`."""
        return top_k(probs, k, class_names)


def _single(shape_or_list: object, what: str) -> tuple:
    """The one shape of a single-input/output model; several shapes are an error."""
    if isinstance(shape_or_list, list | dict) or (
        isinstance(shape_or_list, tuple) and shape_or_list and isinstance(shape_or_list[0], tuple)
    ):
        raise ValueError(f"Predictor needs a model with one {what}; this one has several.")
    return tuple(shape_or_list)


def _image_shape_of(model: keras.Model) -> tuple[int | None, ...]:
    try:
        input_shape = model.input_shape
    except (AttributeError, ValueError) as exc:
        raise ValueError(
            "Predictor needs a built model: call it once on a batch or build it with "
            "keras.Input first."
        ) from exc
    shape = _single(input_shape, "input")
    if len(shape) != 4:
        raise ValueError(
            f"Predictor needs an image model with input (batch, H, W, C); this one takes {shape}."
        )
    return tuple(shape[1:])


def as_model_batch(x: np.ndarray, image_shape: Sequence[int | None]) -> np.ndarray:
    """Check images against a model's input and return a float32 batch in [0, 1].

    Args:
        x: (H, W, C) or (N, H, W, C); uint8 (or other integers, 0..255) is scaled by
            1/255, floats must already be in [0, 1].
        image_shape: the model's (H, W, C); None matches any size.

    Returns:
        (N, H, W, C) float32.

    Raises:
        ValueError: the shape does not match, or the values are out of range.
    """
    array = np.asarray(x)
    batch = array[np.newaxis] if array.ndim == len(image_shape) else array
    if batch.ndim != len(image_shape) + 1 or not _shape_matches(batch.shape[1:], image_shape):
        expected = _shape_text(image_shape)
        raise ValueError(
            f"The model expects images of shape {expected} (or a batch (N, {expected[1:]}), "
            f"but got an array of shape {array.shape}."
        )
    if np.issubdtype(batch.dtype, np.integer) or batch.dtype == np.bool_:
        return _scale_integers(batch)
    if not np.issubdtype(batch.dtype, np.floating):
        raise ValueError(f"Images must be numbers (uint8 or float in [0, 1]); got {batch.dtype}.")
    batch = batch.astype(np.float32, copy=False)
    _check_unit_range(batch)
    return batch


def _shape_matches(given: tuple[int, ...], expected: Sequence[int | None]) -> bool:
    return all(want is None or want == got for got, want in zip(given, expected, strict=True))


def _shape_text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("any" if dim is None else str(dim) for dim in shape) + ")"


def _scale_integers(batch: np.ndarray) -> np.ndarray:
    if batch.dtype != np.uint8 and batch.size and (batch.min() < 0 or batch.max() > 255):
        raise ValueError(
            f"Integer images must hold 0..255; got {batch.min()}..{batch.max()}. "
            "Pass uint8 pixels or floats in [0, 1]."
        )
    # Multiply rather than divide: the same float32 op Keras' Rescaling(1/255) does.
    return batch.astype(np.float32) * np.float32(1 / 255)


def _check_unit_range(batch: np.ndarray) -> None:
    if batch.size == 0:
        return
    low, high = float(batch.min()), float(batch.max())
    # Written so that NaN fails too.
    if not (low >= -RANGE_SLACK and high <= 1 + RANGE_SLACK):
        raise ValueError(
            f"Float images must hold values in [0, 1]; got {low:g}..{high:g}. "
            "If these are 0..255 pixels, divide by 255 or pass them as uint8."
        )


def top_k(probs: np.ndarray, k: int, class_names: Sequence[str]) -> list[tuple[str, float]]:
    """The k most probable classes, most probable first.

    Args:
        probs: (classes,) or (1, classes) probabilities of one image.
        k: how many to return; more than the number of classes returns them all.
        class_names: one name per class, in the model's output order.

    Returns:
        [(class name, probability), ...] sorted by probability, ties in class order.

    Raises:
        ValueError: `probs` is not one image's probabilities, the names do not match the
            classes, or k < 1.
    """
    scores = np.asarray(probs)
    if scores.ndim == 2 and scores.shape[0] == 1:
        scores = scores[0]
    if scores.ndim != 1:
        raise ValueError(f"top_k needs one image's probabilities (classes,); got {scores.shape}.")
    if len(class_names) != scores.shape[0]:
        raise ValueError(
            f"There are {scores.shape[0]} probabilities but {len(class_names)} class names."
        )
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}.")
    order = np.argsort(-scores, kind="stable")[:k]
    return [(class_names[i], float(scores[i])) for i in order]


def predict_in_batches(
    model_or_predictor: keras.Model | Predictor,
    x: np.ndarray,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """Probabilities for many images, a batch at a time (e.g. 10,000 test images).

    Args:
        model_or_predictor: a Keras model (wrapped in a Predictor here) or a Predictor.
        x: (N, H, W, C) uint8 (scaled by 1/255, batch by batch, so no float copy of the
            whole set is made) or float in [0, 1].
        batch_size: images per forward pass.

    Returns:
        (N, classes) float32 probabilities.

    Raises:
        ValueError: batch_size < 1, or the images do not fit the model (see
            `Predictor.predict_proba`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}.")
    predictor = (
        model_or_predictor
        if isinstance(model_or_predictor, Predictor)
        else Predictor(model_or_predictor)
    )
    images = np.asarray(x)
    if images.ndim == len(predictor.image_shape):
        images = images[np.newaxis]
    as_model_batch(images[:0], predictor.image_shape)  # fail on the shape before any work
    chunks = [
        predictor.predict_proba(images[start : start + batch_size])
        for start in range(0, len(images), batch_size)
    ]
    if not chunks:
        return np.zeros((0, predictor.num_classes), np.float32)
    return np.concatenate(chunks)


# Where an answer stands between "sure" and "guessing", by its top probability; an answer
# whose two best classes are this close is a toss-up whatever its top.
SURE_LEVELS = ((0.95, "very sure"), (0.8, "fairly sure"), (0.5, "unsure"), (0.0, "very unsure"))
TOSS_UP_MARGIN = 0.2


def certainty_words(probs: np.ndarray) -> str:
    """How sure one answer is, in words: "very sure", "fairly sure", "unsure", "very unsure",
    or "torn" when the two most probable classes are within TOSS_UP_MARGIN.

    Args:
        probs: (classes,) or (1, classes) probabilities of one image, at least 2 classes.

    Returns:
        The words.
    """
    scores = np.sort(np.ravel(probs))[::-1]
    if scores.size >= 2 and scores[0] - scores[1] < TOSS_UP_MARGIN:
        return "torn"
    return next(words for level, words in SURE_LEVELS if scores[0] >= level)


def certainty_sentence(probs: np.ndarray, class_names: Sequence[str]) -> str:
    """One sentence for a learner: the model must pick a class, and how sure it is.

    A classifier's softmax always sums to 1 over its own classes, so it answers even for
    a picture of none of them; the sentence says so and gives the two best classes.

    Args:
        probs: (classes,) or (1, classes) probabilities of one image.
        class_names: one name per class, in the model's output order.

    Returns:
        E.g. "The model must answer with one of its 10 classes, even for a picture of none
        of them. Here it is fairly sure: 7 at 91.0%, then 1 at 6.2%."

    Raises:
        ValueError: as `top_k`.
    """
    ranked = top_k(probs, 2, class_names)
    words = certainty_words(probs)
    lead = f"The model must answer with one of its {len(class_names)} classes, even for a "
    lead += "picture of none of them."
    if len(ranked) < 2:
        return f"{lead} Here it answers {ranked[0][0]} at {ranked[0][1]:.1%}."
    (best, p_best), (second, p_second) = ranked
    state = f"torn between {best} and {second}" if words == "torn" else words
    return f"{lead} Here it is {state}: {best} at {p_best:.1%}, then {second} at {p_second:.1%}."
