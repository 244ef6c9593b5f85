"""What a batch of small files costs the consumer's thread, piece by piece: the per-batch Python of the
pooled read path and the runner's per-step Python, against the system calls of the reads themselves.

On the 4,096 x 4 KiB dataset of ``harness_ceiling.py`` (batch 4, one sample per file) it times, in
thread CPU time (``time.thread_time``: what the thread ran, not the moments a loaded machine took it
away), the least of ``--rounds`` rounds of one 1,024-step epoch, per batch:

- ``prepare`` and ``finish`` of ``WholeFileBatches`` (plan a batch's reads; check and parse them);
- the runner's step (``run_steps.train_epoch``) over a loader that hands out one ready-made batch;
- the pooled path's whole epoch with one native reader (most reads then run on the consumer's thread),
  and with none (every read on the consumer's thread: less the ReadPool floor below, the loader's Python);
- the floor: the C extension reading the batch's 4 files (open + read + close each) in one call, and
  the same reads run by a ``ReadPool`` without threads (its files opened relative to their directory).

With ``--before DIR`` (a ``dlio_core`` folder of another commit, e.g. from ``git archive``) the same
pieces of that tree's ``engine/whole_file.py``, ``engine/pooled.py`` and ``dist.py`` run beside this
tree's, interleaved round by round: an A/B of the per-batch Python in one process.

(Not a benchmark itself, a diagnostic: ``run_all.py`` skips modules whose name starts with ``_``.)

Run: ``.venv/bin/python benchmarks/_consumer_costs.py [--rounds 30] [--dir /tmp/dl-driver-bench]
[--before /tmp/before/dlio_core]``, after ``harness_ceiling.py --only a_4096x4KiB`` made the dataset.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

from dlio_core import dist as dist_here  # noqa: E402
from dlio_core.config import load_config  # noqa: E402
from dlio_core.emulate import make_compute  # noqa: E402
from dlio_core.engine import pooled, whole_file  # noqa: E402
from dlio_core.engine.batch import Batch  # noqa: E402
from dlio_core.listing import dataset_files  # noqa: E402
from dlio_core.loaders import make_loader  # noqa: E402
from dlio_core.metrics import PhaseRecord  # noqa: E402
from dlio_core.reader import epoch_plan  # noqa: E402
from dlio_core.run_end import Progress, RunSync  # noqa: E402
from dlio_core.run_steps import train_epoch  # noqa: E402
from dlio_core.signals import StopSignals  # noqa: E402
from dlio_core.storage import open_storage  # noqa: E402
from harness_ceiling import DATASETS, _overrides  # noqa: E402

NAME = "a_4096x4KiB"


def _module(name: str, path: str):
    """``path`` loaded as module ``name`` inside ``dlio_core`` (its relative imports find this tree's)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pieces(loader, plan, cfg, wf, po, di) -> dict:
    """The timed callables (one epoch's worth each) built from the modules ``wf``, ``po``, ``di``."""
    steps = plan.steps
    planned = [pooled._Planner(plan, steps).batch(s) for s in range(steps)]
    reads = wf.WholeFileBatches(loader.inputs, loader._pool)
    scratch = loader._scratches.take()
    reads.reserve(scratch, cfg.reader.batch_size)
    prep = reads.prepare(planned[0][0], scratch)
    got = whole_file._cread.read_files(prep.paths, prep.bufs)[0]
    one_reader = po.PooledPath(loader.inputs, reads, loader._scratches, loader._pool)
    one_reader.read_threads = 1
    no_reader = po.PooledPath(loader.inputs, reads, loader._scratches, loader._pool)
    no_reader.read_threads = 0  # every read on the consumer: minus the ReadPool floor, the loader's Python
    compute = make_compute(cfg, np.random.default_rng(0))
    ready = Batch(0, 4, sum(got), 0, 0.0, 0.0, None)

    class Ready:  # a loader whose batches cost nothing: the runner's own share
        def epoch(self, plan, max_steps):
            return (ready for _ in range(max_steps))

    def prepare():
        for files, _ in planned:
            reads.prepare(files, scratch)

    def finish():
        for _, samples in planned:
            reads.finish(0, samples, prep, got, 0.0, None)

    def runner_step():
        with StopSignals() as stop:
            train_epoch(PhaseRecord(4), Ready(), None, steps, compute, RunSync(di.Dist(), stop), Progress())

    def pooled_epoch_one_reader():
        for batch in one_reader.epoch(plan, steps):
            batch.release()

    def pooled_epoch_no_reader():
        for batch in no_reader.epoch(plan, steps):
            batch.release()

    return {"prepare": prepare, "finish": finish, "runner step": runner_step,
            "pooled epoch, 1 native reader": pooled_epoch_one_reader,
            "pooled epoch, all reads here": pooled_epoch_no_reader}


def c_reads(loader, plan) -> callable:
    """The floor: each batch's files read by one ``_cread.read_files`` call into one reused array."""
    planned = [pooled._Planner(plan, plan.steps).batch(s) for s in range(plan.steps)]
    paths = [[loader.inputs.paths[f] for f in files] for files, _ in planned]
    size = max(loader.inputs.size_list)
    buf = np.empty(4 * ((size + 63) & ~63), np.uint8)
    views = [memoryview(buf)[i * ((size + 63) & ~63):][:size] for i in range(4)]

    def read():
        for batch_paths in paths:
            whole_file._cread.read_files(batch_paths, views[:len(batch_paths)])

    def read_in_pool():  # the same reads through a ReadPool without threads: opened by directory (openat)
        with whole_file._cread.ReadPool(0) as pool:
            submit, wait = pool.submit, pool.wait
            for batch_paths in paths:
                wait(submit(batch_paths, views[:len(batch_paths)]))

    return read, read_in_pool


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "dl-driver-bench"))
    ap.add_argument("--before", default=None, help="a dlio_core folder of another commit to compare with")
    args = ap.parse_args(argv)
    folder = os.path.join(args.dir, NAME)
    cfg = load_config("default", _overrides(folder, DATASETS[NAME], 2, 4))
    storage = open_storage(folder)
    loader = make_loader(cfg, storage, dataset_files(cfg, storage, "train"), split="train")
    plan = epoch_plan(cfg, split="train", epoch=1, random_seed=1)
    trees = {"this tree": pieces(loader, plan, cfg, whole_file, pooled, dist_here)}
    if args.before:
        b = args.before
        trees = {"before": pieces(loader, plan, cfg, _module("dlio_core.engine._whole_file_before",
                                                             f"{b}/engine/whole_file.py"),
                                  _module("dlio_core.engine._pooled_before", f"{b}/engine/pooled.py"),
                                  _module("dlio_core._dist_before", f"{b}/dist.py")), **trees}
    by_path, by_directory = c_reads(loader, plan)
    trees["floor"] = {"C read of the batch's files": by_path, "the same in a ReadPool (openat)": by_directory}
    least: dict[tuple[str, str], float] = {}
    for rnd in range(args.rounds):  # interleaved, alternating the order
        for tree in (list(trees) if rnd % 2 else list(trees)[::-1]):
            for piece, fn in trees[tree].items():
                t0 = time.thread_time()
                fn()
                spent = time.thread_time() - t0
                least[tree, piece] = min(least.get((tree, piece), spent), spent)
    print(f"{NAME}, batch 4, {plan.steps} steps; thread CPU per batch, least of {args.rounds} rounds "
          f"(load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}):")
    for (tree, piece), seconds in least.items():
        print(f"  {tree:10s} {piece:32s} {seconds / plan.steps * 1e6:7.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
