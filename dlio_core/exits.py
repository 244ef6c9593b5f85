"""Exit codes: one table, and the rule that turns an error into its code.

Every ``dl-driver`` command ends with one of these (the README's "Exit codes" table is this one):

====  ===========================================================================================
0     done
1     a failure while running: storage unreachable, stalled past its deadline or full, a rank lost,
      a bug (the one-line message then says ``--debug`` shows the traceback)
2     input that is wrong: the config (a key, a value out of range, a YAML error), the command's
      arguments, the dataset (missing, too few files, a malformed or vanished file), a bad storage
      URI or option, refused credentials
130   interrupted by SIGINT (Ctrl-C); the metrics measured so far are written
143   stopped by SIGTERM (``timeout``, Slurm, a batch system); the metrics measured so far are written
====  ===========================================================================================

Errors say which they are: the input errors are the types in :func:`bad_input_types`; a storage error
carries its ``cause`` (``StorageError.bad_input``), so a server that goes away mid-run is a failure
(1) even when a reader wrapped it into a ``ReadError`` naming the file. Signal handling itself is
:mod:`dlio_core.signals`'.

Example:
    >>> from dlio_core.storage import StorageError
    >>> exit_code_of(StorageError("s3://b/k: no such option"))
    2
    >>> try:
    ...     try:
    ...         raise StorageError("cannot read s3://b/k: no answer", cause="timeout")
    ...     except StorageError as e:
    ...         raise ValueError("reading s3://b/k failed") from e
    ... except ValueError as wrapped:
    ...     exit_code_of(wrapped)
    1
"""

from __future__ import annotations

import errno

__all__ = ["EXIT_OK", "EXIT_FAILURE", "EXIT_BAD_INPUT", "EXIT_SIGINT", "EXIT_SIGTERM", "EXIT_CODES",
           "bad_input_types", "exit_code_of"]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
EXIT_SIGINT, EXIT_SIGTERM = 130, 143  # 128 + the signal number, the shell's convention

EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_FAILURE: "a failure while running (storage unreachable, stalled or full, a rank lost, a bug)",
    EXIT_BAD_INPUT: "input that is wrong (config, arguments, dataset, storage URI or options)",
    EXIT_SIGINT: "interrupted by SIGINT; the metrics measured so far are written",
    EXIT_SIGTERM: "stopped by SIGTERM; the metrics measured so far are written",
}

# errno values that say a device failed under a valid request (not that the request was wrong).
_DEVICE_FAILED = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})
# The modules and names of the input errors, imported lazily (the CLI imports nothing heavy up front).
_BAD_INPUT = (("dlio_core.config.errors", "ConfigError"), ("dlio_core.manifest", "DatasetError"),
              ("dlio_core.formats", "FormatError"), ("dlio_core.engine", "ReadError"),
              ("dlio_core.storage.backend", "StorageError"), ("dlio_core.loaders", "LoaderUnavailable"),
              ("dlio_core.runner", "RunError"))


def bad_input_types(*extra: type) -> tuple[type, ...]:
    """The exception types that mean "the input is wrong" (exit 2), plus ``extra``.

    Example:
        >>> from dlio_core.config import ConfigError
        >>> ConfigError in bad_input_types()
        True
    """
    types: list[type] = list(extra)
    for module, name in _BAD_INPUT:
        try:
            types.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(types)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and all(e is not s for s in seen) and len(seen) < 16:
        seen.append(e)
        e = e.__cause__ or e.__context__
    return seen


def _failed_while_running(e: BaseException) -> bool:
    cause = getattr(e, "cause", None)
    if isinstance(cause, str) and hasattr(e, "bad_input"):  # a StorageError: its cause decides
        return not e.bad_input  # type: ignore[attr-defined]
    if type(e).__name__ in ("RetryExhausted", "DeadlineExceeded", "RankLost"):
        return True
    return isinstance(e, OSError) and e.errno in _DEVICE_FAILED


def exit_code_of(exc: BaseException, *extra_bad_input: type) -> int:
    """The exit code for an error that ended a command: 1 when the storage or a device failed anywhere
    in its chain of causes, 2 for input errors (``bad_input_types`` and ``extra_bad_input``), else 1.

    Example:
        >>> exit_code_of(OSError(errno.ENOSPC, "No space left on device")), exit_code_of(KeyError("x"))
        (1, 1)
    """
    if any(_failed_while_running(e) for e in _chain(exc)):
        return EXIT_FAILURE
    return EXIT_BAD_INPUT if isinstance(exc, bad_input_types(*extra_bad_input)) else EXIT_FAILURE
