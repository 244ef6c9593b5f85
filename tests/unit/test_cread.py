"""The C extension ``dlio_core.engine._cread``: batch reads with the GIL released, and the native
``ReadPool`` (submit, wait, the caller running a batch no thread has started, errors, close)."""

from __future__ import annotations

import errno
import os
import threading
import time

import numpy as np
import pytest

from dlio_core.engine import whole_file

from ._engine_helpers import os_threads, threads_settle_at

pytestmark = pytest.mark.timeout(60)

cread = whole_file._cread


def test_the_extension_is_built_here():
    # `make test` installs with a C compiler, so the fast path must exist; a user without one gets the
    # os.open/os.preadv/os.close loop instead (the "python-reads" engine tests cover it).
    assert cread is not None, ("dlio_core.engine._cread did not compile (setup.py marks it optional): "
                               "install gcc and the Python headers, then reinstall with `make test`")


needs_cread = pytest.mark.skipif(cread is None, reason="the C extension dlio_core.engine._cread is not built")


@pytest.fixture
def files(tmp_path):
    """Files of distinct sizes and contents: (paths, contents)."""
    rng = np.random.default_rng(3)
    paths, contents = [], []
    for i, n in enumerate([0, 1, 4095, 4096, 4097, 200_000]):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(data)
        paths.append(str(p))
        contents.append(data)
    return paths, contents


def _buffers(sizes, extra=0):
    return [memoryview(bytearray(n + extra)) for n in sizes]


@needs_cread
def test_read_files_reads_each_file_whole(files):
    paths, contents = files
    bufs = _buffers([len(c) for c in contents])
    got, seconds = cread.read_files(paths, bufs)
    assert got == [len(c) for c in contents]
    assert [bytes(b) for b in bufs] == contents
    assert seconds >= 0.0


@needs_cread
def test_read_files_stops_at_the_end_of_a_shorter_file(files):
    paths, contents = files
    bufs = _buffers([len(c) for c in contents], extra=10)  # buffers larger than the files
    got, _ = cread.read_files(paths, bufs)
    assert got == [len(c) for c in contents]  # what the file held: the caller sees a truncated file
    assert [bytes(b[:len(c)]) for b, c in zip(bufs, contents)] == contents


@needs_cread
def test_read_files_takes_str_bytes_and_pathlike(files):
    paths, contents = files
    import pathlib

    kinds = [paths[1], os.fsencode(paths[2]), pathlib.Path(paths[3])]
    bufs = _buffers([len(contents[i]) for i in (1, 2, 3)])
    assert cread.read_files(kinds, bufs)[0] == [len(contents[i]) for i in (1, 2, 3)]


@needs_cread
def test_read_files_error_names_the_file(files, tmp_path):
    paths, contents = files
    missing = str(tmp_path / "nope.bin")
    with pytest.raises(FileNotFoundError) as e:
        cread.read_files([paths[1], missing, paths[2]], _buffers([1, 10, len(contents[2])]))
    assert e.value.filename == missing and e.value.errno == errno.ENOENT
    with pytest.raises(IsADirectoryError):  # open() works on a directory, read() fails: the read's errno
        cread.read_files([str(tmp_path)], _buffers([10]))


@needs_cread
def test_read_files_rejects_bad_arguments(files):
    paths, _ = files
    with pytest.raises(ValueError, match="2 paths but 1 buffers"):
        cread.read_files(paths[:2], _buffers([1]))
    with pytest.raises(BufferError):  # read-only buffer
        cread.read_files(paths[1:2], [b"x"])
    with pytest.raises(TypeError):
        cread.read_files(paths[1:2], 5)
    assert cread.read_files([], []) == ([], pytest.approx(0.0, abs=1.0))


# -- ReadPool --------------------------------------------------------------------------------------
@needs_cread
@pytest.mark.parametrize("threads", [0, 1, 3])
@pytest.mark.parametrize("spin_us", [0, 50])
def test_pool_reads_every_batch_in_any_collection_order(files, threads, spin_us):
    paths, contents = files
    with cread.ReadPool(threads, spin_us=spin_us) as pool:
        assert pool.threads == threads
        jobs = []
        for k in range(12):  # overlapping batches of 3 files each
            idx = [(k + i) % len(paths) for i in range(3)]
            bufs = _buffers([len(contents[i]) for i in idx])
            jobs.append((pool.submit([paths[i] for i in idx], bufs), idx, bufs))
        for ticket, idx, bufs in reversed(jobs):  # collected newest first: order is the caller's business
            got, seconds = pool.wait(ticket)
            assert got == [len(contents[i]) for i in idx]
            assert [bytes(b) for b in bufs] == [contents[i] for i in idx]
            assert seconds >= 0
    assert pool.closed


@needs_cread
def test_pool_without_threads_runs_batches_in_the_caller(files):
    paths, contents = files
    pool = cread.ReadPool(0)
    bufs = _buffers([len(contents[5])])
    ticket = pool.submit([paths[5]], bufs)
    assert bytes(bufs[0]) == bytes(len(contents[5]))  # nothing read until collected
    assert pool.wait(ticket)[0] == [len(contents[5])] and bytes(bufs[0]) == contents[5]
    assert pool.stats() == {"batches": 1, "run_by_caller": 1, "run_ahead_by_caller": 0, "waited_for_a_thread": 0,
                            "thread_sleeps": 0, "wakeups": 0}
    pool.close()


