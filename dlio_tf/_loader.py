"""``reader.data_loader: tensorflow``: the runner's adapter (private to it), a workload through ``tf.data``.

``dlio_core.loaders`` builds it with ``make_loader(cfg, storage, files, split=, rank=)`` and calls
``epoch(plan, max_steps=)``. Each epoch builds the pipeline of :mod:`dlio_tf._pipeline` for the
plan's rank (one input pipeline per rank, as DLIO's TF path) and yields :class:`TFBatch` records:

* ``bytes_read``: on the native TFRecord path, the records' payload plus framing (what
  ``TFRecordDataset`` consumed); on the core path, the bytes ``Storage.read_into`` returned;
* ``sample_bytes``: the bytes of the batch's image tensor (the records' ``size`` feature is not used:
  DLIO 2.0.0 stores the image's side length there), so read amplification is bytes read over them;
  in bytes mode (``reader.decode: false``) jpeg, png, csv and parquet samples are the bytes read, of
  the content's length, and come as a ragged tensor, as do parquet rows in either mode
  (:func:`samples_vary`), counted as the native loader counts them;
* ``io_s`` / ``decode_s``: measured per file on the core path; ``None`` on the native path, where
  TensorFlow's reader and parser run inside the dataset's own threads and their time cannot be
  separated (reported as not measured, never invented);
* ``h2d_s``: the batch copied to the first GPU TensorFlow sees and timed to completion; ``None``
  without a GPU.

Example:
    >>> import tempfile
    >>> from dlio_core.config import load_config
    >>> from dlio_core.generate import generate_dataset
    >>> from dlio_core.listing import dataset_files, dataset_storage
    >>> from dlio_core.reader import epoch_plan
    >>> cfg = load_config("default", [f"++workload.dataset.data_folder={tempfile.mkdtemp()}",
    ...                               "++workload.dataset.num_files_train=8"])
    >>> _ = generate_dataset(cfg, progress=False)
    >>> st = dataset_storage(cfg)
    >>> loader = make_loader(cfg, st, dataset_files(cfg, st, "train"), split="train")
    >>> [b.num_samples for b in loader.epoch(epoch_plan(cfg, epoch=1))]
    [4, 4]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from dlio_core.engine import Batch
from dlio_core.reader import check_samples_per_file, reader_format
from ._device import to_device
from ._pipeline import STAT_KEYS, Source, build_dataset

__all__ = ["TFBatch", "TFLoader", "samples_vary", "make_loader"]


@dataclass
class TFBatch(Batch):
    """One step's batch: :class:`dlio_core.engine.Batch` (``None`` = stage not measured) plus ``data``."""

    io_s: float | None = 0.0  # None on the native TFRecord path (not separable from tf.data's threads)
    decode_s: float | None = 0.0
    data: dict | None = field(default=None, repr=False)

    def release(self) -> None:
        """Drop the batch's tensors (host or device memory goes back to TensorFlow)."""
        self.data = None
        super().release()


class TFLoader:
    """Runs epochs of a :class:`~dlio_tf._pipeline.Source` through ``tf.data`` (see the module doc)."""

    def __init__(self, src: Source, *, device: str | None = "auto", deterministic: bool = False) -> None:
        self.src = src
        self.device = device
        self.deterministic = deterministic

    def epoch(self, plan: Any, *, max_steps: int | None = None) -> Iterator[TFBatch]:
        """Yield ``plan.steps`` (at most ``max_steps``) batches of rank ``plan.rank`` of ``plan.world``."""
        steps = plan.steps if max_steps is None else min(plan.steps, max_steps)
        if steps <= 0:
            return
        ds = build_dataset(self.src, plan, pipelines=plan.world, index=plan.rank, batches=steps,
                           deterministic=self.deterministic, stats=True)
        measured = not self.src.native
        for step, elem in enumerate(ds):
            figures = {k: elem.pop(k).numpy().sum() for k in STAT_KEYS if k in elem}
            data, h2d_s = to_device(elem, self.device)
            yield TFBatch(
                step=step,
                num_samples=int(elem["size"].shape[0]),
                bytes_read=int(figures["dl_bytes"]),
                sample_bytes=_image_bytes(elem["image"]),
                io_s=float(figures["dl_io_s"]) if measured else None,
                decode_s=float(figures["dl_decode_s"]) if measured else None,
                h2d_s=h2d_s,
                data=data,
            )


def _image_bytes(image: Any) -> int:
    """Bytes of the batch's samples as read: the image tensor's (dense or ragged) element bytes.

    Not the records' ``size`` feature: DLIO 2.0.0 wrote the image's side length there, not its bytes,
    so the ratio of bytes read to it claimed 51-256x read amplification on 2.0.0's TFRecords.
    """
    values = getattr(image, "flat_values", image)
    return int(values.shape.num_elements()) * int(values.dtype.size)


def samples_vary(cfg: Any) -> bool:
    """Whether the workload's samples can differ in size even with ``record_length_bytes_stdev: 0``.

    In bytes mode (``reader.decode: false``) a format that can decode (jpeg, png, csv, parquet) hands
    back what it read, undecoded: an encoded image's or a csv file's bytes, a parquet row group's
    column-chunk bytes, whose length is the content's, not the config's. A parquet row is its schema's
    values end to end, so a string column (or another writer's variable-length list) varies in decode
    mode too. The native and torch loaders take any shape per batch; a ``tf.data`` element spec is fixed
    before the first read, so these batches are ragged from the start.

    Example:
        >>> from dlio_core.config import load_config
        >>> [samples_vary(load_config("default", [f"++workload.dataset.format={f}", f"++workload.reader.decode={d}"]))
        ...  for f, d in (("jpeg", False), ("jpeg", True), ("csv", False), ("npz", False), ("parquet", True))]
        [True, False, True, False, True]
    """
    fmt = reader_format(cfg)
    return getattr(fmt, "decode", True) is False or fmt.name == "parquet"


def make_loader(cfg: Any, storage: Any, files: Sequence[tuple[str, int]], *, split: str, rank: int = 0) -> TFLoader:
    """The factory ``dlio_core.loaders`` registers for ``reader.data_loader: tensorflow`` (rank comes from each
    epoch's plan). Samples read as bytes of content-dependent length (:func:`samples_vary`) come as ragged
    batches; others take their shape from the config (ragged when ``record_length_bytes_stdev > 0``)."""
    check_samples_per_file(cfg, storage)  # here, not inside tf.data's iteration (where it surfaces as UnknownError)
    varies = True if samples_vary(cfg) else None   # None: Source decides from record_length_bytes_stdev
    return TFLoader(Source(cfg, storage, tuple((str(r), int(s)) for r, s in files), split, variable_size=varies))
