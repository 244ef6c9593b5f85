"""Samples/s of the torch ``DataLoader`` over ``DlioIterableDataset`` against the native engine, same files.

The ceiling is dlio_core's engine (``NativeLoader``) with N reader threads, handing each step's samples
(views of its buffers) to a consumer that drops them: what any plugin's reading costs at most. Against it,
in the same run, on the same page-cached npz files, with the same plan (file and sample shuffle by seed):

- **torch, N process workers**: ``DataLoader(ds, batch_size=None, num_workers=N, persistent_workers=True)``
  over ``DlioIterableDataset.from_uri(..., batched=True)``: each step stacked into shared memory in a
  worker with its labels (npz ``y``), handed to the main process as ``(X, Y)`` tensors;
- **torch, N reader threads**: ``DataLoader(ds, batch_size=None, num_workers=0)`` over the same dataset
  built with ``read_threads=N``: the engine's threads read in the main process, each step stacked into one
  tensor with its labels (no worker processes, no shared memory).

Each contestant runs ``--epochs`` epochs after one warm-up epoch; contestants alternate ``--repeat``
times so that background load hits them alike; each prints its warm-epoch samples/s and its median's
ratio to the engine's median.

Run: ``python benchmarks/plugins_torch.py [--files 2048] [--record-bytes 16384] [--batch 32] [--workers 2]
[--epochs 2] [--repeat 3] [--dir /tmp/x]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # a source checkout

import torch  # noqa: E402

from dlio_core.config import load_config  # noqa: E402
from dlio_core.engine import NativeLoader  # noqa: E402
from dlio_core.formats import get_format  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402
from dlio_core.sampling import EpochPlan  # noqa: E402
from dlio_torch import DlioIterableDataset  # noqa: E402


def timed_epochs(run_epoch: Callable[[int], int], epochs: int) -> list[float]:
    """Samples/s of ``epochs`` epochs after one warm-up epoch; ``run_epoch(e)`` returns its samples."""
    run_epoch(0)
    rates = []
    for e in range(1, epochs + 1):
        t0 = time.perf_counter()
        n = run_epoch(e)
        rates.append(n / (time.perf_counter() - t0))
    return rates


def engine(ds: DlioIterableDataset, workers: int, epochs: int) -> list[float]:
    src = ds.source
    loader = NativeLoader(src.storage, src.fmt(), src.paths.tolist(), sizes=src.sizes, read_threads=workers,
                          prefetch_size=2 * workers, keep_samples=True)

    def run_epoch(e: int) -> int:
        n = 0
        for b in loader.epoch(EpochPlan(**ds._plan_args, epoch=e)):
            n += b.num_samples
            b.release()
        return n

    try:
        return timed_epochs(run_epoch, epochs)
    finally:
        loader.close()


def torch_loader(ds: DlioIterableDataset, workers: int, epochs: int) -> list[float]:
    kwargs: dict[str, Any] = {"num_workers": workers}
    if workers:
        kwargs.update(persistent_workers=True, prefetch_factor=2, multiprocessing_context="fork")
    loader = torch.utils.data.DataLoader(ds, batch_size=None, **kwargs)

    def run_epoch(e: int) -> int:
        ds.set_epoch(e)
        n = 0
        for x, y in loader:
            n += int(y.shape[0])
        return n

    return timed_epochs(run_epoch, epochs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2048)
    ap.add_argument("--record-bytes", type=int, default=16384)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    data = os.path.join(args.dir or tempfile.mkdtemp(prefix="dl-driver-bench-"), "data")
    cfg = load_config("default", [f"++workload.dataset.data_folder={data}", "++workload.dataset.num_files_eval=0",
                                  f"++workload.dataset.num_files_train={args.files}",
                                  "++workload.dataset.num_subfolders_train=0",
                                  f"++workload.dataset.record_length_bytes={args.record_bytes}"])
    generate_dataset(cfg, progress=False)

    def dataset(threads: int) -> DlioIterableDataset:
        return DlioIterableDataset.from_uri(os.path.join(data, "train"), format="npz", batch_size=args.batch,
                                            batched=True, shuffle=True, seed=7, read_threads=threads)

    n = args.workers
    contestants = {
        f"native engine, {n} threads": lambda: engine(dataset(1), n, args.epochs),
        f"torch, {n} process workers": lambda: torch_loader(dataset(1), n, args.epochs),
        f"torch, {n} reader threads": lambda: torch_loader(dataset(n), 0, args.epochs),
    }
    figures: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(args.repeat):
        for name, measure in contestants.items():
            figures[name] += measure()
    print(f"{args.files} npz files x {args.record_bytes} B (page-cached), batch {args.batch}, shuffle seed, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, format {get_format('npz').name}")
    ceiling = statistics.median(figures[next(iter(figures))])
    for name, rates in figures.items():
        med = statistics.median(rates)
        print(f"  {name:28s} samples/s {[round(r) for r in rates]}; median {med:.0f}; / engine {med / ceiling:.2f}")


if __name__ == "__main__":
    main()
