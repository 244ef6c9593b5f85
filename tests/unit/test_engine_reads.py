"""The native engine's read paths: errors that name the file and never hang, scratch-buffer reuse, the
ranged-format hook, direct local reads, and buffers from a plugin's allocator."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from dlio_core.engine import NativeLoader, ReadError
from dlio_core.engine import whole_file
from dlio_core.engine.buffers import _Scratch
from dlio_core.formats import FormatError, get_format

from ._engine_helpers import (Recording, _drain, _identity, _NoFiles, _plan, _RangedFormat, _run_in_thread,
                              os_threads, threads_settle_at)

pytestmark = pytest.mark.timeout(60)


# -- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("threads", [1, 2, 4])
def test_read_error_names_the_file_and_does_not_hang(dataset, mode, threads):
    st, paths, sizes = dataset(16, 1)
    base = os_threads()
    rec = Recording(st, fail="f009.npz")
    loader = NativeLoader(rec, get_format("npz"), paths, sizes=sizes, read_threads=threads, prefetch_size=2)
    box = _run_in_thread(lambda: _drain(loader, _plan(16, 1, 2)))
    assert isinstance(box.get("error"), ReadError)
    assert "f009.npz" in str(box["error"]) and "Permission denied" in str(box["error"])
    assert threads_settle_at(base)


def test_missing_file_is_a_read_error(dataset, mode):
    st, paths, sizes = dataset(6, 1)
    os.unlink(st.path(paths[4]))
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2)
    box = _run_in_thread(lambda: _drain(loader, _plan(6, 1, 2)))
    assert isinstance(box.get("error"), ReadError) and "f004.npz" in str(box["error"])


def test_truncated_file_is_a_read_error(dataset, mode):
    st, paths, sizes = dataset(6, 1)
    with open(st.path(paths[2]), "r+b") as f:
        f.truncate(sizes[2] - 10)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2)
    box = _run_in_thread(lambda: _drain(loader, _plan(6, 1, 3)))
    assert isinstance(box.get("error"), ReadError) and "f002.npz" in str(box["error"])


@pytest.mark.parametrize("fmt", ["npz", "npy"])
@pytest.mark.parametrize("keep", [False, True])
def test_corrupt_file_error_names_the_file(dataset, mode, fmt, keep):
    st, paths, sizes = dataset(8, 1, fmt)
    with open(st.path(paths[5]), "r+b") as f:  # same size, garbage bytes
        f.write(b"\0" * sizes[5])
    loader = NativeLoader(st, get_format(fmt), paths, sizes=sizes, read_threads=2, keep_samples=keep)
    box = _run_in_thread(lambda: _drain(loader, _plan(8, 1, 2)))
    assert isinstance(box.get("error"), FormatError) and f"f005.{fmt}" in str(box["error"])


def test_corrupt_header_after_good_files_of_the_same_size_is_caught(dataset, mode):
    # The reused scratch buffer and the parser's cache must not let a bad file through.
    st, paths, sizes = dataset(8, 1)
    assert len(set(sizes)) == 1
    raw = bytearray(open(st.path(paths[6]), "rb").read())
    hdr = raw.index(b"'shape': (")  # a larger shape in x's npy header, same length
    raw[hdr + 10] = ord("9")
    open(st.path(paths[6]), "wb").write(raw)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=1)
    box = _run_in_thread(lambda: _drain(loader, _plan(8, 1, 1)))
    assert isinstance(box.get("error"), FormatError) and "f006.npz" in str(box["error"])


def test_sample_index_past_the_file_is_a_read_error(dataset, mode):
    st, paths, sizes = dataset(4, 2)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=1)
    box = _run_in_thread(lambda: _drain(loader, _plan(4, 3, 2)))  # the plan thinks files hold 3
    assert isinstance(box.get("error"), ReadError) and "holds 2" in str(box["error"])


def test_file_holding_no_sample_is_a_read_error_with_one_sample_per_file(dataset, mode):
    # One sample per file, every sample 0: the batch takes finish's short cut, which must still refuse
    # a file whose array holds no sample at all.
    st, paths, sizes = dataset(8, 1)
    fmt = get_format("npz")
    sizes[5] = fmt.write_file(st, paths[5], np.zeros((3, 0), np.uint32))
    loader = NativeLoader(st, fmt, paths, sizes=sizes, read_threads=2)
    box = _run_in_thread(lambda: _drain(loader, _plan(8, 1, 4)))
    assert isinstance(box.get("error"), ReadError)
    assert "f005.npz" in str(box["error"]) and "holds 0" in str(box["error"])


@pytest.mark.parametrize("spf", [1, 3])
def test_figures_are_the_same_with_and_without_kept_samples(dataset, mode, spf):
    # finish takes a short cut for batches of one sample per file when samples are not kept; the
    # figures must equal those of the per-sample loop that kept samples take.
    st, paths, sizes = dataset(12, spf, vary=True)
    figures = []
    for keep in (False, True):
        loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2, keep_samples=keep)
        figures.append([(b.step, b.num_samples, b.bytes_read, b.sample_bytes)
                        for b in _drain(loader, _plan(12, spf, 4))])
    assert figures[0] == figures[1]
    # every sample read once; a sample of file i is uint32 x (3 + i % 3) (dataset(..., vary=True))
    assert sum(f[3] for f in figures[0]) == sum(4 * (3 + i % 3) for i in range(12)) * spf
    if spf == 1:  # each file read whole, once
        assert sum(f[2] for f in figures[0]) == sum(sizes)


def test_short_read_and_bad_file_in_one_batch_name_the_first(dataset, mode):
    # Files are checked in read order: a corrupt file before a truncated one is the error raised.
    st, paths, sizes = dataset(4, 1)
    with open(st.path(paths[1]), "r+b") as f:
        f.write(b"\0" * sizes[1])
    with open(st.path(paths[2]), "r+b") as f:
        f.truncate(sizes[2] - 10)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=1)
    box = _run_in_thread(lambda: _drain(loader, _plan(4, 1, 4)))
    assert "f001.npz" in str(box.get("error")), box


# -- buffers -----------------------------------------------------------------------------------------
def test_scratch_buffers_are_reused_per_size():
    sc = _Scratch(get_format("npz"))
    a = sc.batch_views([4594, 4594, 100])
    assert [v.nbytes for v in a] == [4594, 4594, 100]
    assert all(x is y for x, y in zip(sc.batch_views([4594, 4594, 100]), a))  # the same view objects
    starts = [np.frombuffer(v, np.uint8).ctypes.data for v in a]
    assert starts[1] - starts[0] == 4608 and all(p % 64 == starts[0] % 64 for p in starts)  # side by side
    big = sc.batch_views([100_000])
    assert big[0].obj is not a[0].obj and (0, 4594) not in sc.views  # growing drops the old views
    s1 = sc.single_view(10_000)
    assert sc.single_view(10_000) is s1 and s1.obj is not big[0].obj
    assert sc.single_view(5_000).obj is s1.obj  # smaller files share the single array


@pytest.mark.parametrize("burst", [True, False])
def test_engine_reuses_one_buffer_for_files_of_one_size(dataset, monkeypatch, burst):
    if not burst:
        monkeypatch.setattr(whole_file, "BURST_MAX_BYTES", 0)
    st, paths, sizes = dataset(12, 1)
    buffers = set()

    class Spy(Recording):
        def read_into(self, path, buffer, offset=0):
            buffers.add(id(buffer.obj) if isinstance(buffer, memoryview) else id(buffer))
            return super().read_into(path, buffer, offset)

    loader = NativeLoader(Spy(st), get_format("npz"), paths, sizes=sizes, read_threads=2)
    _drain(loader, _plan(12, 1, 2))
    _drain(loader, _plan(12, 1, 2))
    assert len(buffers) <= 3  # one scratch array per reader thread and the consumer's, across batches and epochs
    assert 2 <= len(loader._scratches.kept) <= 3  # the consumer's is made the first time it reads a step itself


def test_ranged_formats_use_the_reader_hook():
    fmt = _RangedFormat()
    loader = NativeLoader(_NoFiles(), fmt, [f"p{i}" for i in range(4)], sizes=[100] * 4, read_threads=2,
                          keep_samples=True)
    plan = _plan(4, 3, 3)
    for step, b in enumerate(loader.epoch(plan)):
        files, samples = plan.batch(step)
        assert [int(v[0]) for v in b.samples] == samples.tolist()
        assert b.sample_bytes == 6 and b.bytes_read == 10 * 3
    assert sorted(set(fmt.opened)) == [f"p{i}" for i in range(4)]


@pytest.mark.parametrize("burst", [True, False])
def test_direct_local_reads_finish_short_reads(dataset, monkeypatch, burst):
    # Without the C extension local files are read with os.preadv in the engine itself; a short read is
    # completed, not taken as EOF. (The C reads retry short reads themselves.)
    monkeypatch.setattr(whole_file, "_cread", None)
    if not burst:
        monkeypatch.setattr(whole_file, "BURST_MAX_BYTES", 0)
    st, paths, sizes = dataset(6, 2)
    real = os.preadv
    calls = []

    def short_preadv(fd, bufs, offset):
        (b,) = bufs
        calls.append(offset)
        return real(fd, [b[: max(1, len(b) // 3)]], offset)

    monkeypatch.setattr(os, "preadv", short_preadv)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=2, keep_samples=True)
    assert loader.inputs.plain_local_files and os.path.isabs(loader.files[0])
    got = []
    for b in loader.epoch(_plan(6, 2, 4)):
        got += [_identity(s) for s in b.samples]
        b.release()
    assert sorted(got) == [(f, i) for f in range(6) for i in range(2)]
    assert len(calls) > 12  # the engine's call, then storage.read_into's loop


def test_direct_path_is_only_for_plain_local_storage(dataset):
    from dlio_core.storage import open_storage
    from dlio_core.storage.local import LocalStorage

    st, paths, sizes = dataset(2, 1)

    class Sub(LocalStorage):  # e.g. DirectStorage (O_DIRECT) keeps its own read_into: no plain OS path
        def local_path(self, path):
            return None

    assert NativeLoader(st, get_format("npz"), paths, sizes=sizes).inputs.plain_local_files
    sub = NativeLoader(Sub(st.root), get_format("npz"), paths, sizes=sizes)
    assert not sub.inputs.plain_local_files and sub.files == paths
    o_direct = NativeLoader(open_storage("direct://" + st.root), get_format("npz"), paths, sizes=sizes)
    assert not o_direct.inputs.plain_local_files and o_direct.files == paths


def test_kept_samples_live_in_buffers_from_the_allocator(tmp_path):
    """A plugin's allocator (pinned memory in real use) supplies the buffers samples are read into."""
    import numpy as np

    from dlio_core.engine import NativeLoader
    from dlio_core.formats import get_format
    from dlio_core.sampling import EpochPlan
    from dlio_core.storage import open_storage

    st, fmt = open_storage(str(tmp_path)), get_format("npy")
    for i in range(6):
        fmt.write_file(st, f"f{i}.npy", np.full((16, 16, 1), i, np.uint8))
    made: list[np.ndarray] = []

    def allocator(n: int) -> np.ndarray:
        made.append(np.zeros(n, np.uint8))
        return made[-1]

    loader = NativeLoader(st, fmt, [f"f{i}.npy" for i in range(6)], sizes=[st.size(f"f{i}.npy") for i in range(6)],
                          read_threads=2, prefetch_size=2, keep_samples=True, allocator=allocator)
    plan = EpochPlan(num_files=6, samples_per_file=1, batch_size=2)
    seen = []
    for batch in loader.epoch(plan):
        for sample in batch.samples:
            assert any(np.shares_memory(sample, buf) for buf in made)
            seen.append(int(sample[0, 0]))
        batch.release()
    assert sorted(seen) == list(range(6)) and made


