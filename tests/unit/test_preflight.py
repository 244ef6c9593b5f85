"""Sizes are checked against memory and disk before generation writes anything; an unusable output
folder is one line naming it."""

from __future__ import annotations

import os
from collections import namedtuple

import pytest

from dlio_core import preflight
from dlio_core.config import ConfigError, load_config
from dlio_core.generate import generate_dataset
from dlio_core.manifest import DatasetError
from dlio_core.output import RunLog, make_output_folder, write_config_copies


def _cfg(tmp_path, *extra: str):
    return load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data", *extra])


def test_a_file_larger_than_memory_is_refused_before_writing(tmp_path):
    with pytest.raises(DatasetError) as ei:
        generate_dataset(_cfg(tmp_path, "++workload.dataset.record_length_bytes=1e12"), progress=False)
    msg = str(ei.value)
    assert "931 GiB" in msg and "dataset.record_length_bytes=1e+12" in msg and "of memory is available" in msg
    assert not (tmp_path / "data").exists()  # nothing written, not even folders


def test_writer_threads_shrink_to_what_memory_holds(tmp_path, monkeypatch):
    monkeypatch.setattr(preflight, "available_memory_bytes", lambda: 3 * preflight.WRITE_COPIES * 4600)
    monkeypatch.setattr(preflight, "MEMORY_CHECK_FLOOR", 0)  # 4.6 KB files: checked only with no floor
    seen = []
    import dlio_core.generate as gen

    real = gen._run
    monkeypatch.setattr(gen, "_run", lambda fn, items, n: (seen.append(n), real(fn, items, n))[1])
    generate_dataset(_cfg(tmp_path, "++workload.dataset.num_files_eval=0"), progress=False, threads=8)
    assert seen == [3]


def test_memory_is_read_only_when_the_files_in_flight_reach_the_floor(tmp_path, monkeypatch):
    monkeypatch.setattr(preflight, "available_memory_bytes", lambda: 1000)  # far too little for anything
    generate_dataset(_cfg(tmp_path, "++workload.dataset.num_files_eval=0"), progress=False, threads=8)
    assert (tmp_path / "data" / "dl-driver-manifest.json").exists()  # 8 x 2 x 4.6 KB: below the floor, not read
    monkeypatch.setattr(preflight, "MEMORY_CHECK_FLOOR", 8 * 2 * 4096)
    with pytest.raises(DatasetError, match="of memory is available"):
        generate_dataset(_cfg(tmp_path / "b", "++workload.dataset.num_files_eval=0"), progress=False, threads=8)


def test_a_dataset_larger_than_the_disk_is_refused(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: usage(10**6, 0, 100_000))
    with pytest.raises(DatasetError) as ei:
        generate_dataset(_cfg(tmp_path), progress=False)  # 72 files of ~4.6 KB: 331 KB
    msg = str(ei.value)
    assert "dataset.num_files_train=64" in msg and "97.7 KiB free" in msg and str(tmp_path / "data") in msg
    assert not (tmp_path / "data").exists()


def test_files_being_replaced_count_as_free(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    generate_dataset(cfg, progress=False)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: usage(10**6, 0, 50_000))
    generate_dataset(cfg, progress=False)  # the same files again: their space is reused


@pytest.mark.parametrize("where", ["file", "missing-parent-file"])
def test_unusable_output_folder_is_one_line_naming_it(tmp_path, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    folder = str(blocker / "out") if where == "file" else str(blocker / "deeper" / "out")
    with pytest.raises(ConfigError) as ei:
        write_config_copies(folder, _cfg(tmp_path), [])
    assert str(ei.value).startswith(f"output folder {folder}: cannot create it") and ei.value.key == "output.folder"
    with pytest.raises(ConfigError, match="output folder"):
        RunLog().open_file(os.path.join(folder, "dlio.log"))


def test_full_disk_is_not_bad_input(tmp_path, monkeypatch):
    import errno

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "makedirs", full)
    with pytest.raises(OSError) as ei:
        make_output_folder(str(tmp_path / "out"))
    assert not isinstance(ei.value, ConfigError) and ei.value.errno == errno.ENOSPC
