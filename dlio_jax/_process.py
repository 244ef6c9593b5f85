"""Which JAX process this is, resolved at iteration time (grain's ``ShardByJaxProcess``).

Explicit ``process_index``/``process_count`` win (they let tests and launchers simulate processes);
otherwise ``jax.process_index()`` / ``jax.process_count()``.

Example:
    >>> resolve_process(1, 4)
    (1, 4)
    >>> resolve_process(None, None)
    (0, 1)
"""

from __future__ import annotations

__all__ = ["resolve_process"]


def resolve_process(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    """``(index, count)`` from the arguments, falling back to JAX's view of the job."""
    if process_index is None or process_count is None:
        import jax

        index = jax.process_index() if process_index is None else process_index
        count = jax.process_count() if process_count is None else process_count
    else:
        index, count = process_index, process_count
    index, count = int(index), int(count)
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"process_index must be in [0, process_count); got {index} of {count}")
    return index, count
