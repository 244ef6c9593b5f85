"""The raw and stream write path: early writeback, and what a write that runs out of room leaves behind."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import pytest

from dlio_core.checkpoint.writeback import Writeback, writeback_for
from dlio_core.storage import open_storage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_writeback_is_accepted_on_a_real_file_and_tracks_the_offset(tmp_path):
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        wb = Writeback(fd, min_bytes=100_000)
        queued = []
        for _ in range(3):
            os.write(fd, b"x" * 65536)
            wb.wrote(65536)
            queued.append(wb.queued)
        os.fsync(fd)
    finally:
        os.close(fd)
    # a wrong binding (argument types, the flag) makes the kernel refuse, which turns the hint off
    assert (wb.active, wb.reason, wb.offset) == (True, "", 3 * 65536)
    assert queued == [0, 2 * 65536, 2 * 65536]  # short ranges wait until min_bytes are written
    assert (tmp_path / "f").stat().st_size == 3 * 65536


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_writeback_turns_itself_off_where_refused():
    r, w = os.pipe()
    try:
        wb = Writeback(w, min_bytes=1)
        os.write(w, b"abc")
        wb.wrote(3)
        assert not wb.active and "sync_file_range" in wb.reason  # a pipe has no pages to write back
        wb.wrote(5)  # later pieces: nothing asked, no error
        assert wb.offset == 8
    finally:
        os.close(r)
        os.close(w)


def test_writeback_only_for_fsynced_local_files(tmp_path):
    import io

    st = open_storage(str(tmp_path))
    with st.open_write("a.bin", fsync=True) as f:  # the writable raw and stream get on local files
        assert (writeback_for(f, True) is not None) == sys.platform.startswith("linux")
        assert writeback_for(f, False) is None  # fsync off: the kernel flushes when it likes, as before
        f.write(b"x")
    assert writeback_for(io.BytesIO(), True) is None  # no descriptor (an upload buffer)


_SAVE_WITH_A_FILE_SIZE_LIMIT = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 20, 3 << 20))  # writes past 3 MiB fail (EFBIG), like ENOSPC
    from dlio_core.checkpoint import CheckpointEngine, CheckpointError
    from dlio_core.config import load_config
    folder, mechanism = sys.argv[1], sys.argv[2]
    cfg = load_config("unet3d_h100", [f"++workload.checkpoint.checkpoint_folder={folder}",
                                      "++workload.model.model_size_bytes=8388731",
                                      f"++workload.checkpoint.checkpoint_mechanism={mechanism}",
                                      "++workload.checkpoint.fsync=True"])
    eng = CheckpointEngine(cfg, progress=False, chunk_bytes=1 << 20, read_buffer_bytes=1 << 20)
    try:
        eng.save(1, 1)
    except CheckpointError as e:
        print("refused:", e)
    try:
        eng.load(1, 1)
    except CheckpointError as e:
        print("load refused:", e)
""")


@pytest.mark.parametrize("mechanism", ["raw", "stream"])
@pytest.mark.parametrize("direct", [False, True])
def test_a_write_that_runs_out_of_room_leaves_nothing_that_looks_complete(mechanism, direct):
    # a real short write then a real error from the kernel (RLIMIT_FSIZE: the write that crosses the limit is
    # cut short, the next one fails), in a child process so the limit stays there
    base = tempfile.mkdtemp(dir="/var/tmp")  # a disk file system: tmpfs refuses O_DIRECT
    try:
        url = ("direct://" if direct else "") + base
        out = subprocess.run([sys.executable, "-c", _SAVE_WITH_A_FILE_SIZE_LIMIT, url, mechanism],
                             capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, PYTHONPATH=ROOT))
        if direct and "refuses direct I/O" in out.stdout:
            pytest.skip("this file system refuses O_DIRECT")
        assert out.returncode == 0, out.stderr[-2000:]
        assert "refused:" in out.stdout and "File too large" in out.stdout and "not committed" in out.stdout
        assert "load refused:" in out.stdout  # the next load says the checkpoint is incomplete
        left = [os.path.join(d, f) for d, _, fs in os.walk(base) for f in fs]
        assert left == []  # no data file, no temporary, no commit marker
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)


def test_stream_keeps_its_ring_between_saves_until_dropped():
    from dlio_core.checkpoint.mechanisms import Context
    from dlio_core.checkpoint.streams import RING, StreamMechanism

    ctx = Context.demo(3 * (1 << 20))
    spec = ctx.plan.rank_specs(0)[0]
    m = StreamMechanism()
    m.save(ctx, "a/" + spec.name, spec).wait()
    _, ring = m._kept
    assert len(ring) == RING
    m.save(ctx, "b/" + spec.name, spec).wait()
    assert m._kept[1] is ring  # the second save wrote through the same pieces
    assert m.load(ctx, "b/" + spec.name, spec).payload_bytes == spec.nbytes
    m.release()  # what the engine calls after every save and load: the ring stays
    assert m._kept[1] is ring
    m.drop_ring()
    assert m._kept is None
