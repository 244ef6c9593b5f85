"""Cold checkpoint reads on one rank: what each load could have served from the page cache, the bounded
page-cache drop, rank 0's listing used by the load, and a compression level that has no effect."""

from __future__ import annotations

import mmap
import os
import time

import pytest

from dlio_core.checkpoint import CheckpointEngine, CheckpointError
from dlio_core.checkpoint.coldread import drop_page_cache, resident_bytes, resident_file_bytes
from dlio_core.config import load_config
from dlio_core.storage import open_storage

from .test_checkpoint_engine import Log


def warnings(log: Log) -> list[str]:
    return [m for level, m in log.lines if level == "warning"]


def engine(tmp_path, *overrides: str, log=None) -> CheckpointEngine:
    cfg = load_config("unet3d_h100", [f"++workload.checkpoint.checkpoint_folder={tmp_path}/ck",
                                      "++workload.model.model_size_bytes=1048576",
                                      *[f"++workload.checkpoint.{o}" for o in overrides]])
    return CheckpointEngine(cfg, progress=False, log=log)


def _evicts(folder) -> bool:
    """Whether this file system lets fsync'd pages be evicted (tmpfs keeps every page)."""
    p = os.path.join(folder, "probe")
    with open(p, "wb") as f:
        f.write(os.urandom(1 << 16))
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    cold = resident_file_bytes(p) == 0
    os.unlink(p)
    return cold


def test_an_fsynced_checkpoint_loads_cold(tmp_path):
    if not _evicts(tmp_path):
        pytest.skip("this file system keeps every page in memory (tmpfs)")
    eng = engine(tmp_path, "fsync=True")
    saved = eng.save(1, 1)
    loaded = eng.load(1, 1)
    assert saved.cached_bytes is None and saved.could_be_served_from_cache is None
    assert loaded.cached_bytes == 0 and loaded.could_be_served_from_cache is False
    d = loaded.to_dict()
    assert d["could_be_served_from_cache"] is False and d["page_cache_drop"] == "off" and d["durable_s"] is None
    assert saved.to_dict()["durable_s"] == saved.duration_s >= saved.blocked_s


def test_a_checkpoint_saved_without_fsync_is_written_back_and_loads_cold(tmp_path):
    if not _evicts(tmp_path):
        pytest.skip("this file system keeps every page in memory (tmpfs)")
    eng = engine(tmp_path, "fsync=False")
    eng.save(1, 1)  # its pages are dirty: the advice alone would leave them
    assert eng.load(1, 1).cached_bytes == 0


def test_pages_the_kernel_keeps_are_reported_with_a_warning(tmp_path):
    log = Log()
    eng = engine(tmp_path, "fsync=True", log=log)
    eng.save(1, 1)
    path = f"{tmp_path}/ck/global_epoch1_step1/model_states-0.pt"
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as held:
        sum(held[i] for i in range(0, len(held), mmap.PAGESIZE))  # mapped pages are not evicted by the advice
        loaded = eng.load(1, 1)
    assert loaded.cached_bytes == os.path.getsize(path) and loaded.could_be_served_from_cache is True
    assert any("were in the page cache when its load began" in w for w in warnings(log))


def test_object_stores_hold_nothing_in_a_client_page_cache(tmp_path):
    class Remote:  # no OS path: an object store as far as the caller can tell
        url = "mem://b"

        def local_path(self, path):
            return None

    assert resident_bytes(Remote(), "x.pt") == 0


def test_a_drop_that_hangs_is_stopped_at_its_timeout():
    t0 = time.monotonic()
    done, why = drop_page_cache(0.5, command=["sleep", "30"])
    assert not done and "did not finish within 0.5 s" in why and "drop_page_cache_timeout_s" in why
    assert time.monotonic() - t0 < 20


def test_a_refused_drop_says_why_and_never_waits_for_input():
    done, why = drop_page_cache(10, command=["sh", "-c", "read x; echo \"sh: cannot create: Read-only file system\" >&2; exit 2"])
    assert (done, why) == (False, "sh: cannot create: Read-only file system")
    assert drop_page_cache(5, command=["/nonexistent/drop"])[1].startswith("cannot run /nonexistent/drop")


def test_drop_page_cache_before_a_load_does_what_the_machine_allows(tmp_path):
    log = Log()
    eng = engine(tmp_path, "drop_page_cache=True", "drop_page_cache_timeout_s=30", log=log)
    assert eng.save(1, 1).page_cache_drop == "off"  # saves never drop
    loaded = eng.load(1, 1)
    if loaded.page_cache_drop == "dropped":  # root with a writable /proc/sys: sync, then every clean page gone
        assert not [w for w in warnings(log) if "drop_page_cache" in w]
        if _evicts(tmp_path):
            assert loaded.cached_bytes == 0
    else:  # a container's read-only /proc/sys, or no root: said once, and the run goes on
        assert loaded.page_cache_drop.startswith("refused: ")
        assert len([w for w in warnings(log) if "the page cache was not dropped" in w]) == 1
        assert eng.load(1, 1).page_cache_drop == loaded.page_cache_drop
        assert len([w for w in warnings(log) if "the page cache was not dropped" in w]) == 1


def test_a_file_missing_from_the_listing_is_a_clear_error(tmp_path):
    eng = engine(tmp_path, "fsync=True")
    eng.save(1, 1)
    os.unlink(f"{tmp_path}/ck/global_epoch1_step1/model_states-0.pt")  # the marker stays
    with pytest.raises(CheckpointError, match=r"model_states-0.pt is missing from the checkpoint.*incomplete"):
        eng.load(1, 1)


def test_loads_use_rank_0s_listing(tmp_path, monkeypatch):
    eng = engine(tmp_path)
    eng.save(1, 1)
    calls: list[str] = []
    real = type(eng.storage).list_files
    monkeypatch.setattr(type(eng.storage), "list_files", lambda self, p="", s="": (calls.append(p), real(self, p, s))[1])
    eng.load(1, 1)
    eng.load(1, 1)
    assert calls == ["global_epoch1_step1"] * 2  # one listing per load, and nothing else
    assert eng.mover.ctx.listing is None  # not kept past the load


@pytest.mark.parametrize("compression, level, warned", [("none", 9, True), ("none", 3, False), ("zstd", 9, False)])
def test_a_compression_level_without_compression_warns(tmp_path, compression, level, warned):
    pytest.importorskip("zstandard") if compression == "zstd" else None
    log = Log()
    engine(tmp_path, f"compression={compression}", f"compression_level={level}", log=log)
    hits = [w for w in warnings(log) if "checkpoint.compression_level" in w]
    assert bool(hits) is warned
    if warned:
        assert "has no effect" in hits[0] and "checkpoint.compression=zstd" in hits[0]


def test_direct_storage_reads_count_as_cold(tmp_path):
    st = open_storage("direct://" + str(tmp_path / "d"))
    cfg = load_config("unet3d_h100", [f"++workload.checkpoint.checkpoint_folder={tmp_path}/unused",
                                      "++workload.model.model_size_bytes=1048576",
                                      "++workload.checkpoint.checkpoint_mechanism=raw"])
    eng = CheckpointEngine(cfg, storage=st, progress=False)
    try:
        eng.save(1, 1)
    except CheckpointError as e:
        pytest.skip(f"this file system refuses O_DIRECT: {e}")
    assert eng.load(1, 1).cached_bytes == 0  # O_DIRECT reads never come from the page cache
