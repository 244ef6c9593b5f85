"""Run every benchmark script in this folder and print their ratios together (``make bench``).

A benchmark is any ``benchmarks/*.py`` whose name does not start with ``_`` (this file excepted). Each
runs in its own interpreter (this one's, so the same venv), from the repository root, with no
arguments; it prints what it measured, and every figure that compares us with a ceiling or a peer
goes on a line containing the word ``ratio``. Those lines are printed again at the end, under the
script's name, so one screen shows where each stands. A script that fails makes the exit status 1
(the others still run).

Run: ``.venv/bin/python benchmarks/run_all.py [--only NAME ...] [--list] [--timeout SECONDS]``
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

_RATIO = re.compile(r"\bratio\b", re.IGNORECASE)  # the word, not "operations"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def scripts() -> list[str]:
    """Benchmark script names (``name.py``), sorted."""
    me = os.path.basename(__file__)
    return sorted(f for f in os.listdir(HERE) if f.endswith(".py") and not f.startswith("_") and f != me)


def run_one(name: str, timeout: float) -> tuple[int, list[str], float]:
    """Run one script, echoing its output as it comes; return (exit status, its ratio lines, seconds)."""
    t0 = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
               PYTHONUNBUFFERED="1")
    ratios: list[str] = []
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, name)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        deadline = t0 + timeout
        for line in proc.stdout:
            print(f"  {line}", end="", flush=True)
            if _RATIO.search(line):
                ratios.append(line.strip())
            if time.perf_counter() > deadline:
                raise subprocess.TimeoutExpired(name, timeout)
        rc = proc.wait(timeout=max(1.0, deadline - time.perf_counter()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        print(f"  {name}: killed after {timeout:.0f} s", flush=True)
        rc = 124
    return rc, ratios, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="script names (with or without .py)")
    ap.add_argument("--list", action="store_true", help="list the scripts and stop")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per script")
    args = ap.parse_args(argv)
    names = scripts()
    if args.list:
        print("\n".join(names))
        return 0
    if args.only:
        wanted = {n if n.endswith(".py") else n + ".py" for n in args.only}
        unknown = wanted - set(names)
        if unknown:
            print(f"no such benchmark: {', '.join(sorted(unknown))} (have: {', '.join(names)})", file=sys.stderr)
            return 2
        names = [n for n in names if n in wanted]
    summary: list[tuple[str, int, list[str], float]] = []
    for name in names:
        print(f"== {name}", flush=True)
        rc, ratios, seconds = run_one(name, args.timeout)
        summary.append((name, rc, ratios, seconds))
    print("\n== ratios")
    failed = False
    for name, rc, ratios, seconds in summary:
        status = "ok" if rc == 0 else f"FAILED (exit {rc})"
        failed |= rc != 0
        print(f"{name} ({seconds:.0f} s, {status})")
        for line in ratios or ["(no ratios printed)"]:
            print(f"    {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
