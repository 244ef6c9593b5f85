"""Samples/s of ``reader.data_loader: tensorflow`` (dlio_tf's tf.data pipelines) against the native engine.

Page-cached small files, no emulated compute, so each figure is the loader's own ceiling. Three runs of the
runner (``dlio_core.runner.run``), ``--epochs`` epochs each, on ``--files`` files of ``--samples-per-file``
samples of ``dim x dim`` bytes:

- **npz native**: the native engine on npz files (the reference);
- **npz tensorflow (core path)**: the tensorflow loader on the same npz files, read by the core readers
  under tf.data;
- **tfrecord tensorflow (native TFRecordDataset)**: the tensorflow loader on TFRecord files of the same
  shape (written by TensorFlow's own writer), read by tf.data's ``TFRecordDataset``.

Each prints its samples/s per epoch and its I/O MiB/s; each TensorFlow run is then compared with the
native one as the ratio of their slowest warm epochs (epoch 1 warms the page cache and is left out).
Last, ``dlio_tf.make_dataset`` over each format is iterated once to warm it and once more, timed, with no
runner: what tf.data does alone.

Run: ``python benchmarks/tf_vs_native.py [--files 256] [--samples-per-file 8] [--dim 128] [--batch 16]
[--threads 2] [--epochs 3] [--dir /tmp/x] [--json out.json]`` (needs tensorflow)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported: keep its start-up quiet
# The runner's loaders and tf.data alone all read the warm page cache (the runner otherwise evicts each epoch's files).
os.environ.setdefault("DL_DRIVER_EVICT_PAGE_CACHE", "0")
# Allow running from a source checkout without an install (and reach the tests' TFRecord writer).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dlio_core.config import load_config  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402
from dlio_core.runner import run  # noqa: E402
from tests.integration._tfdata import write_tfrecords  # noqa: E402

# (name, format, reader.data_loader) of the runner's contestants; the first is the reference.
RUNS = (
    ("npz native", "npz", "native"),
    ("npz tensorflow (core path)", "npz", "tensorflow"),
    ("tfrecord tensorflow (native TFRecordDataset)", "tfrecord", "tensorflow"),
)
# (name, format) of the plain iterations of dlio_tf.make_dataset.
PLAIN = (("npz make_dataset", "npz"), ("tfrecord make_dataset", "tfrecord"))


def _overrides(folder: str, fmt: str, loader: str, args: argparse.Namespace, out: str) -> list[str]:
    return [
        f"++workload.dataset.data_folder={folder}",
        f"++workload.dataset.format={fmt}",
        f"++workload.dataset.num_files_train={args.files}",
        "++workload.dataset.num_files_eval=0",
        f"++workload.dataset.num_samples_per_file={args.samples_per_file}",
        f"++workload.dataset.record_length_bytes={args.dim * args.dim}",
        "++workload.dataset.num_subfolders_train=0",
        f"++workload.reader.batch_size={args.batch}",
        f"++workload.reader.read_threads={args.threads}",
        f"++workload.reader.data_loader={loader}",
        f"++workload.train.epochs={args.epochs}",
        "++workload.train.computation_time=0",
        "++workload.workflow.evaluation=False",
        f"++hydra.run.dir={out}",
    ]


def generate(root: str, args: argparse.Namespace) -> dict[str, str]:
    """Write the npz dataset (dl-driver's generator) and the TFRecord one; return their folders by format."""
    folders = {"npz": os.path.join(root, "npz"), "tfrecord": os.path.join(root, "tfr")}
    cfg = load_config("default", _overrides(folders["npz"], "npz", "native", args, os.path.join(root, "out", "gen")))
    generate_dataset(cfg, progress=False)
    write_tfrecords(folders["tfrecord"], args.files, args.samples_per_file, args.dim)
    return folders


def measure_run(folder: str, fmt: str, loader: str, args: argparse.Namespace, out: str) -> dict:
    """One run of the runner: samples/s per epoch, the slowest warm epoch, and DLIO's I/O figure."""
    result = run(load_config("default", _overrides(folder, fmt, loader, args, out)), quiet=True)
    metric = result.summary["metric"]
    per_epoch = list(metric["train_throughput_samples_per_second"])
    return {"samples_per_s_per_epoch": per_epoch,
            "slowest_warm_epoch_samples_per_s": min(per_epoch[1:]),  # epoch 1 warms the page cache
            "train_io_mean_MB_per_second": metric["train_io_mean_MB_per_second"]}


def measure_plain(folder: str, fmt: str, args: argparse.Namespace, out: str) -> float:
    """Samples/s of one epoch of ``dlio_tf.make_dataset`` iterated by a bare loop, after one untimed epoch."""
    import dlio_tf

    ds = dlio_tf.make_dataset("default", overrides=_overrides(folder, fmt, "tensorflow", args, out))
    for _ in ds:  # warm the page cache and tf.data's functions
        pass
    t0 = time.perf_counter()
    n = sum(int(batch["image"].shape[0]) for batch in ds)
    return n / (time.perf_counter() - t0)


def _rounded(mibs: float | list[float]) -> float | list[float]:
    return [round(x, 1) for x in mibs] if isinstance(mibs, list) else round(mibs, 1)


def summarise(runs: dict[str, dict]) -> dict[str, float]:
    """Print each run's figures and the TensorFlow loader's ratios to the native engine; return the ratios."""
    for name, r in runs.items():
        print(f"{name:48s} samples/s per epoch {[round(x) for x in r['samples_per_s_per_epoch']]}  "
              f"MiB/s {_rounded(r['train_io_mean_MB_per_second'])}")
    native = runs[RUNS[0][0]]["slowest_warm_epoch_samples_per_s"]
    ratios = {"npz_core_path": runs[RUNS[1][0]]["slowest_warm_epoch_samples_per_s"] / native,
              "tfrecord_vs_native_npz": runs[RUNS[2][0]]["slowest_warm_epoch_samples_per_s"] / native}
    print(f"tensorflow loader / native ratio, npz (core path): {ratios['npz_core_path']:.3f}")
    print(f"tensorflow loader / native ratio, tfrecord (TFRecordDataset) vs native npz: "
          f"{ratios['tfrecord_vs_native_npz']:.3f}")
    return ratios


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=256)
    ap.add_argument("--samples-per-file", type=int, default=8)
    ap.add_argument("--dim", type=int, default=128, help="each sample is dim x dim bytes")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="reader.read_threads")
    ap.add_argument("--epochs", type=int, default=3, help="per run; at least 2 (epoch 1 is not compared)")
    ap.add_argument("--dir", default=None, help="where to write the datasets and run outputs (default: a new "
                    "temp dir)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if args.epochs < 2:
        ap.error("--epochs must be at least 2: the ratios compare warm epochs only")
    root = args.dir or tempfile.mkdtemp(prefix="dl-driver-bench-tf-")
    folders = generate(root, args)
    runs = {name: measure_run(folders[fmt], fmt, loader, args, os.path.join(root, "out", f"{fmt}_{loader}"))
            for name, fmt, loader in RUNS}
    ratios = summarise(runs)
    plain: dict[str, float] = {}
    for name, fmt in PLAIN:
        plain[name] = measure_plain(folders[fmt], fmt, args, os.path.join(root, "out", f"{fmt}_make_dataset"))
        print(f"{name:48s} plain iteration {plain[name]:,.0f} samples/s")
    if args.json:
        results = {"files": args.files, "samples_per_file": args.samples_per_file, "record_bytes": args.dim ** 2,
                   "batch_size": args.batch, "read_threads": args.threads, "epochs": args.epochs,
                   "cpus": os.cpu_count(), "runs": runs, "ratios": ratios, "plain_iteration_samples_per_s": plain}
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
