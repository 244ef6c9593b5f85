"""Test data for the TensorFlow plugin: DLIO-layout TFRecord files written by TensorFlow's own writer.

Used only while ``dlio_core.formats.tfrecord`` cannot generate them; the layout is DLIO's
(``train/img_{i}_of_{n}.tfrecord``, features ``image`` bytes and ``size`` int64, DALI ``.idx`` files
under ``index/train/``), and every record's bytes are distinct so tests can identify samples.
"""

from __future__ import annotations

import os

import numpy as np


def write_tfrecords(folder: str, num_files: int, samples_per_file: int, dim: int, split: str = "train") -> list[bytes]:
    """Write the files; return every record's ``image`` bytes in file order."""
    import tensorflow as tf

    os.makedirs(os.path.join(folder, split), exist_ok=True)
    os.makedirs(os.path.join(folder, "index", split), exist_ok=True)
    rng = np.random.default_rng(7)
    images = []
    width = len(str(num_files))
    for i in range(num_files):
        name = f"img_{i:0{width}d}_of_{num_files}.tfrecord"
        path = os.path.join(folder, split, name)
        offsets = []
        with tf.io.TFRecordWriter(path) as w:
            for _ in range(samples_per_file):
                img = rng.integers(0, 256, dim * dim, dtype=np.uint8).tobytes()
                ex = tf.train.Example(features=tf.train.Features(feature={
                    "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[img])),
                    "size": tf.train.Feature(int64_list=tf.train.Int64List(value=[dim * dim])),
                }))
                data = ex.SerializeToString()
                offsets.append(len(data) + 16)
                w.write(data)
                images.append(img)
        with open(os.path.join(folder, "index", split, name + ".idx"), "w") as f:
            pos = 0
            for n in offsets:
                f.write(f"{pos} {n}\n")
                pos += n
    return images
