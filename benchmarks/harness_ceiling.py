"""How close the native engine gets to the raw-read ceiling of the same files, side by side.

For each dataset ((a) 4,096 npz files of 4 KiB, (b) 64 npz files of 16 MiB; one sample per file)
it measures, with the same thread count, interleaved round by round (the page cache warm):

- **ceiling**: ``threads`` threads released together, each reading its share of the files with
  ``os.open`` + ``os.readv`` into one reused buffer + ``os.close`` (sizes known: no stat, no
  allocation, no parsing);
- **native ceiling** (printed as a second reference, with the engine's ratio to it): the same threads each
  reading their whole share in one call to the C extension (``_cread.read_files``): the system calls
  alone, with no Python and no GIL between them. The ceiling above pays a GIL hand-off per system call,
  which the engine's native reader threads do not, so the engine can exceed it;
- **engine, fresh process** (the headline): what a user sees, a new ``dl-driver run`` process per
  round (``reader.data_loader: native``, ``computation_time: 0``, ``batch_size`` 4 and ``read_threads``
  = the ceiling's thread count, ``--epochs`` epochs), reporting DLIO's training throughput (samples/s
  over the measured window) and the process's peak RSS, which the engine bounds by its read-ahead
  buffers x the largest file; the ``pytorch`` loader (``read_threads`` DataLoader workers) gets the
  same fresh-process figure;
- diagnostics in this one warm process: the engine through ``dlio_core.runner.run(cfg, quiet=True)``
  (the figure this script used to lead with), ``NativeLoader.epoch`` drained by a bare loop (no runner),
  and the engine's other read paths on the same files: Python reader threads with one C call per batch,
  and without the C extension;
- for context: a plain ``np.load(path)["x"]`` loop (one thread), and, when torch is installed, a torch
  ``DataLoader`` with 2 workers (``np.load`` per item, ``batch_size`` 4, persistent workers, timed per epoch
  after the first so worker start-up is not counted).

Fresh processes are printed as min / median / max over the rounds, and as ratios, each against the
ceiling measured just before it (on a shared VM the machine changes from one moment to the next); the
in-process figures as the best of the rounds and the median of the run-by-run ratios. The script also
reports the epoch-planning time and traced memory for ``dlrm_b200`` and ``resnet50_h100`` on one rank,
and the import time of ``dlio_core`` alone and of the modules a run needs (fresh interpreters, best of 5).

Run: ``.venv/bin/python benchmarks/harness_ceiling.py [--threads 2] [--batch 4] [--repeat 5] [--epochs 1]
[--only b_64x16MiB] [--no-pytorch] [--dir /tmp/x] [--json out.json]``
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc

# Allow running from a source checkout without an install.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from dlio_core.config import load_config  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402
from dlio_core.listing import dataset_files  # noqa: E402
from dlio_core.runner import run  # noqa: E402
from dlio_core.storage import open_storage  # noqa: E402

from _fresh_runs import FreshRun, fresh_run, load_average, spread, spread_text, write_json  # noqa: E402
from _reference_readers import native_ceiling, np_load_loop, raw_ceiling, torch_loader  # noqa: E402

DATASETS = {
    "a_4096x4KiB": {"num_files_train": 4096, "record_length_bytes": 4096},
    "b_64x16MiB": {"num_files_train": 64, "record_length_bytes": 16 * 2**20},
}
LABELS = {
    "native_ceiling": "native ceiling (each thread's share in one C call: the system calls alone)",
    "engine": "  diagnostic: engine, runner.run in this warm process",
    "loader_only": "  diagnostic: engine, NativeLoader alone (no runner) in this process",
    "loader_threaded": "  diagnostic: NativeLoader, Python reader threads, C batch reads",
    "loader_python": "  diagnostic: NativeLoader, Python reader threads, no C extension",
    "np_load_loop": "np.load loop (1 thread)",
    "torch_dataloader_2_workers": "torch DataLoader (2 workers)",
}
# What the modules of one `dl-driver run` of the native engine over npz import.
RUN_MODULES = ("dlio_core.cli, dlio_core.config, dlio_core.runner, dlio_core.engine, dlio_core.formats.npz, "
               "dlio_core.sampling, dlio_core.storage, dlio_core.report.dlio, dlio_core.generate")


def _overrides(folder: str, spec: dict, threads: int, batch: int, out: str | None = None,
               epochs: int = 1, loader: str = "native") -> list[str]:
    return [
        f"++workload.dataset.data_folder={folder}",
        f"++workload.dataset.num_files_train={spec['num_files_train']}",
        f"++workload.dataset.record_length_bytes={spec['record_length_bytes']}",
        "++workload.dataset.num_files_eval=0",
        "++workload.dataset.num_subfolders_train=0",
        "++workload.dataset.num_subfolders_eval=0",
        "++workload.dataset.num_samples_per_file=1",
        f"++workload.reader.data_loader={loader}",
        f"++workload.reader.read_threads={threads}",
        f"++workload.reader.batch_size={batch}",
        "++workload.train.computation_time=0",
        f"++workload.train.epochs={epochs}",
        "++workload.workflow.evaluation=False",
        "++workload.workflow.checkpoint=False",
        "++workload.workflow.profiling=False",
    ] + ([] if out is None else [f"++hydra.run.dir={out}"])


# -- the engine ------------------------------------------------------------------------------------
def engine_run(cfg) -> float:
    """DLIO's training throughput of one run of the runner (what a user sees)."""
    result = run(cfg, quiet=True)
    return float(result.summary["metric"]["train_throughput_mean_samples_per_second"])


