"""Generated content (``dlio_core.content``): incompressible, no repeated block, a reused buffer gives the
same bytes, sample-major layout for indexed_binary, and npz CRC-32s computed from the generator's structure
agree with zlib's (moved from test_generate.py)."""

from __future__ import annotations

import numpy as np
import pytest

from dlio_core.generate import CONTENT_SEED, generate_dataset, sample_array
from dlio_core.storage import open_storage

from .test_generate import make_cfg


def test_large_file_content_has_no_repeated_block_and_does_not_compress():
    """Past one 16 KiB random block, rows are that block XOR a per-row stamp: no 4 KiB block may repeat
    (dedup-safe), within a file or across files, and zlib must gain nothing."""
    import zlib

    a = sample_array((512, 512, 2), "uint8", (CONTENT_SEED, 0, 0))
    b = sample_array((512, 512, 2), "uint8", (CONTENT_SEED, 0, 1))
    blocks = np.concatenate([a.reshape(-1, 4096), b.reshape(-1, 4096)])
    assert len({bytes(r) for r in blocks}) == len(blocks)
    assert len(zlib.compress(a.tobytes(), 9)) > 0.99 * a.nbytes
    assert not np.array_equal(a[..., 0], a[..., 1])


@pytest.mark.parametrize("shape, dtype", [((300, 301, 3), "uint8"), ((5, 7, 2), "int32"), ((64, 64, 2), "bool")])
def test_reused_buffer_and_sample_major_layout(shape, dtype):
    """``out`` changes where the bytes go, never what they are; ``samples_first`` lays sample ``i`` out
    contiguously (what indexed_binary writes) and still returns DLIO's samples-last view."""
    key = (CONTENT_SEED, 1, 4)
    fresh = sample_array(shape, dtype, key)
    buf = np.full(fresh.nbytes + 13, 0xAB, np.uint8)
    reused = sample_array(shape, dtype, key, out=buf)
    assert reused.dtype == np.dtype(dtype) and reused.shape == shape and np.array_equal(reused, fresh)
    too_small = np.zeros(1, np.uint8)  # not big enough: a fresh array, the same content
    assert np.array_equal(sample_array(shape, dtype, key, out=too_small), fresh)
    rows = sample_array(shape, dtype, key, samples_first=True)
    assert rows.shape == shape and rows[..., 1].flags.c_contiguous
    assert np.moveaxis(rows, -1, 0).flags.c_contiguous


def test_indexed_binary_data_file_is_the_samples_back_to_back(tmp_path):
    cfg = make_cfg(tmp_path, format="indexed_binary", num_files_train=1, num_samples_per_file=3,
                   record_length_bytes=40000)
    generate_dataset(cfg, progress=False)
    data = np.fromfile(tmp_path / "train/img_0_of_1.indexed_binary", np.uint8)
    x = sample_array((200, 200, 3), "uint8", (CONTENT_SEED, 0, 0), samples_first=True)
    assert [data[i * 40000:(i + 1) * 40000].tolist() == x[..., i].reshape(-1).tolist() for i in range(3)] == [True] * 3


@pytest.mark.parametrize("compression, dtype", [("none", "uint8"), ("zip", "uint8"), ("none", "int16"), ("none", "float32")])
def test_npz_crc_from_the_generator_is_the_crc_of_the_bytes(tmp_path, compression, dtype):
    """npz members' CRC-32 comes from the generator's structure, not a pass over the bytes: zipfile
    recomputes it from the bytes and must agree, for files of whole rows, partial rows and tails."""
    import zipfile
    import zlib

    cfg = make_cfg(tmp_path, num_files_train=3, num_samples_per_file=3, record_length_bytes=301 * 301,
                   compression=compression, record_element_type=dtype)
    manifest = generate_dataset(cfg, progress=False)
    for path, _ in manifest.train:
        with zipfile.ZipFile(tmp_path / path) as z:
            assert z.testzip() is None
            info = z.getinfo("x.npy")
            assert info.CRC == zlib.crc32(z.read("x.npy"))


def test_content_crc32_matches_zlib_and_a_wrong_one_is_caught(tmp_path):
    import zipfile

    from dlio_core.content import content_crc32
    from dlio_core.formats import npz

    for nbytes in (1, 16384, 16385, 65536 + 8, 3 * 65536, 3 * 65536 + 13, 4096, 7 * 4096, 65536 + 3 * 4096 + 1,
                   362 * 362 * 8, 15 * 65536 + 15 * 4096 + 4095):  # rows, whole 4 KiB pieces, a tail
        a = sample_array((nbytes, 1), "uint8", (CONTENT_SEED, 0, 9))
        assert content_crc32(nbytes, (CONTENT_SEED, 0, 9), 77) == zlib_crc(a, 77)
    st = open_storage(str(tmp_path))
    x = sample_array((300, 300, 2), "uint8", (CONTENT_SEED, 0, 9))
    npz.write_file(st, "bad.npz", x, data_crc32=lambda start: start ^ 1)  # a wrong CRC must not pass
    with zipfile.ZipFile(tmp_path / "bad.npz") as z:
        assert z.testzip() == "x.npy"


def zlib_crc(a, start):
    import zlib

    return zlib.crc32(a.tobytes(), start)


@pytest.mark.parametrize("workload", ["default", "dlrm_parquet_h100", "retinanet_a100", "unet3d_h100"])
def test_manifest_records_the_dataset_section_as_to_dict_has_it(tmp_path, workload):
    """The manifest's ``dataset`` is built from the dataset section alone (``to_dict`` walks every
    section); it must be exactly ``to_dict()["dataset"]``, nested keys included."""
    from dlio_core.config import load_config
    from dlio_core.generate import _dataset_section

    cfg = load_config(workload, [f"++workload.dataset.data_folder={tmp_path}"])
    assert _dataset_section(cfg) == cfg.to_dict()["dataset"]
    from types import SimpleNamespace as NS  # a stand-in config keeps its own to_dict
    assert _dataset_section(NS(dataset=NS(a=1), to_dict=lambda: {"dataset": {"a": 2}})) == {"a": 2}


def test_concatenated_files_do_not_compress_either():
    """Every file is rows of one shared base row XOR per-row stamps: a compressor over several files
    (a tarball, a deduplicating store's stream) must gain nothing from that shared base."""
    import lzma

    files = b"".join(sample_array((256 << 10, 1), "uint8", (CONTENT_SEED, 0, i)).tobytes() for i in range(3))
    assert len(lzma.compress(files)) > 0.99 * len(files)
