"""Samples/s of ``reader.data_loader: pytorch`` (a real DataLoader) against the native engine, same files.

Page-cached small files, no emulated compute, so the figure is the loader's own ceiling. Both runs
read the same generated npz files with the same plan; epoch 1 warms the page cache and is reported
separately from the rest.

Run: ``python benchmarks/torch_vs_native.py [--files 4096] [--record-bytes 16384] [--batch 32]
[--threads 2] [--epochs 3] [--content constant|samples]``
"""

from __future__ import annotations

import argparse
import os
import tempfile

# Both loaders are compared on the warm page cache (the runner otherwise evicts each epoch's files first).
os.environ.setdefault("DL_DRIVER_EVICT_PAGE_CACHE", "0")

from dlio_core.config import load_config
from dlio_core.generate import generate_dataset
from dlio_core.runner import run


def measure(data: str, out: str, loader: str, args: argparse.Namespace) -> list[float]:
    cfg = load_config("default", [
        f"++workload.dataset.data_folder={data}", f"++workload.reader.data_loader={loader}",
        f"++workload.dataset.num_files_train={args.files}", f"++workload.dataset.record_length_bytes={args.record_bytes}",
        "++workload.dataset.num_files_eval=0", "++workload.workflow.evaluation=False",
        f"++workload.reader.batch_size={args.batch}", f"++workload.reader.read_threads={args.threads}",
        f"++workload.reader.batch_content={args.content}", f"++workload.train.epochs={args.epochs}",
        "++workload.train.computation_time=0", "++workload.reader.file_shuffle=seed",
        f"++hydra.run.dir={out}/{loader}",
    ])
    result = run(cfg, quiet=True)
    return list(result.summary["metric"]["train_throughput_samples_per_second"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=4096)
    ap.add_argument("--record-bytes", type=int, default=16384)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--content", default="constant", choices=("constant", "samples"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dl-driver-bench-")
    data = os.path.join(work, "data")
    generate_dataset(load_config("default", [
        f"++workload.dataset.data_folder={data}", f"++workload.dataset.num_files_train={args.files}",
        f"++workload.dataset.record_length_bytes={args.record_bytes}", "++workload.dataset.num_files_eval=0"]),
        progress=False)
    # Alternate the loaders so background load on a shared machine hits both alike; report medians.
    figures: dict[str, list[float]] = {"native": [], "pytorch": []}
    for _ in range(args.repeat):
        for name in figures:
            figures[name] += measure(data, work, name, args)[1:]  # epoch 1 warms the page cache
    import statistics
    print(f"{args.files} files x {args.record_bytes} B npz, batch {args.batch}, {args.threads} threads/workers, "
          f"content={args.content}, {os.cpu_count()} CPUs")
    for name, warm in figures.items():
        print(f"  {name:8s} warm-epoch samples/s {[round(x) for x in warm]}; median {statistics.median(warm):.0f}")
    ratio = statistics.median(figures["pytorch"]) / statistics.median(figures["native"])
    print(f"  pytorch / native ratio (median of warm epochs): {ratio:.2f}")


if __name__ == "__main__":
    main()
