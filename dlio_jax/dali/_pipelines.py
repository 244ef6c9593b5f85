"""DALI pipelines over a DLIO dataset: ``external_source`` fed by dl-driver, or DALI's own readers.

``pipeline(config)`` builds (and returns) a ``nvidia.dali.Pipeline`` with one output, ``data``:

- ``reader="external"`` (``reader.data_loader: dali``): ``fn.external_source`` fed batch by batch by
  dl-driver's engine (:class:`~dlio_jax.dali._feed.EngineFeed`), so every format and storage backend
  dlio_core reads works, and the rank's samples are exactly its :class:`~dlio_core.sampling.EpochPlan`.
- ``reader="native"`` (``reader.data_loader: native_dali``): ``fn.readers.numpy`` for npy and
  ``fn.readers.tfrecord`` (with DLIO's ``{data_folder}/index/{split}/{file}.idx`` files) for tfrecord,
  with ``shard_id=rank`` and ``num_shards=world`` (DLIO passes only the count, so every rank reads
  shard 0) and ``pad_last_batch=True`` so all shards have the same number of batches. Without
  shuffles a rank reads its own shard every epoch (``stick_to_shard``); with them each epoch moves
  every rank to the next shard (DALI's way of varying what a rank reads), so per epoch the ranks
  still read every file once between them.

Sample shapes: a sample has the shape and dtype of the format's own samples, as every dl-driver plugin
yields them (npy/npz ``(d1, d2)``, TFRecord records their flat ``image`` bytes). ``fn.readers.numpy``
returns a whole ``.npy`` file as one DALI sample (``(d1, d2, spf)``, DLIO's samples on the last axis):
with one sample per file the pipeline squeezes that axis; with more, DALI cannot split a file into
samples, so ``pipeline`` refuses unless ``whole_files=True`` (then a DALI batch is
``ceil(batch_size / spf)`` files and counts as ``files x spf`` samples, as DLIO's ``native_dali``
does: the runner's adapter asks for that) and ``reader="external"`` gives per-sample arrays.
Variable-size samples keep their own shapes (DALI batches are lists of tensors).

Labels: with the external reader over files that carry labels (npz ``y``) the pipeline has a second
output, ``label`` (int64 per sample), as every plugin yields labels by default; ``labels=False`` drops
it. DALI's own readers read no labels.

Operators: ``transform(data)`` is called inside the pipeline definition with the reader's output
``DataNode`` and returns the node (or a tuple of nodes) the pipeline outputs, so any DALI operator
can follow the reader (``fn.cast``, ``fn.normalize``, ``.gpu()``...); ``output_names`` names the
outputs for the iterators (default ``("data",)``).

``device="gpu"`` puts the output on GPU ``device_id`` (the numpy reader reads with GPUDirect Storage,
the others copy with ``.gpu()``); without a usable GPU it fails with :class:`DaliDeviceError`.

Example (CPU, ``device_id=None``):
    >>> import tempfile
    >>> from dlio_jax.dali import pipeline
    >>> d = tempfile.mkdtemp()
    >>> pipe = pipeline("default", overrides=[f"++workload.dataset.data_folder={d}", "++workload.workflow.generate_data=True",
    ...     "++workload.dataset.num_files_train=8"])
    >>> out, labels = pipe.run()  # npz files carry labels (y): a second output
    >>> len(out), len(labels), pipe.dlio.steps, pipe.dlio.output_names
    (4, 4, 2, ('data', 'label'))
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from typing import Any, Callable, Sequence
from urllib.parse import unquote, urlparse

__all__ = ["DaliDeviceError", "DaliInfo", "pipeline", "READER_NAME"]

READER_NAME = "Reader"


class DaliDeviceError(RuntimeError):
    """The pipeline asked for a GPU that is not usable here; the message says what to use instead."""


@dataclass
class DaliInfo:
    """What dl-driver knows about a pipeline it built (``pipe.dlio``).

    ``steps``: batches per epoch on this rank; ``samples_per_item``: DLIO samples per DALI sample
    (``spf`` for npy files, else 1); ``reader_name``: the native reader's name (None for external);
    ``feed``: the external source's :class:`~dlio_jax.dali._feed.EngineFeed` (None for native).
    """

    reader: str
    steps: int
    samples_per_item: int
    reader_name: str | None = None
    feed: Any = None
    rank: int = 0
    world: int = 1
    output_names: tuple[str, ...] = ("data",)


def _name(v: Any) -> str:
    return str(getattr(v, "value", v)).lower()


def _reader_root(storage: Any) -> str:
    """What DALI's file readers take as a root: a local path, or an ``s3://`` URL (read by DALI itself)."""
    url = str(getattr(storage, "url", storage))
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path) if parsed.scheme else url
    if parsed.scheme == "s3":
        return url  # DALI's readers speak s3:// themselves (credentials from the AWS environment)
    raise ValueError(f"reader.data_loader: native_dali reads local files and s3:// only, not {parsed.scheme}://; "
                     "use ++workload.reader.data_loader=dali (external_source over dl-driver's storage)")


