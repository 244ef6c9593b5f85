"""How close the native engine gets to the raw-read ceiling of the same files.

For each dataset ((a) 4,096 npz files of 4 KiB, (b) 64 npz files of 16 MiB) it measures, in the same
process tree and with the same thread count:

- the ceiling: ``threads`` threads, each reading its share of the files with ``os.open`` +
  ``os.readv`` into one reused buffer (no allocation, no parsing);
- the engine: ``dl-driver``'s runner with ``reader.data_loader: native`` and ``computation_time: 0``,
  reporting DLIO's training throughput (samples/s over the measured window);

both as the best of ``--repeat`` runs with the page cache warm, and prints engine / ceiling.
It also reports the epoch-planning time and memory for ``dlrm_b200`` and ``resnet50_h100`` on one
rank, and the ``import dlio_core`` time.

Run: ``.venv/bin/python benchmarks/harness_ceiling.py [--threads 2] [--repeat 5] [--dir /tmp/x]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc

# Allow running from a source checkout without an install.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dlio_core.config import load_config  # noqa: E402
from dlio_core.generate import dataset_files, generate_dataset  # noqa: E402
from dlio_core.runner import run  # noqa: E402
from dlio_core.storage import open_storage  # noqa: E402

DATASETS = {
    "a_4096x4KiB": {"num_files_train": 4096, "record_length_bytes": 4096},
    "b_64x16MiB": {"num_files_train": 64, "record_length_bytes": 16 * 2**20},
}


def _overrides(folder: str, spec: dict, threads: int, batch: int, out: str) -> list[str]:
    return [
        f"++workload.dataset.data_folder={folder}",
        f"++workload.dataset.num_files_train={spec['num_files_train']}",
        f"++workload.dataset.record_length_bytes={spec['record_length_bytes']}",
        "++workload.dataset.num_files_eval=0",
        "++workload.dataset.num_subfolders_train=0",
        "++workload.dataset.num_subfolders_eval=0",
        "++workload.reader.data_loader=native",
        f"++workload.reader.read_threads={threads}",
        f"++workload.reader.batch_size={batch}",
        "++workload.train.computation_time=0",
        "++workload.train.epochs=1",
        "++workload.workflow.evaluation=False",
        "++workload.workflow.profiling=False",
        f"++hydra.run.dir={out}",
    ]


def raw_ceiling(paths: list[str], sizes: list[int], threads: int) -> float:
    """Files per second read by ``threads`` threads, each ``readv`` into its own reused buffer."""
    biggest = max(sizes)

    def worker(share: list[str]) -> None:
        buf = bytearray(biggest)
        view = memoryview(buf)
        for p in share:
            fd = os.open(p, os.O_RDONLY)
            try:
                os.readv(fd, [view])
            finally:
                os.close(fd)

    shares = [paths[i::threads] for i in range(threads)]
    ts = [threading.Thread(target=worker, args=(s,)) for s in shares]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return len(paths) / (time.perf_counter() - t0)


def engine_throughput(cfg) -> float:
    result = run(cfg, quiet=True)
    return float(result.summary["metric"]["train_throughput_mean_samples_per_second"])


def bench_dataset(name: str, spec: dict, root: str, threads: int, batch: int, repeat: int) -> dict:
    folder = os.path.join(root, name)
    cfg = load_config("default", _overrides(folder, spec, threads, batch, os.path.join(root, "out", name)))
    storage = open_storage(folder)
    if not os.path.exists(os.path.join(folder, "dl-driver-manifest.json")):
        generate_dataset(cfg, progress=False)
    files = dataset_files(cfg, storage, "train")
    paths = [storage.join(rel) for rel, _ in files]
    sizes = [size for _, size in files]
    raw_ceiling(paths, sizes, threads)  # warm the page cache
    ceiling = max(raw_ceiling(paths, sizes, threads) for _ in range(repeat))
    engine = max(engine_throughput(cfg) for _ in range(repeat))
    return {"dataset": name, "files": len(files), "file_bytes": sizes[0], "threads": threads, "batch_size": batch,
            "ceiling_samples_per_s": round(ceiling, 1), "engine_samples_per_s": round(engine, 1),
            "ratio": round(engine / ceiling, 3)}


def plan_cost(workload: str, batches: int = 20) -> dict:
    """Seconds and peak traced memory to plan one epoch on one rank and compute a few batches."""
    from dlio_core.runner import _plan  # the runner's own planning step
    from dlio_core.dist import Dist

    cfg = load_config(workload)
    tracemalloc.start()
    t0 = time.perf_counter()
    plan = _plan(cfg, Dist(), "train", 1, random_seed=12345)
    for step in range(min(batches, plan.steps)):
        plan.batch(step)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"workload": workload, "steps_per_epoch": plan.steps, "plan_and_20_batches_s": round(seconds, 3),
            "peak_traced_MiB": round(peak / 2**20, 2)}


def import_time() -> float:
    best = float("inf")
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", "import time; t=time.perf_counter(); import dlio_core.config, "
                              "dlio_core.runner; print(time.perf_counter()-t)"], capture_output=True, text=True,
                             check=True)
        best = min(best, float(out.stdout.strip()))
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", default=None, help="where to generate the datasets (default: a temp dir)")
    ap.add_argument("--only", choices=sorted(DATASETS), default=None)
    args = ap.parse_args(argv)
    root = args.dir or tempfile.mkdtemp(prefix="dl-driver-bench-")
    results = {"datasets": [], "planning": [], "import_dlio_core_s": None}
    for name, spec in DATASETS.items():
        if args.only and name != args.only:
            continue
        r = bench_dataset(name, spec, root, args.threads, args.batch, args.repeat)
        results["datasets"].append(r)
        print(f"{name}: engine {r['engine_samples_per_s']} samples/s, ceiling {r['ceiling_samples_per_s']} "
              f"files/s -> ratio {r['ratio']}", flush=True)
    for workload in ("dlrm_b200", "resnet50_h100"):
        r = plan_cost(workload)
        results["planning"].append(r)
        print(f"plan {workload}: {r['plan_and_20_batches_s']} s, peak {r['peak_traced_MiB']} MiB", flush=True)
    results["import_dlio_core_s"] = round(import_time(), 3)
    print(f"import dlio_core (config + runner): {results['import_dlio_core_s']} s")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
