"""The worker's input pipeline: the validation split, each epoch's order, augmentation, batches.

Each epoch's order is a function of (seed, epoch) and each batch's augmentation of
(seed, epoch, batch), so a run stopped mid-epoch resumes onto the very batches it would
have seen.
"""

from __future__ import annotations

import contextlib
import os

import keras
import numpy as np
import tensorflow as tf

from cnn_core import settings
from cnn_core.runs import run_config

# ---------------------------------------------------------------- data


def configure_threads(threads: int = 0) -> int:
    """Sets TensorFlow's thread pools before its first op; returns the intra-op count.

    With several workers sharing the machine, each gets its share of the cores instead of
    all of them, so they do not fight over caches.
    """
    n = threads or max(1, (os.cpu_count() or 1) // settings.max_workers())
    with contextlib.suppress(RuntimeError):  # already initialized (a second run in-process)
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    return n


def split_validation(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Holds out a seeded random fraction of the training set, the same on every resume.

    Returns:
        x_train, y_train, x_val, y_val (the validation arrays are empty when fraction is 0).
    """
    n_val = int(len(x) * fraction)
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return x[train], y[train], x[val], y[val]


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the n training images in one epoch (from 1).

    A pure function of the run's random seed and the epoch, so a resumed epoch trains the
    batches it had left in the order it would have without the stop.
    """
    return np.random.default_rng([seed, epoch]).permutation(n)


def make_augmenter(cfg: run_config.RunConfig, ink_on_dark: bool) -> list[keras.Layer]:
    """Keras preprocessing layers for the tf.data map (kept out of the model, so the saved
    model stays clean for inspection). Their randomness comes from ``make_dataset``."""
    # Ink-on-dark images (MNIST) are padded with black; photos reflect their own border.
    fill = "constant" if ink_on_dark else "reflect"
    layers: list[keras.Layer] = []
    if cfg.augment_shift:
        layers.append(
            keras.layers.RandomTranslation(
                cfg.augment_shift, cfg.augment_shift, fill_mode=fill, dtype="float32"
            )
        )
    if cfg.augment_rotate:
        layers.append(
            keras.layers.RandomRotation(cfg.augment_rotate / 360.0, fill_mode=fill, dtype="float32")
        )
    if cfg.augment_zoom:
        layers.append(
            keras.layers.RandomZoom(
                cfg.augment_zoom, cfg.augment_zoom, fill_mode=fill, dtype="float32"
            )
        )
    if cfg.augment_flip:
        layers.append(keras.layers.RandomFlip("horizontal", dtype="float32"))
    return layers  # fmt: skip


class _StatelessSeeds(keras.random.SeedGenerator):
    """Gives each random draw of a preprocessing layer a seed folded from one fixed seed.

    A layer's own SeedGenerator keeps a state variable, so its draws depend on how many
    batches came before it (and, in a parallel map, in which order); these depend on the
    seed given alone, which ``make_dataset`` derives from (seed, epoch, batch).
    """

    def __init__(self, seed: tf.Tensor):  # no super().__init__(): it would make a variable
        self._seed = seed
        self._draws = 0

    def next(self, ordered: bool = True) -> tf.Tensor:
        self._draws += 1  # counted while the map is traced: each draw gets its own seed
        return tf.random.experimental.stateless_fold_in(self._seed, self._draws)


def augment_batch(images: tf.Tensor, augment: list[keras.Layer], seed: tf.Tensor) -> tf.Tensor:
    """Applies the layers to a batch with transformations drawn from ``seed`` (shape [2])
    only, so the same seed always gives the same augmented batch."""
    for i, layer in enumerate(augment):
        seeds = _StatelessSeeds(tf.random.experimental.stateless_fold_in(seed, i))
        transformation = layer.get_random_transformation(images, training=True, seed=seeds)
        images = layer.transform_images(images, transformation, training=True)
    return images


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    augment: list[keras.Layer] | None = None,
    seed: int = 0,
    epoch: int = 0,
    first_batch: int = 0,
) -> tf.data.Dataset:
    """uint8 images and int labels -> batches of float32 images in [0, 1] and one-hot labels.

    One-hot labels let the same compiled model report MSE next to cross-entropy (as the
    report *Image Classification Using Convolutional Neural Network CNN* does). The map
    runs on whole batches, which costs one op call per batch, not per image. Batch b of
    the result is batch ``first_batch + b`` of the epoch: its augmentation is drawn from
    (seed, epoch, first_batch + b) alone.

    Args:
        shuffle_seed: shuffle with tf.data (the benchmarks' pipeline); training orders each
            epoch with ``epoch_order`` instead, which a resume can replay.
    """
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    epoch_seed = tf.constant([seed, epoch], tf.int64)

    def prepare(index, batch):
        images, labels = batch
        images = tf.cast(images, tf.float32) / 255.0
        if augment:
            batch_seed = tf.random.experimental.stateless_fold_in(epoch_seed, index)
            images = augment_batch(images, augment, batch_seed)
        return images, tf.one_hot(labels, num_classes)

    ds = ds.batch(batch_size).enumerate(start=first_batch)
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)  # deterministic order by default
    return ds.prefetch(tf.data.AUTOTUNE)


def epoch_dataset(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    first_batch: int = 0,
    augment: list[keras.Layer] | None = None,
) -> tf.data.Dataset:
    """The training batches of one epoch (from 1), from batch ``first_batch`` (0-based: the
    number already trained) on; the same batches, augmented the same way, however reached."""
    order = epoch_order(len(x), seed, epoch)[first_batch * batch_size :]
    return make_dataset(x[order], y[order], num_classes, batch_size, augment=augment,
                        seed=seed, epoch=epoch, first_batch=first_batch)  # fmt: skip
