"""The ``ReadPool``'s open directories (``_cread.c``, ``DirCache``): files opened relative to their
directory read what opening them by path reads, in any number of directories; errors still name the
full path; the directories' descriptors live as long as the pool and no longer. And a ``wait()`` on a
batch a thread is reading reads the later batches no thread has started meanwhile."""

from __future__ import annotations

import errno
import gc
import os

import pytest

from dlio_core.engine import whole_file

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(whole_file._cread is None, reason="the C extension _cread is not built")]

cread = whole_file._cread


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _collect(pool, paths):
    bufs = [memoryview(bytearray(64)) for _ in paths]
    got, _ = pool.wait(pool.submit(paths, bufs))
    return [bytes(b[:n]) for b, n in zip(bufs, got)]


@pytest.mark.parametrize("threads", [0, 2])  # 0: every batch run by the caller
def test_files_in_many_directories_and_relative_paths_read_whole(tmp_path, monkeypatch, threads):
    paths, contents = [], []
    for d in range(20):  # more directories than the pool keeps open (16): the rest open by path
        (tmp_path / f"d{d}").mkdir()
        for i in range(3):
            p = tmp_path / f"d{d}" / f"f{i}.bin"
            p.write_bytes(b"%d-%d" % (d, i))
            paths.append(str(p))
            contents.append(p.read_bytes())
    (tmp_path / "top.bin").write_bytes(b"top")
    monkeypatch.chdir(tmp_path)
    with cread.ReadPool(threads) as pool:
        for _ in range(2):  # directories opened in the first pass, reused in the second
            assert _collect(pool, paths) == contents
        assert _collect(pool, ["top.bin", "d3/f1.bin", "/" + str(tmp_path)[1:] + "/d0/f2.bin"]) == [
            b"top", b"3-1", b"0-2"]


def test_a_missing_file_in_an_open_directory_names_its_full_path(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"a")
    with cread.ReadPool(1) as pool:
        assert _collect(pool, [str(tmp_path / "a.bin")]) == [b"a"]
        for missing in (tmp_path / "gone.bin", tmp_path / "no-such-dir" / "b.bin"):
            with pytest.raises(OSError) as e:
                _collect(pool, [str(tmp_path / "a.bin"), str(missing)])
            assert e.value.errno == errno.ENOENT and e.value.filename == str(missing)
        assert _collect(pool, [str(tmp_path / "a.bin")]) == [b"a"]  # the pool still reads


def test_directory_descriptors_close_with_the_pool(tmp_path):
    for d in range(3):
        (tmp_path / f"d{d}").mkdir()
        (tmp_path / f"d{d}" / "f.bin").write_bytes(b"x")
    gc.collect()
    before = _open_fds()
    pool = cread.ReadPool(1)
    _collect(pool, [str(tmp_path / f"d{d}" / "f.bin") for d in range(3)])
    assert _open_fds() == before + 3  # one per directory, kept while the pool lives
    pool.close()
    del pool
    gc.collect()
    assert _open_fds() == before


def test_a_wait_on_a_running_batch_reads_later_ones_meanwhile(tmp_path):
    # The pool's one thread blocks opening a FIFO (batch 0); waiting for batch 0, the caller reads the
    # batches no thread has started (1 and 2: a later missing file's error kept for its own wait), then
    # waits for batch 0; each result is collected once, by its own ticket.
    from .test_cread import _open_writer_later, _thread_waits_on_fifo

    fifo, ok = str(tmp_path / "fifo"), tmp_path / "ok.bin"
    os.mkfifo(fifo)
    ok.write_bytes(b"fine")
    with cread.ReadPool(1, spin_us=10) as pool:
        first = pool.submit([fifo], [memoryview(bytearray(4))])
        assert _thread_waits_on_fifo()
        later = pool.submit([str(ok)], [memoryview(bytearray(4))])
        missing = pool.submit([str(tmp_path / "gone.bin")], [memoryview(bytearray(4))])
        writer = _open_writer_later(fifo, 0.3)
        with pytest.raises(OSError):  # the FIFO's own error (ESPIPE), after its writer came
            pool.wait(first)
        writer.join()
        assert pool.stats()["run_ahead_by_caller"] == 2 and pool.stats()["run_by_caller"] == 0
        assert pool.wait(later)[0] == [4]
        with pytest.raises(OSError) as e:
            pool.wait(missing)
        assert e.value.errno == errno.ENOENT and e.value.filename == str(tmp_path / "gone.bin")
        with pytest.raises(KeyError):  # collected already
            pool.wait(later)
