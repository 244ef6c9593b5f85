"""Launch ``_ranks_script.py`` under mpirun or torchrun, on this host or on simulated hosts.

Simulated hosts are rank groups with their own host name on this one machine:

- mpirun: PRRTE's launch agent (``plm_ssh_agent``) is replaced by a script that starts each host's
  daemon in its own UTS namespace named after the host. PRRTE daemons never talk over a loopback
  interface, so the whole job runs in a private network namespace holding only ``lo`` and a veth
  pair carrying 127.0.0.2: every byte stays on 127.0.0.0/8 and never leaves the namespace.
- torchrun: one agent per host (``--nnodes 2``), each in its own UTS namespace, meeting through a
  c10d rendezvous on 127.0.0.1; gloo binds to ``lo``.

Both need ``unshare`` (root, or user namespaces) and ``ip``; :func:`namespaces_refused` says why not
when they are missing, and the tests skip with that reason rather than fake a host.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ._cli import private_tmpdir, run_launched

BIN = Path(sys.executable).parent
MPIRUN = shutil.which("mpirun", path=str(BIN))
TORCHRUN = shutil.which("torchrun", path=str(BIN))
SCRIPT = str(Path(__file__).with_name("_ranks_script.py"))
RANK_TIMEOUT_S = 3  # how long the ranks wait for a silent one in these tests

_AGENT = """#!/bin/sh
# PRRTE launch agent for simulated hosts: "agent.sh HOST COMMAND" runs COMMAND with HOST as its hostname.
host="$1"; shift
exec unshare --uts /bin/sh -c 'hostname "$0" && exec /bin/sh -c "$*"' "$host" "$@"
"""

# A private network namespace where PRRTE finds a non-loopback interface with a 127.0.0.0/8 address.
_NETNS_SETUP = ("ip link set lo up && ip link add dlsim0 type veth peer name dlsim1 && "
                "ip addr add 127.0.0.2/32 dev dlsim0 && ip link set dlsim0 up && ip link set dlsim1 up")


def env(**extra: str) -> dict[str, str]:
    """This environment without a surrounding launcher's variables, one thread per rank, short rank timeout."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("OMPI_", "PMI_", "PMIX_", "PRTE_", "SLURM_", "PALS_", "TORCHELASTIC_"))}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        base.pop(name, None)
    base.update(OMP_NUM_THREADS="1", DL_DRIVER_RANK_TIMEOUT_S=str(RANK_TIMEOUT_S), TMPDIR=private_tmpdir())
    base.update(extra)  # may replace the rank timeout
    return base


def mpirun_cmd(np: int, *extra: str) -> list[str]:
    return [MPIRUN, "-np", str(np), "--oversubscribe", "--allow-run-as-root", *extra]


def torchrun_cmd(nproc: int = 2) -> list[str]:
    return [TORCHRUN, "--standalone", f"--nproc_per_node={nproc}", "--no-python"]


def script_args(out: Path, mode: str = "ok", rank: int = 0, step: int = 0, steps: int = 20) -> list[str]:
    return [sys.executable, SCRIPT, str(out), mode, str(rank), str(step), str(steps)]


def ranks(out: Path, world: int) -> list[dict]:
    """Every rank's ``rank{r}.json`` (an empty dict for a rank that wrote none)."""
    found = []
    for r in range(world):
        path = out / f"rank{r}.json"
        found.append(json.loads(path.read_text()) if path.exists() else {})
    return found


def run(cmd: list[str], timeout: float = 90, **kwargs) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``cmd`` to its end (a hang fails the test at ``timeout``); returns the result and seconds taken
    (a launch whose mpirun did not start runs once more: ``_cli.run_launched``)."""
    t0 = time.monotonic()
    res = run_launched(cmd, kwargs.pop("env", None) or env(), errors="replace", timeout=timeout, **kwargs)
    return res, time.monotonic() - t0


def _watch(cmd: list[str], act, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    """Start ``cmd``; call ``act(proc)`` every 50 ms until it returns True or ``cmd`` ends; wait for the end."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                            env=env())
    try:
        while proc.poll() is None and time.monotonic() - t0 < timeout and not act(proc):
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr), time.monotonic() - t0


