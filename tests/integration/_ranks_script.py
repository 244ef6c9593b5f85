"""Run by the ``test_ranks_*`` tests under mpirun or torchrun: steps ended by the status exchange.

``python _ranks_script.py OUT_DIR MODE RANK STEP [STEPS]`` initialises :mod:`dlio_core.dist`, installs
:class:`~dlio_core.signals.StopSignals` and runs up to STEPS steps of 10 ms, each ending with
``Dist.step_status``. On step STEP, rank RANK does what MODE says:

- ``ok``: nothing (a clean run);
- ``fail``: reports a failure ("injected failure at step STEP");
- ``sigterm`` / ``sigint``: sends itself that signal;
- ``kill``: SIGKILLs itself;
- ``stop``: SIGSTOPs itself (alive but silent: the others' wait must time out).

Every rank writes ``OUT_DIR/rank{r}.json`` (topology, steps done, outcome or the lost-rank error) and
``OUT_DIR/pid{r}`` at start; rank 0 prints the outcome's line. Exit codes: the outcome's (0, 1 failed,
130/143 interrupted) through ``Dist.finish`` after a bounded final barrier; a lost rank ends the job through ``Dist.abandon(1)``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from dlio_core.dist import RankLost, RankStatus, init
from dlio_core.signals import StopSignals


def _write(out_dir: str, rank: int, record: dict) -> None:
    path = os.path.join(out_dir, f"rank{rank}.json")
    with open(f"{path}.tmp", "w", encoding="utf-8") as fh:
        json.dump(record, fh)
    os.replace(f"{path}.tmp", path)


def main(out_dir: str, mode: str, bad_rank: int, bad_step: int, steps: int = 20) -> None:
    dist = init()
    with open(os.path.join(out_dir, f"pid{dist.rank}"), "w", encoding="utf-8") as fh:
        fh.write(str(os.getpid()))
    record = {"rank": dist.rank, "world": dist.world, "hostname": dist.hostname, "hosts": dist.hosts(),
              "node": dist.node, "num_hosts": dist.num_hosts, "local_rank": dist.local_rank,
              "local_world": dist.local_world, "host_of_rank": list(dist.host_of_rank),
              "launcher": dist.launcher, "steps": 0}
    _write(out_dir, dist.rank, record)
    # Installed for good: a launcher that signals this rank after the others exited must not cut it short.
    stop = StopSignals().install()
    for step in range(1, steps + 1):
        time.sleep(0.01)  # the step's work
        status, message = RankStatus.OK, ""
        if dist.rank == bad_rank and step == bad_step:
            if mode == "fail":
                status, message = RankStatus.FAILED, f"injected failure at step {step}\n(second line)"
            elif mode in ("sigterm", "sigint"):
                os.kill(os.getpid(), signal.SIGTERM if mode == "sigterm" else signal.SIGINT)
            elif mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif mode == "stop":
                os.kill(os.getpid(), signal.SIGSTOP)
        if status == RankStatus.OK and stop.received is not None:
            status, message = RankStatus.INTERRUPTED, f"{stop.name} received"
        try:
            outcome = dist.step_status(status, message, code=stop.received or 0, where=f"step {step}")
        except RankLost as exc:
            record.update(steps=step - 1, lost=str(exc), lost_at=exc.where, timeout_s=exc.timeout_s)
            _write(out_dir, dist.rank, record)
            print(exc, flush=True)
            dist.abandon(1)
        record["steps"] = step
        if not outcome.ok:
            break
    record.update(status=outcome.status.name, failed_rank=outcome.rank, message=outcome.message,
                  signum=outcome.signum, exit_code=outcome.exit_code)
    _write(out_dir, dist.rank, record)
    if dist.is_root:
        print(f"outcome: {outcome.describe()} (step {record['steps']})", flush=True)
    # No rank exits (which makes mpirun end the others) before every rank has written its file.
    dist.barrier(timeout_s=dist.rank_timeout_s)
    dist.finish(outcome.exit_code)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], int(args[2]), int(args[3]), *(int(a) for a in args[4:5]))
