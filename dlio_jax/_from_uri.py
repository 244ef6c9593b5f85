"""``from_uri``: every file of a format under a URI as a :class:`~dlio_jax.JaxIterator`, by keyword options.

The keyword twin of the torch plugin's ``DlioIterableDataset.from_uri`` and ``dlio_tf.from_uri``: no
workload or override strings; the folder's files become the run config (:mod:`dlio_core.uri_config`).

Example:
    >>> import tempfile, numpy as np, os
    >>> root = tempfile.mkdtemp()
    >>> for i in range(4):
    ...     np.savez(os.path.join(root, f"f{i}.npz"), x=np.full((2, 2, 3), i, np.uint8), y=np.full(3, i))
    >>> it = from_uri(root, format="npz", batch_size=4, shuffle=True, seed=3)
    >>> len(it), sorted(int(v) for _, y in it for v in y)
    (3, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ._iterator import JaxIterator

__all__ = ["from_uri"]


def from_uri(uri: str, *, format: str, batch_size: int = 1, shuffle: bool = False, seed: int = 0,
             samples_per_file: int | None = None, storage_options: Mapping[str, Any] | None = None,
             prefix: str = "", epoch: int = 1, sharding: Any = None, process_index: int | None = None,
             process_count: int | None = None, labels: bool | None = None,
             transform: Callable[[Any], Any] | None = None, read_threads: int = 4,
             staging: str = "plain") -> JaxIterator:
    """A :class:`~dlio_jax.JaxIterator` over every ``*.{format}`` file under ``uri`` (``/data/x``, ``s3://b/x``).

    Files are sorted by name; ``samples_per_file`` is counted in the first file when not given;
    ``shuffle`` shuffles files and samples with ``seed`` (a new order each epoch); ``batch_size`` is per
    process; the other arguments are :func:`~dlio_jax.make_iterator`'s.
    """
    from dlio_core.uri_config import files_config

    cfg, storage, files = files_config(uri, format=format, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                       samples_per_file=samples_per_file, storage_options=storage_options,
                                       prefix=prefix, read_threads=read_threads)
    return JaxIterator(cfg, sharding=sharding, epoch=epoch, process_index=process_index, process_count=process_count,
                       storage=storage, files=files, labels=labels, transform=transform, staging=staging)
