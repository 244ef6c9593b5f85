"""``tf.train.Checkpoint`` save and restore to any storage, visible only once complete, timed.

A checkpoint of step ``N`` is the folder ``ckpt-N/`` under the storage root holding TensorFlow's
own bundle (``ckpt.index``, ``ckpt.data-*``) and, written last, dl-driver's commit marker
(``.dl-driver-complete``, JSON listing every file and its size: ``dlio_core.storage.stage``'s marker,
the same for every plugin). Only folders with the marker count.

TensorFlow writes the bundle into a local stage (``Checkpoint.write``, the primitive that
``CheckpointManager.save`` calls, without the manager's state file, which assumes TF's own file
system). Then the stage is published: on local storage by renaming the stage folder into place
(one atomic rename on the same file system) and writing the marker; on an object store through
``dlio_core.storage.stage.upload_stage`` (every file uploaded, the marker last), and restored through
``download_stage``, which refuses an uncommitted folder. ``s3://`` and ``az://`` thus work without
tensorflow-io. Each save reports the time TensorFlow took to write (``save_s``) and the time to
publish (``publish_s``), separately; a restore reports TensorFlow's read as ``restore_s`` (its
``save_s`` is None) and the download or listing as ``publish_s``.

After each save (and prune) the root gets TensorFlow's own state file ``checkpoint`` (the text
``CheckpointState`` that ``CheckpointManager`` writes) listing the complete checkpoints, so
``tf.train.latest_checkpoint(root)`` and ``CheckpointManager(..., directory=root)`` find ours
(``ckpt-N/ckpt``); our own listing still trusts only the commit markers. The bundles come from
``Checkpoint.write`` (no ``save_counter``), so restore them in TensorFlow with ``.expect_partial()``.

Example:
    >>> import tempfile, tensorflow as tf
    >>> from dlio_tf import TFCheckpointer
    >>> v = tf.Variable([1.0, 2.0])
    >>> ck = TFCheckpointer(tempfile.mkdtemp(), v=v)
    >>> ck.save(3).step, ck.steps()
    (3, [3])
    >>> _ = v.assign([0.0, 0.0]); r = ck.restore()
    >>> v.numpy().tolist(), r.save_s is None and r.restore_s > 0
    ([1.0, 2.0], True)
    >>> tf.train.latest_checkpoint(ck.storage.local_path("")).endswith("ckpt-3/ckpt")
    True
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from dlio_core.checkpoint import CheckpointPlan, checkpoint_storage
from dlio_core.storage import open_storage
from dlio_core.storage.stage import COMMIT_MARKER
from dlio_core.storage.stage import download_stage, upload_stage, write_marker

__all__ = ["TFCheckpointer", "CheckpointTiming", "state_from_config"]

# Variables are split so no tensor nears protobuf's 2 GiB limits and memory is allocated piecewise.
_MAX_VARIABLE_BYTES = 256 << 20
_DIR = re.compile(r"^ckpt-(\d+)$")
_STATE_FILE = "checkpoint"  # TensorFlow's CheckpointState file name (tf.train.latest_checkpoint reads it)


@dataclass(frozen=True)
class CheckpointTiming:
    """One save or restore: ``save_s`` is TensorFlow's write (None for a restore), ``restore_s`` its read
    (None for a save), ``publish_s`` the rename or upload (or download) around it, ``total_s`` all of
    it; ``nbytes`` the bundle's bytes."""

    step: int
    nbytes: int
    save_s: float | None
    publish_s: float
    total_s: float
    location: str
    restore_s: float | None = None


