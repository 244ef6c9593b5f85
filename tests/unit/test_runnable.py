"""``dlio_core.config.runnable``: a workload this build cannot run is refused before anything starts, by
validate, run and generate alike (exit 2, one line naming the key, format or loader and the fix); what
can run passes, every bundled workload included; DLIO 2.0.0's stock dlrm.yaml validates with warnings."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

from dlio_core.cli import main
from dlio_core.config import ConfigWarning, bundled_workloads, load_config
from dlio_core.config.runnable import NotRunnable, blockers, check_runnable, module_installed, notes

STOCK_200_DLRM = Path(__file__).parents[1] / "fixtures" / "stock" / "argonne_v2.0.0" / "dlrm.yaml"


def _cfg(*overrides: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return load_config("default", ["++workload.reader.data_loader=native", *overrides])


def _without(*modules: str):
    return lambda module: module not in modules


def everything(module: str) -> bool:
    return True


@pytest.mark.parametrize("name", bundled_workloads())
def test_every_bundled_workload_is_runnable_where_its_libraries_are(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        cfg = load_config(name)
    assert blockers(cfg, installed=everything) == []


@pytest.mark.parametrize("loader, module, extra", [
    ("pytorch", "torch", "torch"), ("tensorflow", "tensorflow", "tf"), ("jax", "jax", "jax"),
    ("dali", "nvidia.dali", "dali"), ("native_dali", "nvidia.dali", "dali")])
def test_a_loader_whose_framework_is_missing_is_named_with_its_extra(loader, module, extra):
    cfg = _cfg(f"++workload.reader.data_loader={loader}", "++workload.dataset.format=npy")
    found = blockers(cfg, installed=_without(module))
    assert found == [f"reader.data_loader: {loader} needs {module}, which is not installed; run: pip install "
                     f"'dl-driver[{extra}]' (or use ++workload.reader.data_loader=native, the framework-free engine)"]
    assert blockers(cfg, installed=_without(module), train=False) == []  # no training, no loader


def test_native_dali_refuses_formats_and_stores_it_cannot_read():
    npz_on_gcs = _cfg("++workload.reader.data_loader=native_dali", "++workload.dataset.data_folder=gs://b/d")
    found = blockers(npz_on_gcs, installed=everything)
    assert len(found) == 2
    assert "native_dali reads dataset.format npy or tfrecord, not npz" in found[0] and "data_loader=dali" in found[0]
    assert "native_dali reads local files and s3:// only, not gs://" in found[1]
    assert blockers(_cfg("++workload.reader.data_loader=native_dali", "++workload.dataset.format=tfrecord"),
                    installed=everything) == []


@pytest.mark.parametrize("decode", [False, True])
def test_the_tensorflow_loader_is_refused_no_format(decode):
    """It reads every format in both modes (tests/integration/test_tf_loader_formats.py runs each against
    the native engine), so validate refuses none of them."""
    from dlio_core.formats import supported_formats

    for fmt in supported_formats():
        cfg = _cfg("++workload.reader.data_loader=tensorflow", f"++workload.dataset.format={fmt}",
                   f"++workload.reader.decode={decode}", "++workload.dataset.num_samples_per_file=1")
        assert blockers(cfg, installed=everything) == [], fmt


@pytest.mark.parametrize("fmt, module, extra", [("parquet", "pyarrow", "formats"), ("hdf5", "h5py", "hdf5")])
def test_a_format_whose_library_is_missing_is_named(fmt, module, extra):
    found = blockers(_cfg(f"++workload.dataset.format={fmt}"), installed=_without(module))
    assert found == [f"dataset.format {fmt} needs {module}, which is not installed; run: pip install 'dl-driver[{extra}]'"]
    # the checkpoint-only workloads never touch their dataset
    assert blockers(_cfg(f"++workload.dataset.format={fmt}", "++workload.workflow.train=False",
                         "++workload.workflow.checkpoint=True"), installed=_without(module)) == []


def test_images_need_pillow_only_to_encode_or_decode():
    no_pil = _without("PIL")
    encoded = _cfg("++workload.dataset.format=jpeg", "++workload.workflow.generate_data=True")
    assert "dataset.format jpeg to encode images (dataset.image_encoding: encoded) needs Pillow" in \
        blockers(encoded, installed=no_pil)[0]
    raw = _cfg("++workload.dataset.format=png", "++workload.workflow.generate_data=True",
               "++workload.dataset.image_encoding=raw")
    assert blockers(raw, installed=no_pil) == []  # the fork's raw bytes, counted, never decoded
    decoded = load_config(raw, ["++workload.reader.decode=True"])
    assert "to decode (reader.decode: true) needs Pillow" in blockers(decoded, installed=no_pil)[0]


def test_the_format_s_own_refusals_come_first_hand():
    found = blockers(_cfg("++workload.dataset.format=jpeg", "++workload.dataset.num_samples_per_file=2"),
                     installed=everything)
    assert found == ["dataset.num_samples_per_file: 2, but jpeg files hold one sample each (as DLIO writes them); "
                     "set it to 1"]


def test_object_stores_need_their_client_for_data_and_checkpoints():
    on_s3 = _cfg("++workload.dataset.data_folder=s3://bucket/data")
    assert blockers(on_s3, installed=_without("s3fs")) == [
        "dataset.data_folder (s3://) needs s3fs, which is not installed; run: pip install 'dl-driver[s3]'"]
    s3dlio = _cfg("++workload.storage.storage_type=s3dlio", "++workload.storage.storage_root=s3://bucket/prefix/")
    assert "needs s3fs" in blockers(s3dlio, installed=_without("s3fs"))[0]
    azure_checkpoints = _cfg("++workload.workflow.checkpoint=True",
                             "++workload.checkpoint.checkpoint_folder=az://container/ckpt")
    assert blockers(azure_checkpoints, installed=_without("adlfs")) == [
        "checkpoint.checkpoint_folder (az://) needs adlfs, which is not installed; run: pip install 'dl-driver[azure]'"]


def test_checkpoints_need_their_mechanism_s_framework_and_a_zstd_codec():
    tf = _cfg("++workload.workflow.checkpoint=True", "++workload.framework=tensorflow")
    found = blockers(tf, installed=_without("tensorflow"))
    assert found == ["checkpoint mechanism tf_save (framework: tensorflow) needs tensorflow, which is not installed; "
                     "run: pip install 'dl-driver[tf]' (or ++workload.checkpoint.checkpoint_mechanism=stream)"]
    assert blockers(load_config(tf, ["++workload.checkpoint.checkpoint_mechanism=stream"]),
                    installed=_without("tensorflow")) == []
    zstd = _cfg("++workload.workflow.checkpoint=True", "++workload.checkpoint.compression=zstd")
    assert blockers(zstd, installed=_without("zstandard")) == []  # pyarrow's codec serves
    assert "checkpoint.compression: zstd needs zstandard" in blockers(zstd, installed=_without("zstandard", "pyarrow"))[0]


def test_check_runnable_names_every_reason_on_one_line():
    cfg = _cfg("++workload.reader.data_loader=pytorch", "++workload.dataset.format=parquet")
    with pytest.raises(NotRunnable) as caught:
        check_runnable(cfg, installed=_without("torch", "pyarrow"))
    text = str(caught.value)
    assert "\n" not in text and text.startswith("this build cannot run workload default: reader.data_loader: pytorch")
    assert "; also dataset.format parquet needs pyarrow" in text
    check_runnable(cfg, installed=everything)


def test_module_installed_finds_without_importing():
    assert module_installed("json") and not module_installed("no_such_module_dl_driver")
    assert not module_installed("no_such_parent.child")


# --- through the CLI: exit 2, one line, nothing written ------------------------------------------------

def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("command", ["validate", "run", "generate"])
def test_cli_refuses_a_combination_this_build_cannot_run(command, tmp_path, capsys):
    args = ["default", f"++workload.dataset.data_folder={tmp_path}/data", f"++hydra.run.dir={tmp_path}/out",
            "++workload.workflow.generate_data=True", "++workload.dataset.format=png",
            "++workload.dataset.num_samples_per_file=4"]
    rc, out, err = _cli(capsys, command, *args)
    assert rc == 2 and out == ""
    assert err.strip().count("\n") == 0
    assert err.startswith("dl-driver: error: this build cannot run workload default: dataset.num_samples_per_file: 4, "
                          "but png files hold one sample each")
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()


def test_cli_refuses_a_missing_library_by_name(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # this process cannot import pyarrow now
    rc, _, err = _cli(capsys, "validate", "dlrm_b200", f"++workload.dataset.data_folder={tmp_path}/data")
    assert rc == 2
    assert err.strip() == ("dl-driver: error: this build cannot run workload dlrm_b200: dataset.format parquet needs "
                           "pyarrow, which is not installed; run: pip install 'dl-driver[formats]'")


def test_stock_dlio_200_dlrm_validates_with_warnings_for_the_keys_dlio_ignores(capsys):
    pytest.importorskip("torch", reason="dlrm.yaml names the pytorch loader (pip install 'dl-driver[torch]')")
    rc, out, err = _cli(capsys, "validate", str(STOCK_200_DLRM))
    assert rc == 0 and "format: indexed_binary" in out
    warned = [line for line in err.splitlines() if line.startswith("warning: ")]
    for key in ("workflow.do_eval", "dataset.eval_num_samples_per_file", "train.total_eval_steps",
                "evaluation.steps_between_evals"):
        assert any(line.startswith(f"warning: {key}: has no effect") for line in warned), key


def test_validate_says_parquet_ignores_record_length_bytes(capsys):
    pytest.importorskip("torch", reason="the parquet workloads name the pytorch loader")
    rc, _, err = _cli(capsys, "validate", "parquet_selective_read_example", "++workload.dataset.record_length_bytes=4096")
    assert rc == 0
    assert ("warning: dataset.record_length_bytes=4096 is ignored for parquet with dataset.parquet.columns: a row "
            "holds the columns, 3844 bytes") in err
    assert notes(load_config("dlrm_b200")) == []  # its 761 B is what the 200 columns hold: nothing to say
