"""``dl-driver mlperf``: the MLPerf Storage workflow with mlpstorage v3's command tree and flags.

Usage::

    dl-driver mlperf <closed|open|whatif> training <model> <datasize|datagen|run|configview> [file|object] ...
    dl-driver mlperf <closed|open|whatif> checkpointing <datasize|run|configview> [file|object] --model llama3-8b ...
    dl-driver mlperf reportgen --results-dir DIR

For example, size, generate, then run the warm-up and five measured runs::

    dl-driver mlperf closed training unet3d datasize --accelerator-type b200 --max-accelerators 8 \\
        --client-host-memory-in-gb 512 --systemname sut1
    dl-driver mlperf closed training unet3d datagen file --num-processes 8 --data-dir /mnt/data \\
        --systemname sut1 --params dataset.num_files_train=28000 dataset.num_subfolders_train=2
    dl-driver mlperf closed training unet3d run file --accelerator-type b200 --num-accelerators 8 \\
        --client-host-memory-in-gb 512 --data-dir /mnt/data --systemname sut1 --loops 6 \\
        --params dataset.num_files_train=28000 dataset.num_subfolders_train=2
    dl-driver mlperf reportgen --results-dir mlperf_results

``--dry-run`` validates everything and prints the launch command without running it. Errors are one line
(exit 2 for a bad flag, combination or parameter; 1 when a run fails).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .errors import LaunchError, RulesError, UsageError
from .models import ACCELERATORS, LLAMA3, MODES, STORAGE_KINDS, TRAINING_MODELS

__all__ = ["main", "build_parser", "UsageError"]

EXIT_BAD_INPUT, EXIT_FAILURE = 2, 1


class _Parser(argparse.ArgumentParser):
    """argparse that raises a one-line ``UsageError`` instead of printing usage and exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


def _common(p: argparse.ArgumentParser) -> None:
    """Flags every benchmark command takes (mlpstorage v3's universal, MPI and host groups)."""
    p.add_argument("storage", nargs="?", choices=STORAGE_KINDS, default="file",
                   help="file (POSIX paths, default) or object (S3 URIs)")
    p.add_argument("--hosts", "-s", nargs="+", metavar="HOST[:SLOTS]",
                   help="client hosts, space- or comma-separated; host:slots sets the ranks per host")
    p.add_argument("--results-dir", "-rd", default=os.environ.get("MLPSTORAGE_RESULTS_DIR") or "mlperf_results",
                   help="root of the results tree (default $MLPSTORAGE_RESULTS_DIR or ./mlperf_results)")
    p.add_argument("--systemname", "-sn", default=os.environ.get("MLPSTORAGE_SYSTEMNAME"),
                   help="the system under test; names the results folder (required in closed and open)")
    p.add_argument("--orgname", default=os.environ.get("MLPSTORAGE_ORGNAME"),
                   help="the submitting organisation (default $MLPSTORAGE_ORGNAME, else the system name)")
    p.add_argument("--params", "-p", "--param", nargs="+", action="append", metavar="KEY=VALUE",
                   help="workload overrides, checked against the CLOSED/OPEN lists")
    p.add_argument("--dry-run", action="store_true", help="validate everything, print the command, run nothing")
    p.add_argument("--loops", type=int, default=1, help="run this many times, each in a new timestamp folder")
    p.add_argument("--allow-invalid-params", "-aip", action="store_true",
                   help="run even with INVALID overrides (open and whatif only)")
    p.add_argument("--mpi-bin", choices=("mpirun", "mpiexec"), default="mpirun", help="the MPI launcher")
    p.add_argument("--mpi-params", action="append", metavar="FLAGS",
                   help="extra launcher flags, one quoted string (--mpi-params='-x FOO=1'), repeatable")
    p.add_argument("--oversubscribe", action="store_true", help="pass --oversubscribe to mpirun")
    p.add_argument("--allow-run-as-root", action="store_true", help="pass --allow-run-as-root to mpirun")
    p.add_argument("--dlio-bin-path", "-dp", metavar="PATH", help="the dl-driver executable to launch")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _training(p: argparse.ArgumentParser, command: str, mode: str) -> None:
    needs_memory = command != "datagen"
    p.add_argument("--client-host-memory-in-gb", "-cm", type=float, required=needs_memory,
                   help="memory per client host (GiB); the dataset must be 5x the clients' memory")
    p.add_argument("--num-client-hosts", "-nc", type=int, help="client hosts (default: the number of --hosts)")
    if command == "datasize":
        p.add_argument("--max-accelerators", "-ma", type=int, required=True,
                       help="the most accelerators a run on this dataset will emulate")
    elif command == "datagen":
        p.add_argument("--num-processes", "-np", type=int, required=True, help="ranks generating the dataset")
    else:
        p.add_argument("--num-accelerators", "-na", type=int, required=True, help="emulated accelerators (ranks)")
    p.add_argument("--accelerator-type", "-at", "-g", choices=ACCELERATORS[mode], required=command != "datagen",
                   help="the emulated accelerator")
    p.add_argument("--data-dir", "-dd", help="dataset root; the model's folder goes under it")
    p.add_argument("--checkpoint-folder", "-cf", help="where a workload that checkpoints writes them")
    if command != "datasize":
        p.add_argument("--o-direct", action="store_true", help="read with O_DIRECT (reader.odirect=True)")


