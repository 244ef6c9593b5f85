"""Every bundled workload equals its stock source: the parsed values (comments and layout aside) of each
bundled YAML against a copy of the stock file under tests/fixtures/stock/ (argonne DLIO HEAD e1919d7,
DLIO 2.0.0, and mlcommons/storage's configs/dlio/workload for the MLPerf Storage v3 workloads); and
DLIO 2.0.0's stock dlrm.yaml validates, with a warning per key DLIO carries and never reads."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from dlio_core.config import ConfigWarning, bundled_workloads, load_config

STOCK = Path(__file__).resolve().parents[1] / "fixtures" / "stock"
SOURCES = {
    **{p.stem: p for p in sorted((STOCK / "argonne_head").glob("*.yaml"))},
    "megatron_deepspeed": STOCK / "argonne_v2.0.0" / "megatron_deepspeed.yaml",
    **{p.stem: p for p in sorted((STOCK / "mlcommons_storage").glob("*.yaml"))},
}


def _values(source) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return load_config(source).to_dict()


def test_every_bundled_workload_has_a_stock_source():
    assert set(bundled_workloads()) == set(SOURCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_bundled_equals_stock(name):
    assert _values(name) == _values(str(SOURCES[name]))


def test_the_fixed_differences():
    llama = _values("llama_1t")["model"]
    assert llama["transformer"]["num_attention_heads"] == 192 and llama["name"] == "llama_405b"  # HEAD's own name
    llnl = _values("megatron_deepspeed_LLNL")
    assert llnl["model"]["parallelism"]["zero_stage"] == 1 and llnl["train"]["total_training_steps"] == 1000
    assert _values("resnet50_tf")["model"]["type"] == "cnn"
    assert _values("unet3d_h100_s3")["storage"]["storage_options"]["endpoint_url"] == "http://localhost:9020"
    assert _values("dlrm")["dataset"]["num_files_eval"] == 1
    assert _values("dlrm_mi355")["reader"]["batch_size"] == 18432


def test_dlio_200_dlrm_validates_with_warnings_for_keys_dlio_ignores():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = load_config(str(STOCK / "argonne_v2.0.0" / "dlrm.yaml"))
    said = " ".join(str(w.message) for w in caught if issubclass(w.category, ConfigWarning))
    for key in ("workflow.do_eval", "dataset.eval_num_samples_per_file", "train.total_eval_steps",
                "evaluation.steps_between_evals"):
        assert f"{key}: has no effect" in said
    assert cfg.dataset.record_length_bytes == 327680 and cfg.reader.batch_size_eval == 16384


def test_a_key_no_dlio_reads_is_still_an_error(tmp_path):
    from dlio_core.config import ConfigError

    bad = tmp_path / "w.yaml"
    bad.write_text((STOCK / "argonne_v2.0.0" / "dlrm.yaml").read_text() + "\n  do_evaluate: True\n")
    with pytest.raises(ConfigError, match="evaluation.do_evaluate: unknown key"):
        load_config(str(bad))
