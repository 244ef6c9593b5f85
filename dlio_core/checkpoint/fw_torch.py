"""PyTorch mechanisms: ``torch_save`` (DLIO HEAD's ``pt_save``) and ``dcp`` (``torch.distributed.checkpoint``).

``torch_save`` writes each file as ``torch.save`` of the file's tensors in DLIO's dict layout (see
:mod:`~dlio_core.checkpoint.tensors`), streamed into the storage's atomic writer (a multipart upload on
object stores), so the file is ``x.pt`` as DLIO names it and ``torch.load(path, weights_only=True)`` opens it.
On ``direct://`` the serialised bytes are gathered into one page-aligned piece at a time and written with
``O_DIRECT`` (see :mod:`~dlio_core.checkpoint.odirect`), and loads read the file with ``O_DIRECT`` before
deserialising it: the page cache never holds the checkpoint.
Loads use ``weights_only=True`` (tensors and plain containers only: no code runs from a checkpoint).

``dcp`` writes each file as a DCP folder ``x.dcp`` (``.metadata`` + ``__0_0.distcp``) with ``dcp.async_save``
from every rank on its own (``no_dist``: each rank's file is its own DCP checkpoint, as DLIO's files are;
DCP's cross-rank planning is not used). The training loop is blocked while DCP stages the tensors; the save
is durable when its future resolves (and, with ``fsync``, every file is flushed); then the folder is
published (see :mod:`~dlio_core.checkpoint.folders`). Loads build empty tensors of the planned shapes and
``dcp.load`` into them. DCP reports failures as ``CheckpointException``, a ``BaseException`` that
``except Exception`` lets through (a traceback per rank in its text): :func:`dcp_errors` turns it into a
:class:`~dlio_core.checkpoint.records.CheckpointError` with one line naming the path and the first cause.

Both hold the rank's tensors in memory from ``prepare`` (before the clock starts, as DLIO builds its state at
start-up) until ``release``: what the framework needs, measured by the engine. torch is imported inside the
functions, only when one of these mechanisms runs (the example runs in the integration tests).

Example:
    >>> import torch  # doctest: +SKIP
    >>> from dlio_core.checkpoint.mechanisms import Context  # doctest: +SKIP
    >>> ctx = Context.demo(4096); spec = ctx.plan.rank_specs(0)[0]; m = TorchSaveMechanism()  # doctest: +SKIP
    >>> m.prepare(ctx, [("c/" + spec.name, spec)]); moved = m.save(ctx, "c/" + spec.name, spec).wait()  # doctest: +SKIP
    >>> moved.payload_bytes, moved.stored_bytes > 4096  # doctest: +SKIP
    (4096, True)
    >>> torch.load(ctx.storage.local_path("c/model_states-0.pt"), weights_only=True)["a"].dtype  # doctest: +SKIP
    torch.int8
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .folders import fetched_entry, start_save
from .mechanisms import Context, Done, Moved, PreparedTensors, check_tensor_bytes
from .odirect import AlignedWriter, is_direct, sink
from .records import CheckpointError
from .state import FileSpec
from .tensors import build_arrays, file_tensors, leaves, nest

__all__ = ["TorchSaveMechanism", "DcpMechanism", "CountingWriter", "torch_state", "torch_dtype", "dcp_errors",
           "first_cause"]

_TORCH_DTYPES = {"int8": "int8", "uint8": "uint8", "fp16": "float16", "bf16": "bfloat16", "fp32": "float32",
                 "fp64": "float64"}


def torch_dtype(name: str) -> Any:
    """The torch element type of a DLIO datatype name (imports torch)."""
    import torch

    return getattr(torch, _TORCH_DTYPES[name])


def torch_state(ctx: Context, path: str, spec: FileSpec) -> dict[str, Any]:
    """The file's tensors as DLIO lays them out, their bytes from ``ctx.source`` (no copy of the arrays)."""
    import torch

    tensors = file_tensors(ctx.plan, spec)
    arrays = build_arrays(tensors, ctx.source, path)
    return nest((p, torch.from_numpy(a).view(torch_dtype(t.dtype))) for (p, a), t in zip(arrays, tensors))


def first_cause(exc: BaseException) -> str:
    """``Type: first line`` of what went wrong; for DCP's ``CheckpointException`` (one wrapped exception per
    rank, tracebacks in its text) the first rank's own exception.

    >>> first_cause(ValueError("bad size\\nmore"))
    'ValueError: bad size'
    """
    failures = getattr(exc, "failures", None)
    if isinstance(failures, dict) and failures:
        rank, wrapped = sorted(failures.items(), key=lambda kv: kv[0])[0]
        inner = wrapped[0] if isinstance(wrapped, tuple) else wrapped
        if isinstance(inner, BaseException):
            return f"rank {rank}: {first_cause(inner)}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


