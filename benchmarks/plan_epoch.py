"""How long planning an epoch takes, and how much memory, at MLPerf scale (no I/O).

    python benchmarks/plan_epoch.py [--batches 200]

Prints, per workload shape and shuffle policy: seconds to build the plan and compute its first batch,
tracemalloc peak MiB while building it and computing 20 batches, and microseconds per batch. The
reference point is what a materialised order would need: 8 bytes per sample for a shuffled index table
(DLIO keeps a Python dict entry per sample, which is several times more).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from dlio_core.sampling import EpochPlan

# (name, files, samples per file, batch): dlrm_b200 is the case the design must survive.
SHAPES = [
    ("dlrm_b200", 1024, 4_718_592, 16_384),
    ("resnet50", 1024, 1251, 400),
    ("unet3d", 168, 1, 7),
]
POLICIES = [("off", "off"), ("seed", "off"), ("off", "seed"), ("seed", "seed")]


def build(files: int, spf: int, batch: int, fs: str, ss: str) -> EpochPlan:
    return EpochPlan(files, spf, batch, world=1, rank=0, seed=123, epoch=1, file_shuffle=fs, sample_shuffle=ss)


def measure(files: int, spf: int, batch: int, fs: str, ss: str, batches: int) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    plan = build(files, spf, batch, fs, ss)
    plan.batch(0)
    plan_s = time.perf_counter() - t0

    tracemalloc.start()  # separate pass: tracing slows allocation, so it is not timed
    traced = build(files, spf, batch, fs, ss)
    for step in range(min(20, traced.steps)):
        traced.batch(step)
    peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    n = min(batches, plan.steps)
    stride = max(plan.steps // n, 1)  # spread over the epoch: wrap-free, walk-heavy positions included
    t0 = time.perf_counter()
    for i in range(n):
        plan.batch(i * stride)
    per_batch_us = (time.perf_counter() - t0) / n * 1e6
    return plan_s, peak_mib, per_batch_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="batches timed per case")
    args = parser.parse_args()
    print(f"{'workload':<10} {'file/sample':<11} {'samples':>14} {'batch':>6} {'plan_s':>8} "
          f"{'peak_MiB':>9} {'us/batch':>9} {'table_GiB':>10}")
    for name, files, spf, batch in SHAPES:
        for fs, ss in POLICIES:
            plan_s, peak, us = measure(files, spf, batch, fs, ss, args.batches)
            table_gib = files * spf * 8 / 2**30
            print(f"{name:<10} {fs + '/' + ss:<11} {files * spf:>14,} {batch:>6} {plan_s:>8.4f} "
                  f"{peak:>9.2f} {us:>9.1f} {table_gib:>10.3f}")


if __name__ == "__main__":
    main()
