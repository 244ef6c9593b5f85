"""``make_dataset`` (a workload) and ``from_uri`` (a folder of files): a ``tf.data.Dataset`` of batches.

Both return one epoch of batches with a known cardinality (``len(ds)``, so ``model.fit`` needs no
``steps_per_epoch``; add ``.repeat()`` for more epochs, or build epoch ``e`` with ``epoch=e`` for its
own shuffle). Elements are dicts (:mod:`dlio_tf._pipeline`): ``image``, ``size`` and, where the files
carry labels (npz ``y``), ``label``; ``transform`` maps each batch dict inside the pipeline
(``Dataset.map`` with parallel calls), e.g. to ``(features, label)`` pairs for Keras.

The batch size is ``batch_size`` when given, else ``reader.batch_size`` for every split: the
evaluation split does not switch to DLIO's ``batch_size_eval`` (1 unless set) behind your back; pass
``batch_size=cfg.reader.batch_size_eval`` to use it. (The runner's ``tensorflow`` loader, which
emulates DLIO, does use ``batch_size_eval``.)

Example:
    >>> import tempfile, numpy as np, os
    >>> root = tempfile.mkdtemp()
    >>> for i in range(4):
    ...     np.savez(os.path.join(root, f"f{i}.npz"), x=np.full((2, 2, 3), i, np.uint8), y=np.full(3, i))
    >>> ds = from_uri(root, format="npz", batch_size=4)
    >>> len(ds), [(tuple(b["image"].shape), b["label"].numpy().tolist()) for b in ds]
    (3, [((4, 2, 2), [0, 0, 0, 1]), ((4, 2, 2), [1, 1, 2, 2]), ((4, 2, 2), [2, 3, 3, 3])])
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

import tensorflow as tf

from dlio_core.config import load_config
from dlio_core.reader import epoch_plan

from ._pipeline import Source, build_dataset, input_pipelines, shared_random_seed

__all__ = ["make_dataset", "from_uri"]


def make_dataset(config: Any, *, overrides: Sequence[str] = (), input_context: Any = None, split: str = "train",
                 epoch: int = 1, batch_size: int | None = None, labels: bool = True,
                 transform: Callable[[dict], Any] | None = None, deterministic: bool = False,
                 random_seed: int | None = None, config_dir: str | None = None) -> tf.data.Dataset:
    """One epoch of batches of the workload ``config`` as a ``tf.data.Dataset`` (add ``.repeat()``).

    ``config`` is a YAML path, a bundled workload name or a ``RunConfig``; ``overrides`` are DLIO's
    ``++workload.a.b=v`` strings. The batch size (``batch_size``, else ``reader.batch_size``) is per
    replica (DLIO's per-accelerator batch), which is what ``strategy.distribute_datasets_from_function``
    expects: pass its ``input_context`` and each input pipeline reads its own shard,
    ``steps * replicas_per_pipeline`` batches. ``epoch`` picks the epoch's shuffles (``seed + epoch``
    with ``seed_change_epoch``); ``deterministic=True`` fixes the order of the native TFRecord path for
    a given seed (the core path is always in plan order). ``sample_shuffle: random`` needs one
    ``random_seed`` shared by every pipeline when there are several. ``labels=False`` leaves out ``label``.

    Example (``config`` may be any bundled workload; the data must exist):
        >>> from dlio_core.config import tiny_run_config
        >>> from dlio_core.generate import generate_dataset
        >>> cfg = tiny_run_config(overrides=("++workload.dataset.num_files_train=8",))
        >>> _ = generate_dataset(cfg, progress=False)
        >>> ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
        >>> len(make_dataset(cfg, input_context=ctx)), len(make_dataset(cfg, split="train", batch_size=2))
        (1, 4)
    """
    cfg = load_config(config, overrides, config_dir=config_dir)
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    size = int(batch_size) if batch_size is not None else int(cfg.reader.batch_size)
    if size != cfg.reader.batch_size or size != cfg.reader.batch_size_eval:
        cfg = load_config(cfg, [f"++workload.reader.batch_size={size}", f"++workload.reader.batch_size_eval={size}"])
    src = replace(Source.from_config(cfg, split), variable_size=_varies(cfg, None))
    return _dataset(cfg, src, input_context=input_context, split=split, epoch=epoch,
                    labels=labels, transform=transform, deterministic=deterministic, random_seed=random_seed)


def _varies(cfg: Any, asked: bool | None) -> bool | None:
    """Ragged batches when asked, or when the format hands out bytes of content-dependent length (jpeg,
    png, csv in bytes mode; parquet rows): the runner's rule; None lets the Source read the config."""
    from ._loader import samples_vary

    return asked if asked is not None else (True if samples_vary(cfg) else None)


def _dataset(cfg: Any, src: Source, *, input_context: Any, split: str, epoch: int, labels: bool,
             transform: Any, deterministic: bool, random_seed: int | None) -> tf.data.Dataset:
    pipelines, index, replicas = input_pipelines(input_context)
    random_seed = shared_random_seed(cfg, pipelines, random_seed)
    local = replicas // pipelines
    plans = [epoch_plan(cfg, split=split, epoch=epoch, world=replicas, rank=index * local + r,
                        random_seed=random_seed) for r in range(local)]
    return build_dataset(src, plans[0], pipelines=pipelines, index=index, batches=plans[0].steps * local,
                         deterministic=deterministic, labels=labels, plans=plans, transform=transform, autotune=True)


def from_uri(uri: str, *, format: str, batch_size: int = 1, shuffle: bool = False, seed: int = 0,
             samples_per_file: int | None = None, storage_options: Mapping[str, Any] | None = None,
             prefix: str = "", epoch: int = 1, input_context: Any = None, labels: bool = True,
             transform: Callable[[dict], Any] | None = None, variable_size: bool | None = None,
             read_threads: int = 4) -> tf.data.Dataset:
    """Every ``*.{format}`` file under ``uri`` (``/data/x``, ``file://``, ``s3://bucket/x``, ...) as one epoch
    of ``batch_size`` batches, the keyword twin of the torch plugin's ``DlioIterableDataset.from_uri``.

    Files are sorted by name; ``samples_per_file`` is read from the first file when not given;
    ``shuffle`` shuffles files and samples with ``seed`` (epoch ``epoch``'s order: pass ``epoch=e`` for
    a new one); the last partial batch is dropped. ``variable_size=True`` when samples differ in shape
    (they then come as a ragged ``[batch, None]`` of flattened samples); by default only formats whose
    samples are bytes of content-dependent length (jpeg, png, csv undecoded; parquet) are ragged.
    """
    from dlio_core.uri_config import files_config

    cfg, storage, files = files_config(uri, format=format, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                       samples_per_file=samples_per_file, storage_options=storage_options,
                                       prefix=prefix, read_threads=read_threads)
    src = Source(cfg, storage, tuple(files), "train", variable_size=_varies(cfg, variable_size))
    return _dataset(cfg, src, input_context=input_context, split="train", epoch=epoch, labels=labels,
                    transform=transform, deterministic=False, random_seed=None)
