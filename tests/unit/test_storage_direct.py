"""direct:// (O_DIRECT) reads: alignment handling, zero-copy into aligned buffers, the tmpfs error, odirect runs."""

from __future__ import annotations

import errno
import os
import pickle
import tempfile

import numpy as np
import pytest

from dlio_core.storage import StorageError, StorageNotFoundError, open_storage
from dlio_core.storage import direct as direct_mod
from dlio_core.storage.direct import ALIGN, DirectStorage, aligned_array


def _direct_ok(d: str) -> bool:
    p = os.path.join(d, ".odirect-probe")
    with open(p, "wb") as f:
        f.write(b"x" * ALIGN)
    try:
        os.close(os.open(p, os.O_RDONLY | getattr(os, "O_DIRECT", 0)))
        return True
    except OSError as e:
        return e.errno != errno.EINVAL
    finally:
        os.unlink(p)


@pytest.fixture
def ddir(tmp_path) -> str:
    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    for d in (str(tmp_path), "/var/tmp"):
        if _direct_ok(d):
            return d if d == str(tmp_path) else tempfile.mkdtemp(dir=d)
    pytest.skip("no directory here accepts O_DIRECT (tmp is tmpfs?)")


@pytest.fixture
def data() -> bytes:
    return np.random.default_rng(3).integers(0, 256, 3 * ALIGN + 123, dtype=np.uint8).tobytes()


def test_open_storage_direct_scheme(ddir):
    st = open_storage(f"direct://{ddir}")
    assert isinstance(st, DirectStorage) and st.url == f"direct://{ddir}"
    assert st.path(f"direct://{ddir}/a") == f"{ddir}/a"


@pytest.mark.parametrize("offset, length", [(0, None), (0, 100), (1, 5000), (ALIGN, ALIGN), (ALIGN - 1, 2),
                                            (3 * ALIGN, 500), (3 * ALIGN + 100, 500)])
def test_read_into_any_offset_and_length(ddir, data, offset, length):
    st = DirectStorage(ddir)
    st.write_atomic("f.bin", data)
    length = len(data) if length is None else length
    buf = bytearray(length)
    n = st.read_into("f.bin", buf, offset)
    expect = data[offset:offset + length]
    assert n == len(expect) and bytes(buf[:n]) == expect


def test_aligned_buffer_is_read_without_a_bounce(ddir, data, monkeypatch):
    st = DirectStorage(ddir)
    st.write_atomic("f.bin", data)
    buf = aligned_array(3 * ALIGN)
    assert buf.ctypes.data % ALIGN == 0
    monkeypatch.setattr(DirectStorage, "_bounce_read", lambda *a: pytest.fail("bounced an aligned read"))
    assert st.read_into("f.bin", buf) == 3 * ALIGN
    assert buf.tobytes() == data[:3 * ALIGN]


def test_whole_file_into_aligned_buffer_bounces_only_the_tail(ddir, data):
    st = DirectStorage(ddir)
    st.write_atomic("f.bin", data)
    buf = aligned_array(len(data))
    assert st.read_into("f.bin", buf) == len(data) and buf.tobytes() == data
    assert st.read("f.bin") == data


def test_reads_larger_than_the_bounce_buffer(ddir, monkeypatch):
    monkeypatch.setattr(direct_mod, "_BOUNCE", 2 * ALIGN)
    st = DirectStorage(ddir)
    blob = np.arange(7 * ALIGN + 5, dtype=np.uint32).astype(np.uint8).tobytes()
    st.write_atomic("big.bin", blob)
    buf = bytearray(len(blob) - 3)
    assert st.read_into("big.bin", buf, 3) == len(blob) - 3 and bytes(buf) == blob[3:]


def test_past_end_and_empty(ddir, data):
    st = DirectStorage(ddir)
    st.write_atomic("f.bin", data)
    assert st.read_into("f.bin", bytearray(10), len(data)) == 0
    assert st.read_into("f.bin", bytearray(0)) == 0
    with pytest.raises(StorageNotFoundError):
        st.read_into("missing.bin", bytearray(10))


def test_tmpfs_refuses_o_direct_with_a_clear_error(monkeypatch):
    """On /dev/shm. tmpfs accepts O_DIRECT since Linux 6.6; where it does, its refusal (EINVAL from
    open, as older kernels and some FUSE/overlay mounts answer) is injected instead."""
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm here")
    d = tempfile.mkdtemp(dir="/dev/shm")
    try:
        if _direct_ok(d):
            real_open = os.open

            def refusing_open(path, flags, *args, **kwargs):
                if flags & os.O_DIRECT:
                    raise OSError(errno.EINVAL, "Invalid argument", path)
                return real_open(path, flags, *args, **kwargs)

            monkeypatch.setattr(os, "open", refusing_open)
        st = DirectStorage(f"direct://{d}")
        st.write_atomic("x.bin", b"abc")  # writes are buffered, reads are direct
        with pytest.raises(StorageError) as ei:
            st.read_into("x.bin", bytearray(3))
        msg = str(ei.value)
        assert f"{d}/x.bin" in msg and "O_DIRECT" in msg and "reader.odirect: false" in msg
        assert "\n" not in msg
    finally:
        import shutil

        shutil.rmtree(d, ignore_errors=True)


def test_pickles_without_its_pool(ddir, data):
    st = DirectStorage(ddir)
    st.write_atomic("f.bin", data)
    st.read_into("f.bin", bytearray(10), 5)
    st2 = pickle.loads(pickle.dumps(st))
    assert st2 == st and st2.read("f.bin") == data


def test_reader_odirect_maps_a_local_run_onto_direct_io(ddir, tmp_path):
    from dlio_core.config import load_config
    from dlio_core.listing import dataset_storage
    from dlio_core.runner import run

    cfg = load_config("default", [f"++workload.dataset.data_folder={ddir}/data", "++workload.reader.data_loader=native",
                                  "++workload.workflow.generate_data=True", "++workload.train.epochs=1",
                                  "++workload.train.computation_time=0", "++workload.workflow.evaluation=False",
                                  "++workload.reader.odirect=True", f"++hydra.run.dir={tmp_path}/out"])
    st = dataset_storage(cfg)
    assert isinstance(st, DirectStorage) and st.url == f"direct://{ddir}/data"
    result = run(cfg, quiet=True)
    assert result.summary["metric"]["train_io_mean_MB_per_second"] > 0