def _shuffle_seed(cfg: Any, random_seed: int | None) -> tuple[bool, int]:
    """DALI's ``random_shuffle`` and seed: ``seed`` uses ``train.seed``, ``random`` the shared random seed
    (DLIO has these two the wrong way round)."""
    from dlio_core.sampling import Shuffle, draw_random_seed

    policies = {cfg.reader.file_shuffle, cfg.reader.sample_shuffle}
    if policies == {Shuffle.OFF}:
        return False, int(cfg.train.seed)
    if Shuffle.RANDOM in policies:
        return True, int(random_seed if random_seed is not None else draw_random_seed()) % (1 << 31)
    return True, int(cfg.train.seed)


def _npy_ndim(storage: Any, rel: str, size: int) -> int:
    """Dimensions of the array in one ``.npy`` file, from its header (one small read)."""
    import io

    import numpy as np

    head = np.empty(min(int(size), 4096), np.uint8)
    storage.read_into(storage.join(rel), head)
    f = io.BytesIO(head.tobytes())
    version = np.lib.format.read_magic(f)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return len(read_header(f)[0])


def _native_node(cfg: Any, fn: Any, storage: Any, files: Sequence[tuple[str, int]], split: str, rank: int,
                 world: int, device: str, random_seed: int | None, whole_files: bool = False) -> tuple[Any, int]:
    """The native reader node and the DLIO samples per DALI sample."""
    fmt = _name(cfg.dataset.format)
    shuffle, seed = _shuffle_seed(cfg, random_seed)
    # Without shuffles a DLIO rank reads the same block every epoch, so the reader sticks to its shard;
    # with them DLIO's global order changes per epoch, which DALI approximates by moving to the next shard.
    common = dict(shard_id=rank, num_shards=world, pad_last_batch=True, random_shuffle=shuffle, seed=seed,
                  stick_to_shard=not shuffle,
                  initial_fill=max(1, int(cfg.reader.shuffle_size)), name=READER_NAME)
    root = _reader_root(storage)
    rels = [rel for rel, _ in files]
    if fmt == "npy":
        node = fn.readers.numpy(device="gpu" if device == "gpu" else "cpu", file_root=root, files=rels,
                                dont_use_mmap=bool(cfg.reader.dont_use_mmap), **common)
        spf = int(cfg.dataset.num_samples_per_file)
        if whole_files:
            return node, spf
        # One sample per file: drop DLIO's sample axis (the last), so a sample is (d1, d2) as elsewhere.
        return fn.squeeze(node, axes=[_npy_ndim(storage, *files[0]) - 1]), 1
    if fmt == "tfrecord":
        import nvidia.dali.tfrecord as tfrec

        index_dir = posixpath.join(root, "index", "train" if split == "train" else "valid")
        node = fn.readers.tfrecord(
            path=[posixpath.join(root, rel) for rel in rels],
            index_path=[posixpath.join(index_dir, posixpath.basename(rel) + ".idx") for rel in rels],
            features={"image": tfrec.FixedLenFeature((), tfrec.string, ""),
                      "size": tfrec.FixedLenFeature([1], tfrec.int64, 0)},
            **common)["image"]
        return (node.gpu() if device == "gpu" else node), 1
    raise ValueError(f"reader.data_loader: native_dali reads dataset.format npy or tfrecord, not {fmt!r} "
                     "(DLIO's native_dali rejects npz too); use ++workload.reader.data_loader=dali")


