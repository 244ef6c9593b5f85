"""Many ranks on one machine: start-to-first-step, per-step synchronisation and rank 0's peak memory.

    python benchmarks/ranks.py [--ranks 2 8 32 64] [--steps 20] [--repeat 1]

Each rank count runs ``dl-driver run`` under ``mpirun --oversubscribe`` (native loader, 1 sample of
4 KiB per step and rank, 1 ms of compute, 2 epochs of ``--steps`` steps, no framework imported) on
one dataset generated beforehand, and, in the same invocation, the ceiling ``_ranks_bare.py``: mpirun
starting Python + numpy + mpi4py and timing bare ``MPI_Barrier`` steps (DLIO's per-step sync).

Printed per rank count:

- start-to-first-step: from launching mpirun to the last rank beginning its first step (the steps
  files' ``start_s`` + ``wall_offset_s``), also per rank; ratio to the bare launch-to-MPI-ready time;
- per-step sync: our status exchange alone (``Dist.step_status`` in a loop, nothing else) against a
  bare ``MPI_Barrier`` loop at the same rank count (ratio); and, in the run, the mean seconds each rank
  waited at the exchange per training step (every step but each epoch's first), which adds the
  spread of the ranks' reads and compute (a rank waits there for the slowest);
- rank 0's peak RSS (``report.json`` ``peak_rss_bytes_by_rank``); ratio to the bare rank 0's.

On this 2-core VM the ranks outnumber the cores up to 32 to 1, so every figure includes waiting
for a core; compare rank counts with each other and with the ceiling, not with real clusters.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dlio_core.report.steps import read_steps

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
MIB = 2**20


def _env() -> dict[str, str]:
    """This environment without a surrounding launcher's variables (each mpirun starts its own job)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_", "PMI_", "PMIX_", "PRTE_", "SLURM_", "PALS_", "TORCHELASTIC_"))}
    env.update(OMP_NUM_THREADS="1", DL_DRIVER_RANK_TIMEOUT_S="600")
    return env


def _mpirun(n: int) -> list[str]:
    return [str(BIN / "mpirun"), "-np", str(n), "--oversubscribe", "--allow-run-as-root"]


def _workload(data: Path, files: int) -> list[str]:
    return ["default", f"++workload.dataset.data_folder={data}", "++workload.reader.data_loader=native",
            f"++workload.dataset.num_files_train={files}", "++workload.dataset.num_files_eval=0",
            "++workload.dataset.num_samples_per_file=1", "++workload.dataset.record_length_bytes=4096",
            "++workload.reader.batch_size=1", "++workload.reader.read_threads=1",
            "++workload.workflow.evaluation=False", "++workload.train.computation_time=0.001",
            "++workload.train.epochs=2"]


def _check(res: subprocess.CompletedProcess, what: str) -> None:
    if res.returncode != 0:
        raise SystemExit(f"{what} failed (exit {res.returncode}): {(res.stderr or res.stdout)[-2000:]}")


def generate(data: Path, files: int) -> None:
    res = subprocess.run([str(BIN / "dl-driver"), "--quiet", "generate", *_workload(data, files),
                          "++workload.workflow.generate_data=True", f"++hydra.run.dir={data}.gen"],
                         capture_output=True, text=True, env=_env())
    _check(res, "generation")


def run_ours(data: Path, out: Path, ranks: int, steps: int) -> dict[str, float]:
    launch = time.time()
    res = subprocess.run([*_mpirun(ranks), str(BIN / "dl-driver"), "--quiet", "run", *_workload(data, ranks * steps),
                          f"++hydra.run.dir={out}"], capture_output=True, text=True, env=_env())
    _check(res, f"dl-driver run on {ranks} ranks")
    firsts, barriers = [], []
    for r in range(ranks):
        t = read_steps(str(out / f"{r}_steps.npz"))
        train = t["phase"] == 0
        firsts.append(float(t["start_s"][train][0] + t["wall_offset_s"]))
        barriers.append(t["barrier_s"][train & (t["step"] > 1)])
    report = json.loads((out / "report.json").read_text())
    status = report["run_status"]["status"]
    if status != "complete":
        raise SystemExit(f"{ranks} ranks: run {status}: {report['run_status']['reason']}")
    return {"first_step_s": max(firsts) - launch, "sync_s": float(np.mean(np.concatenate(barriers))),
            "rank0_rss": float(report["peak_rss_bytes_by_rank"][0]), "wall_s": time.time() - launch}


def run_bare(ranks: int, steps: int) -> dict[str, float]:
    launch = time.time()
    res = subprocess.run([*_mpirun(ranks), sys.executable, str(HERE / "_ranks_bare.py"), str(steps)],
                         capture_output=True, text=True, env=_env())
    _check(res, f"bare mpi4py on {ranks} ranks")
    line = json.loads(res.stdout.strip().splitlines()[-1])
    return {"ready_s": line["ready_wall"] - launch, "barrier_s": line["barrier_s"], "exchange_s": line["exchange_s"],
            "rank0_rss": float(line["rank0_peak_rss_bytes"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ranks", type=int, nargs="+", default=[2, 8, 32, 64])
    ap.add_argument("--steps", type=int, default=20, help="training steps per epoch (2 epochs)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per rank count (figures: min-max)")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load {load:.1f} at start; ranks {args.ranks}, {args.steps} steps x 2 epochs",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="dl-driver-ranks-") as tmp:
        data = Path(tmp) / "data"
        generate(data, max(args.ranks) * args.steps)
        for n in args.ranks:
            ours, bare = [], []
            for i in range(args.repeat):
                bare.append(run_bare(n, args.steps))
                ours.append(run_ours(data, Path(tmp) / f"out-{n}-{i}", n, args.steps))

            def span(rows: list[dict], key: str, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
                values = sorted(r[key] * scale for r in rows)
                low, high = fmt.format(values[0]), fmt.format(values[-1])
                return low if low == high else f"{low}-{high}"

            first = np.mean([r["first_step_s"] for r in ours])
            ratio_start = first / np.mean([b["ready_s"] for b in bare])
            ratio_sync = np.mean([b["exchange_s"] for b in bare]) / np.mean([b["barrier_s"] for b in bare])
            ratio_rss = np.mean([r["rank0_rss"] for r in ours]) / np.mean([b["rank0_rss"] for b in bare])
            print(f"{n:3d} ranks: start-to-first-step {span(ours, 'first_step_s')} s "
                  f"({span(ours, 'first_step_s', 1000 / n, '{:.0f}')} ms per rank; bare mpirun+mpi4py ready "
                  f"{span(bare, 'ready_s')} s), ratio {ratio_start:.2f}", flush=True)
            print(f"{n:3d} ranks: per-step sync: status exchange {span(bare, 'exchange_s', 1e3, '{:.3f}')} ms, "
                  f"bare MPI_Barrier {span(bare, 'barrier_s', 1e3, '{:.3f}')} ms, ratio {ratio_sync:.2f}; "
                  f"in the run {span(ours, 'sync_s', 1e3, '{:.3f}')} ms a step at the exchange", flush=True)
            print(f"{n:3d} ranks: rank 0 peak RSS {span(ours, 'rank0_rss', 1 / MIB, '{:.0f}')} MiB "
                  f"(bare {span(bare, 'rank0_rss', 1 / MIB, '{:.0f}')} MiB), ratio {ratio_rss:.2f}; "
                  f"whole run {span(ours, 'wall_s', 1, '{:.1f}')} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
