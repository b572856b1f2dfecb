"""Train the models shipped in assets/pretrained/ (weights only, plus a JSON description).

    .venv/bin/python scripts/build_pretrained.py            # MNIST simple ConvNet, ~1 minute

The MNIST model is the simple ConvNet of seed 000, trained on the embedded 8,000 training
images with small shifts and rotations (so hand-drawn digits, which are never as neatly
centred as MNIST's, are still recognised), and evaluated on the held-out 2,000.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere
from cnn_core.data import datasets  # noqa: E402
from cnn_core.models import zoo  # noqa: E402
from cnn_core.models.shipped import PRETRAINED_DIR  # noqa: E402

SEED = 7
EPOCHS = 20
BATCH = 32


def augmenter() -> keras.Sequential:
    return keras.Sequential(
        [keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=SEED),
         keras.layers.RandomRotation(0.03, fill_mode="constant", seed=SEED),
         keras.layers.RandomZoom(0.08, fill_mode="constant", seed=SEED)]
    )  # fmt: skip


def train(dataset_name: str, model_name: str, source: str | None) -> None:
    keras.utils.set_random_seed(SEED)
    ds = datasets.load_dataset(dataset_name, source=source)
    x_train = ds.x_train.astype("float32") / 255.0
    x_test = ds.x_test.astype("float32") / 255.0
    model = zoo.build_model(model_name, ds.input_shape, ds.num_classes)
    inputs = keras.Input(ds.input_shape)
    trainer = keras.Model(inputs, model(augmenter()(inputs)))
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])  # fmt: skip
    schedule = keras.callbacks.LearningRateScheduler(lambda e: 1.5e-3 * 0.87**e)
    trainer.fit(
        x_train, ds.y_train, batch_size=BATCH, epochs=EPOCHS, callbacks=[schedule], verbose=2
    )
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _, accuracy = model.evaluate(x_test, ds.y_test, verbose=0)
    key = f"{dataset_name}-{model_name}"
    PRETRAINED_DIR.mkdir(parents=True, exist_ok=True)
    weights = PRETRAINED_DIR / f"{key}.weights.h5"
    tmp = PRETRAINED_DIR / f"{key}.tmp.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, weights)
    meta = {
        "dataset": dataset_name,
        "model": model_name,
        "input_shape": list(ds.input_shape),
        "class_names": list(ds.class_names),
        "ink_on_dark": ds.ink_on_dark,
        "test_accuracy": round(float(accuracy), 4),
        "description": (
            f"{zoo.MODELS[model_name].title} trained by scripts/build_pretrained.py on "
            f"{ds.title} ({len(ds.y_train):,} images, {EPOCHS} epochs, shifts/rotations/zoom); "
            f"{accuracy:.2%} on its {len(ds.y_test):,} test images"
        ),
    }
    (PRETRAINED_DIR / f"{key}.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{key}: test accuracy {accuracy:.4f}, {model.count_params():,} parameters")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--model", default="simple_convnet")
    parser.add_argument("--source", default="embedded")
    args = parser.parse_args()
    train(args.dataset, args.model, args.source)


if __name__ == "__main__":
    main()