def _checkpointing(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument("--model", "-m", choices=tuple(LLAMA3), required=True, help="the Llama 3 model to checkpoint")
    p.add_argument("--num-processes", "-np", type=int, required=True, help="ranks writing the checkpoint")
    p.add_argument("--client-host-memory-in-gb", "-cm", type=float, required=True, help="memory per client host")
    p.add_argument("--num-client-hosts", "-nc", type=int, help="client hosts (default: the number of --hosts)")
    p.add_argument("--accelerator-type", "-at", choices=ACCELERATORS["whatif"], help="recorded in the metadata")
    p.add_argument("--checkpoint-folder", "-cf", required=command == "run",
                   help="where the checkpoints go (<folder>/<model>)")
    p.add_argument("--num-checkpoints-read", "-ncr", type=int, default=10, help="checkpoints to read (10 or 0)")
    p.add_argument("--num-checkpoints-write", "-ncw", type=int, default=10, help="checkpoints to write (10 or 0)")


def build_parser() -> argparse.ArgumentParser:
    """The ``dl-driver mlperf`` argument tree."""
    top = _Parser(prog="dl-driver mlperf", description=__doc__.split("\n\n")[0],
                  formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    modes = top.add_subparsers(dest="mode", required=True, metavar="{closed,open,whatif,reportgen}")
    for mode in MODES:
        mp = modes.add_parser(mode, help=f"{mode} division" if mode != "whatif" else "explore beyond the rules")
        benches = mp.add_subparsers(dest="benchmark", required=True)
        tp = benches.add_parser("training", help="the training (data loading) benchmark")
        tp.add_argument("model", choices=TRAINING_MODELS[mode])
        commands = tp.add_subparsers(dest="command", required=True)
        for command in ("datasize", "datagen", "run", "configview"):
            cp = commands.add_parser(command)
            _common(cp)
            _training(cp, command, mode)
        ck = benches.add_parser("checkpointing", help="the LLM checkpointing benchmark")
        commands = ck.add_subparsers(dest="command", required=True)
        for command in ("datasize", "run", "configview"):
            cp = commands.add_parser(command)
            _common(cp)
            _checkpointing(cp, command)
    rp = modes.add_parser("reportgen", help="results.json/results.csv per run and a summary with PASS/FAIL checks")
    rp.add_argument("--results-dir", "-rd", default=os.environ.get("MLPSTORAGE_RESULTS_DIR") or "mlperf_results",
                    help="the results tree to read")
    rp.add_argument("--output-dir", help="where the summary goes (default: the results dir)")
    rp.add_argument("--format", choices=("text", "json", "csv"), default="text",
                    help="print the summary's results.json or results.csv on stdout (the verdicts on stderr)")
    rp.add_argument("--debug", action="store_true", help="show tracebacks")
    return top


def _reportgen_formatted(args: argparse.Namespace) -> int:
    """``reportgen --format json|csv``: the lines people read go to stderr, the summary file to stdout."""
    from .commands import dispatch

    code = dispatch(args, say=lambda line: print(line, file=sys.stderr))
    with open(os.path.join(args.output_dir or args.results_dir, f"results.{args.format}"), encoding="utf-8") as fh:
        sys.stdout.write(fh.read())
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dl-driver mlperf``; returns the exit code."""
    from .commands import dispatch

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "format", "text") != "text":
            return _reportgen_formatted(args)
        return dispatch(args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("dl-driver mlperf: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from ..config import ConfigError

        if debug:
            import traceback

            traceback.print_exc()
        message = " ".join(str(exc).split()) or type(exc).__name__
        bad_input = isinstance(exc, (UsageError, RulesError, LaunchError, ConfigError))
        if not bad_input:
            message = f"{type(exc).__name__}: {message}"
        print(f"dl-driver mlperf: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT if bad_input else EXIT_FAILURE