def _grouped_by_dict(files, samples):
    """The reference grouping (the per-sample loop numpy replaced): files in first-named order, each
    file's samples in batch order."""
    groups = {}
    for f, s in zip(files, samples):
        groups.setdefault(f, []).append(s)
    return groups


@pytest.mark.parametrize("seed", range(6))
def test_ranged_batches_group_samples_as_the_per_sample_loop_did(seed):
    # Each file is opened once, in the order the batch first names it, and read for its samples in
    # batch order; kept samples come back in batch order; bytes and sample bytes are exact.
    from dlio_core.engine.ranged import RangedBatches
    from dlio_core.engine.read_path import ReadInputs

    rng = np.random.default_rng(seed)
    count, nfiles = [1, 2, 7, 64, 1000, 16384][seed], [1, 1, 3, 5, 40, 7][seed]
    files = rng.integers(0, nfiles, count)
    samples = rng.integers(0, 1 << 20, count)
    calls = []

    class Fmt:
        whole_file = False

        def open_reader(self, storage, path, size):
            class R:
                def read(self, indices, keep):
                    got = [int(i) for i in indices]
                    calls.append((path, size, got))
                    views = [np.array([int(path[1:]), i], np.int64) for i in got] if keep else None
                    return 3 * len(got) + size, 2 * len(got), views, 0.0, 0.0

                def close(self):
                    pass
            return R()

    sizes = [100 + f for f in range(nfiles)]
    for keep in (True, False):
        calls.clear()
        reads = RangedBatches(ReadInputs.build(_NoFiles(), Fmt(), [f"p{f}" for f in range(nfiles)], sizes=sizes,
                                               keep_samples=keep))
        batch = reads.read(0, files, samples, None, rng)
        want = _grouped_by_dict(files.tolist(), samples.tolist())
        assert calls == [(f"p{f}", sizes[f], s) for f, s in want.items()]
        assert batch.num_samples == count and batch.sample_bytes == 2 * count
        assert batch.bytes_read == 3 * count + sum(sizes[f] for f in want)
        if keep:
            assert [x.tolist() for x in batch.samples] == [[f, s] for f, s in zip(files.tolist(), samples.tolist())]
        else:
            assert batch.samples is None


def test_grouping_by_file_handles_empty_and_single_file_batches():
    from dlio_core.engine.ranged import group_by_file

    order, cuts, firsts = group_by_file(np.zeros(0, np.int64))
    assert order.tolist() == [] and firsts == []
    order, cuts, firsts = group_by_file(np.full(5, 3))
    assert order.tolist() == [0, 1, 2, 3, 4] and cuts.tolist() == [] and firsts == [3]
