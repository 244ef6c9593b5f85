"""Checks across sections at load (the error names the key and where the value came from), the keys
with no effect warned about, and the custom loader refused."""

from __future__ import annotations

import warnings

import pytest

from dlio_core.config import ConfigError, ConfigWarning, RunConfig, load_config
from dlio_core.config.checks import ALWAYS_INERT


def _load(*overrides: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return load_config("default", list(overrides))


def test_training_without_training_files_names_the_key():
    with pytest.raises(ConfigError) as ei:
        _load("++workload.dataset.num_files_train=0")
    assert ei.value.key == "dataset.num_files_train"
    assert str(ei.value).startswith("dataset.num_files_train: 0 is not allowed while workflow.train is True")
    assert "from override ++workload.dataset.num_files_train=0" in str(ei.value)
    # generation or checkpoints alone need no training files
    assert _load("++workload.dataset.num_files_train=0", "++workload.workflow.train=False").dataset.num_files_train == 0


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "x\\y", "a\0b"])
def test_model_name_cannot_leave_the_output_folder(name):
    with pytest.raises(ConfigError) as ei:
        RunConfig(model={"name": name})
    assert ei.value.key == "model.name" and "hydra_log/{model.name}" in str(ei.value)


def test_model_names_of_the_bundled_workloads_stay_allowed():
    assert RunConfig(model={"name": "llama_70b.v2-x"}).model.name == "llama_70b.v2-x"


def test_custom_loader_is_refused_at_load():
    with pytest.raises(ConfigError, match=r"reader.data_loader: custom is not supported.*data_loader_classname"):
        _load("++workload.reader.data_loader=custom")


@pytest.mark.parametrize("loader", ["tensorflow", "native_dali"])
def test_access_order_refused_for_loaders_that_shard_themselves(loader):
    with pytest.raises(ConfigError) as ei:
        _load(f"++workload.reader.data_loader={loader}", "++workload.output.record_access_order=True")
    assert ei.value.key == "output.record_access_order" and "shards and shuffles on its own" in str(ei.value)


@pytest.mark.parametrize("override, key", [
    ("++workload.reader.read_type=memory", "reader.read_type"),
    ("++workload.dataset.generation_buffer_size=1024", "dataset.generation_buffer_size"),
    ("++workload.checkpoint.rank_sync=True", "checkpoint.rank_sync"),
    ("++workload.reader.dont_use_mmap=True", "reader.dont_use_mmap"),
    ("++workload.reader.shuffle_size=64", "reader.shuffle_size"),
    ("++workload.reader.transfer_size=4096", "reader.transfer_size"),
    ("++workload.reader.computation_threads=4", "reader.computation_threads"),
])
def test_keys_with_no_effect_warn(override, key):
    with pytest.warns(ConfigWarning, match=rf"{key}: has no effect in dl-driver") as record:
        cfg = load_config("default", ["++workload.reader.data_loader=native", override])
    assert any(w.startswith(f"{key}: has no effect") for w in cfg.warnings)
    assert len(record) == 1  # one warning, the key's own


@pytest.mark.parametrize("loader, override", [
    ("tensorflow", "++workload.reader.computation_threads=4"),
    ("tensorflow", "++workload.reader.transfer_size=4096"),
    ("tensorflow", "++workload.reader.shuffle_size=64"),
    ("native_dali", "++workload.reader.shuffle_size=64"),
    ("dali", "++workload.reader.dont_use_mmap=True"),
    ("native_dali", "++workload.reader.dont_use_mmap=True"),
])
def test_keys_used_by_the_chosen_loader_do_not_warn(loader, override):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        cfg = load_config("default", [f"++workload.reader.data_loader={loader}", override])
    assert cfg.warnings == ()


def test_always_inert_keys_are_not_read_anywhere():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    for key in ALWAYS_INERT:
        attr = key.split(".")[-1]
        users = [p for pkg in ("dlio_core", "dlio_torch", "dlio_tf", "dlio_jax") for p in (root / pkg).rglob("*.py")
                 if "config" not in p.parts and re.search(rf"\.{attr}\b", p.read_text())]
        assert not users, f"{key} is read by {users}: it is not inert"
