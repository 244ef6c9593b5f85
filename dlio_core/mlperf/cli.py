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
        --results-dir mlperf_results --params dataset.num_files_train=28000 dataset.num_subfolders_train=2
    dl-driver mlperf reportgen --results-dir mlperf_results

``--dry-run`` validates everything (flags, the CLOSED/OPEN rules, the pre-run gates, the launch) and prints
the launch command without running it. Errors are one line. Exit codes (``dlio_core.exits``): 2 bad input
(a flag, a combination, a parameter or gate the rules refuse), 1 a failure while running, 130/143 SIGINT or
SIGTERM (the ranks are stopped first). docs/mlperf.md compares every flag with mlpstorage's.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .errors import LaunchError, RulesError, UsageError
from .launchers import LAUNCHERS
from .models import ACCELERATORS, LLAMA3, MODES, STORAGE_KINDS, TRAINING_MODELS

__all__ = ["main", "build_parser", "exit_code", "Terminated", "UsageError"]


class _Parser(argparse.ArgumentParser):
    """argparse that raises a one-line ``UsageError`` instead of printing usage and exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


def _common(p: argparse.ArgumentParser, mode: str, benchmark: str) -> None:
    """Flags every benchmark command takes (mlpstorage v3's universal, MPI, host and DLIO groups)."""
    p.add_argument("storage", nargs="?", choices=STORAGE_KINDS, default="file",
                   help="file (POSIX paths, default) or object (S3 URIs)")
    p.add_argument("--hosts", "-s", nargs="+", metavar="HOST[:SLOTS]",
                   help="client hosts, space- or comma-separated; host:slots sets the ranks per host "
                        "(default: the batch allocation's nodes, else 127.0.0.1)")
    p.add_argument("--results-dir", "-rd", default=os.environ.get("MLPSTORAGE_RESULTS_DIR") or None,
                   help="root of the results tree (default $MLPSTORAGE_RESULTS_DIR; required for run and "
                        "configview, ./mlperf_results otherwise)")
    p.add_argument("--systemname", "-sn", default=os.environ.get("MLPSTORAGE_SYSTEMNAME"),
                   help="the system under test; names the results folder (required in closed and open)")
    p.add_argument("--orgname", default=os.environ.get("MLPSTORAGE_ORGNAME"),
                   help="the submitting organisation (default $MLPSTORAGE_ORGNAME, else the system name)")
    if benchmark == "training" or mode != "closed":  # mlpstorage: closed checkpointing takes no --params
        p.add_argument("--params", "-p", "--param", nargs="+", action="append", metavar="KEY=VALUE",
                       help="workload overrides, checked against the CLOSED/OPEN lists")
    p.set_defaults(params=None)
    p.add_argument("--dry-run", "--what-if", dest="dry_run", action="store_true",
                   help="validate everything, print the command, run nothing")
    p.add_argument("--loops", type=int, default=1, help="run this many times, each in a new timestamp folder")
    p.add_argument("--allow-invalid-params", "-aip", action="store_true",
                   help="run even with INVALID overrides (open and whatif only)")
    p.add_argument("--exec-type", "-et", choices=("mpi", "docker"), default="mpi",
                   help="how the ranks start (mpi; docker is mlpstorage's and not supported here)")
    p.add_argument("--mpi-bin", choices=LAUNCHERS, default="mpirun",
                   help="the launcher: mpirun, mpiexec (Open MPI's, or HPE PALS when found) or srun")
    p.add_argument("--mpi-btl", choices=("auto", "vader", "tcp"), default="auto",
                   help="Open MPI transport for single-host runs (auto: Open MPI picks)")
    p.add_argument("--mpi-params", action="append", metavar="FLAGS",
                   help="extra launcher flags, one quoted string (--mpi-params='-x FOO=1'), repeatable")
    p.add_argument("--oversubscribe", action="store_true", help="pass --oversubscribe to mpirun")
    p.add_argument("--allow-run-as-root", action="store_true", help="pass --allow-run-as-root to mpirun")
    p.add_argument("--dlio-bin-path", "-dp", metavar="PATH",
                   help="the folder holding the dl-driver executable (or the executable itself)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _training(p: argparse.ArgumentParser, command: str, mode: str) -> None:
    if command != "datagen":  # as mlpstorage: datagen takes only the process count and the data dir
        p.add_argument("--client-host-memory-in-gb", "-cm", type=float, required=True,
                       help="memory per client host (GiB); the dataset must be 5x the clients' memory")
        p.add_argument("--num-client-hosts", "-nc", type=int, help="client hosts (default: the number of --hosts)")
        p.add_argument("--accelerator-type", "-at", choices=ACCELERATORS[mode], required=True,
                       help="the emulated accelerator")
    if command == "datasize":
        p.add_argument("--max-accelerators", "-ma", type=int, required=True,
                       help="the most accelerators a run on this dataset will emulate")
    elif command == "datagen":
        p.add_argument("--num-processes", "-np", type=int, required=True, help="ranks generating the dataset")
    else:
        p.add_argument("--num-accelerators", "-na", type=int, required=True, help="emulated accelerators (ranks)")
    p.add_argument("--data-dir", "-dd", default=os.environ.get("MLPSTORAGE_DATA_DIR") or None,
                   help="dataset root; the model's folder goes under it (default $MLPSTORAGE_DATA_DIR)")
    p.add_argument("--checkpoint-folder", "-cf", help="where a workload that checkpoints writes them")
    if command != "datasize":
        p.add_argument("--o-direct", action="store_true",
                       help="every read and write with O_DIRECT (storage.storage_type=direct_fs); file only")


def _checkpointing(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument("--model", "-m", choices=tuple(LLAMA3), required=True, help="the Llama 3 model to checkpoint")
    p.add_argument("--num-processes", "-np", type=int, required=True, help="ranks writing the checkpoint")
    p.add_argument("--client-host-memory-in-gb", "-cm", type=float, required=True, help="memory per client host")
    p.add_argument("--num-client-hosts", "-nc", type=int, help="client hosts (default: the number of --hosts)")
    p.add_argument("--accelerator-type", "-at", choices=ACCELERATORS["whatif"], help="recorded in the metadata")
    if command == "run":
        p.add_argument("--checkpoint-folder", "-cf", default=os.environ.get("MLPSTORAGE_CHECKPOINT_FOLDER") or None,
                       help="where the checkpoints go (<folder>/<model>; default $MLPSTORAGE_CHECKPOINT_FOLDER)")
    else:
        p.set_defaults(checkpoint_folder=None)
    if command != "datasize":
        p.add_argument("--o-direct", action="store_true",
                       help="write and read with O_DIRECT (storage.storage_type=direct_fs); file only")
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
            _common(cp, mode, "training")
            _training(cp, command, mode)
        ck = benches.add_parser("checkpointing", help="the LLM checkpointing benchmark")
        commands = ck.add_subparsers(dest="command", required=True)
        for command in ("datasize", "run", "configview"):
            cp = commands.add_parser(command)
            _common(cp, mode, "checkpointing")
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


def _parse(argv: list[str]) -> argparse.Namespace:
    """Parse; a flag this command does not take, whose value the optional storage positional then met, is
    reported as the flag (argparse would name the value: "argument storage: invalid choice: 'b200'")."""
    try:
        return build_parser().parse_args(argv)
    except UsageError as exc:
        text = str(exc)
        if text.startswith("argument storage: invalid choice: "):
            value = text.split("invalid choice: ", 1)[1].split(" (choose", 1)[0].strip("'\"")
            at = argv.index(value) if value in argv else 0
            if at and argv[at - 1].startswith("-"):
                raise UsageError(f"this command takes no {argv[at - 1]} (see -h for its flags)") from None
        raise


class Terminated(BaseException):
    """SIGTERM arrived (``timeout``, Slurm, a batch system): the launched ranks are stopped, exit 143."""


def _raise_terminated(signum, frame):  # noqa: ARG001 - the signal module's handler signature
    raise Terminated()


def exit_code(exc: BaseException) -> int:
    """The exit code of an error that ended ``dl-driver mlperf`` (:mod:`dlio_core.exits`' table): 2 for bad
    input (a flag, a combination, a parameter the rules refuse, a launch that cannot be built, the config),
    1 for a failure while running, 130 for SIGINT and 143 for SIGTERM.

    >>> exit_code(RulesError("closed run refused")), exit_code(RuntimeError("boom")), exit_code(Terminated())
    (2, 1, 143)
    """
    from ..exits import EXIT_SIGINT, EXIT_SIGTERM, exit_code_of

    if isinstance(exc, KeyboardInterrupt):
        return EXIT_SIGINT
    if isinstance(exc, Terminated):
        return EXIT_SIGTERM
    return exit_code_of(exc, UsageError, RulesError, LaunchError)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dl-driver mlperf``; returns the exit code."""
    import signal

    from ..exits import EXIT_BAD_INPUT
    from .commands import dispatch

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave SIGTERM as it is
        previous = None
    try:
        args = _parse(argv)
        if getattr(args, "format", "text") != "text":
            return _reportgen_formatted(args)
        return dispatch(args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except (KeyboardInterrupt, Terminated) as exc:
        name = "interrupted (SIGINT)" if isinstance(exc, KeyboardInterrupt) else "stopped (SIGTERM)"
        print(f"dl-driver mlperf: {name}; the ranks were stopped", file=sys.stderr)
        return exit_code(exc)
    except Exception as exc:
        if debug:
            import traceback

            traceback.print_exc()
        code = exit_code(exc)
        message = " ".join(str(exc).split()) or type(exc).__name__
        if code != EXIT_BAD_INPUT:
            message = f"{type(exc).__name__}: {message}" + ("" if debug else " (--debug shows the traceback)")
        print(f"dl-driver mlperf: error: {message}", file=sys.stderr)
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