def signal_launcher_when_running(cmd: list[str], out: Path, world: int, signum: int,
                                 timeout: float = 90) -> tuple[subprocess.CompletedProcess, float]:
    """Start ``cmd``, send ``signum`` to the launcher once every rank has started, wait for the end."""
    def act(proc: subprocess.Popen) -> bool:
        if not all((out / f"rank{r}.json").exists() for r in range(world)):
            return False
        time.sleep(0.3)  # a few steps into the run
        proc.send_signal(signum)
        return True

    return _watch(cmd, act, timeout)


def kill_when_lost(cmd: list[str], out: Path, lost_rank: int, watcher: int = 0,
                   timeout: float = 90) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``cmd``; once rank ``watcher`` has reported the loss, SIGKILL the stopped ``lost_rank``.

    Stands in for the cleanup a launcher does to a rank that hangs (torchrun's agent would wait 30 s).
    """
    report = out / f"rank{watcher}.json"

    def act(proc: subprocess.Popen) -> bool:
        if not (report.exists() and "lost" in report.read_text()):
            return False
        try:
            os.kill(int((out / f"pid{lost_rank}").read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass
        return True

    return _watch(cmd, act, timeout)


def namespaces_refused() -> str | None:
    """Why simulated hosts cannot run here (no unshare, no ip, namespaces refused), or None."""
    for tool in ("unshare", "ip", "hostname"):
        if shutil.which(tool) is None:
            return f"simulated hosts need '{tool}', which is not installed"
    probe = subprocess.run(["unshare", "--net", "--uts", "/bin/sh", "-c", f"{_NETNS_SETUP} && hostname h1"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        why = " ".join((probe.stderr or probe.stdout).split())[:200]
        return f"network/UTS namespaces refused here (simulated hosts need root or user namespaces): {why}"
    return None


def mpirun_on_hosts(tmp: Path, hosts: dict[str, int], argv: list[str],
                    timeout: float = 90) -> tuple[subprocess.CompletedProcess, float]:
    """``mpirun`` with ``hosts[name]`` ranks on each simulated host ``name`` (see the module docstring)."""
    agent = tmp / "agent.sh"
    agent.write_text(_AGENT)
    agent.chmod(0o755)
    spec = ",".join(f"{name}:{n}" for name, n in hosts.items())
    launch = [MPIRUN, "-np", str(sum(hosts.values())), "--host", spec, "--allow-run-as-root",
              "--prtemca", "plm_ssh_agent", str(agent), "--mca", "btl_tcp_if_include", "127.0.0.2/32", *argv]
    inner = f'{_NETNS_SETUP} && exec "$@"'
    return run(["unshare", "--net", "/bin/sh", "-c", inner, "sh", *launch], timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_on_hosts(hosts: list[str], nproc: int, argv: list[str],
                      timeout: float = 120) -> tuple[list[subprocess.CompletedProcess], float]:
    """One torchrun agent per simulated host, ``nproc`` workers each, meeting on 127.0.0.1."""
    port = free_port()
    t0 = time.monotonic()
    procs = []
    for name in hosts:
        agent = [TORCHRUN, f"--nnodes={len(hosts)}", f"--nproc_per_node={nproc}", "--rdzv_backend=c10d",
                 f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=dl-driver-sim", "--local_addr=127.0.0.1",
                 "--no-python", *argv]
        cmd = ["unshare", "--uts", "/bin/sh", "-c", 'hostname "$0" && exec "$@"', name, *agent]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      errors="replace", env=env(GLOO_SOCKET_IFNAME="lo")))
    results = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=max(1.0, timeout - (time.monotonic() - t0)))
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results, time.monotonic() - t0
