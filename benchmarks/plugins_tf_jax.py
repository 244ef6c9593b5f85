"""Samples/s of the TF, JAX and Grain plugin paths against their ceilings, measured in the same run.

Page-cached local files (one untimed pass first), no model: each figure is what a loop that only takes
batches sees, the median of ``--reps`` timed passes. Contestants and their ceilings:

- ``make_dataset`` on TFRecord (TensorFlow's own reader, our pipeline) against **tf.data's own**
  ``TFRecordDataset(num_parallel_reads) -> batch -> parse_example + decode_raw -> prefetch`` on the same
  files (aim: ratio >= 1.0);
- ``make_dataset`` on npz (the engine feeding tf.data) against **the native engine** on the same files
  with the same threads, handing out samples (``keep_samples``) (aim >= 0.5);
- the JAX iterator (``make_iterator``, device_put included) and the Grain path
  (``grain.MapDataset.source(DlioSource).batch().to_iter_dataset(ReadOptions(num_threads))``) against
  the native engine (aim >= 0.9).

Each npz ratio is also given against the engine that stacks its batches into one array (``np.stack``
of the step's sample views), the copy every loader that hands out owned batches pays; with several
samples per file it is a strided gather (DLIO keeps samples on the last axis), which dominates at
small sample sizes. Two bounds, not contestants, are measured too: ``tfdata_floor`` (tf.data handing
prebuilt batch dicts to the Python loop, nothing read) and ``jax_put_floor`` (``jax.device_put`` of a
ready batch and its labels, nothing read); their ratios to the engine are the most any tf.data or
``jax.Array`` loader could reach here. The machine's load is printed with the figures: shared machines
move them a lot.

Run: ``python benchmarks/plugins_tf_jax.py [--files 256] [--samples-per-file 8] [--dim 128] [--batch 16]
[--threads 2] [--reps 3] [--dir /tmp/x] [--json out.json]`` (needs tensorflow, jax and grain)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Iterable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # a source checkout

from dlio_core.config import load_config  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402


def _config(folder: str, fmt: str, args: argparse.Namespace) -> Any:
    return load_config("default", [
        f"++workload.dataset.data_folder={folder}", f"++workload.dataset.format={fmt}",
        f"++workload.dataset.num_files_train={args.files}", "++workload.dataset.num_files_eval=0",
        f"++workload.dataset.num_samples_per_file={args.samples_per_file}",
        f"++workload.dataset.record_length_bytes={args.dim * args.dim}", "++workload.dataset.num_subfolders_train=0",
        f"++workload.reader.batch_size={args.batch}", f"++workload.reader.read_threads={args.threads}",
        "++workload.train.computation_time=0", "++workload.workflow.evaluation=False"])


def timed(make_pass: Callable[[], Iterable[int]], reps: int) -> float:
    """Median samples/s over ``reps`` timed passes (after one untimed pass); ``make_pass`` yields batch sizes."""
    sum(make_pass())
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        n = sum(make_pass())
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def engine_pass(cfg: Any, stack: bool = False) -> Callable[[], Iterable[int]]:
    """The native engine handing out sample views; with ``stack``, also copying each step into one batch
    array (the least any loader that hands out owned batches must do: DLIO's samples sit on the last axis)."""
    import numpy as np

    from dlio_core.listing import dataset_files, dataset_storage
    from dlio_core.reader import epoch_plan, native_reader

    storage = dataset_storage(cfg)
    reader = native_reader(cfg, storage, dataset_files(cfg, storage, "train"), keep_samples=True)

    def run() -> Iterable[int]:
        for b in reader.epoch(epoch_plan(cfg, epoch=1)):
            if stack:
                np.stack(b.samples)
            n = b.num_samples
            b.release()
            yield n
    return run


def tfdata_tfrecord_pass(cfg: Any, args: argparse.Namespace) -> Callable[[], Iterable[int]]:
    """tf.data's own idiom over DLIO's TFRecords: what a TensorFlow user would write."""
    import tensorflow as tf

    folder = os.path.join(cfg.dataset.data_folder, "train")
    paths = sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".tfrecord"))
    features = {"image": tf.io.FixedLenFeature([], tf.string), "size": tf.io.FixedLenFeature([], tf.int64)}

    def parse(serialized: Any) -> Any:
        f = tf.io.parse_example(serialized, features)
        return {"image": tf.reshape(tf.io.decode_raw(f["image"], tf.uint8), (args.batch, -1)), "size": f["size"]}

    ds = (tf.data.TFRecordDataset(paths, num_parallel_reads=args.threads).batch(args.batch, drop_remainder=True)
          .map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
    return lambda: (int(b["image"].shape[0]) for b in ds)


def tfdata_floor_pass(cfg: Any, args: argparse.Namespace) -> Callable[[], Iterable[int]]:
    """What tf.data costs to hand prebuilt batches (``make_dataset``'s elements: image, size, label) to a
    Python loop, nothing read: a bound on any tf.data pipeline's samples/s here, not a contestant."""
    import numpy as np
    import tensorflow as tf

    steps = args.files * args.samples_per_file // args.batch
    batch = {"image": np.zeros((args.batch, args.dim, args.dim), np.uint8),
             "size": np.full(args.batch, args.dim * args.dim, np.int64), "label": np.zeros(args.batch, np.int64)}
    ds = tf.data.Dataset.from_tensors(batch).repeat(steps).prefetch(tf.data.AUTOTUNE)
    return lambda: (int(b["image"].shape[0]) for b in ds)


def jax_put_floor_pass(args: argparse.Namespace) -> Callable[[], Iterable[int]]:
    """What ``jax.device_put`` of a ready batch and its labels costs a step, nothing read: a bound on any
    loader that hands out ``jax.Array`` batches here, not a contestant."""
    import jax
    import numpy as np

    steps = args.files * args.samples_per_file // args.batch
    batch = (np.zeros((args.batch, args.dim, args.dim), np.uint8), np.zeros(args.batch, np.int64))

    def run() -> Iterable[int]:
        for _ in range(steps):
            images, _labels = jax.device_put(batch)
            yield int(images.shape[0])
    return run


def make_dataset_pass(cfg: Any) -> Callable[[], Iterable[int]]:
    import dlio_tf

    ds = dlio_tf.make_dataset(cfg)
    return lambda: (int(b["image"].shape[0]) for b in ds)


def jax_pass(cfg: Any) -> Callable[[], Iterable[int]]:
    import dlio_jax

    it = dlio_jax.make_iterator(cfg)

    def run() -> Iterable[int]:
        for item in it:  # iterating again starts the next epoch
            images = item[0] if isinstance(item, tuple) else item
            images.block_until_ready()
            yield int(images.shape[0])
    return run


def grain_pass(cfg: Any, args: argparse.Namespace) -> Callable[[], Iterable[int]]:
    import grain

    from dlio_jax import DlioSource

    src = DlioSource.from_config(cfg)
    ds = (grain.MapDataset.source(src).batch(args.batch, drop_remainder=True)
          .to_iter_dataset(grain.ReadOptions(num_threads=args.threads, prefetch_buffer_size=4 * args.threads)))
    return lambda: (len(b[0]) for b in ds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=256)
    ap.add_argument("--samples-per-file", type=int, default=8)
    ap.add_argument("--dim", type=int, default=128, help="each sample is dim x dim bytes")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="reader threads on every path")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to write the datasets (default: a new temp dir)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    root = args.dir or tempfile.mkdtemp(prefix="dl-driver-bench-plugins-")
    npz = _config(os.path.join(root, "npz"), "npz", args)
    tfr = _config(os.path.join(root, "tfrecord"), "tfrecord", args)
    generate_dataset(npz, progress=False)
    generate_dataset(tfr, progress=False)
    # JAX and Grain before anything of TensorFlow's: tf.data's from_generator sets glibc's M_TRIM_THRESHOLD
    # to 128 KiB for the whole process ("Memory patch applied"), after which every batch-sized allocation
    # is returned to the kernel when freed and faulted in again: run after it, the stacked engine and the
    # JAX iterator measured half their rate (interleaved in one process), a cost of sharing a process
    # with tf.data's generator, not of these loaders.
    rates = {
        "engine_npz": timed(engine_pass(npz), args.reps),
        "engine_stacked_npz": timed(engine_pass(npz, stack=True), args.reps),
        "jax_iterator_npz": timed(jax_pass(npz), args.reps),
        "grain_npz": timed(grain_pass(npz, args), args.reps),
        "jax_put_floor": timed(jax_put_floor_pass(args), args.reps),
        "make_dataset_npz": timed(make_dataset_pass(npz), args.reps),
        "tfdata_own_tfrecord": timed(tfdata_tfrecord_pass(tfr, args), args.reps),
        "make_dataset_tfrecord": timed(make_dataset_pass(tfr), args.reps),
        "tfdata_floor": timed(tfdata_floor_pass(npz, args), args.reps),
    }
    ratios = {
        "make_dataset_vs_tfdata_tfrecord": rates["make_dataset_tfrecord"] / rates["tfdata_own_tfrecord"],
        "make_dataset_vs_engine_npz": rates["make_dataset_npz"] / rates["engine_npz"],
        "jax_iterator_vs_engine_npz": rates["jax_iterator_npz"] / rates["engine_npz"],
        "grain_vs_engine_npz": rates["grain_npz"] / rates["engine_npz"],
        # Against the engine that also stacks its batches: the copy every batch-making loader pays.
        "make_dataset_vs_engine_stacked_npz": rates["make_dataset_npz"] / rates["engine_stacked_npz"],
        "jax_iterator_vs_engine_stacked_npz": rates["jax_iterator_npz"] / rates["engine_stacked_npz"],
        "grain_vs_engine_stacked_npz": rates["grain_npz"] / rates["engine_stacked_npz"],
        # Bounds, not contestants: handing prebuilt batches out costs this much of the engine's rate.
        "tfdata_floor_vs_engine_npz": rates["tfdata_floor"] / rates["engine_npz"],
        "jax_put_floor_vs_engine_npz": rates["jax_put_floor"] / rates["engine_npz"],
    }
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    for name, r in rates.items():
        print(f"{name:28s} {r:12,.0f} samples/s")
    for name, r in ratios.items():
        print(f"ratio {name:36s} {r:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "cpus": os.cpu_count(), "samples_per_s": rates, "ratios": ratios}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
