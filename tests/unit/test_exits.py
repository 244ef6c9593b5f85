"""One exit-code table: input that is wrong exits 2, a failure while running 1, whatever wraps it."""

from __future__ import annotations

import errno
import pickle

import pytest

from dlio_core.config import ConfigError
from dlio_core.engine import ReadError
from dlio_core.exits import EXIT_BAD_INPUT, EXIT_CODES, EXIT_FAILURE, bad_input_types, exit_code_of
from dlio_core.storage import StorageError, StorageNotFoundError
from dlio_core.storage.osio import os_error
from dlio_core.storage.retry import DeadlineExceeded, RetryExhausted


def _wrapped(inner: BaseException, outer: type[BaseException] = ReadError) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as e:
            raise outer(f"cannot read train/a.npz: {e}") from e
    except BaseException as w:
        return w


def test_the_table_names_every_code():
    assert sorted(EXIT_CODES) == [0, 1, 2, 130, 143]


@pytest.mark.parametrize("cause, code", [("input", 2), ("unreachable", 1), ("timeout", 1), ("io", 1)])
def test_storage_errors_exit_by_cause(cause, code):
    exc = StorageError("cannot read s3://b/k", cause=cause)
    assert exit_code_of(exc) == code
    assert exit_code_of(_wrapped(exc)) == code  # a reader's ReadError naming the file keeps the cause


def test_cause_survives_pickling_and_is_checked():
    exc = pickle.loads(pickle.dumps(StorageError("x", cause="timeout")))
    assert exc.cause == "timeout" and not exc.bad_input
    assert pickle.loads(pickle.dumps(StorageNotFoundError("gone"))).bad_input
    with pytest.raises(ValueError, match="cause must be one of"):
        StorageError("x", cause="sometimes")


def test_bad_input_and_failures():
    assert exit_code_of(ConfigError("dataset.num_files_train must be >= 1")) == EXIT_BAD_INPUT
    assert exit_code_of(ReadError("a.npz: not an npz file")) == EXIT_BAD_INPUT
    assert exit_code_of(RuntimeError("a bug")) == EXIT_FAILURE
    assert exit_code_of(RetryExhausted(ConnectionResetError(), 5, 1.0)) == EXIT_FAILURE
    assert exit_code_of(_wrapped(DeadlineExceeded(TimeoutError(), 1, 2.0, 2.0), RuntimeError)) == EXIT_FAILURE
    assert exit_code_of(OSError(errno.ENOSPC, "No space left on device")) == EXIT_FAILURE
    assert ConfigError in bad_input_types() and KeyError in bad_input_types(KeyError)


@pytest.mark.parametrize("err, cause, code", [
    (FileNotFoundError(errno.ENOENT, "No such file or directory"), "input", 2),
    (PermissionError(errno.EACCES, "Permission denied"), "input", 2),
    (OSError(errno.ENOSPC, "No space left on device"), "io", 1),
    (OSError(errno.EIO, "Input/output error"), "io", 1),
    (OSError(errno.ETIMEDOUT, "Connection timed out"), "unreachable", 1),
])
def test_local_errors_carry_their_cause(err, cause, code):
    exc = os_error("read", "/data/train/a.npz", err)
    assert exc.cause == cause and exit_code_of(exc) == code and "/data/train/a.npz" in str(exc)
