"""Fresh ``dl-driver run`` processes: the speed a user sees, as ``harness_ceiling.py`` and
``object_store_fresh.py`` time it.

Each call of :func:`fresh_run` starts the CLI as a user does (``dl-driver run default ++...``, a new
interpreter: cold imports, cold buffers, the page cache as the caller left it) and returns DLIO's
training throughput from the run's ``summary.json`` (samples/s over the measured window, the mean over
epochs), with the process's peak RSS and minor page faults. Those come from ``wait4`` in a small
launcher process (``_LAUNCH``), not in the caller: Linux charges a child's peak RSS with the RSS of the
process that spawned it (exec records the spawner's high-water mark), so a child of the benchmark
would report the benchmark's few hundred MiB; the launcher's ~10 MiB is below any run's own.
:func:`spread` turns several runs into the min / median / max the benchmarks print.

(Not a benchmark itself: ``run_all.py`` skips modules whose name starts with ``_``.)

Example::

    r = fresh_run(["++workload.dataset.data_folder=/tmp/x", ...], out_dir="/tmp/out")
    r.samples_per_s, r.peak_rss_mib
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Runs argv[1:], its output discarded, and prints [exit code, peak RSS KiB, minor faults] of it.
_LAUNCH = ("import json, os, subprocess, sys\n"
           "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
           "_, status, ru = os.wait4(p.pid, 0)\n"
           "print(json.dumps([os.waitstatus_to_exitcode(status), ru.ru_maxrss, ru.ru_minflt]))")


@dataclass(frozen=True)
class FreshRun:
    """One ``dl-driver run`` process: DLIO's training throughput and what the process cost."""

    samples_per_s: float  # train_throughput_mean_samples_per_second (mean over epochs)
    epochs_samples_per_s: list[float]  # each epoch's
    peak_rss_mib: float  # the child's ru_maxrss
    minor_faults: int  # the child's ru_minflt (a huge page counts once)
    wall_s: float  # the whole process: start-up, imports, run, report


def dl_driver_command() -> list[str]:
    """How a user starts the CLI: the ``dl-driver`` script next to this interpreter (the venv's), or
    the same entry point through this interpreter when there is no script (a source checkout)."""
    script = os.path.join(os.path.dirname(sys.executable), "dl-driver")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-c", "import sys; from dlio_core.cli import main; sys.exit(main())"]


def fresh_run(overrides: list[str], *, out_dir: str, workload: str = "default",
              env: dict[str, str] | None = None) -> FreshRun:
    """Run ``dl-driver run --quiet <workload> <overrides>`` in a new process, its results under a fresh
    folder in ``out_dir`` (removed after); raise with its error output when it fails. The page cache
    stays as the caller left it (``$DL_DRIVER_EVICT_PAGE_CACHE`` is 0 unless ``env`` sets it)."""
    os.makedirs(out_dir, exist_ok=True)
    out = tempfile.mkdtemp(prefix="fresh-", dir=out_dir)
    cmd = [*dl_driver_command(), "run", "--quiet", workload, *overrides, f"++hydra.run.dir={out}"]
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [full_env.get("PYTHONPATH"), ROOT]))  # theirs first
    # The figures are warm-page-cache runs against warm ceilings: no eviction before each epoch unless the
    # caller's environment asks for it (dlio_core.node_work reads the variable; an older tree ignores it).
    full_env.setdefault("DL_DRIVER_EVICT_PAGE_CACHE", "0")
    try:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _LAUNCH, *cmd], capture_output=True, text=True,
                              env=full_env, cwd=ROOT)
        wall = time.perf_counter() - t0
        try:
            code, rss_kib, faults = json.loads(done.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            code, rss_kib, faults = done.returncode or 1, 0, 0
        if code:
            raise RuntimeError(f"`dl-driver run ... {' '.join(cmd[-2:])}` exited {code}: {done.stderr[-2000:]}")
        found = glob.glob(os.path.join(out, "**", "summary.json"), recursive=True)
        if not found:
            raise RuntimeError(f"dl-driver run left no summary.json under {out}")
        with open(found[0]) as f:
            metric = json.load(f)["metric"]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return FreshRun(samples_per_s=float(metric["train_throughput_mean_samples_per_second"]),
                    epochs_samples_per_s=[float(x) for x in metric["train_throughput_samples_per_second"]],
                    peak_rss_mib=rss_kib / 1024, minor_faults=int(faults), wall_s=wall)


def spread(values: list[float]) -> dict[str, float]:
    """``{"min", "median", "max"}`` of ``values``.

    >>> spread([3.0, 1.0, 2.0])
    {'min': 1.0, 'median': 2.0, 'max': 3.0}
    """
    return {"min": min(values), "median": float(statistics.median(values)), "max": max(values)}


def spread_text(s: dict[str, float], fmt: str = ",.0f") -> str:
    """``min / median / max`` as one phrase.

    >>> spread_text({"min": 0.5, "median": 0.75, "max": 1.0}, ".2f")
    'min 0.50 / median 0.75 / max 1.00'
    """
    return f"min {s['min']:{fmt}} / median {s['median']:{fmt}} / max {s['max']:{fmt}}"


def load_average() -> str:
    """The 1/5/15-minute load averages, to print beside figures from a shared machine."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def write_json(path: str | None, results: dict) -> None:
    """Write a benchmark's ``results`` to ``path`` (its ``--json``), indented; nothing when ``path`` is None."""
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=2)
