"""The output folder and the run log.

The folder is ``output.folder``, else hydra's ``hydra.run.dir``, else DLIO's default
``hydra_log/{model.name}/{YYYY-MM-DD}-{HH-MM-SS}``. It receives ``dlio.log`` (console lines, all ranks,
each prefixed with its rank when there is more than one), the resolved config with secrets redacted
and the overrides (``.hydra/config.yaml`` and ``.hydra/overrides.yaml``, or ``hydra.output_subdir``).
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import time
from typing import Any, Iterable

import yaml

from .redact import redact_override
from .report.host import timestamp

__all__ = ["resolve_output_folder", "make_output_folder", "RunLog", "write_config_copies", "redact_override"]


def resolve_output_folder(cfg: Any) -> str:
    """Where this run's files go (see module docstring)."""
    folder = getattr(cfg.output, "folder", None)
    if folder:
        return str(folder)
    return os.path.join("hydra_log", str(cfg.model.name), time.strftime("%Y-%m-%d-%H-%M-%S"))


# errno values that mean the output folder given cannot be used (wrong input), not that a device failed.
_UNUSABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EEXIST,
                       errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP})


def make_output_folder(path: str) -> None:
    """``os.makedirs(path)``, or one ``ConfigError`` naming the folder when it cannot be made there (no
    permission, a read-only file system, a file in the way); other errors (disk full) pass through.

    Example:
        >>> make_output_folder("/proc/no-such/out")
        Traceback (most recent call last):
        ...
        dlio_core.config.errors.ConfigError: output folder /proc/no-such/out: cannot create it (No such file or directory); set output.folder or ++hydra.run.dir to a folder you can write
    """
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".dl-driver-write-test-{os.getpid()}")
        with open(probe, "wb"):
            pass
        os.unlink(probe)
    except OSError as exc:
        if exc.errno not in _UNUSABLE:
            raise
        from .config.errors import ConfigError

        raise ConfigError(f"output folder {path}: cannot create it ({exc.strerror or exc}); set output.folder or "
                          f"++hydra.run.dir to a folder you can write", key="output.folder") from None


def write_config_copies(folder: str, cfg: Any, overrides: Iterable[str], subdir: str = ".hydra") -> None:
    """Save the resolved config and the overrides, as hydra lays them out, secrets redacted
    (``dlio_core.redact``: by key name, inside values, inside mapping-valued overrides)."""
    make_output_folder(folder)
    path = os.path.join(folder, subdir)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.yaml"), "w", encoding="utf-8") as fh:
        yaml.safe_dump({"workload": cfg.to_dict(redact=True)}, fh, sort_keys=False)
    with open(os.path.join(path, "overrides.yaml"), "w", encoding="utf-8") as fh:
        yaml.safe_dump([redact_override(o) for o in overrides], fh, sort_keys=False)


class RunLog:
    """Console and ``dlio.log`` lines in DLIO's style: ``[OUTPUT] <timestamp> <message>``.

    Only rank 0 prints to the console (as DLIO); every rank appends to the log file.
    """

    def __init__(self, rank: int = 0, world: int = 1, quiet: bool = False) -> None:
        self.rank = rank
        self.world = world
        self.quiet = quiet
        self._file = None
        self._path = ""
        self._pending: list[str] = []

    def open_file(self, path: str) -> None:
        make_output_folder(os.path.dirname(path) or ".")
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._path = path
        self._write("\n".join(self._pending) + "\n" if self._pending else "")
        self._pending.clear()

    def _write(self, text: str) -> None:
        """Append to the log file; a failure (disk full) names the file and keeps its errno (exit 1)."""
        try:
            self._file.write(text)
            self._file.flush()
        except OSError as e:
            raise OSError(e.errno, e.strerror or str(e), self._path) from None

    def _emit(self, level: str, message: str, console: bool) -> None:
        prefix = f"[{level}] {timestamp()} "
        if self.world > 1:
            prefix += f"[rank {self.rank}] "
        lines = [prefix + part for part in message.splitlines() or [""]]
        if console and self.rank == 0 and not self.quiet:
            stream = sys.stderr if level in ("WARNING", "ERROR") else sys.stdout
            print("\n".join(lines), file=stream, flush=True)
        if self._file is not None:
            self._write("\n".join(lines) + "\n")
        else:
            self._pending.extend(lines)

    def output(self, message: str) -> None:
        self._emit("OUTPUT", message, console=True)

    def info(self, message: str) -> None:
        self._emit("INFO", message, console=logging.getLogger("dl_driver").isEnabledFor(logging.INFO))

    def warning(self, message: str) -> None:
        self._emit("WARNING", message, console=True)

    def error(self, message: str, *, console: bool = True) -> None:
        """An ``[ERROR]`` line; ``console=False`` when the caller prints the error itself (the CLI's line)."""
        self._emit("ERROR", message, console=console)

    def metric_block(self, lines: list[str]) -> None:
        """The ``[METRIC]`` block, printed verbatim (no timestamps inside, as DLIO prints it)."""
        text = "\n".join(lines)
        if self.rank == 0 and not self.quiet:
            print(text, flush=True)
        if self._file is not None:
            self._write(text + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