def state_from_config(cfg: Any, *, rank: int = 0, world: int = 1) -> dict[str, tf.Variable]:
    """int8 variables as large as the files rank ``rank`` writes under DLIO's sizing rules.

    ``model.model_size_bytes`` for a CNN; the transformer/ZeRO/TP/PP formula otherwise (see
    ``dlio_core.checkpoint.CheckpointPlan``). Contents are random bytes (``randomize_tensor``) or ones.

    Example:
        >>> from dlio_core.config import load_config
        >>> state = state_from_config(load_config("resnet50_tf"))
        >>> sum(int(v.shape.num_elements()) for v in state.values())
        10240
    """
    plan = CheckpointPlan.from_config(cfg, world)
    rng = np.random.default_rng([int(cfg.train.seed), rank])
    randomize = bool(cfg.checkpoint.randomize_tensor)
    state: dict[str, tf.Variable] = {}
    for name, nbytes in plan.rank_files(rank):
        key = re.sub(r"\W", "_", name)
        for k, start in enumerate(range(0, int(nbytes), _MAX_VARIABLE_BYTES)):
            n = min(_MAX_VARIABLE_BYTES, int(nbytes) - start)
            data = rng.integers(-128, 128, n, dtype=np.int8) if randomize else np.ones(n, np.int8)
            state[f"{key}_{k}"] = tf.Variable(data, trainable=False)
    return state


