"""Run a planned datagen or run: one timestamp folder per loop, the ranks' output tee'd into its logs, and the
run's metadata JSON (arguments, parameters, overrides, cluster information, the command, timings) beside
DLIO's files.

Each loop writes ``<benchmark>_<command>.stdout.log`` / ``.stderr.log`` and ``<benchmark>_<stamp>_metadata.json``
in its folder; dl-driver itself writes ``summary.json``, the per-rank files, ``dlio.log`` and
``dlio_config/{config,overrides}.yaml`` there (``++hydra.run.dir``, ``++hydra.output_subdir=dlio_config``).

Example:
    >>> plan = RunPlan(benchmark="training", mode="whatif", model="unet3d", command="run", workload="unet3d_b200",
    ...                subcommand="run", overrides={"reader.read_threads": 2},
    ...                launch=MpiLaunch("mpirun", ("127.0.0.1",), 2), parent="/r/run")
    >>> plan.argv("/r/run/20260101_000000", mpi_binary="mpirun", dl_driver_binary="dl-driver")[9:12]
    ['dl-driver', 'run', 'unet3d_b200']
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Callable

from .dlio_files import write_mlpstorage_files
from .command import HYDRA_OUTPUT_SUBDIR, MpiLaunch, dl_driver_argv, mpi_prefix, override_args, shell_line
from .layout import reserve_run_dir

__all__ = ["RunPlan", "execute", "write_metadata", "metadata_name"]


def metadata_name(benchmark: str, stamp: str) -> str:
    """mlpstorage's metadata file name: ``<benchmark>_<stamp>_metadata.json``."""
    return f"{benchmark}_{stamp}_metadata.json"


def write_metadata(folder: str, benchmark: str, stamp: str, data: dict[str, Any]) -> str:
    """Write ``data`` as the run's metadata JSON (atomically); returns the path."""
    path = os.path.join(folder, metadata_name(benchmark, stamp))
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str)
    os.replace(tmp, path)
    return path


@dataclass
class RunPlan:
    """Everything validated about one datagen or run, ready to launch (possibly several times)."""

    benchmark: str  # training | checkpointing
    mode: str  # closed | open | whatif
    model: str
    command: str  # datagen | run
    workload: str  # bundled workload name
    subcommand: str  # dl-driver generate | run
    overrides: dict[str, Any]  # every ++workload override, the tool's then the user's
    launch: MpiLaunch
    parent: str  # folder of the timestamp folders
    user_params: dict[str, Any] = field(default_factory=dict)
    labels: list[dict[str, Any]] = field(default_factory=list)
    category: str = "CLOSED"
    args: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)  # the resolved workload config
    cluster: dict[str, Any] = field(default_factory=dict)
    dl_driver_bin: str | None = None

    def argv(self, run_dir: str, *, mpi_binary: str | None = None, dl_driver_binary: str | None = None) -> list[str]:
        """The full command line for a run writing into ``run_dir``."""
        return [*mpi_prefix(self.launch, binary=mpi_binary),
                *dl_driver_argv(self.subcommand, self.workload, self.overrides, run_dir,
                                binary=dl_driver_binary or self.dl_driver_bin)]

    def metadata(self, stamp: str, argv: list[str], loop: int, loops: int) -> dict[str, Any]:
        """The run's metadata JSON, in mlpstorage v3's keys (``benchmark_type``, ``model``, ``command``,
        ``run_datetime``, ``num_processes``, ``accelerator``, ``result_dir``, ``parameters``,
        ``override_parameters`` - every ``++workload`` override, the tool's and the user's, as mlpstorage's
        ``params_dict`` -, ``system_info``, ``runtime``, ``verification``, ``executed_command``,
        ``command_output_files``, ``args``) plus dl-driver's (the mode, the loop, the user's overrides alone,
        each override's label, the cluster as declared and measured, the launch argv and timings)."""
        cluster = self.cluster
        return {
            "benchmark_type": self.benchmark, "model": self.model, "command": self.command,
            "run_datetime": stamp, "num_processes": self.launch.num_processes,
            "accelerator": self.args.get("accelerator_type"), "result_dir": os.path.join(self.parent, stamp),
            "parameters": self.parameters, "override_parameters": dict(self.overrides),
            "system_info": {"total_memory_bytes": cluster.get("total_memory_bytes"),
                            "total_cores": cluster.get("total_cores"), "num_hosts": cluster.get("num_client_hosts")},
            "runtime": None, "verification": self.category, "executed_command": shell_line(argv),
            "command_output_files": [], "args": self.args,
            "mode": self.mode, "workload": self.workload, "loop": loop, "loops": loops,
            "user_parameters": self.user_params,
            "tool_parameters": {k: v for k, v in self.overrides.items() if k not in self.user_params},
            "verification_details": {"category": self.category, "labels": self.labels},
            "cluster_information": cluster, "hosts": list(self.launch.hosts), "argv": argv,
        }


