"""Checkpoint hooks: ``torch.save``/``torch.load`` streamed through any storage URI, and
``torch.distributed.checkpoint`` (DCP) through fsspec, each reporting bytes and seconds.

- :func:`save` streams ``torch.save`` into ``Storage.open_write`` (a temporary name renamed on
  success locally, a multipart upload committed on close on object stores): the checkpoint is
  visible only when complete. :func:`load` reads it back (``torch.load`` needs a seekable stream).
- :func:`dcp_save` / :func:`dcp_load` use DCP with ``FsspecWriter``/``FsspecReader``; DCP writes its
  ``.metadata`` last (temporary name, then rename), so a checkpoint without it is incomplete and
  does not load.
- ``background=True`` snapshots the tensors to CPU memory first (the *blocking* time, what a training
  loop pays), then writes on a thread (the *background* time) and returns an :class:`AsyncSave`; for DCP
  that is DCP's own ``async_save`` (its staging is the blocking time), on torch versions that have it.
- :func:`load` uses ``weights_only=True`` unless the caller passes ``weights_only=False``.
- A DCP failure (DCP raises ``CheckpointException``, a ``BaseException`` that ``except Exception`` misses,
  with every rank's traceback in its text) is raised as one
  :class:`~dlio_core.checkpoint.CheckpointError` line naming the URI and the first cause.
  This works the same on every torch >= 2.4, with or without a process group.

Example:
    >>> import tempfile, torch
    >>> uri = tempfile.mkdtemp() + "/ckpt/model.pt"
    >>> stats = save({"w": torch.arange(4.0)}, uri)
    >>> stats.size_bytes > 0, stats.background_s is None
    (True, True)
    >>> load(uri)["w"].tolist()
    [0.0, 1.0, 2.0, 3.0]
"""

from __future__ import annotations

import io
import posixpath
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from dlio_core.checkpoint.fw_torch import CountingWriter, dcp_errors
from dlio_core.storage import open_storage, redact_uri, split_scheme

__all__ = ["AsyncSave", "CheckpointStats", "dcp_load", "dcp_save", "load", "save"]


@dataclass(frozen=True)
class CheckpointStats:
    """One checkpoint write or read.

    ``total_s`` runs from the call to the checkpoint being complete; ``blocking_s`` is the part the
    caller waited for (all of it for a synchronous save); ``background_s`` is the part spent after the
    call returned (``None`` for synchronous saves and for loads).
    """

    uri: str
    mechanism: str  # "torch.save" | "torch.load" | "dcp.save" | "dcp.async_save" | "dcp.load"
    size_bytes: int
    total_s: float
    blocking_s: float
    background_s: float | None = None

    @property
    def throughput_bytes_per_s(self) -> float:
        return self.size_bytes / self.total_s if self.total_s > 0 else 0.0


class AsyncSave:
    """A background save in progress: ``wait()`` returns its :class:`CheckpointStats` (or raises its error)."""

    def __init__(self, run: Callable[[], tuple[int, float]], uri: str, mechanism: str, blocking_s: float,
                 t0: float) -> None:
        self._uri, self._mechanism, self._blocking_s, self._t0 = uri, mechanism, blocking_s, t0
        self._stats: CheckpointStats | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._body, args=(run,), name="dl-driver-ckpt", daemon=True)
        self._thread.start()

    def _body(self, run: Callable[[], tuple[int, float]]) -> None:
        try:
            nbytes, write_s = run()
            self._stats = CheckpointStats(self._uri, self._mechanism, nbytes, time.perf_counter() - self._t0,
                                          self._blocking_s, write_s)
        except BaseException as exc:  # re-raised in wait(), on the caller's thread
            self._error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> CheckpointStats:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"checkpoint {self._uri} still writing after {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._stats is not None
        return self._stats


