"""Per-rank memory of the engine at many files: a reader over the run's file table (1 M files) keeps
the table's arrays and an 8-byte size a file, never a Python string or int per file, and still
reads the right files."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest

from dlio_core.config import load_config
from dlio_core.engine.paths import EAGER_PATHS_MAX, LazyPaths, engine_paths
from dlio_core.file_table import FileTable
from dlio_core.reader import epoch_plan, native_reader
from dlio_core.storage import open_storage

pytestmark = pytest.mark.timeout(120)

FILES = 1_000_000


def _dlio_table(files: int, size: int) -> FileTable:
    """DLIO's names (``train/img_{i}_of_{n}.npz``) in the table's numbered form, built from arrays."""
    return FileTable(files, (("train/img_", "_of_", ".npz"),), {"n0": np.arange(files, dtype=np.uint32)},
                     {"tid": 0, "n1": files, "sizes": size})


def _cfg(folder, files: int):
    return load_config("default", [f"++workload.dataset.data_folder={folder}",
                                   f"++workload.dataset.num_files_train={files}",
                                   "++workload.dataset.num_samples_per_file=1",
                                   "++workload.dataset.num_subfolders_train=0",
                                   "++workload.reader.batch_size=4", "++workload.reader.read_threads=1"])


def test_a_reader_over_a_million_files_costs_bytes_a_file_not_strings(tmp_path):
    storage = open_storage(str(tmp_path))
    cfg = _cfg(tmp_path, FILES)
    fmt_table = _dlio_table(8, 1)  # the first files exist, with their real sizes
    from dlio_core.reader import reader_format
    fmt = reader_format(cfg)
    x = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    first = [f"train/img_{i}_of_{FILES}.npz" for i in range(8)]
    size = fmt.write_file(storage, first[0], x)
    for name in first[1:]:
        assert fmt.write_file(storage, name, x) == size
    del fmt_table
    table = _dlio_table(FILES, size)

    tracemalloc.start()
    try:
        reader = native_reader(cfg, storage, table, rank=0)
        plan = epoch_plan(cfg, split="train", epoch=1)
        _, peak = tracemalloc.get_traced_memory()
        batches = reader.epoch(plan, max_steps=2)
        got = [next(batches), next(batches)]
        batches.close()
        _, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The sizes as one int64 array and one array('q') (16 bytes a file) and nothing else per file;
    # a list of path strings (~100 bytes a file) or of Python ints (~36) cannot fit.
    assert peak < 24 * FILES, f"{peak / FILES:.1f} bytes a file to build the reader"
    assert peak_read < 24 * FILES, f"{peak_read / FILES:.1f} bytes a file after reading"
    assert isinstance(reader.files, LazyPaths) and reader.files[3] == str(tmp_path / first[3])
    assert [b.num_samples for b in got] == [4, 4] and sum(b.bytes_read for b in got) == 8 * size
    reader.close()


def test_a_missing_file_among_many_is_named_with_its_path(tmp_path):
    # Lazily made paths still name the file in the error.
    from dlio_core.engine import ReadError

    storage = open_storage(str(tmp_path))
    files = EAGER_PATHS_MAX + 1
    reader = native_reader(_cfg(tmp_path, files), storage, _dlio_table(files, 100), rank=0)
    plan = epoch_plan(_cfg(tmp_path, files), split="train", epoch=1)
    with pytest.raises(ReadError, match=f"train/img_0_of_{files}.npz"):
        next(reader.epoch(plan, max_steps=1))


def test_paths_are_one_list_up_to_the_limit_then_made_per_batch(tmp_path):
    storage = open_storage(str(tmp_path))
    small = _dlio_table(EAGER_PATHS_MAX, 1).names()
    paths, plain = engine_paths(storage, small)
    assert type(paths) is list and plain and paths[-1] == str(tmp_path / small[-1])
    large = _dlio_table(EAGER_PATHS_MAX + 1, 1).names()
    paths, plain = engine_paths(storage, large)
    assert isinstance(paths, LazyPaths) and plain and len(paths) == EAGER_PATHS_MAX + 1
    want = [str(tmp_path / large[i]) for i in (EAGER_PATHS_MAX, 0, 7)]
    assert paths.take([EAGER_PATHS_MAX, 0, 7]) == want and paths[EAGER_PATHS_MAX] == want[0]
    remote, plain = engine_paths(open_storage(f"direct://{tmp_path}"), large)
    assert not plain and remote.take([1]) == [large[1]]  # no OS path: the names as the storage takes them
    with pytest.raises(IndexError, match="out of range"):
        paths.take([EAGER_PATHS_MAX + 1])


def test_table_names_at_match_the_table_in_both_forms():
    numbered = FileTable.from_pairs([(f"train/{i % 3}/img_{i}_of_9.npz", i) for i in range(9)])
    raw = FileTable.from_pairs([("b/x.npz", 1), ("a/007.npz", 2), ("é/ü.npz", 3)])
    assert numbered.templates is not None and raw.templates is None
    for table in (numbered, raw):
        order = list(range(len(table)))[::-1] + [0, 0]
        assert table.names_at(order) == [table[i][0] for i in order]
        assert table.names_at(np.array(order)) == table.names().names_at(order)
        assert table.sizes_array().tolist() == [s for _, s in table]
        with pytest.raises(IndexError):
            table.names_at([-1])


def test_paths_at_many_files_are_exactly_what_the_storage_makes(tmp_path):
    # The fast form (the root built into the name formats) only where the storage makes exactly that;
    # a name the storage resolves otherwise (an absolute one is its own OS path) keeps the per-name calls.
    from dlio_core.engine.paths import table_names

    storage = open_storage(str(tmp_path))
    files = EAGER_PATHS_MAX + 1
    for templates, fast in ((("train/img_", "_of_", ".npz"),), True), ((("/train/img_", "_of_", ".npz"),), False):
        table = FileTable(files, templates, {"n0": np.arange(files, dtype=np.uint32)},
                          {"tid": 0, "n1": files, "sizes": 1})
        paths, plain = engine_paths(storage, table_names(table.names(), storage.join))
        want = [storage.local_path(storage.join(name)) for name in table.names_at([0, 5, files - 1])]
        assert plain and paths.take([0, 5, files - 1]) == want and paths[5] == want[1]
        assert (getattr(paths.names, "prefix", "") == os.path.join(str(tmp_path), "")) is fast