def engine_loader_only(cfg, storage, files: list[tuple[str, int]], read_path: str = "default") -> float:
    """Samples/s of ``NativeLoader.epoch`` drained by a bare loop (no runner, no compute, no metrics).

    ``read_path``: "default" (what a run takes), "threaded" (Python reader threads, each batch read by
    one C call), "python" (Python reader threads, os.open/os.preadv/os.close: no C extension).
    """
    from dlio_core.engine import pooled, whole_file
    from dlio_core.loaders import make_loader
    from dlio_core.reader import epoch_plan

    loader = make_loader(cfg, storage, files, split="train")
    plan = epoch_plan(cfg, split="train", epoch=1, random_seed=1)
    saved = pooled.can_pool, whole_file._cread
    if read_path != "default":
        pooled.can_pool = lambda inputs, batch_size: False
    if read_path == "python":
        whole_file._cread = None
    try:
        n = 0
        t0 = time.perf_counter()
        for batch in loader.epoch(plan):
            n += batch.num_samples
            batch.release()
        return n / (time.perf_counter() - t0)
    finally:
        pooled.can_pool, whole_file._cread = saved


def _buffer_bound(cfg, storage, files: list[tuple[str, int]]) -> dict:
    """The read buffers a run of the engine holds (what bounds its RSS beyond the interpreter's): one
    scratch set per reader thread and one for the consumer on the threaded path, one per step in flight
    (``in_flight + 1``) on the pooled path; each a batch of files side by side, or one largest file."""
    from dlio_core.engine import whole_file
    from dlio_core.loaders import make_loader

    loader = make_loader(cfg, storage, files, split="train")
    batch, largest = cfg.reader.batch_size, max(size for _, size in files)
    sets = loader.in_flight + 1 if loader.read_path(batch).name == "pooled" else loader.read_threads + 1
    each = batch * largest if batch * largest <= whole_file.BURST_MAX_BYTES else largest
    return {"read_buffers": sets, "read_buffer_bytes": each, "read_buffers_mib": round(sets * each / 2**20, 1)}


def engine_read_path(cfg, storage, files: list[tuple[str, int]]) -> str:
    """Which read path a run takes on these files: "pooled" (native threads) or "threaded"."""
    from dlio_core.loaders import make_loader

    loader = make_loader(cfg, storage, files, split="train")
    return loader.read_path(cfg.reader.batch_size).name


# -- one dataset -------------------------------------------------------------------------------------
def _fresh_summary(runs: list[FreshRun], ceilings: list[float], natives: list[float]) -> dict:
    """Fresh-process figures: samples/s, ratios against the ceiling run just before each, peak RSS."""
    rates = [r.samples_per_s for r in runs]
    out = {"runs_samples_per_s": [round(v, 1) for v in rates], "samples_per_s": spread(rates),
           "ratio": spread([v / c for v, c in zip(rates, ceilings)]),
           "peak_rss_mib": round(max(r.peak_rss_mib for r in runs), 1),
           "minor_faults": spread([float(r.minor_faults) for r in runs]),
           "wall_s": spread([r.wall_s for r in runs])}
    if natives:
        out["native_ratio"] = spread([v / c for v, c in zip(rates, natives)])
    return out


