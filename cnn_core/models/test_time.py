"""Test-time flips: a model trained on mirrored photos answers from a photo and its mirror.

A network trained with random horizontal flips has learnt that a photo and its mirror
image show the same class, so at test time it can look at both and average its two sets
of probabilities: a second opinion for free, worth about 0.5-1 point on CIFAR-10 (the
fastest published CIFAR-10 recipes all do it). It is only right for such a model: a
mirrored digit is not the same digit, so a model trained without flips answers from the
image as it is. Every place that scores or uses a model (the run's own final evaluation,
the Evaluate and Predict pages, `python -m cnn_core evaluate`, the shipped models'
figures) asks `averages_flips` and calls `outputs`, so they all give the same number.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# What a page says under the answers of such a model.
EXPLANATION = (
    "This model was trained on mirrored images too, so it answers each image from the image "
    "and its mirror image and averages the two answers (test-time flips)."
)


def averages_flips(augment_flip: object) -> bool:
    """Whether a model trained with this `augment_flip` setting answers from both views."""
    return augment_flip is True


def outputs(model: keras.Model, images: tf.Tensor, *, average_flips: bool) -> tf.Tensor:
    """The model's float32 outputs (probabilities) for a batch, averaged with those of the
    mirrored batch when `average_flips`; float32 even for a bfloat16 model.

    Args:
        model: a Keras image model whose outputs are probabilities.
        images: (N, H, W, C) float32 in [0, 1].
        average_flips: see `averages_flips`.
    """
    return over_flips(lambda x: tf.cast(model(x, training=False), tf.float32), images,
                      average_flips=average_flips)  # fmt: skip


def over_flips(probabilities_of, images: tf.Tensor, *, average_flips: bool) -> tf.Tensor:
    """`probabilities_of(images)`, averaged with `probabilities_of(mirrored images)` when
    `average_flips` (probabilities, not logits, are averaged, so the result sums to 1)."""
    plain = probabilities_of(images)
    if not average_flips:
        return plain
    return (plain + probabilities_of(tf.reverse(images, axis=[2]))) / 2