@needs_cread
def test_pool_error_names_the_file_and_the_pool_goes_on(files, tmp_path):
    paths, contents = files
    with cread.ReadPool(2) as pool:
        bad = pool.submit([paths[1], str(tmp_path / "gone.bin")], _buffers([1, 8]))
        good = pool.submit([paths[3]], _buffers([len(contents[3])]))
        with pytest.raises(FileNotFoundError) as e:
            pool.wait(bad)
        assert e.value.filename.endswith("gone.bin")
        assert pool.wait(good)[0] == [len(contents[3])]


@needs_cread
def test_pool_tickets_are_collected_once(files):
    paths, contents = files
    with cread.ReadPool(1) as pool:
        t = pool.submit([paths[1]], _buffers([1]))
        pool.wait(t)
        with pytest.raises(KeyError, match="collected already"):
            pool.wait(t)
        with pytest.raises(KeyError):
            pool.wait(12345)


@needs_cread
def test_pool_close_joins_its_threads_and_drops_uncollected_batches(files):
    paths, contents = files
    base = os_threads()
    pool = cread.ReadPool(4)
    assert os_threads() == base + 4  # native threads: the OS sees them, Python's threading does not
    bufs = _buffers([len(contents[5])])
    for _ in range(20):
        pool.submit([paths[5]], bufs)  # never collected; each holds the buffer until close
    pool.close()
    assert threads_settle_at(base)
    with pytest.raises(ValueError, match="closed"):
        pool.submit([paths[1]], _buffers([1]))
    with pytest.raises(ValueError, match="closed"):
        pool.wait(0)
    pool.close()  # twice is fine
    bufs[0].release()  # the pool let go of the buffer (a held export would raise BufferError)


@needs_cread
def test_pool_dropped_without_close_stops_its_threads(files):
    base = os_threads()
    pool = cread.ReadPool(2)
    pool.submit([files[0][1]], _buffers([1]))
    del pool
    assert threads_settle_at(base)


@needs_cread
def test_pool_rejects_bad_arguments():
    with pytest.raises(ValueError, match="threads"):
        cread.ReadPool(-1)
    with pytest.raises(ValueError, match="spin_us"):
        cread.ReadPool(1, spin_us=-5)
    with cread.ReadPool(1) as pool, pytest.raises(ValueError, match="1 paths but 2 buffers"):
        pool.submit(["x"], _buffers([1, 1]))


# A FIFO blocks open() until a writer opens it: a read that takes as long as the test wants. (Reading
# it then fails with ESPIPE, since the reads use pread: the error is part of what the tests check.)
def _thread_waits_on_fifo(timeout: float = 10.0) -> bool:
    """Whether a thread of this process is blocked opening a FIFO, within ``timeout`` (Linux wchan)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/wchan") as f:
                    if f.read() == "wait_for_partner":
                        return True
            except OSError:
                continue
        time.sleep(0.005)
    return False


def _open_writer_later(fifo: str, delay: float) -> threading.Timer:
    t = threading.Timer(delay, lambda: os.close(os.open(fifo, os.O_WRONLY)))
    t.start()
    return t


@needs_cread
def test_pool_wait_on_a_running_batch_waits_for_that_thread(tmp_path):
    # The pool's thread starts the batch and blocks; wait() must wait for it (spinning, then sleeping
    # on the condition variable) rather than run the batch a second time, and hand on its error.
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    with cread.ReadPool(1, spin_us=10) as pool:
        ticket = pool.submit([fifo], _buffers([5]))
        assert _thread_waits_on_fifo()  # the pool's thread: we have not called wait() yet
        writer = _open_writer_later(fifo, 0.3)
        t0 = time.monotonic()
        with pytest.raises(OSError) as e:
            pool.wait(ticket)
        assert e.value.errno == errno.ESPIPE and e.value.filename == fifo
        assert time.monotonic() - t0 > 0.1  # it waited for the thread
        writer.join()
        assert pool.stats()["waited_for_a_thread"] == 1 and pool.stats()["run_by_caller"] == 0


@needs_cread
def test_read_files_releases_the_gil(tmp_path):
    # Other Python threads run while a batch is being read: here the writer that lets the read go on
    # (with the GIL held this would never return) and a ticker.
    fifo = str(tmp_path / "slow")
    os.mkfifo(fifo)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.005)

    t = threading.Thread(target=ticker, daemon=True)
    t.start()
    writer = _open_writer_later(fifo, 0.3)
    before = len(ticks)
    with pytest.raises(OSError) as e:
        cread.read_files([fifo], _buffers([1]))
    assert e.value.errno == errno.ESPIPE
    stop.set()
    t.join()
    writer.join()
    assert len(ticks) - before >= 10  # the ticker ran during the ~0.3 s the open blocked


@needs_cread
def test_a_forked_child_neither_uses_nor_hangs_on_the_parents_pool(files):
    paths, contents = files
    pool = cread.ReadPool(2)
    bufs = _buffers([len(contents[3])])
    ticket = pool.submit([paths[3]], bufs)
    pid = os.fork()
    if pid == 0:  # the child: the pool's threads are not here; using it is a clear error, dropping it is safe
        code = 1
        try:
            pool.submit([paths[1]], _buffers([1]))
        except ValueError as exc:
            code = 0 if "another process" in str(exc) else 2
        del pool  # must not join threads that do not exist, nor take a lock copied mid-use
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pool.wait(ticket)[0] == [len(contents[3])] and bytes(bufs[0]) == contents[3]
    pool.close()