def bench_dataset(name: str, spec: dict, root: str, args) -> dict:
    threads, batch, repeat = args.threads, args.batch, args.repeat
    folder = os.path.join(root, name)
    out_dir = os.path.join(root, "out", name)
    cfg = load_config("default", _overrides(folder, spec, threads, batch, out_dir))
    storage = open_storage(folder)
    if not os.path.exists(os.path.join(folder, "dl-driver-manifest.json")):
        generate_dataset(cfg, progress=False)
    files = dataset_files(cfg, storage, "train")
    paths = [storage.path(rel) for rel, _ in files]
    sizes = [size for _, size in files]
    fresh_overrides = {"native": _overrides(folder, spec, threads, batch, epochs=args.epochs)}
    if not args.no_pytorch and _has_torch():
        fresh_overrides["pytorch"] = _overrides(folder, spec, threads, batch, epochs=args.epochs, loader="pytorch")
    raw_ceiling(paths, sizes, threads)  # warm the page cache
    engine_run(cfg)  # and this process's code paths (the diagnostics)
    runs: dict[str, list[float]] = {"ceiling": [], "native_ceiling": [], "engine": [], "loader_only": [],
                                    "loader_threaded": [], "loader_python": []}
    fresh: dict[str, list[FreshRun]] = {key: [] for key in fresh_overrides}
    fresh_ceilings: dict[str, list[float]] = {key: [] for key in fresh_overrides}
    fresh_natives: dict[str, list[float]] = {key: [] for key in fresh_overrides}
    if args.baselines:
        runs["np_load_loop"] = []
    for _ in range(repeat):  # interleaved, so drift in the machine hits every figure alike
        for key, overrides in fresh_overrides.items():  # each fresh process right after a ceiling run
            fresh_ceilings[key].append(raw_ceiling(paths, sizes, threads))
            native = native_ceiling(paths, sizes, threads)
            if native is not None:
                fresh_natives[key].append(native)
            fresh[key].append(fresh_run(overrides, out_dir=out_dir))
        runs["ceiling"].append(raw_ceiling(paths, sizes, threads))
        native = native_ceiling(paths, sizes, threads)
        if native is not None:
            runs["native_ceiling"].append(native)
        runs["engine"].append(engine_run(cfg))
        runs["loader_only"].append(engine_loader_only(cfg, storage, files))
        runs["loader_threaded"].append(engine_loader_only(cfg, storage, files, "threaded"))
        runs["loader_python"].append(engine_loader_only(cfg, storage, files, "python"))
        if args.baselines:
            runs["np_load_loop"].append(np_load_loop(paths))
    if args.baselines:
        tl = torch_loader(paths, batch, workers=2, epochs=repeat)
        if tl is not None:
            runs["torch_dataloader_2_workers"] = [tl]
    ceiling = max(runs["ceiling"])
    out = {"dataset": name, "files": len(files), "file_bytes": sizes[0], "threads": threads, "batch_size": batch,
           "repeat": repeat, "epochs": args.epochs, "engine_read_path": engine_read_path(cfg, storage, files),
           "load_average": load_average(), **_buffer_bound(cfg, storage, files)}
    for key in fresh:
        out[f"fresh_{key}"] = _fresh_summary(fresh[key], fresh_ceilings[key], fresh_natives[key])
    for key, values in runs.items():
        if not values:  # the native ceiling without the C extension
            continue
        out[f"{key}_samples_per_s"] = round(max(values), 1)
        if key != "ceiling":
            out[f"{key}_ratio"] = round(max(values) / ceiling, 3)
            if len(values) == repeat:  # each run against the ceiling measured just before it
                paired = sorted(v / c for v, c in zip(values, runs["ceiling"]))
                out[f"{key}_paired_ratio_median"] = round(paired[len(paired) // 2], 3)
        out[f"{key}_runs_samples_per_s"] = [round(v, 1) for v in values]
    if runs["native_ceiling"]:  # the in-process engine against the system calls alone
        native = runs["native_ceiling"]
        out["engine_native_ratio"] = round(max(runs["engine"]) / max(native), 3)
        paired = sorted(v / c for v, c in zip(runs["engine"], native))
        out["engine_native_paired_ratio_median"] = round(paired[len(paired) // 2], 3)
    return out


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# -- planning and import -----------------------------------------------------------------------------
def plan_cost(workload: str, batches: int = 20) -> dict:
    """Seconds to plan one epoch on one rank and compute its first batches (untraced), and the peak
    memory traced while doing it again."""
    from dlio_core.reader import epoch_plan  # the runner's own planning step

    cfg = load_config(workload)

    def once():
        plan = epoch_plan(cfg, split="train", epoch=1, random_seed=12345)
        for step in range(min(batches, plan.steps)):
            plan.batch(step)
        return plan

    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        plan = once()
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    once()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"workload": workload, "steps_per_epoch": plan.steps, "samples_per_step": cfg.reader.batch_size,
            f"plan_and_{batches}_batches_s": round(best, 4), "peak_traced_MiB": round(peak / 2**20, 2)}


def import_time(modules: str) -> float:
    """Best of 5 fresh interpreters: seconds to ``import`` ``modules`` (after the interpreter is up)."""
    best = float("inf")
    code = f"import time; t = time.perf_counter(); import {modules}; print(time.perf_counter() - t)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), os.environ.get("PYTHONPATH")])))
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        best = min(best, float(out.stdout.strip()))
    return best


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform()}


def _print_dataset(name: str, r: dict) -> None:
    print(f"{name} ({r['files']:,} files of {r['file_bytes']:,} B, {r['threads']} threads, batch {r['batch_size']}, "
          f"{r['repeat']} rounds, load average {r['load_average']}): ceiling best {r['ceiling_samples_per_s']:,.0f} "
          f"samples/s; the engine's read path: {r['engine_read_path']}", flush=True)
    for key, label in (("native", "engine, fresh `dl-driver run` (native)"), ("pytorch", "pytorch loader, fresh "
                                                                                    "`dl-driver run`")):
        f = r.get(f"fresh_{key}")
        if f is None:
            continue
        print(f"  {name} {label}, {r['epochs']} epoch(s) per process: {spread_text(f['samples_per_s'])} samples/s; "
              f"ratio to the ceiling run before each: {spread_text(f['ratio'], '.3f')}", flush=True)
        if "native_ratio" in f:
            print(f"    against the native ceiling: ratio {spread_text(f['native_ratio'], '.3f')}", flush=True)
        print(f"    peak RSS {f['peak_rss_mib']:.0f} MiB (the engine's read buffers: {r['read_buffers']} x "
              f"{r['read_buffer_bytes']:,} B = {r['read_buffers_mib']:.1f} MiB, plus the interpreter); minor faults "
              f"{spread_text(f['minor_faults'])}; process wall {spread_text(f['wall_s'], '.2f')} s", flush=True)
    for key, label in LABELS.items():
        if f"{key}_ratio" in r:
            paired = r.get(f"{key}_paired_ratio_median")
            print(f"  {name} {label}: {r[f'{key}_samples_per_s']:,.0f} samples/s, ratio {r[f'{key}_ratio']:.3f}"
                  + ("" if paired is None else f" (run by run: median {paired:.3f})"), flush=True)
    if "engine_native_ratio" in r:
        print(f"  {name} diagnostic engine in this process against the native ceiling: ratio "
              f"{r['engine_native_ratio']:.3f} (run by run: median {r['engine_native_paired_ratio_median']:.3f})",
              flush=True)


def _measure(args, root: str, results: dict) -> None:
    print(f"machine: {results['machine']['cpu']}, {results['machine']['cpus']} CPUs, "
          f"Python {results['machine']['python']}", flush=True)
    for name, spec in DATASETS.items():
        if args.only and name != args.only:
            continue
        r = bench_dataset(name, spec, root, args)
        results["datasets"].append(r)
        _print_dataset(name, r)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5, help="rounds: fresh processes and in-process runs each")
    ap.add_argument("--epochs", type=int, default=1, help="epochs per fresh `dl-driver run` process")
    ap.add_argument("--no-pytorch", action="store_true", help="skip the fresh runs of the pytorch loader")
    ap.add_argument("--dir", default=None, help="where to generate the datasets (default: a temp dir, reused "
                    "when it already holds them)")
    ap.add_argument("--only", choices=sorted(DATASETS), default=None)
    ap.add_argument("--no-baselines", action="store_true", help="skip the np.load loop and torch DataLoader")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--spinners", type=int, default=0,
                    help="diagnostic: run this many lowest-priority busy loops (other processes) meanwhile, so "
                    "idle vCPUs never halt and cross-thread wake-ups cost what they do on a busy or bare-metal "
                    "host; it takes CPU from every contestant, the ceiling included (see RESULTS.md)")
    args = ap.parse_args(argv)
    args.baselines = not args.no_baselines
    # Every figure here is read from a warm page cache: runs in this process (and, through _fresh_runs,
    # the fresh ones) evict nothing before their epochs unless the environment asks for it.
    os.environ.setdefault("DL_DRIVER_EVICT_PAGE_CACHE", "0")
    root = args.dir or os.path.join(tempfile.gettempdir(), "dl-driver-bench")
    results: dict = {"machine": machine(), "spinners": args.spinners, "datasets": [], "planning": [], "import_s": {}}
    spinners = [subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", "while True: pass"])
                for _ in range(args.spinners)]
    try:
        _measure(args, root, results)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    for workload in ("dlrm_b200", "resnet50_h100"):
        r = plan_cost(workload)
        results["planning"].append(r)
        print(f"plan {workload} (1 rank, {r['steps_per_epoch']:,} steps): {r['plan_and_20_batches_s'] * 1e3:.2f} ms "
              f"for the plan and 20 batches, peak {r['peak_traced_MiB']} MiB traced", flush=True)
    for label, modules in (("dlio_core", "dlio_core"), ("run_modules", RUN_MODULES)):
        results["import_s"][label] = round(import_time(modules), 3)
    print(f"import dlio_core: {results['import_s']['dlio_core']} s; the modules a native npz run needs: "
          f"{results['import_s']['run_modules']} s")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
