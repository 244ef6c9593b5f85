"""``reader.data_loader: synthetic``: batches with no I/O at all, the harness-overhead baseline.

As DLIO's ``synthetic_data_loader.py`` yields a preallocated batch without reading, this loader yields
one :class:`~dlio_core.engine.Batch` per step of the plan with ``bytes_read == 0`` and zero I/O and
decode time; the sample bytes are the nominal ones (``record_dims`` or ``d x d`` of
``record_element_type``), counted as DLIO counts them. Samples are the synthetic format's one shared
zero array, handed out only when ``reader.batch_content: samples`` asks for them. A run with it
measures what the runner, the compute emulation and the per-step exchange cost by themselves.

Example:
    >>> from dlio_core.config import load_config
    >>> from dlio_core.sampling import EpochPlan
    >>> cfg = load_config("default", ["++workload.reader.data_loader=synthetic"])
    >>> loader = synthetic_loader(cfg, None, [], split="train")
    >>> [(b.step, b.num_samples, b.bytes_read, b.sample_bytes) for b in loader.epoch(EpochPlan(8, 1, 4))]
    [(0, 4, 0, 16384), (1, 4, 0, 16384)]
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

__all__ = ["SyntheticLoader", "synthetic_loader"]


class SyntheticLoader:
    """Yields ``plan.steps`` (at most ``max_steps``) batches of ``plan.batch_size`` zero samples, reading nothing."""

    def __init__(self, dataset: Any, *, keep_samples: bool = False) -> None:
        from .formats import get_format

        self.format = get_format("synthetic").configure(dataset)
        self.keep_samples = keep_samples
        self._reader = self.format.open_reader(None, "", 0)  # reads nothing, opens nothing

    def epoch(self, plan: Any, max_steps: int | None = None) -> Iterator[Any]:
        """The epoch's batches; ``step`` counts from 0 as the engine's do."""
        from .engine import Batch

        steps = plan.steps if max_steps is None else min(plan.steps, int(max_steps))
        indices = range(plan.batch_size)
        read, keep = self._reader.read, self.keep_samples
        for step in range(steps):
            _nbytes, sample_bytes, samples, _io_s, _decode_s = read(indices, keep)
            yield Batch(step, plan.batch_size, 0, sample_bytes, 0.0, 0.0, samples)


def synthetic_loader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str,
                     rank: int = 0) -> SyntheticLoader:
    """The ``LOADERS`` factory: a :class:`SyntheticLoader` for ``cfg.dataset`` (``storage`` and ``files``
    are not read)."""
    content = getattr(getattr(cfg.reader, "batch_content", None), "value", getattr(cfg.reader, "batch_content", None))
    return SyntheticLoader(cfg.dataset, keep_samples=content == "samples")
