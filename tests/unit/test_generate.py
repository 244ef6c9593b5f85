"""Dataset generation: DLIO's names, layout and size draws; reproducible bytes whatever the thread and
rank counts; a manifest that matches the files; dataset_files from the manifest or one listing."""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from types import SimpleNamespace as NS

import numpy as np
import pytest

from dlio_core.formats import FormatError
from dlio_core.generate import DatasetError, DatasetPlan, file_name, generate_dataset
from dlio_core.listing import dataset_files, dataset_storage
from dlio_core.manifest import MANIFEST_NAME, load_manifest
from dlio_core.storage import LocalStorage, open_storage

DEFAULTS = dict(format="npz", num_files_train=8, num_files_eval=0, num_samples_per_file=1, record_length_bytes=4096,
                record_length_bytes_stdev=0, record_length_bytes_resize=0, num_subfolders_train=0,
                num_subfolders_eval=0, file_prefix="img", compression="none", compression_level=4,
                record_dims=(), record_element_type="uint8")


def make_cfg(folder, **dataset):
    """A stand-in for RunConfig with the attributes generation reads (docs/contracts.md, Config)."""
    ds = NS(data_folder=str(folder), **{**DEFAULTS, **dataset})
    storage = NS(storage_type="local_fs", storage_root="./", storage_options={})
    return NS(dataset=ds, storage=storage, to_dict=lambda: {"dataset": dict(vars(ds))})


