"""Pre-run gates, checked before any rank starts (and by ``--dry-run``), as mlpstorage v3 has them.

==================  ==========================================================================  ===============
gate                what it checks                                                              when it fails
==================  ==========================================================================  ===============
``dataset-size``    ``dataset.num_files_train`` at least the datasize minimum (5x the clients'  closed refuses,
                    memory, the larger of declared and measured; 500 steps per epoch)           others warn
``dataset-present`` the training files are there: ``<data_folder>/train`` holds at least        closed refuses,
                    ``num_files_train`` files (file storage)                                    others warn
``process-count``   checkpointing ``--num-processes`` and ``-ncr``/``-ncw`` per the rules       closed refuses
                    (:func:`~dlio_core.mlperf.rules.check_checkpoint_counts`)
``capacity``        CAP-01: the free space where datagen or the checkpoints write holds what    every mode
                    they will write (statvfs)                                                   refuses
``fs-separation``   CAP-03: the dataset (or checkpoints) and the results on different           warns (as
                    filesystems                                                                 mlpstorage)
==================  ==========================================================================  ===============

A refusal is a :class:`~dlio_core.mlperf.errors.RulesError`, one line naming the gate (exit 2).

Example:
    >>> refuse_or_warn("closed", "dataset-present", "no files", warn=lambda line: None)
    Traceback (most recent call last):
    ...
    dlio_core.mlperf.errors.RulesError: closed run refused by the dataset-present gate: no files
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from .errors import RulesError

__all__ = ["GATES", "refuse_or_warn", "count_files", "dataset_present", "capacity", "fs_separation", "free_bytes"]

GATES = ("dataset-size", "dataset-present", "process-count", "capacity", "fs-separation")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def refuse_or_warn(mode: str, gate: str, message: str, *, warn: Callable[[str], None] = _stderr,
                   refuse_in: tuple[str, ...] = ("closed",)) -> None:
    """Raise (``mode`` in ``refuse_in``) or print a warning naming ``gate``."""
    if mode in refuse_in:
        raise RulesError(f"{mode} run refused by the {gate} gate: {message}")
    warn(f"warning: {gate} gate: {message}; the run is not valid for submission")


def count_files(folder: str, enough: int) -> int:
    """Regular files under ``folder`` (recursively), counting no further than ``enough``."""
    found = 0
    stack = [folder]
    while stack and found < enough:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file():
                        found += 1
                        if found >= enough:
                            break
        except OSError:
            continue
    return found


def dataset_present(mode: str, data_folder: str, num_files_train: int, *,
                    warn: Callable[[str], None] = _stderr) -> None:
    """The ``dataset-present`` gate for a training run on file storage."""
    train = os.path.join(data_folder, "train")
    have = count_files(train, num_files_train) if os.path.isdir(train) else 0
    if have < num_files_train:
        what = f"{train} holds {have:,} files" if os.path.isdir(train) else f"{train} does not exist"
        refuse_or_warn(mode, "dataset-present", f"{what}, the run reads {num_files_train:,} (dataset."
                       "num_files_train); generate it with 'datagen' first", warn=warn)


def _existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def free_bytes(path: str) -> int:
    """Free bytes (for an unprivileged writer) on the filesystem that holds or will hold ``path``."""
    st = os.statvfs(_existing(path))
    return st.f_bavail * st.f_frsize


def capacity(mode: str, path: str, need_bytes: int, what: str, *, warn: Callable[[str], None] = _stderr) -> None:
    """CAP-01: refuse when ``path``'s filesystem has less free space than ``need_bytes``."""
    have = free_bytes(path)
    if have < need_bytes:
        refuse_or_warn(mode, "capacity", f"{what} needs {need_bytes / 2**30:,.2f} GiB but "
                       f"{_existing(path)} has {have / 2**30:,.2f} GiB free", warn=warn,
                       refuse_in=("closed", "open", "whatif"))


def fs_separation(mode: str, data_path: str, results_dir: str, *, warn: Callable[[str], None] = _stderr) -> None:
    """CAP-03: the data and the results should sit on different filesystems (a warning, as in mlpstorage)."""
    if os.stat(_existing(data_path)).st_dev == os.stat(_existing(results_dir)).st_dev:
        refuse_or_warn(mode, "fs-separation", f"{data_path} and the results dir {results_dir} are on the same "
                       "filesystem; the rules want them apart", warn=warn, refuse_in=())
