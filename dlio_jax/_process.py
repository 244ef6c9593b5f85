"""Which JAX process this is, resolved at iteration time (grain's ``ShardByJaxProcess``).

Explicit ``process_index``/``process_count`` win (they let tests and launchers simulate processes);
otherwise ``jax.process_index()`` / ``jax.process_count()``; without JAX installed (DALI pipelines for
PyTorch users) torchrun's ``RANK`` / ``WORLD_SIZE``, else one process.

Example:
    >>> resolve_process(1, 4)
    (1, 4)
    >>> resolve_process(None, None)
    (0, 1)
"""

from __future__ import annotations

import os

__all__ = ["resolve_process"]


def resolve_process(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    """``(index, count)`` from the arguments, falling back to JAX's view of the job."""
    if process_index is None or process_count is None:
        try:
            import jax

            here, total = jax.process_index(), jax.process_count()
        except ImportError:
            here, total = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        index = here if process_index is None else process_index
        count = total if process_count is None else process_count
    else:
        index, count = process_index, process_count
    index, count = int(index), int(count)
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"process_index must be in [0, process_count); got {index} of {count}")
    return index, count