def tree(root) -> dict[str, str]:
    """relpath -> sha256 of every data file under root (the manifest excluded)."""
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            if rel != MANIFEST_NAME:
                with open(p, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


# --- an independent reference of DLIO's draws (data_generator.py get_dimension + npz/npy generate) ---

def dlio_reference_shapes(record_length, stdev, n_train, n_eval, samples):
    """Per global file, the x shape DLIO HEAD writes: seed(10), then one normal draw of 2*total values."""
    dimension = int(math.sqrt(record_length))
    dimension_stdev = stdev / 2.0 / math.sqrt(record_length)
    total = n_train + (n_eval if n_eval > 0 else 0)
    saved = np.random.get_state()
    try:
        np.random.seed(10)
        if dimension_stdev > 0:
            dim = [max(int(d), 1) for d in np.random.normal(dimension, dimension_stdev, 2 * total)]
        else:
            dim = np.ones(2 * total, dtype=np.int64) * int(dimension)
    finally:
        np.random.set_state(saved)
    return [(int(dim[2 * i]), int(dim[2 * i + 1]), samples) for i in range(total)]


# --- names and layout ----------------------------------------------------------------------------------

def test_file_names_pad_to_the_count():
    assert file_name("img", 7, 16, "npz") == "img_07_of_16.npz"
    assert file_name("img", 7, 168, "npz") == "img_007_of_168.npz"
    assert file_name("part", 0, 9, "npy") == "part_0_of_9.npy"


def test_subfolder_layout_and_names(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=16, num_subfolders_train=2, num_files_eval=3,
                   num_subfolders_eval=0)
    generate_dataset(cfg, progress=False)
    want = {f"train/{i % 2}/img_{i:02d}_of_16.npz" for i in range(16)} | {f"valid/img_{i}_of_3.npz" for i in range(3)}
    assert set(tree(tmp_path / "d")) == want
    assert "train/1/img_07_of_16.npz" in want


def test_subfolder_names_are_padded_like_dlio(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=24, num_subfolders_train=12, num_files_eval=2,
                   num_subfolders_eval=2)
    generate_dataset(cfg, progress=False, threads=2)
    files = set(tree(tmp_path / "d"))
    assert "train/00/img_00_of_24.npz" in files and "train/11/img_23_of_24.npz" in files
    assert "valid/1/img_1_of_2.npz" in files
    assert sorted(os.listdir(tmp_path / "d" / "train")) == [f"{k:02d}" for k in range(12)]


def test_files_open_with_np_load_as_dlio_arrays(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=3, num_samples_per_file=4, record_length_bytes=1000)
    generate_dataset(cfg, progress=False)
    for i in range(3):
        z = np.load(tmp_path / "d" / "train" / f"img_{i}_of_3.npz")
        assert z["x"].shape == (31, 31, 4) and z["x"].dtype == np.uint8  # int(sqrt(1000)) = 31
        assert z["y"].dtype == np.int64 and z["y"].tolist() == [0, 0, 0, 0]
    cfg = make_cfg(tmp_path / "e", format="npy", num_files_train=2, num_samples_per_file=3)
    generate_dataset(cfg, progress=False)
    a = np.load(tmp_path / "e" / "train" / "img_0_of_2.npy")
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8


def test_content_is_incompressible_and_differs_per_file(tmp_path):
    import zlib

    cfg = make_cfg(tmp_path / "d", num_files_train=2, record_length_bytes=65536)
    generate_dataset(cfg, progress=False)
    a = np.load(tmp_path / "d/train/img_0_of_2.npz")["x"]
    b = np.load(tmp_path / "d/train/img_1_of_2.npz")["x"]
    assert not np.array_equal(a, b)
    assert len(zlib.compress(a.tobytes(), 9)) > 0.99 * a.nbytes


# --- sizes as DLIO draws them ------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["npz", "npy"])
def test_size_draws_match_dlio(tmp_path, fmt):
    n_train, n_eval, spf = 7, 3, 2
    length, stdev = 4096 * 4, 8192
    cfg = make_cfg(tmp_path / "d", format=fmt, num_files_train=n_train, num_files_eval=n_eval,
                   num_samples_per_file=spf, record_length_bytes=length, record_length_bytes_stdev=stdev,
                   num_subfolders_train=2)
    state = np.random.get_state()
    m = generate_dataset(cfg, progress=False, threads=3)
    assert all(np.array_equal(a, b) for a, b in zip(state, np.random.get_state()) if isinstance(a, np.ndarray))
    ref = dlio_reference_shapes(length, stdev, n_train, n_eval, spf)
    assert len({s[:2] for s in ref}) > 5  # the draw really varies
    plan = DatasetPlan.from_config(cfg)
    for g, want in enumerate(ref):
        sid, i = plan.locate(g)
        path = tmp_path / "d" / plan.relpath(sid, i)
        arr = np.load(path)
        x = arr["x"] if fmt == "npz" else arr
        assert x.shape == want, (g, path)
    sizes = dict(m.train + m.valid)
    assert len(sizes) == n_train + n_eval


def test_unet3d_like_draws_match_dlio_without_writing():
    # unet3d_h100: 168 files, 146600628 +- 68341808 bytes; check the plan (no 20 GB written).
    cfg = make_cfg("/nonexistent", num_files_train=168, record_length_bytes=146600628,
                   record_length_bytes_stdev=68341808)
    plan = DatasetPlan.from_config(cfg)
    ref = dlio_reference_shapes(146600628, 68341808, 168, 0, 1)
    assert [plan.shape(g) for g in range(168)] == ref


def test_constant_size_without_stdev(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=2, num_files_eval=1, record_length_bytes=146600628)
    plan = DatasetPlan.from_config(cfg)
    assert plan.shape(0) == plan.shape(2) == (12107, 12107, 1)  # 146,579,449 bytes per sample, as DLIO


def test_record_dims_and_element_type(tmp_path):
    cfg = make_cfg(tmp_path / "d", format="npy", num_files_train=2, num_samples_per_file=3, record_dims=(4, 5, 6),
                   record_element_type="float32")
    m = generate_dataset(cfg, progress=False)
    a = np.load(tmp_path / "d/train/img_0_of_2.npy")
    assert a.shape == (4, 5, 6, 3) and a.dtype == np.float32 and 0 <= a.min() and a.max() < 1
    assert m.train[0][1] == os.path.getsize(tmp_path / "d/train/img_0_of_2.npy")
    with pytest.raises(DatasetError, match="record_dims.*record_length_bytes_stdev"):
        DatasetPlan.from_config(make_cfg(tmp_path, record_dims=(4, 4), record_length_bytes_stdev=10))


# --- manifest ------------------------------------------------------------------------------------------

def test_manifest_sizes_equal_stat(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=9, num_files_eval=4, num_subfolders_train=3,
                   record_length_bytes=5000, record_length_bytes_stdev=3000, num_samples_per_file=2)
    m = generate_dataset(cfg, progress=False)
    with open(tmp_path / "d" / MANIFEST_NAME) as f:
        doc = json.load(f)
    assert doc["version"] == 1 and doc["format"] == "npz"
    assert doc["dataset"]["num_files_train"] == 9 and doc["dataset"]["record_length_bytes"] == 5000
    assert [tuple(e) for e in doc["train"]] == list(m.train) and [tuple(e) for e in doc["valid"]] == list(m.valid)
    for rel, size in m.train + m.valid:
        assert os.stat(tmp_path / "d" / rel).st_size == size
    assert len(m.train) == 9 and len(m.valid) == 4
    assert [os.path.basename(p) for p, _ in m.train] == sorted(os.path.basename(p) for p, _ in m.train)
    assert load_manifest(open_storage(str(tmp_path / "d"))) == m


def test_rank_zero_writes_the_whole_manifest_alone(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=6, record_length_bytes_stdev=2000)
    m0 = generate_dataset(cfg, rank=0, world=3, progress=False)
    on_disk = set(tree(tmp_path / "d"))
    assert on_disk == {"train/img_0_of_6.npz", "train/img_3_of_6.npz"}  # rank 0's share only
    assert len(load_manifest(open_storage(str(tmp_path / "d"))).train) == 6
    generate_dataset(cfg, rank=1, world=3, progress=False)
    generate_dataset(cfg, rank=2, world=3, progress=False)
    for rel, size in m0.train:
        assert os.stat(tmp_path / "d" / rel).st_size == size


def test_compressed_npz(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=3, compression="zip")
    m = generate_dataset(cfg, progress=False)  # one rank: the sizes it wrote are the manifest's
    for rel, size in m.train:
        assert os.stat(tmp_path / "d" / rel).st_size == size
        assert np.load(tmp_path / "d" / rel)["x"].shape == (64, 64, 1)
    cfg2 = make_cfg(tmp_path / "e", num_files_train=4, compression="zip")
    m2 = generate_dataset(cfg2, rank=0, world=2, progress=False)
    assert not (tmp_path / "e" / MANIFEST_NAME).exists() and -1 in dict(m2.train).values()


def test_compression_dlio_ignores_is_warned_and_ignored(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=1, compression="gzip")
    with pytest.warns(UserWarning, match="compression=gzip has no effect on npz"):
        m = generate_dataset(cfg, progress=False)
    assert m.train[0][1] == 4594


# --- reproducibility -----------------------------------------------------------------------------------

def test_rerun_and_thread_count_give_identical_bytes(tmp_path):
    kw = dict(num_files_train=12, num_files_eval=3, num_subfolders_train=2, record_length_bytes_stdev=3000,
              num_samples_per_file=2)
    generate_dataset(make_cfg(tmp_path / "t1", **kw), threads=1, progress=False)
    generate_dataset(make_cfg(tmp_path / "t4", **kw), threads=4, progress=False)
    generate_dataset(make_cfg(tmp_path / "t4", **kw), threads=4, progress=False)  # rerun in place
    a, b = tree(tmp_path / "t1"), tree(tmp_path / "t4")
    assert a == b and len(a) == 15
    with open(tmp_path / "t1" / MANIFEST_NAME) as f1, open(tmp_path / "t4" / MANIFEST_NAME) as f4:
        j1, j4 = json.load(f1), json.load(f4)
    j1["dataset"].pop("data_folder"), j4["dataset"].pop("data_folder")
    assert j1 == j4


def test_rank_count_does_not_change_bytes(tmp_path):
    kw = dict(num_files_train=7, num_files_eval=2, record_length_bytes_stdev=1000, format="npy")
    generate_dataset(make_cfg(tmp_path / "w1", **kw), progress=False)
    for r in range(3):
        generate_dataset(make_cfg(tmp_path / "w3", **kw), rank=r, world=3, threads=2, progress=False)
    assert tree(tmp_path / "w1") == tree(tmp_path / "w3")


def test_bad_rank_world_threads(tmp_path):
    cfg = make_cfg(tmp_path / "d")
    for kw in (dict(rank=2, world=2), dict(rank=-1, world=1), dict(world=0)):
        with pytest.raises(ValueError, match="rank"):
            generate_dataset(cfg, progress=False, **kw)
    with pytest.raises(ValueError, match="threads"):
        generate_dataset(cfg, progress=False, threads=0)


def test_unsupported_format_is_clear(tmp_path):
    with pytest.raises(FormatError, match="'arrow'"):  # the fork's Arrow IPC format (an open PR there)
        generate_dataset(make_cfg(tmp_path / "d", format="arrow"), progress=False)


def test_no_progress_output_off_a_terminal(tmp_path, capsys):
    generate_dataset(make_cfg(tmp_path / "d", num_files_train=2), progress=True)
    assert capsys.readouterr().err == ""


# --- dataset_files -----------------------------------------------------------------------------------------

def test_dataset_files_uses_the_manifest_without_listing(tmp_path, monkeypatch):
    cfg = make_cfg(tmp_path / "d", num_files_train=8, num_files_eval=2, num_subfolders_train=2)
    m = generate_dataset(cfg, progress=False)
    st = dataset_storage(cfg)

    def no_listing(*a, **k):
        raise AssertionError("listed although the manifest covers the dataset")

    monkeypatch.setattr(LocalStorage, "list_files", no_listing)
    assert dataset_files(cfg, st, "train") == list(m.train)
    assert dataset_files(cfg, st, "eval") == list(m.valid)
    cfg.dataset.num_files_train = 5
    assert dataset_files(cfg, st, "train") == list(m.train[:5])


def test_dataset_files_lists_once_in_dlio_order_without_manifest(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=12, num_subfolders_train=3)
    m = generate_dataset(cfg, progress=False)
    os.remove(tmp_path / "d" / MANIFEST_NAME)  # as if DLIO had generated it
    st = dataset_storage(cfg)
    got = dataset_files(cfg, st, "train")
    # DLIO: basenames sorted across subfolders (img_00 in 0/, img_01 in 1/, ...)
    assert [os.path.basename(p) for p, _ in got] == [f"img_{i:02d}_of_12.npz" for i in range(12)]
    assert got == list(m.train)
    cfg.dataset.num_files_train = 4
    assert dataset_files(cfg, st, "train") == list(m.train[:4])
    assert dataset_files(cfg, st, "valid") == []  # num_files_eval = 0


def test_too_few_files_say_how_many_where_and_how_to_fix(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=4)
    generate_dataset(cfg, progress=False)
    cfg.dataset.num_files_train = 10
    with pytest.raises(DatasetError) as ei:
        dataset_files(cfg, dataset_storage(cfg), "train")
    msg = str(ei.value)
    assert "found 4 train file(s)" in msg and str(tmp_path / "d") in msg and "num_files_train is 10" in msg
    assert "dl-driver generate" in msg and "++workload.workflow.generate_data=True" in msg
    cfg.dataset.num_files_eval = 2
    with pytest.raises(DatasetError, match="found 0 valid.*num_files_eval is 2"):
        dataset_files(cfg, dataset_storage(cfg), "valid")


def test_stale_manifest_falls_back_to_listing(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=3)
    generate_dataset(cfg, progress=False)
    with open(tmp_path / "d/train/img_2_of_3.npz", "ab") as f:
        f.write(b"rewritten by another tool")
    with pytest.warns(UserWarning, match="does not match"):
        got = dataset_files(cfg, dataset_storage(cfg), "train")
    assert got[2][1] == 4594 + len(b"rewritten by another tool")


def test_corrupt_manifest_is_ignored_with_a_warning(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=2)
    generate_dataset(cfg, progress=False)
    (tmp_path / "d" / MANIFEST_NAME).write_text("{not json")
    with pytest.warns(UserWarning, match="not a dl-driver manifest"):
        assert len(dataset_files(cfg, dataset_storage(cfg), "train")) == 2


def test_manifest_for_another_format_is_not_used(tmp_path):
    cfg = make_cfg(tmp_path / "d", num_files_train=2)
    generate_dataset(cfg, progress=False)
    cfg.dataset.format = "npy"
    with pytest.raises(DatasetError, match=r"found 0 train file\(s\) \(\*\.npy\)"):
        dataset_files(cfg, dataset_storage(cfg), "train")


def test_dataset_storage_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = make_cfg("data/unet3d/")
    assert dataset_storage(cfg).url == f"file://{tmp_path}/data/unet3d"
    cfg.storage.storage_root = str(tmp_path / "root")
    assert dataset_storage(cfg).url == f"file://{tmp_path}/root/data/unet3d"
    cfg.dataset.data_folder = f"file://{tmp_path}/abs"
    assert dataset_storage(cfg).url == f"file://{tmp_path}/abs"
    cfg.dataset.data_folder = "s3://bucket/unet3d"
    assert dataset_storage(cfg).url == "s3://bucket/unet3d"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = make_cfg(tmp_path / "x")
        cfg.storage.storage_options = {"region": "us-east-1"}  # DLIO S3 options: not for local files
        dataset_storage(cfg)


def test_default_workload_through_the_real_config(tmp_path):
    from dlio_core.config import load_config

    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}/d"])
    m = generate_dataset(cfg, progress=False)
    assert len(m.train) == cfg.dataset.num_files_train and len(m.valid) == cfg.dataset.num_files_eval
    assert m.train[1] == ("train/1/img_01_of_64.npz", 4594) and m.valid[-1][0] == "valid/1/img_7_of_8.npz"
    for rel, size in m.train + m.valid:
        assert os.stat(tmp_path / "d" / rel).st_size == size
    assert dataset_files(cfg, dataset_storage(cfg), "train") == list(m.train)


def test_manifest_json_lines_are_what_json_dumps_writes_and_read_back():
    import json

    from dlio_core.manifest import Manifest

    odd = (('train/a "q" \\ b.npz', 1), ("train/é\u2603.npz", 2**40), ("train/\x01x.npz", 0))
    m = Manifest(format="npz", train=odd, valid=(("valid/v.npz", -1),), dataset={"k": (1, 2)})
    text = m.to_json()
    lines = [line.strip().rstrip(",") for line in text.splitlines()]
    assert all(json.dumps([p, s]) in lines for p, s in odd)
    assert Manifest.from_json(text) == m