def _stage(obj: Any) -> Any:
    """A CPU copy of every tensor in ``obj`` (so training may change the originals while we write)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        items = [(k, _stage(v)) for k, v in obj.items()]
        try:
            return type(obj)(items)  # keeps OrderedDict (module state_dicts)
        except TypeError:
            return dict(items)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_stage(v) for v in obj)
    return obj


def _split(uri: str) -> tuple[str, str]:
    scheme, rest = split_scheme(uri)
    head, name = posixpath.split(rest.rstrip("/"))
    if not name:
        raise ValueError(f"checkpoint URI {redact_uri(uri)} names no file")
    root = f"{scheme}://{head}" if scheme else (head or ".")
    return root, name


def _write_torch(state: Any, uri: str, options: Mapping[str, Any] | None, fsync: bool) -> tuple[int, float]:
    t0 = time.perf_counter()
    root, name = _split(uri)
    storage = open_storage(root, dict(options) if options else None)
    with storage.open_write(name, fsync=fsync) as f:
        counting = CountingWriter(f)
        torch.save(state, counting)
        counting.flush()
    return counting.count, time.perf_counter() - t0


def save(state: Any, uri: str, *, storage_options: Mapping[str, Any] | None = None, fsync: bool = False,
         background: bool = False) -> CheckpointStats | AsyncSave:
    """``torch.save(state)`` to ``uri`` (path, ``file://``, ``s3://``, ...), visible only when complete."""
    t0 = time.perf_counter()
    if not background:
        nbytes, _ = _write_torch(state, uri, storage_options, fsync)
        total = time.perf_counter() - t0
        return CheckpointStats(redact_uri(uri), "torch.save", nbytes, total, total)
    staged = _stage(state)
    return AsyncSave(lambda: _write_torch(staged, uri, storage_options, fsync), redact_uri(uri), "torch.save",
                     time.perf_counter() - t0, t0)


def load(uri: str, *, storage_options: Mapping[str, Any] | None = None, map_location: Any = "cpu",
         weights_only: bool = True, return_stats: bool = False) -> Any:
    """``torch.load`` from ``uri``; with ``return_stats`` returns ``(obj, CheckpointStats)``.

    ``weights_only=True`` (the default) unpickles tensors, numbers, strings and plain containers only, so a
    checkpoint cannot run code on load; pass ``weights_only=False`` only for a checkpoint you trust that holds
    other objects.
    """
    t0 = time.perf_counter()
    root, name = _split(uri)
    data = open_storage(root, dict(storage_options) if storage_options else None).read(name)
    obj = torch.load(io.BytesIO(data), map_location=map_location, weights_only=weights_only)
    total = time.perf_counter() - t0
    return (obj, CheckpointStats(redact_uri(uri), "torch.load", len(data), total, total)) if return_stats else obj


def _fsspec_classes() -> tuple[Any, Any]:
    """``FsspecWriter``/``FsspecReader`` from wherever this torch keeps them (public in 2.3-2.4, private later)."""
    for module in ("torch.distributed.checkpoint.fsspec", "torch.distributed.checkpoint._fsspec_filesystem"):
        try:
            mod = __import__(module, fromlist=["FsspecWriter", "FsspecReader"])
            return mod.FsspecWriter, mod.FsspecReader
        except (ImportError, AttributeError):
            continue
    raise ImportError("this torch has no torch.distributed.checkpoint fsspec writer; "
                      "install torch>=2.4 and fsspec (pip install 'dl-driver[torch,s3]')")


def _tree_bytes(uri: str, options: Mapping[str, Any] | None) -> int:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri, **dict(options or {}))
    return int(sum(info.get("size", 0) or 0 for info in fs.find(path, detail=True).values()))


def _write_dcp(state: dict, uri: str, options: Mapping[str, Any] | None) -> tuple[int, float]:
    import torch.distributed.checkpoint as dcp

    writer_cls, _ = _fsspec_classes()
    t0 = time.perf_counter()
    with warnings.catch_warnings(), dcp_errors(f"dcp.save to {redact_uri(uri)}"):
        warnings.simplefilter("ignore", UserWarning)  # "assuming the intent is to save in a single process" is
        dcp.save(state, storage_writer=writer_cls(uri, **dict(options or {})))  # the intent here
    write_s = time.perf_counter() - t0
    return _tree_bytes(uri, options), write_s


def dcp_save(state_dict: dict, uri: str, *, storage_options: Mapping[str, Any] | None = None,
             background: bool = False) -> CheckpointStats | AsyncSave:
    """``torch.distributed.checkpoint.save`` into the directory ``uri`` through ``FsspecWriter``.

    Works in a single process (no process group) and under ``torchrun``; ``size_bytes`` is every
    file under ``uri`` after the save (one listing).
    """
    t0 = time.perf_counter()
    if not background:
        nbytes, _ = _write_dcp(state_dict, uri, storage_options)
        total = time.perf_counter() - t0
        return CheckpointStats(redact_uri(uri), "dcp.save", nbytes, total, total)
    import torch.distributed.checkpoint as dcp

    if not hasattr(dcp, "async_save"):  # older torch: our own snapshot and thread
        staged = _stage(state_dict)
        return AsyncSave(lambda: _write_dcp(staged, uri, storage_options), redact_uri(uri), "dcp.save",
                         time.perf_counter() - t0, t0)
    writer_cls, _ = _fsspec_classes()
    # DCP's writer thread warns that it saves "in a single process" without a process group: that is the intent
    warnings.filterwarnings("ignore", message="torch.distributed is disabled", category=UserWarning)
    what = f"dcp.async_save to {redact_uri(uri)}"
    with warnings.catch_warnings(), dcp_errors(what):
        warnings.simplefilter("ignore", UserWarning)
        # DCP stages the tensors (the blocking part) and writes them on its own thread
        future = dcp.async_save(state_dict, storage_writer=writer_cls(uri, **dict(storage_options or {})))
    blocking_s = time.perf_counter() - t0

    def finish() -> tuple[int, float]:
        t1 = time.perf_counter()
        with dcp_errors(what):
            getattr(future, "upload_completion", future).result()  # AsyncSaveResponse (newer torch) or a Future
        return _tree_bytes(uri, storage_options), time.perf_counter() - t1

    return AsyncSave(finish, redact_uri(uri), "dcp.async_save", blocking_s, t0)


def dcp_load(state_dict: dict, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> CheckpointStats:
    """Load the DCP checkpoint at ``uri`` into ``state_dict`` in place (DCP's contract)."""
    import torch.distributed.checkpoint as dcp

    _, reader_cls = _fsspec_classes()
    t0 = time.perf_counter()
    with warnings.catch_warnings(), dcp_errors(f"dcp.load from {redact_uri(uri)}"):
        warnings.simplefilter("ignore", UserWarning)
        dcp.load(state_dict, storage_reader=reader_cls(uri, **dict(storage_options or {})))
    total = time.perf_counter() - t0
    return CheckpointStats(redact_uri(uri), "dcp.load", _tree_bytes(uri, storage_options), total, total)