def _pump(src: IO[str], sinks: list[IO[str]]) -> None:
    for line in iter(src.readline, ""):
        for sink in sinks:
            sink.write(line)
            sink.flush()
    src.close()


def _run_teed(argv: list[str], folder: str, prefix: str, echo: bool) -> int:
    """Run ``argv``; its stdout/stderr go to ``<prefix>.stdout.log`` / ``.stderr.log`` (and the console)."""
    with open(os.path.join(folder, f"{prefix}.stdout.log"), "w", encoding="utf-8") as out_log, \
            open(os.path.join(folder, f"{prefix}.stderr.log"), "w", encoding="utf-8") as err_log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                errors="replace")
        pumps = [threading.Thread(target=_pump, args=(proc.stdout, [out_log] + ([sys.stdout] if echo else [])),
                                  daemon=True),
                 threading.Thread(target=_pump, args=(proc.stderr, [err_log] + ([sys.stderr] if echo else [])),
                                  daemon=True)]
        for t in pumps:
            t.start()
        try:
            code = proc.wait()
        except BaseException:  # SIGINT or SIGTERM here: let the ranks write what they measured, then stop
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        finally:
            for t in pumps:
                t.join(timeout=30)
    return 128 - code if code < 0 else code  # killed by a signal: the shell's 128 + N


def execute(plan: RunPlan, *, loops: int = 1, dry_run: bool = False, echo: bool = True,
            say: Callable[[str], None] = print) -> int:
    """Launch ``plan`` ``loops`` times (a new timestamp folder each); with ``dry_run`` only print the command.

    Returns 0, or the first failing run's exit code (later loops are not started).
    """
    if dry_run:
        run_dir = os.path.join(plan.parent, "<YYYYmmdd_HHMMSS>")
        say(shell_line(plan.argv(run_dir)))
        if loops > 1:
            say(f"(dry run: {loops} runs, each in a new timestamp folder under {plan.parent})")
        return 0
    prefix = f"{plan.benchmark}_{plan.command}"
    for loop in range(1, loops + 1):
        folder, stamp = reserve_run_dir(plan.parent)
        argv = plan.argv(folder)
        meta = plan.metadata(stamp, argv, loop, loops)
        say(f"[mlperf] {plan.mode} {plan.benchmark} {plan.model} {plan.command} {loop}/{loops}: {folder}")
        say(f"[mlperf] {shell_line(argv)}")
        start = time.time()
        meta.update(start=datetime.fromtimestamp(start).isoformat(), end=None, duration_s=None, return_code=None,
                    command_output_files=[{"command": shell_line(argv),
                                           "stdout": os.path.join(folder, f"{prefix}.stdout.log"),
                                           "stderr": os.path.join(folder, f"{prefix}.stderr.log")}])
        write_metadata(folder, plan.benchmark, stamp, meta)
        code: int | None = None
        try:
            code = _run_teed(argv, folder, prefix, echo)
        except FileNotFoundError as exc:  # no mpirun / dl-driver on this machine
            code = 127
            say(f"[mlperf] cannot start {exc.filename}: install it or pass --mpi-bin / put it on PATH")
        finally:
            end = time.time()
            meta.update(end=datetime.fromtimestamp(end).isoformat(), duration_s=round(end - start, 3),
                        runtime=round(end - start, 3), return_code=code)
            write_metadata(folder, plan.benchmark, stamp, meta)
        if code == 0:  # the files mlpstorage's checks read that dl-driver's own layout lacks
            write_mlpstorage_files(folder, [f"workload={plan.workload}", f"++hydra.run.dir={folder}",
                                            f"++hydra.output_subdir={HYDRA_OUTPUT_SUBDIR}",
                                            *override_args(plan.overrides)])
        if code != 0:
            say(f"[mlperf] run {loop}/{loops} failed with exit code {code}; logs in {folder}")
            return code or 1
    return 0