@contextmanager
def dcp_errors(what: str) -> Iterator[None]:
    """Raise DCP's ``CheckpointException`` (a BaseException) and its other errors inside the block as one
    CheckpointError line: ``{what} failed ({cause})``."""
    try:
        yield
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - translated, with the cause named
        raise CheckpointError(f"{what} failed ({first_cause(e)})") from None
    except BaseException as e:
        if type(e).__name__ != "CheckpointException":
            raise  # KeyboardInterrupt, SystemExit: not ours to translate
        raise CheckpointError(f"{what} failed ({first_cause(e)})") from None


def _tensor_bytes(tree: Any) -> int:
    import torch

    return sum(t.numel() * t.element_size() for _, t in leaves(tree) if isinstance(t, torch.Tensor))


class CountingWriter(io.RawIOBase):
    """A write-only stream that passes bytes to ``f`` and counts them (what ``torch.save`` wrote).

    >>> sink = io.BytesIO(); w = CountingWriter(sink); _ = w.write(b"abc"); w.count
    3
    """

    def __init__(self, f: Any) -> None:
        super().__init__()
        self._f, self.count = f, 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        n = self._f.write(b)
        n = memoryview(b).nbytes if n is None else n
        self.count += n
        return n

    def flush(self) -> None:
        self._f.flush()


class TorchSaveMechanism(PreparedTensors):
    """``torch_save``: ``torch.save`` of each file's tensors (see the module doc)."""

    name = "torch_save"

    def __init__(self) -> None:
        import torch.distributed.checkpoint  # noqa: F401 - imported now, so no save or memory figure pays for it

        super().__init__()

    def entry(self, name: str) -> str:
        return name

    def build(self, ctx: Context, path: str, spec: FileSpec) -> Any:
        return torch_state(ctx, path, spec)

    def save(self, ctx: Context, path: str, spec: FileSpec) -> Done:
        import torch

        if is_direct(ctx):  # O_DIRECT, whole aligned pieces (a file system that refuses it says so)
            with sink(ctx, path, direct=True) as f, AlignedWriter(f, ctx.source.chunk_bytes) as counting:
                torch.save(self.state(ctx, path, spec), counting)
        else:
            with ctx.storage.open_write(path, fsync=ctx.fsync) as f:
                counting = CountingWriter(f)
                torch.save(self.state(ctx, path, spec), counting)
        if ctx.on_chunk is not None:
            ctx.on_chunk(spec.nbytes)
        return Done(Moved(spec.nbytes, counting.count))

    def load(self, ctx: Context, path: str, spec: FileSpec) -> Moved:
        import torch

        local = ctx.storage.local_path(path)
        try:
            if local is not None:
                stored = os.path.getsize(local)
                state = torch.load(local, map_location="cpu", weights_only=True)
            else:  # object stores, and direct:// (read with O_DIRECT, then deserialised)
                data = ctx.storage.read(path)
                stored = len(data)
                state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"{ctx.storage.url.rstrip('/')}/{path} does not load with "
                                  f"torch.load(weights_only=True) ({type(e).__name__}: {first}); it holds more than "
                                  "tensors, or is damaged") from None
        check_tensor_bytes(ctx, path, spec, _tensor_bytes(state))
        if ctx.on_chunk is not None:
            ctx.on_chunk(spec.nbytes)
        return Moved(spec.nbytes, stored)


class DcpMechanism(TorchSaveMechanism):
    """``dcp``: ``torch.distributed.checkpoint.async_save`` per file (see the module doc)."""

    name = "dcp"

    def __init__(self) -> None:
        super().__init__()
        # DCP's thread says it saves "in a single process" when no process group exists: that is the intent
        warnings.filterwarnings("ignore", message="torch.distributed is disabled", category=UserWarning)

    def entry(self, name: str) -> str:
        return os.path.splitext(name)[0] + ".dcp"

    def save(self, ctx: Context, path: str, spec: FileSpec) -> Any:
        import torch.distributed.checkpoint as dcp

        what = f"dcp save of {ctx.storage.url.rstrip('/')}/{path}"

        def start(folder: str) -> Any:
            writer = dcp.FileSystemWriter(folder, sync_files=ctx.fsync)
            with dcp_errors(what):
                future = dcp.async_save(self.state(ctx, path, spec), storage_writer=writer, no_dist=True)
            done = getattr(future, "upload_completion", future).result  # AsyncSaveResponse or a Future

            def finish() -> Any:
                with dcp_errors(what):
                    return done()

            return finish

        return start_save(ctx, path, spec, start)

    def load(self, ctx: Context, path: str, spec: FileSpec) -> Moved:
        import torch
        import torch.distributed.checkpoint as dcp

        template = nest((t.path, torch.empty(t.count, dtype=torch_dtype(t.dtype)))
                        for t in file_tensors(ctx.plan, spec))
        with fetched_entry(ctx, path, ".metadata", "DCP .metadata") as (folder, stored), \
                dcp_errors(f"dcp load of {ctx.storage.url.rstrip('/')}/{path}"):
            dcp.load(template, storage_reader=dcp.FileSystemReader(folder), no_dist=True)
        check_tensor_bytes(ctx, path, spec, _tensor_bytes(template))
        if ctx.on_chunk is not None:
            ctx.on_chunk(spec.nbytes)
        return Moved(spec.nbytes, stored)
