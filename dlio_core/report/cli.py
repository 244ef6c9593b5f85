"""``dl-driver report``, ``dl-driver compare`` and ``dl-driver check-golden``.

Usage::

    dl-driver report OUTPUT_DIR [OUTPUT_DIR ...] [--output FILE]     # report.html in each folder
    dl-driver compare DIR_A DIR_B [...] [--format text|json|csv] [--html FILE]
    dl-driver check-golden OUTPUT_DIR [--golden NAME] [--exact] [--goldens DIR] [--format text|json|csv]

Each works on dl-driver's output folders and on DLIO's. Errors are one line: exit 2 for a folder that
is not a run's output, a missing golden or a missing ``plots`` extra; ``check-golden`` exits 1 when a
figure is out of its tolerance.

Example:
    >>> main(["compare", "/nonexistent-a", "/nonexistent-b"])
    2
"""

from __future__ import annotations

import argparse
import errno
import sys
from typing import Sequence

from .tabular import FORMATS, emit

__all__ = ["main", "COMMANDS"]

COMMANDS = ("report", "compare", "check-golden")
EXIT_BAD_INPUT, EXIT_FAILED = 2, 1
_PATH_ERRORS = {errno.ENOENT, errno.EACCES, errno.EISDIR, errno.ENOTDIR, errno.EROFS}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        from .rundata import ReportInputError

        raise ReportInputError(message)


def _parser() -> argparse.ArgumentParser:
    top = _Parser(prog="dl-driver", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("report", help="write a self-contained report.html (figures inlined) for each folder")
    rp.add_argument("folders", nargs="+", metavar="OUTPUT_DIR")
    rp.add_argument("--output", "-o", help="where the page goes (one folder only; default OUTPUT_DIR/report.html)")
    cp = sub.add_parser("compare", help="runs side by side: figures, ratios to the first run, config differences")
    cp.add_argument("folders", nargs="+", metavar="OUTPUT_DIR")
    cp.add_argument("--html", metavar="FILE", help="also write a page with the ratios drawn")
    gp = sub.add_parser("check-golden", help="compare a run with its golden reference, within tolerances")
    gp.add_argument("folder", metavar="OUTPUT_DIR")
    gp.add_argument("--golden", help="the golden's name (default: the one whose workload the run ran)")
    gp.add_argument("--goldens", metavar="DIR", help="the goldens folder (default ./goldens, else the source tree's)")
    gp.add_argument("--exact", action="store_true",
                    help="compare only exact figures (counts, steps, bytes, access order) and compute-bound AU")
    for p in (rp, cp, gp):
        p.add_argument("--format", choices=FORMATS, default="text", help="how the summary is printed on stdout")
        p.add_argument("--debug", action="store_true", help="show tracebacks")
    return top


def _report(args: argparse.Namespace) -> int:
    from .html import write_report

    if args.output and len(args.folders) > 1:
        from .rundata import ReportInputError

        raise ReportInputError("--output names one file: give one OUTPUT_DIR with it")
    written = []
    for folder in args.folders:
        path, figures = write_report(folder, args.output)
        written.append({"folder": folder, "report": path,
                        "figures": [f.id for f in figures if f.png is not None],
                        "omitted": {f.id: f.note for f in figures if f.png is None}})
        if args.format == "text":
            shown = sum(f.png is not None for f in figures)
            print(f"{path}: {shown} figures" + (f" ({len(figures) - shown} not drawn: see the page)"
                                                if shown < len(figures) else ""))
    if args.format != "text":
        emit({"reports": written}, args.format, rows=[{**w, "figures": w["figures"], "omitted": list(w["omitted"])}
                                                      for w in written])
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs

    comparison = compare_runs(args.folders)
    if args.format == "text":
        print(comparison.text())
    else:
        emit(comparison.as_dict(), args.format, rows=comparison.csv_rows())
    if args.html:
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(comparison.html())
        print(f"wrote {args.html}", file=sys.stderr if args.format != "text" else sys.stdout)
    return 0


def _check_golden(args: argparse.Namespace) -> int:
    from .golden import check_golden

    name, checks = check_golden(args.folder, args.golden, folder=args.goldens, only_exact=args.exact)
    passed = all(c.passed for c in checks)
    if args.format == "text":
        width = max(len(c.name) for c in checks)
        for c in checks:
            print(f"{'PASS' if c.passed else 'FAIL'}  {c.name.ljust(width)}  {c.kind:<13}  {c.distance}"
                  + ("" if c.passed else f"  (golden {c.golden!r}, run {c.value!r})"))
        print(f"{'PASS' if passed else 'FAIL'}: {args.folder} against golden {name} "
              f"({sum(c.passed for c in checks)}/{len(checks)} figures within tolerance)")
    else:
        emit({"golden": name, "folder": args.folder, "status": "PASS" if passed else "FAIL",
              "checks": [c.as_dict() for c in checks]}, args.format, rows=[c.as_dict() for c in checks])
    return 0 if passed else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the report commands (``argv`` starts with the command); returns the exit code."""
    from .figures import MissingPlotsExtra
    from .rundata import ReportInputError

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = _parser().parse_args(argv)
        return {"report": _report, "compare": _compare, "check-golden": _check_golden}[args.command](args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except (ReportInputError, MissingPlotsExtra) as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"dl-driver: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # a file named on the command line that cannot be written or read
        print(f"dl-driver: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT if exc.errno in _PATH_ERRORS else EXIT_FAILED