class TFCheckpointer:
    """Saves and restores ``tf.train.Checkpoint(**trackables)`` under a storage root (see module doc).

    ``root`` is a path, a ``file://`` URI, an object-store URI or a ``Storage``; ``stage_dir`` is where
    remote checkpoints are staged (default: the system temp folder); ``max_to_keep`` deletes older
    complete checkpoints after each save; ``fsync`` flushes local files before they are published.
    ``upload`` forces the stage-and-upload path (default: only for storage that is not local files).
    """

    def __init__(self, root: Any, *, storage_options: Any = None, stage_dir: str | None = None,
                 max_to_keep: int | None = None, fsync: bool = False, upload: bool | None = None,
                 **trackables: Any) -> None:
        self.storage = open_storage(root, storage_options) if isinstance(root, (str, os.PathLike)) else root
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.stage_dir = stage_dir
        self.max_to_keep = max_to_keep
        self.fsync = fsync
        local = self.storage.local_path("") is not None
        self.local = local if upload is None else (local and not upload)

    @classmethod
    def from_config(cls, cfg: Any, *, rank: int = 0, world: int = 1, **kwargs: Any) -> "TFCheckpointer":
        """State sized by :func:`state_from_config`, saved under ``checkpoint.checkpoint_folder``."""
        storage = checkpoint_storage(cfg)
        kwargs.setdefault("fsync", bool(cfg.checkpoint.fsync))
        return cls(storage, **kwargs, **state_from_config(cfg, rank=rank, world=world))

    # -- listing ---------------------------------------------------------------------------------
    def steps(self) -> list[int]:
        """Steps of the complete checkpoints (those with the commit marker), ascending."""
        found = set()
        for rel, _ in self.storage.list_files("", COMMIT_MARKER):
            parts = rel.strip("/").split("/")
            if len(parts) == 2 and parts[1] == COMMIT_MARKER and _DIR.match(parts[0]):
                found.add(int(_DIR.match(parts[0]).group(1)))
        return sorted(found)

    def _folder(self, step: int) -> str:
        return f"ckpt-{int(step)}"

    # -- save ------------------------------------------------------------------------------------
    def save(self, step: int) -> CheckpointTiming:
        """Write the state as checkpoint ``step``; it becomes visible only once every byte is published."""
        folder = self._folder(step)
        self._delete(step)  # a re-save of the same step replaces it (marker goes first)
        if self.local:
            nbytes, t0, t1 = self._save_local(folder)
        else:
            with upload_stage(self.storage, folder, dir=self.stage_dir) as stage:  # uploads on exit, marker last
                t0 = time.perf_counter()
                self.checkpoint.write(os.path.join(stage, "ckpt"))
                t1 = time.perf_counter()
                nbytes = sum(_local_sizes(stage).values())
        self._prune()
        self._write_state()
        t2 = time.perf_counter()
        return CheckpointTiming(int(step), nbytes, t1 - t0, t2 - t1, t2 - t0, f"{self.storage.url}/{folder}")

    def _write_state(self) -> None:
        """TensorFlow's ``checkpoint`` state file listing the complete checkpoints, latest last."""
        paths = [f"{self._folder(s)}/ckpt" for s in self.steps()]
        if not paths:
            self.storage.delete(_STATE_FILE, missing_ok=True)
            return
        lines = [f'model_checkpoint_path: "{paths[-1]}"'] + [f'all_model_checkpoint_paths: "{p}"' for p in paths]
        self.storage.write_atomic(_STATE_FILE, ("\n".join(lines) + "\n").encode(), fsync=self.fsync)

    def _save_local(self, folder: str) -> tuple[int, float, float]:
        """Write into a stage beside the target, rename it into place, then commit; (bytes, t0, t1)."""
        self.storage.makedirs("")
        stage = tempfile.mkdtemp(prefix=f".{folder}.tmp-", dir=self.storage.local_path(""))
        try:
            t0 = time.perf_counter()
            self.checkpoint.write(os.path.join(stage, "ckpt"))
            t1 = time.perf_counter()
            sizes = _local_sizes(stage)
            if self.fsync:
                _fsync_all(stage, sorted(sizes))
            os.rename(stage, self.storage.local_path(folder))  # atomic on one file system
            write_marker(self.storage, folder, sizes, fsync=self.fsync)  # the commit: written last
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        return sum(sizes.values()), t0, t1

    def _delete(self, step: int) -> None:
        folder = self._folder(step)
        if not self.storage.exists(f"{folder}/{COMMIT_MARKER}") and not self.storage.exists(f"{folder}/ckpt.index"):
            return
        self.storage.delete(f"{folder}/{COMMIT_MARKER}", missing_ok=True)
        if self.local:
            shutil.rmtree(self.storage.local_path(folder), ignore_errors=True)
        else:
            for rel, _ in self.storage.list_files(folder):
                self.storage.delete(rel, missing_ok=True)

    def _prune(self) -> None:
        if self.max_to_keep is None:
            return
        for old in self.steps()[: -self.max_to_keep or None]:
            self._delete(old)

    # -- restore ---------------------------------------------------------------------------------
    def restore(self, step: int | None = None) -> CheckpointTiming:
        """Read checkpoint ``step`` (default: the latest complete one) into the tracked state."""
        complete = self.steps()
        if step is None:
            if not complete:
                raise FileNotFoundError(f"no complete checkpoint under {self.storage.url} (none has {COMMIT_MARKER})")
            step = complete[-1]
        if int(step) not in complete:
            raise FileNotFoundError(f"{self.storage.url}/{self._folder(step)} is not a complete checkpoint "
                                    f"(complete: {complete or 'none'})")
        folder = self._folder(step)
        t0 = time.perf_counter()
        if self.local:
            nbytes = sum(size for rel, size in self.storage.list_files(folder) if not rel.endswith(COMMIT_MARKER))
            t1 = time.perf_counter()
            ckpt = os.path.join(self.storage.local_path(folder), "ckpt")
            self.checkpoint.read(ckpt).assert_existing_objects_matched()
        else:
            with download_stage(self.storage, folder, dir=self.stage_dir) as stage:  # only the marker's files
                nbytes = sum(_local_sizes(stage).values())
                t1 = time.perf_counter()
                self.checkpoint.read(os.path.join(stage, "ckpt")).assert_existing_objects_matched()
        t2 = time.perf_counter()
        return CheckpointTiming(int(step), nbytes, None, t1 - t0, t2 - t0, f"{self.storage.url}/{folder}",
                                restore_s=t2 - t1)


def _local_sizes(folder: str) -> dict[str, int]:
    """``{name: size_bytes}`` of the files TensorFlow wrote into ``folder`` (a flat bundle)."""
    return {n: os.path.getsize(os.path.join(folder, n)) for n in sorted(os.listdir(folder))}


def _fsync_all(folder: str, names: list[str]) -> None:
    for name in names:
        fd = os.open(os.path.join(folder, name), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
