"""A folder of files as a run config: what the plugins' keyword constructors (``from_uri``) build on.

``files_config(uri, format=..., batch_size=..., shuffle=..., seed=...)`` lists every ``*.{format}``
file under ``uri`` once (sorted by name, as DLIO sorts them), counts the samples of the first file
when ``samples_per_file`` is not given, and returns ``(cfg, storage, files)``: a ``RunConfig`` of the
``default`` workload describing exactly those files, the storage, and the ``(relpath, size)`` list. The
plugins then read them as they read a workload (same plan, engine, shapes and labels).

Example:
    >>> import tempfile, numpy as np, os
    >>> root = tempfile.mkdtemp()
    >>> for i in range(3):
    ...     np.save(os.path.join(root, f"f{i}.npy"), np.zeros((4, 4, 2), np.uint8))
    >>> cfg, storage, files = files_config(root, format="npy", batch_size=2, shuffle=True, seed=7)
    >>> len(files), cfg.dataset.num_samples_per_file, cfg.reader.batch_size, cfg.train.seed
    (3, 2, 2, 7)
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

__all__ = ["files_config", "samples_in_file"]


def samples_in_file(storage: Any, fmt: Any, rel: str, size: int) -> int:
    """Samples in one file: the last axis of a whole-file format's array, or a TFRecord file's records."""
    buf = np.empty(int(size), dtype=np.uint8)
    storage.read_into(storage.join(rel), buf)
    if getattr(fmt, "whole_file", True):
        return int(fmt.parse(buf, rel).shape[-1])
    if fmt.name == "tfrecord":
        from dlio_core.formats.tfrecord import record_index

        return len(record_index(buf, rel)[0])
    raise ValueError(f"from_uri(format={fmt.name!r}) cannot count the samples of a file: pass samples_per_file=")


def files_config(uri: str, *, format: str, batch_size: int = 1, shuffle: bool = False, seed: int = 0,
                 samples_per_file: int | None = None, storage_options: Mapping[str, Any] | None = None,
                 prefix: str = "", read_threads: int = 4) -> tuple[Any, Any, list[tuple[str, int]]]:
    """``(cfg, storage, files)`` for every ``*.{format}`` file under ``uri`` (see the module docstring).

    ``shuffle`` shuffles files and samples with ``seed`` (DLIO's ``seed`` policy: a new order per epoch).
    Raises ``ValueError`` for a batch size below 1 and ``FileNotFoundError`` when no file matches.
    """
    from dlio_core.config import load_config
    from dlio_core.formats import get_format
    from dlio_core.storage import open_storage

    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    storage = open_storage(uri, dict(storage_options) if storage_options else None)
    fmt = get_format(format)
    files = sorted(storage.list_files(prefix, "." + fmt.extension), key=lambda f: (os.path.basename(f[0]), f[0]))
    if not files:
        raise FileNotFoundError(f"no *.{fmt.extension} files under {storage.url}/{prefix}".rstrip("/"))
    spf = int(samples_per_file or samples_in_file(storage, fmt, *files[0]))
    policy = "seed" if shuffle else "off"
    cfg = load_config("default", [
        f"++workload.dataset.data_folder={storage.url}", f"++workload.dataset.format={fmt.name}",
        f"++workload.dataset.num_files_train={len(files)}", "++workload.dataset.num_files_eval=0",
        f"++workload.dataset.num_samples_per_file={spf}", "++workload.dataset.num_subfolders_train=0",
        f"++workload.reader.batch_size={int(batch_size)}", f"++workload.reader.batch_size_eval={int(batch_size)}",
        f"++workload.reader.file_shuffle={policy}", f"++workload.reader.sample_shuffle={policy}",
        f"++workload.reader.read_threads={max(1, int(read_threads))}", f"++workload.train.seed={int(seed)}",
        "++workload.workflow.generate_data=False"])
    return cfg, storage, [(str(r), int(s)) for r, s in files]
