"""The ceiling for ``ranks.py``: what mpirun, Python, numpy and mpi4py alone cost at N ranks.

Run under ``mpirun -np N``; rank 0 prints one JSON line: the wall time (``time.time()``) at which the
last rank was ready (MPI initialised), the mean seconds of a bare ``MPI_Barrier`` per step (DLIO's
per-step synchronisation, nothing else in the loop) over ``STEPS`` steps, the mean seconds of our
status exchange alone (``Dist.step_status``, all ranks ok) over as many steps, and rank 0's peak RSS
(measured before ``dlio_core`` is imported: the bare process).
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np
from mpi4py import MPI

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 40

comm = MPI.COMM_WORLD
ready = comm.allreduce(time.time(), op=MPI.MAX)
comm.Barrier()
t0 = time.perf_counter()
for _ in range(STEPS):
    comm.Barrier()
barrier_s = comm.allreduce((time.perf_counter() - t0) / STEPS, op=MPI.SUM) / comm.Get_size()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

from dlio_core.dist import init  # noqa: E402 - after the bare figures

dist = init()
dist.step_status()
t0 = time.perf_counter()
for _ in range(STEPS):
    dist.step_status()
exchange_s = comm.allreduce((time.perf_counter() - t0) / STEPS, op=MPI.SUM) / comm.Get_size()
if comm.Get_rank() == 0:
    print(json.dumps({"ready_wall": ready, "barrier_s": barrier_s, "exchange_s": exchange_s,
                      "rank0_peak_rss_bytes": rss, "numpy": np.__version__}), flush=True)
