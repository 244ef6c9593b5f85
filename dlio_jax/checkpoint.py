"""Orbax checkpoint hooks: save and restore state sized from a DLIO config, with honest timing.

:class:`OrbaxCheckpointer` wraps ``orbax.checkpoint.CheckpointManager``. ``save(step, state)``
returns a :class:`SaveTiming` with ``blocking_s`` (how long ``save()`` held the training loop) and,
once ``wait_until_finished()`` has returned, ``finish_s`` (from the ``save()`` call to the end of the
background write). Local directories are written by Orbax in place (its atomic rename). Object stores
(``s3://``, ``az://``, ``gs://``: any non-local :class:`~dlio_core.storage.Storage`) get what Orbax lacks
there: Orbax writes a local stage, then ``dlio_core.storage.stage`` uploads every file and writes the
commit marker ``{step}/.dl-driver-complete`` last; a step without its marker is never restored.
``upload_s`` is the upload's share of ``finish_s``.

:func:`state_from_config` builds this rank's state as DLIO sizes it (``dlio_core.checkpoint``'s
file plan: one int8 array per file a rank writes).

Example:
    >>> import tempfile, numpy as np
    >>> from dlio_jax.checkpoint import OrbaxCheckpointer
    >>> with OrbaxCheckpointer(tempfile.mkdtemp()) as ck:
    ...     t = ck.save(1, {"w": np.arange(4, dtype=np.float32)}, wait=True)
    ...     restored = ck.restore(1)
    >>> restored["w"].tolist(), t.finish_s >= t.blocking_s
    ([0.0, 1.0, 2.0, 3.0], True)
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

# The shared commit marker (".dl-driver-complete"): uploaded last, it lists every file of a step.
from dlio_core.storage.stage import COMMIT_MARKER

__all__ = ["COMMIT_MARKER", "OrbaxCheckpointer", "SaveTiming", "state_from_config"]



@dataclass
class SaveTiming:
    """One save: ``blocking_s`` (``save()`` returned), ``finish_s`` (``wait_until_finished()`` returned,
    from the same start; None until then), ``upload_s`` (staged uploads only) and bytes written."""

    step: int
    blocking_s: float
    finish_s: float | None = None
    upload_s: float = 0.0
    bytes_written: int = 0


def state_from_config(cfg: Any, *, rank: int = 0, world: int = 1) -> dict[str, np.ndarray]:
    """This rank's checkpoint state by DLIO's sizing rules: ``{file stem: int8 zeros of its bytes}``.

    Example:
        >>> from dlio_core.config import load_config
        >>> {k: v.nbytes for k, v in state_from_config(load_config("default")).items()}
        {'model_states-0': 10240}
    """
    try:
        from dlio_core.checkpoint.state import CheckpointPlan
    except ImportError:  # older dlio_core: the model tensor alone
        return {f"model_states-{rank}": np.zeros(int(cfg.model.model_size_bytes), np.int8)}
    files = CheckpointPlan.from_config(cfg, world=world).rank_files(rank)
    return {os.path.splitext(name)[0].replace("/", "_"): np.zeros(int(nbytes), np.int8) for name, nbytes in files}


def _local_dir(target: Any) -> str | None:
    """The local directory of ``target`` (a path, ``file://`` URI or local Storage), else None."""
    if isinstance(target, (str, os.PathLike)):
        s = os.fspath(target)
        if s.startswith("file://"):
            return s[len("file://"):]
        return None if "://" in s else os.path.abspath(s)
    return target.local_path("")


def _tree_bytes(state: Any) -> int:
    import jax

    return int(sum(getattr(x, "nbytes", 0) for x in jax.tree_util.tree_leaves(state)))


class OrbaxCheckpointer:
    """Orbax ``CheckpointManager`` over a local directory or, staged, over any dl-driver storage.

    ``target``: a path, a URI or a :class:`~dlio_core.storage.Storage`. ``stage_dir``: where Orbax
    writes before upload for non-local targets (default: a new temporary directory). ``async_`` turns
    Orbax's asynchronous checkpointing on (the default) or off.
    """

    def __init__(self, target: Any, *, async_: bool = True, stage_dir: str | None = None,
                 max_to_keep: int | None = None) -> None:
        import orbax.checkpoint as ocp

        self._ocp = ocp
        local = _local_dir(target)
        if local is None:
            from dlio_core.storage import open_storage

            self.storage = open_storage(target) if isinstance(target, str) else target
            self._stage = stage_dir or tempfile.mkdtemp(prefix="dl-driver-orbax-")
            directory = self._stage
        else:
            self.storage = None
            self._stage = None
            directory = local
        self.directory = directory
        self._options = ocp.CheckpointManagerOptions(enable_async_checkpointing=async_, max_to_keep=max_to_keep,
                                                     create=True)
        self.manager = ocp.CheckpointManager(directory, options=self._options)
        self._pending: list[tuple[SaveTiming, float]] = []

    @classmethod
    def from_config(cls, cfg: Any, **kwargs: Any) -> "OrbaxCheckpointer":
        """A checkpointer at ``checkpoint.checkpoint_folder`` (resolved like the data folder)."""
        try:
            from dlio_core.checkpoint.transfer import checkpoint_storage

            target: Any = checkpoint_storage(cfg)
        except ImportError:
            target = str(cfg.checkpoint.checkpoint_folder)
        return cls(target, **kwargs)

    # -- save ------------------------------------------------------------------------------------
    def save(self, step: int, state: Any, *, wait: bool = False) -> SaveTiming:
        """Start saving ``state`` (a pytree of arrays) as ``step``; ``wait=True`` also waits and uploads."""
        t0 = time.perf_counter()
        self.manager.save(step, args=self._ocp.args.StandardSave(state))
        timing = SaveTiming(step, time.perf_counter() - t0, bytes_written=_tree_bytes(state))
        self._pending.append((timing, t0))
        if wait:
            self.wait_until_finished()
        return timing

    def wait_until_finished(self) -> list[SaveTiming]:
        """Wait for background writes (and uploads); return the saves this finished, timings filled in."""
        self.manager.wait_until_finished()
        done, self._pending = self._pending, []
        for timing, t0 in done:
            if self.storage is not None:
                t1 = time.perf_counter()
                self._upload(timing.step)
                timing.upload_s = time.perf_counter() - t1
            timing.finish_s = time.perf_counter() - t0
        return [t for t, _ in done]

    def _upload(self, step: int) -> None:
        from dlio_core.storage.stage import upload_dir

        upload_dir(os.path.join(self._stage, str(step)), self.storage, str(step))  # marker last

    # -- restore ---------------------------------------------------------------------------------
    def all_steps(self) -> list[int]:
        """Committed steps, oldest first (on object stores, those with a commit marker)."""
        if self.storage is None:
            return sorted(self.manager.all_steps())
        steps = set()
        for rel, _ in self.storage.list_files("", COMMIT_MARKER):
            head = rel.split("/", 1)[0]
            if head.isdigit():
                steps.add(int(head))
        return sorted(steps)

    def latest_step(self) -> int | None:
        steps = self.all_steps()
        return steps[-1] if steps else None

    def restore(self, step: int | None = None, *, like: Any = None) -> Any:
        """The state saved as ``step`` (default: the latest committed); ``like`` gives target shapes/shardings."""
        step = self.latest_step() if step is None else step
        if step is None or step not in self.all_steps():
            raise FileNotFoundError(f"no committed checkpoint step {step} at {self._where()}")
        args = self._ocp.args.StandardRestore(like)
        if self.storage is None:
            return self.manager.restore(step, args=args)
        from dlio_core.storage.stage import download_dir

        fetch = tempfile.mkdtemp(prefix="dl-driver-orbax-restore-")
        try:
            download_dir(self.storage, str(step), os.path.join(fetch, str(step)))  # refuses uncommitted steps
            with self._ocp.CheckpointManager(fetch, options=self._ocp.CheckpointManagerOptions(create=False)) as m:
                return m.restore(step, args=args)
        finally:
            shutil.rmtree(fetch, ignore_errors=True)

    def _where(self) -> str:
        return str(getattr(self.storage, "url", self.directory)) if self.storage is not None else self.directory

    # -- lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        """Finish pending saves (and uploads) and close the manager."""
        if self._pending:
            self.wait_until_finished()
        self.manager.close()

    def __enter__(self) -> "OrbaxCheckpointer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
