"""Datasets written the way DLIO 2.0.0 (PyPI), DLIO HEAD and the MLCommons fork write them, with the
libraries they use (numpy, h5py, TensorFlow, Pillow, pyarrow), for the interchange tests.

Each writer follows its generator in ``dlio_benchmark/data_generator/`` (read, not copied):

* names ``{prefix}_{i zero-padded to len(str(N))}_of_{N}.{format}`` under ``{data}/train/``;
* npz: ``np.savez(path, x=(d, d, spf) uint8, y=[0]*spf)``; npy: ``np.save(path, (d, d, spf))``;
* hdf5: 2.0.0 one ``records`` ``(spf, d, d)`` + ``labels`` (default library bounds); HEAD
  ``records_0`` + ``labels`` with ``libver='latest'``;
* tfrecord: ``tf.train.Example`` ``image`` (raw bytes) and ``size``, which 2.0.0 sets to the
  *dimension* ``d`` and HEAD to the sample's byte count; written by ``tf.io.TFRecordWriter``;
* csv: 2.0.0 ``df.to_csv(path)`` (pandas' header row and index column), HEAD
  ``to_csv(index=False, header=False)``; both write one row per sample (written here as pandas' text);
* jpeg/png: argonne saves random noise with Pillow; the fork writes the ``d*d`` raw bytes;
* indexed_binary: the fork's data file plus ``.off.idx`` / ``.sz.idx`` (native ``'Q'`` offsets, sizes);
* parquet: the fork's ``pq.ParquetWriter(path, schema)`` fed ``generation_batch_size`` rows at a time.

Every writer returns the samples it wrote, so a reader can be checked by content.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

__all__ = ["dlio_name", "write_dlio", "CASES"]

# (version, format) pairs the tests build
CASES = [
    ("2.0.0", "npz"), ("head", "npz"), ("2.0.0", "npy"), ("2.0.0", "hdf5"), ("head", "hdf5"),
    ("2.0.0", "tfrecord"), ("head", "tfrecord"), ("2.0.0", "csv"), ("head", "csv"),
    ("2.0.0", "jpeg"), ("2.0.0", "png"), ("fork", "jpeg"), ("fork", "png"),
    ("fork", "indexed_binary"), ("fork", "mmap_indexed_binary"), ("fork", "parquet"),
]


def dlio_name(i: int, n: int, fmt: str, prefix: str = "img") -> str:
    """DLIO's file name for file ``i`` of ``n`` (``add_padding(i, len(str(n)))``)."""
    return f"{prefix}_{str(i).rjust(len(str(n)), '0')}_of_{n}.{fmt}"


def write_dlio(data: Path, version: str, fmt: str, *, files: int, spf: int, d: int,
               seed: int = 10) -> list[np.ndarray]:
    """Write ``files`` files of ``spf`` samples of ``d x d`` uint8 into ``data/train`` as DLIO ``version``
    writes ``fmt``; returns each file's samples as an array ``(d, d, spf)`` (DLIO's layout)."""
    train = data / "train"
    train.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for i in range(files):
        x = rng.integers(0, 255, size=(d, d, spf), dtype=np.uint8)
        path = train / dlio_name(i, files, fmt)
        _WRITERS[fmt](path, x, version)
        written.append(x)
    return written


def _npz(path: Path, x: np.ndarray, version: str) -> None:
    np.savez(path, x=x, y=[0] * x.shape[-1])  # np.savez keeps the name when it ends in .npz


def _npy(path: Path, x: np.ndarray, version: str) -> None:
    np.save(path, x)


def _hdf5(path: Path, x: np.ndarray, version: str) -> None:
    import h5py

    records = np.moveaxis(x, -1, 0)  # (spf, d, d)
    labels = [0] * x.shape[-1]
    if version == "2.0.0":
        with h5py.File(path, "w") as hf:
            dset = hf.create_dataset("records", records.shape, dtype=np.uint8)
            dset[:] = records
            hf.create_dataset("labels", data=labels)
    else:
        with h5py.File(path, "w", libver="latest") as hf:
            hf.create_dataset("records_0", records.shape, dtype=np.uint8, data=records)
            hf.create_dataset("labels", data=labels)


def _tfrecord(path: Path, x: np.ndarray, version: str) -> None:
    import tensorflow as tf

    d1, d2, spf = x.shape
    size = d1 if version == "2.0.0" else d1 * d2  # 2.0.0 stores self._dimension, HEAD the byte count
    with tf.io.TFRecordWriter(str(path)) as writer:
        for s in range(spf):
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[x[..., s].tobytes()])),
                "size": tf.train.Feature(int64_list=tf.train.Int64List(value=[size])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def _csv(path: Path, x: np.ndarray, version: str) -> None:
    rows = [x[..., s].reshape(-1) for s in range(x.shape[-1])]
    lines = []
    if version == "2.0.0":  # pandas' default to_csv: a header of column numbers and an index column
        lines.append("," + ",".join(str(j) for j in range(rows[0].size)))
        lines += [f"{i}," + ",".join(map(str, r.tolist())) for i, r in enumerate(rows)]
    else:
        lines += [",".join(map(str, r.tolist())) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def _image(path: Path, x: np.ndarray, version: str) -> None:
    sample = x[..., 0]
    if version == "fork":  # the fork's fast path: the pixels' raw bytes, not an encoded image
        path.write_bytes(sample.tobytes())
        return
    from PIL import Image

    Image.fromarray(sample).save(path, format="JPEG" if path.suffix == ".jpeg" else "PNG", bits=8)


def _indexed(path: Path, x: np.ndarray, version: str) -> None:
    d1, d2, spf = x.shape
    size = d1 * d2
    with open(path, "wb") as f:
        for s in range(spf):
            f.write(x[..., s].tobytes())
    Path(f"{path}.off.idx").write_bytes(struct.pack("Q" * spf, *range(0, spf * size, size)))
    Path(f"{path}.sz.idx").write_bytes(struct.pack("Q" * spf, *([size] * spf)))


def _parquet(path: Path, x: np.ndarray, version: str, row_group_size: int = 2) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    d1, d2, spf = x.shape
    schema = pa.schema([("data", pa.list_(pa.uint8(), d1 * d2))])  # the fork's legacy single column
    with pq.ParquetWriter(str(path), schema) as writer:
        for start in range(0, spf, row_group_size):  # generation_batch_size rows per write
            rows = np.stack([x[..., s].reshape(-1) for s in range(start, min(spf, start + row_group_size))])
            flat = pa.array(rows.reshape(-1), type=pa.uint8())
            writer.write_table(pa.table({"data": pa.FixedSizeListArray.from_arrays(flat, d1 * d2)}),
                               row_group_size=row_group_size)


_WRITERS = {
    "npz": _npz, "npy": _npy, "hdf5": _hdf5, "tfrecord": _tfrecord, "csv": _csv, "jpeg": _image,
    "png": _image, "indexed_binary": _indexed, "mmap_indexed_binary": _indexed, "parquet": _parquet,
}