def pipeline(config: Any, *, overrides: Sequence[str] = (), device: str = "cpu", reader: str | None = None,
             split: str = "train", epoch: int = 1, rank: int | None = None, world: int | None = None,
             random_seed: int | None = None, device_id: int | None = None, num_threads: int | None = None,
             storage: Any = None, files: Sequence[tuple[str, int]] | None = None,
             max_steps: int | None = None, whole_files: bool = False, labels: bool | None = None,
             batch_size: int | None = None,
             transform: Callable[[Any], Any] | None = None, output_names: Sequence[str] | None = None) -> Any:
    """A built DALI pipeline reading ``config``'s dataset (see the module docstring).

    ``reader`` is ``"external"`` or ``"native"`` (default: ``native`` when ``reader.data_loader`` is
    ``native_dali``). ``rank``/``world`` default to JAX's process index/count (without JAX: torchrun's
    ``RANK``/``WORLD_SIZE``). ``pipe.dlio`` is a :class:`DaliInfo`. The external reader starts at plan
    epoch ``epoch`` and moves on one epoch per ``reset()``. ``whole_files`` lets the native npy reader
    return whole multi-sample files; ``transform`` adds operators after the reader (module docstring).
    ``labels`` (default: where the files carry them, npz ``y``; external reader only) adds a second
    output, ``label`` (``transform`` then receives ``(data, label)``). ``batch_size`` sets the batch on
    every split; without it the config's is used (``batch_size_eval`` on the eval split, as DLIO).
    """
    from nvidia.dali import fn, pipeline_def

    from dlio_core.config import load_config
    from dlio_core.listing import dataset_files, dataset_storage
    from dlio_core.reader import epoch_plan, native_reader

    from .._process import resolve_process
    from .._iterator import shared_random_seed

    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    cfg = load_config(config, list(overrides))
    if batch_size is not None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        cfg = load_config(cfg, [f"++workload.reader.batch_size={int(batch_size)}",
                                f"++workload.reader.batch_size_eval={int(batch_size)}"])
    reader = reader or ("native" if _name(cfg.reader.data_loader) == "native_dali" else "external")
    if reader not in ("external", "native"):
        raise ValueError(f"reader must be 'external' or 'native', got {reader!r}")
    rank, world = resolve_process(rank, world)
    if cfg.workflow.generate_data and rank == 0 and files is None:
        from dlio_core.generate import generate_dataset

        generate_dataset(cfg, progress=False)
    storage = storage if storage is not None else dataset_storage(cfg)
    files = list(files) if files is not None else dataset_files(cfg, storage, split)
    random_seed = shared_random_seed(cfg, random_seed)
    batch = cfg.reader.batch_size if split == "train" else cfg.reader.batch_size_eval
    if device == "gpu" and device_id is None:
        device_id = 0

    from dlio_core.labels import has_labels

    if labels and (reader != "external" or not has_labels(cfg.dataset.format)):
        raise ValueError(f"labels=True needs reader='external' over files that carry labels (npz), not "
                         f"reader={reader!r} over {_name(cfg.dataset.format)}; pass labels=False")
    labels = reader == "external" and has_labels(cfg.dataset.format) if labels is None else bool(labels)
    if output_names is None:
        output_names = ("data", "label") if labels and transform is None else ("data",)
    if reader == "external":
        from ._feed import EngineFeed, file_labels

        def make_plan(e: int) -> Any:  # planned a block of steps at a time, shared by the engine and the labels
            from dlio_core.engine.plan_blocks import PlanTail

            return PlanTail(epoch_plan(cfg, split=split, epoch=e, world=world, rank=rank, random_seed=random_seed))

        steps = make_plan(epoch).steps if max_steps is None else min(make_plan(epoch).steps, max_steps)
        feed = EngineFeed(native_reader(cfg, storage, files, rank=rank, keep_samples=True), make_plan,
                          first_epoch=epoch, max_steps=max_steps,
                          labels=file_labels(storage, files, cfg.dataset.num_samples_per_file) if labels else None)
        info = DaliInfo("external", steps, 1, None, feed, rank, world)
        dali_batch = batch
    else:
        spf = int(cfg.dataset.num_samples_per_file) if _name(cfg.dataset.format) == "npy" else 1
        if spf > 1 and not whole_files:
            raise ValueError(f"DALI's numpy reader returns whole .npy files, here {spf} samples each "
                             "(dataset.num_samples_per_file): pass whole_files=True for (d1, d2, spf) file arrays, "
                             "or reader='external' for (d1, d2) samples as every other plugin yields them")
        dali_batch = math.ceil(batch / spf)
        # pad_last_batch: every shard reads ceil(N / world) items; DROP leaves whole batches only.
        steps = math.ceil(len(files) / world) // dali_batch
        info = DaliInfo("native", steps if max_steps is None else min(steps, max_steps), spf, READER_NAME,
                        None, rank, world)
    info.output_names = tuple(output_names)

    @pipeline_def(batch_size=dali_batch, num_threads=max(1, int(num_threads or cfg.reader.read_threads or 1)),
                  device_id=device_id, prefetch_queue_depth=max(1, int(cfg.reader.prefetch_size)),
                  seed=int(cfg.train.seed))
    def _pipe() -> Any:
        if reader == "external" and labels:
            data, label = fn.external_source(source=info.feed, batch=True, batch_info=True, device="cpu",
                                             num_outputs=2)
            data = (data.gpu() if device == "gpu" else data, label)
        elif reader == "external":
            data = fn.external_source(source=info.feed, batch=True, batch_info=True, device="cpu", name="dlio")
            data = data.gpu() if device == "gpu" else data
        else:
            data, _ = _native_node(cfg, fn, storage, files, split, rank, world, device, random_seed, whole_files)
        return transform(data) if transform is not None else data

    pipe = _pipe()
    try:
        pipe.build()
    except RuntimeError as exc:
        if device == "gpu" or device_id is not None:
            raise DaliDeviceError(
                f"dlio_jax.dali.pipeline(device={device!r}, device_id={device_id}) needs a usable NVIDIA GPU and "
                f"CUDA driver, and DALI found none ({str(exc).splitlines()[0][:160]}); use device='cpu'") from exc
        raise
    pipe.dlio = info
    return pipe
