#!/usr/bin/env python3
"""Regenerate the golden references: run each spec of ``goldens/specs.yaml`` and write its figures.

Usage (from the repository root, with dl-driver installed)::

    python goldens/regenerate.py                 # every golden
    python goldens/regenerate.py unet3d flux     # only these
    python goldens/regenerate.py --keep /tmp/g   # keep each run's folders under /tmp/g/<name>

Each run generates its small dataset, trains (or checkpoints) on one rank with a fixed seed, and its
figures (``dlio_core.report.golden.golden_figures``) go to ``goldens/<name>/golden.json`` with the
command that made them. Review the diff before committing: exact figures (counts, steps, bytes, access
order) change only when dl-driver's behaviour does; rates and AU change with the machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from dlio_core.report.golden import golden_figures, load_specs, spec_command  # noqa: E402
from dlio_core.report.rundata import RunData  # noqa: E402


def regenerate(name: str, spec: dict, workdir: str) -> dict:
    """Run golden ``name`` in ``workdir`` and return its golden.json content."""
    args = spec_command(spec, workdir)
    cmd = [sys.executable, "-m", "dlio_core.cli", "run", "--quiet", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name}: dl-driver run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    run = RunData.load(os.path.join(workdir, "out"))
    return {"name": name, "workload": spec["workload"], "overrides": list(spec.get("overrides", [])),
            "generated": {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
                          "machine": platform.machine(), "cpus": os.cpu_count()},
            "figures": golden_figures(run)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="goldens to regenerate (default: all)")
    p.add_argument("--keep", metavar="DIR", help="keep each run's data and output under DIR/<name>")
    args = p.parse_args(argv)
    specs = load_specs(HERE)
    unknown = [n for n in args.names if n not in specs]
    if unknown:
        p.error(f"no spec named {', '.join(unknown)}; specs: {', '.join(specs)}")
    for name in args.names or list(specs):
        spec = specs[name]
        if spec.get("skip"):
            print(f"{name}: skipped ({spec['skip']})")
            continue
        workdir = os.path.join(args.keep, name) if args.keep else tempfile.mkdtemp(prefix=f"golden-{name}-")
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        try:
            golden = regenerate(name, spec, workdir)
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(os.path.join(HERE, name), exist_ok=True)
        with open(os.path.join(HERE, name, "golden.json"), "w", encoding="utf-8") as fh:
            json.dump(golden, fh, indent=2, sort_keys=False)
            fh.write("\n")
        print(f"{name}: wrote goldens/{name}/golden.json ({len(golden['figures'])} figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
