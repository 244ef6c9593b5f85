"""A Keras trainer whose input function is swapped for dl-driver's ``tf.data`` source, trained on real labels.

The trainer below is an ordinary ``model.fit`` script. Its original ``input_fn`` built a
``tf.data.Dataset`` from arrays in memory; the swap replaces that one function with
``dlio_tf.from_uri(folder, format="npz", batch_size=..., shuffle=True)`` and a ``transform`` that turns
each batch into ``(features, label)`` pairs. The labels are the ones the files carry (npz ``y``, written
on first use by ``examples/labelled_npz.py``: class ``c`` brightens quadrant ``c`` of a noisy image), so
the model learns and its loss falls well below its start. The dataset knows its length, so ``fit``
needs no ``steps_per_epoch``; each ``fit`` epoch iterates it once more. Nothing else in the trainer changes.

Run it::

    python examples/keras_input_fn.py --data-folder /tmp/dl-driver-keras --epochs 5

Example:
    >>> import tempfile
    >>> history = main(["--data-folder", tempfile.mkdtemp(), "--epochs", "1", "--files", "8"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # labelled_npz beside this script

import tensorflow as tf  # noqa: E402 - after quieting TensorFlow's logs

import dlio_tf  # noqa: E402
from labelled_npz import CLASSES, SIDE, write_labelled_npz  # noqa: E402


def original_input_fn(batch_size: int = 16) -> tf.data.Dataset:
    """What the trainer used before: random images and labels held in memory (kept for comparison)."""
    images = tf.random.uniform([64, SIDE, SIDE], maxval=256, dtype=tf.int32)
    labels = tf.random.uniform([64], maxval=CLASSES, dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels}).batch(batch_size).map(
        to_features_and_label)


def to_features_and_label(batch: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """A batch dict -> (float features in [0, 1], the label the files carry)."""
    return tf.cast(batch["image"], tf.float32) / 255.0, batch["label"]


def input_fn(folder: str, batch_size: int = 16) -> tf.data.Dataset:
    """The swap: dl-driver reads the files (and their labels); the trainer's own mapping stays."""
    return dlio_tf.from_uri(folder, format="npz", batch_size=batch_size, shuffle=True, seed=0,
                            transform=to_features_and_label)


def build_model() -> tf.keras.Model:
    model = tf.keras.Sequential([
        tf.keras.Input(shape=(SIDE, SIDE)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(32, activation="relu"),
        tf.keras.layers.Dense(CLASSES),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def main(argv: Sequence[str] | None = None) -> tf.keras.callbacks.History:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-folder", required=True, help="labelled npz files (written when empty)")
    parser.add_argument("--files", type=int, default=32, help="files to write when the folder is empty")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    if not (os.path.isdir(args.data_folder) and os.listdir(args.data_folder)):
        write_labelled_npz(args.data_folder, files=args.files)
    train = input_fn(args.data_folder)  # was: original_input_fn()
    model = build_model()
    # No steps_per_epoch: the dataset's cardinality is known; shuffle=False because the source shuffles.
    return model.fit(train, epochs=args.epochs, shuffle=False, verbose=2)


if __name__ == "__main__":
    history = main(sys.argv[1:])
    print(f"first loss {history.history['loss'][0]:.4f} final loss {history.history['loss'][-1]:.4f}")
