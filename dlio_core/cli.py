"""``dl-driver``: run, generate, validate and query DLIO workloads.

Usage (DLIO's command-line forms work in every subcommand)::

    dl-driver run unet3d_h100 ++workload.reader.read_threads=8 ++hydra.run.dir=out/
    dl-driver run workload=default --config-dir my_configs reader.batch_size=8
    dl-driver generate default ++workload.dataset.data_folder=/mnt/data
    dl-driver validate resnet50_h100 --ranks 8
    dl-driver query reader.batch_size unet3d_h100
    dl-driver workloads
    dl-driver mlperf closed training unet3d datasize ...   # the MLPerf Storage workflow (dl-driver mlperf -h)
    dl-driver report OUT_DIR; dl-driver compare DIR_A DIR_B; dl-driver check-golden OUT_DIR   # dlio_core/report/cli.py
    dl-driver run default --format json                   # the summary as JSON (or csv) on stdout, the log on stderr
    dl-driver workload=default ++workload.train.epochs=2      # no subcommand: run, as dlio_benchmark

Errors are one line and exit non-zero; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings
from typing import Sequence

__all__ = ["main"]

_SUBCOMMANDS = ("run", "generate", "validate", "query", "workloads")

# Exit codes (one table, in dlio_core/exits.py and the README): 2 bad input (config, data, arguments),
# 1 a failure while running (storage unreachable, a rank lost), 130 SIGINT, 143 SIGTERM.
EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dl-driver", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=_SUBCOMMANDS, help="what to do")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    p.add_argument("--quiet", action="store_true", help="print only errors and the [METRIC] block's file")
    p.add_argument("--ranks", type=int, default=None, help="validate: world size for the derived figures")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text",
                   help="run, validate: print the summary as json or csv on stdout (the human text on stderr)")
    return p


def _load(args_rest: Sequence[str]):
    from .config import load_config, parse_command_line

    cl = parse_command_line(list(args_rest))
    if cl.source is None:
        raise _UsageError("no workload given: name a bundled workload (dl-driver workloads), a YAML file, or workload=NAME")
    return load_config(cl.source, cl.overrides, config_dir=cl.config_dir)


class _UsageError(ValueError):
    pass


def _check_runnable(cfg, **parts: bool) -> None:
    """Before anything starts: exit 2 with one line when this build cannot run ``cfg`` (a framework,
    format library or store client missing, a combination refused; ``dlio_core.config.runnable``)."""
    from .config.runnable import check_runnable

    check_runnable(cfg, **parts)


def _cmd_run(rest: Sequence[str], quiet: bool, fmt: str = "text") -> int:
    from .exits import exit_code_of
    from .report.tabular import emit, human_output, run_summary
    from .runner import run

    cfg = _load(rest)
    _check_runnable(cfg)
    # A rank's error travels to every rank with its exit code, so all ranks exit alike.
    with human_output(fmt):
        result = run(cfg, quiet=quiet, exit_code_of=lambda exc: exit_code_of(exc, _UsageError))
    if fmt != "text":
        if result.summary:  # rank 0
            emit(run_summary(result.output_folder, result.summary), fmt)
    elif quiet:
        print(result.output_folder)
    return 0


def _cmd_generate(rest: Sequence[str], quiet: bool) -> int:
    from .dist import init
    from .generate import generate_dataset

    cfg = _load(rest)
    _check_runnable(cfg, generate=True, train=False, checkpoint=False)
    dist = init()
    if dist.is_root:
        for w in cfg.warnings:
            print(f"warning: {w}", file=sys.stderr)
    manifest = generate_dataset(cfg, rank=dist.rank, world=dist.world, progress=not quiet)
    dist.barrier()
    dist.release()
    if dist.is_root and not quiet:
        print(f"generated {cfg.dataset.num_files_train} train + {cfg.dataset.num_files_eval} valid "
              f"{cfg.dataset.format} files in {cfg.dataset.data_folder}")
    del manifest
    return 0


def _cmd_validate(rest: Sequence[str], ranks: int | None, fmt: str = "text") -> int:
    import yaml

    from .config import derive, runnable
    from .dist import launcher_world_size

    cfg = _load(rest)
    _check_runnable(cfg)
    world = ranks or launcher_world_size()
    if fmt == "text":
        print(yaml.safe_dump({"workload": cfg.to_dict(redact=True)}, sort_keys=False), end="")
    bw = derive.demanded_bandwidth_bytes_per_s(cfg)
    figures = {
        "ranks": world,
        "train_samples": derive.samples(cfg, "train"),
        "eval_samples": derive.samples(cfg, "valid"),
        "train_steps_per_epoch_per_rank": derive.steps_per_epoch(cfg, world, "train"),
        "eval_steps_per_epoch_per_rank": derive.steps_per_epoch(cfg, world, "valid"),
        "dataset_bytes": derive.dataset_bytes(cfg),
        "demanded_bandwidth_per_accelerator_MiB_per_s": None if bw is None else round(bw / 2**20, 3),
    }
    if fmt == "text":
        print(yaml.safe_dump({"derived": figures}, sort_keys=False), end="")
    else:
        from .report.tabular import emit

        emit({"workload": cfg.to_dict(redact=True), "derived": figures}, fmt)
    for w in (*cfg.warnings, *runnable.notes(cfg)):
        print(f"warning: {w}", file=sys.stderr)
    if cfg.output.folder:
        from .output import RunLog, write_config_copies

        write_config_copies(cfg.output.folder, cfg, cfg.overrides)
        log = RunLog(quiet=True)
        log.open_file(os.path.join(cfg.output.folder, cfg.output.log_file))
        log.output(f"validated workload {cfg.source}")
        log.close()
    return 0


def _cmd_query(rest: Sequence[str]) -> int:
    if not rest:
        raise _UsageError("query needs a key, e.g. dl-driver query reader.batch_size unet3d_h100")
    key, rest = rest[0], rest[1:]
    cfg = _load(rest)
    value = cfg.get(key, redact=True)  # secrets below storage_options print as ***
    print(getattr(value, "value", value))
    return 0


def _cmd_workloads() -> int:
    from .config import bundled_workloads

    for name in bundled_workloads():
        print(name)
    return 0


def _bad_input_types() -> tuple[type, ...]:
    from .exits import bad_input_types

    return bad_input_types(_UsageError)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dl-driver`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("report", "compare", "check-golden"):  # reports of output folders
        from .report.cli import main as report_main

        return report_main(argv)
    if argv and argv[0] == "mlperf":  # the MLPerf Storage workflow has its own command tree
        from .mlperf.cli import main as mlperf_main

        return mlperf_main(argv[1:])
    if argv and argv[0] not in _SUBCOMMANDS and not argv[0].startswith("-"):
        argv = ["run", *argv]  # dlio_benchmark style: dl-driver workload=NAME ++workload...
    args, rest = _parser().parse_known_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Config warnings travel in cfg.warnings and are printed once, as our own lines (run log, validate).
    from .config import ConfigWarning

    warnings.simplefilter("ignore", ConfigWarning)
    try:
        if args.command == "run":
            return _cmd_run(rest, args.quiet, args.format)
        if args.command == "generate":
            return _cmd_generate(rest, args.quiet)
        if args.command == "validate":
            return _cmd_validate(rest, args.ranks, args.format)
        if args.command == "query":
            return _cmd_query(rest)
        return _cmd_workloads()
    except KeyboardInterrupt as exc:  # Ctrl-C, or RunInterrupted: SIGINT/SIGTERM on some rank (130/143)
        why = f" ({exc})" if str(exc) else ""
        print(f"dl-driver: interrupted{why}; the metrics measured so far were written", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_INTERRUPTED)
    except Exception as exc:  # one line for the user, the traceback only on request
        if args.debug:  # the traceback as well, never a different exit code
            traceback.print_exc()
        from .exits import exit_code_of
        from .run_end import RankFailed

        # Another rank failed: exit with its code, as it does.
        code = exc.exit_code if isinstance(exc, RankFailed) else exit_code_of(exc, _UsageError)
        message = " ".join(str(exc).split()) or type(exc).__name__
        if not isinstance(exc, _bad_input_types()):  # an unexpected error: say what it was
            message = f"{type(exc).__name__}: {message} (--debug shows the traceback)"
        print(f"dl-driver: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
