"""A Keras trainer whose input function is swapped for dl-driver's ``tf.data`` source.

The trainer below is an ordinary ``model.fit`` script. Its original ``input_fn`` built a
``tf.data.Dataset`` from arrays in memory; the swap replaces that one function with
``dlio_tf.make_dataset(workload, overrides=...)`` and a ``map`` that turns DLIO's records into
``(features, label)`` pairs. Nothing else in the trainer changes. The labels are made up from the
pixels (DLIO's data carries none): the point is the input pipeline, not the accuracy.

Run it (generates a small npz dataset first when the folder is empty)::

    python examples/keras_input_fn.py --data-folder /tmp/dl-driver-keras --epochs 2

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

import tensorflow as tf  # noqa: E402 - after quieting TensorFlow's logs

import dlio_tf  # noqa: E402
from dlio_core.config import load_config  # noqa: E402
from dlio_core.config.derive import steps_per_epoch  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402


def original_input_fn(batch_size: int = 4) -> tf.data.Dataset:
    """What the trainer used before: random images held in memory (kept here for comparison)."""
    images = tf.random.uniform([64, 64, 64], maxval=256, dtype=tf.int32)
    return tf.data.Dataset.from_tensor_slices(images).batch(batch_size).map(to_features_and_label)


def to_features_and_label(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 images -> (float features in [0, 1], a 0/1 label: is the image brighter than average?)."""
    x = tf.cast(images, tf.float32) / 255.0
    return x, tf.cast(tf.reduce_mean(x, axis=[1, 2]) > 0.5, tf.float32)


def input_fn(workload: str, overrides: Sequence[str], input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """The swap: dl-driver reads the workload's files; the trainer's own map stays."""
    ds = dlio_tf.make_dataset(workload, overrides=overrides, input_context=input_context)
    return ds.map(lambda batch: to_features_and_label(batch["image"]), num_parallel_calls=tf.data.AUTOTUNE)


def build_model(shape: tuple[int, ...]) -> tf.keras.Model:
    model = tf.keras.Sequential([
        tf.keras.Input(shape=shape),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(16, activation="relu"),
        tf.keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def main(argv: Sequence[str] | None = None) -> tf.keras.callbacks.History:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="default", help="bundled workload name or YAML path")
    parser.add_argument("--data-folder", required=True)
    parser.add_argument("--files", type=int, default=32, help="dataset.num_files_train")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    overrides = [f"++workload.dataset.data_folder={args.data_folder}",
                 f"++workload.dataset.num_files_train={args.files}", "++workload.dataset.num_files_eval=0",
                 "++workload.reader.sample_shuffle=seed"]
    cfg = load_config(args.workload, overrides)
    if not os.path.isdir(os.path.join(args.data_folder, "train")):
        generate_dataset(cfg, progress=False)
    train = input_fn(args.workload, overrides)  # was: original_input_fn()
    model = build_model(tuple(train.element_spec[0].shape[1:]))
    # One epoch of batches per fit epoch: repeat, and tell fit how many steps an epoch has.
    steps = steps_per_epoch(cfg, 1, "train")
    # shuffle=False: the dataset shuffles itself (reader.sample_shuffle); Keras cannot shuffle a tf.data source.
    return model.fit(train.repeat(), epochs=args.epochs, steps_per_epoch=steps, shuffle=False, verbose=2)


if __name__ == "__main__":
    history = main(sys.argv[1:])
    print(f"final loss {history.history['loss'][-1]:.4f}")
