"""Key handling: both DLIO dialects, last-writer-wins, unknown keys, types and ranges, no-effect warnings."""

from __future__ import annotations

import warnings

import pytest

from dlio_core.config import ConfigError, ConfigWarning, RunConfig, Shuffle, load_config
from dlio_core.config.keys import ALIASES, NO_EFFECT, canonical_keys, key_table, resolve, suggest


def quiet(source, overrides=()):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)  # these must not warn
        return load_config(source, overrides)


@pytest.mark.parametrize("old, new, value", [
    ("dataset.record_length", "dataset.record_length_bytes", 4096),
    ("dataset.record_length_stdev", "dataset.record_length_bytes_stdev", 17),
    ("dataset.record_length_resize", "dataset.record_length_bytes_resize", 1024),
    ("model.model_size", "model.model_size_bytes", 12345),
    ("checkpoint.model_size", "model.model_size_bytes", 12345),
    ("checkpoint.num_layers", "model.num_layers", 44),
    ("checkpoint.tensor_parallelism", "model.parallelism.tensor", 4),
    ("checkpoint.pipeline_parallelism", "model.parallelism.pipeline", 8),
    ("data_reader.batch_size", "reader.batch_size", 9),
])
def test_both_spellings_are_one_key(old, new, value):
    def nested(path, v):
        out = v
        for part in reversed(path.split(".")):
            out = {part: out}
        return out

    by_old = quiet(nested(old, value))
    by_new = quiet(nested(new, value))
    assert by_old == by_new
    assert by_new.get(new) == value
    assert by_new.get(old) == value  # get() accepts either spelling
    # an override in the other spelling wins over the file, both ways round
    assert quiet(nested(old, value), [f"++workload.{new}={value + 1}"]).get(new) == value + 1
    assert quiet(nested(new, value), [f"++workload.{old}={value + 2}"]).get(new) == value + 2


def test_top_level_model_name_string():
    assert quiet({"model": "bert"}).model.name == "bert"
    assert quiet("unet3d_h100", ["++workload.model=other"]).model.name == "other"


def test_last_override_wins_and_beats_file():
    cfg = quiet({"reader": {"batch_size": 2}}, ["reader.batch_size=3", "++workload.data_reader.batch_size=5"])
    assert cfg.reader.batch_size == 5
    assert cfg.overrides == ("reader.batch_size=3", "++workload.data_reader.batch_size=5")


def test_two_spellings_in_one_file_warn_and_later_wins():
    with pytest.warns(ConfigWarning, match="same key"):
        cfg = load_config({"dataset": {"record_length": 5, "record_length_bytes": 7}})
    assert cfg.dataset.record_length_bytes == 7
    assert any("same key" in w for w in cfg.warnings)


@pytest.mark.parametrize("bad, hint", [
    ({"reader": {"batch_sise": 1}}, "reader.batch_size"),
    ({"readr": {"batch_size": 1}}, "reader"),
    ({"reader": {"computation_time": 1}}, "train.computation_time"),
    ({"dataset": {"record_lenght": 1}}, "dataset.record_length_bytes"),
    ({"model": {"parallelism": {"tensr": 2}}}, "model.parallelism.tensor"),
    ({"train": {"epoch": 2}}, "train.epochs"),
])
def test_unknown_key_names_path_and_suggestion(bad, hint):
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    message = str(err.value)
    assert "unknown key" in message and f"did you mean {hint}?" in message
    assert "\n" not in message


def test_unknown_key_in_override_names_the_override():
    with pytest.raises(ConfigError, match=r"reader\.batch_sise: unknown key.*did you mean reader\.batch_size\?.*"
                                          r"from override \+\+workload\.reader\.batch_sise=8"):
        load_config("default", ["++workload.reader.batch_sise=8"])


@pytest.mark.parametrize("override, message", [
    ("reader.batch_size=-3", "reader.batch_size: -3 is not allowed; expected an integer >= 1"),
    ("reader.batch_size=abc", "reader.batch_size: 'abc' is not allowed; expected an integer >= 1"),
    ("reader.batch_size=2.5", "reader.batch_size: 2.5 is not allowed"),
    ("workflow.train=maybe", "workflow.train: 'maybe' is not allowed; expected True or False"),
    ("dataset.format=npzz", "did you mean npz?"),
    ("reader.file_shuffle=sometimes", "expected one of off, seed, random"),
    ("metric.au=90", "metric.au: 90 is not allowed; expected a number in [0.0, 1.0]"),
    ("train.computation_time=-1", "train.computation_time: -1 is not allowed"),
    ("train.seed=-5", "train.seed: -5 is not allowed"),
    ("checkpoint.steps_between_checkpoints=0", "expected -1 or an integer >= 1"),
    ("model.parallelism.zero_stage=4", "expected an integer in [0, 3]"),
    ("dataset.record_element_type=notatype", "numpy dtype"),
    ("storage.storage_options=5", "storage.storage_options: 5 is not allowed"),
    ("reader=5", "reader: 5 is not allowed; expected a mapping"),
])
def test_wrong_type_or_range(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("default", [override])
    assert message in str(err.value)
    assert f"from override {override}" in str(err.value)


def test_value_errors_name_the_file(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("reader:\n  batch_size: 0\n")
    with pytest.raises(ConfigError, match=rf"reader\.batch_size: 0 is not allowed.*\(in {path}\)"):
        load_config(str(path))


def test_secret_values_never_in_errors():
    with pytest.raises(ConfigError) as err:
        load_config({"storage": {"storage_root": {"password": "hunter2"}}})
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize("override, key", [
    ("workflow.debug=True", "workflow.debug"),
    ("reader.file_access=shared", "reader.file_access"),
    ("reader.data_loader_classname=my.Loader", "reader.data_loader_classname"),
    ("reader.data_loader_sampler=index", "reader.data_loader_sampler"),
    ("checkpoint.type=all_ranks", "checkpoint.type"),
    ("checkpoint.checkpoint_mechanism_classname=a.B", "checkpoint.checkpoint_mechanism_classname"),
    ("workflow.query=checkpoint.fsync", "workflow.query"),
    ("checkpoint.ksm={madv_mergeable_id: 12}", "checkpoint.ksm"),
    ("dataset.enable_chunking=True", "dataset.enable_chunking"),
    ("dataset.compression_level=9", "dataset.compression_level"),
])
def test_no_effect_keys_warn(override, key):
    with pytest.warns(ConfigWarning, match=rf"{key}: has no effect in dl-driver"):
        cfg = load_config("default", [override])
    assert any(w.startswith(f"{key}: has no effect") for w in cfg.warnings)


def test_no_effect_keys_at_default_do_not_warn():
    quiet({"workflow": {"debug": False}, "reader": {"file_access": "multi"}})
    quiet({"dataset": {"format": "hdf5", "enable_chunking": True, "chunk_size": 4}})
    quiet({"dataset": {"compression": "gzip", "compression_level": 9}})


def test_profiler_warning_only_when_profiling():
    quiet({"profiling": {"profiler": "darshan"}})
    with pytest.warns(ConfigWarning, match="darshan"):
        load_config({"workflow": {"profiling": True}, "profiling": {"profiler": "darshan"}})


def test_shuffle_booleans_and_truthiness():
    cfg = quiet({"reader": {"file_shuffle": True, "sample_shuffle": False}})
    assert cfg.reader.file_shuffle is Shuffle.SEED and cfg.reader.sample_shuffle is Shuffle.OFF
    assert cfg.reader.file_shuffle and not cfg.reader.sample_shuffle
    assert quiet({"reader": {"file_shuffle": "Random"}}).reader.file_shuffle == "random"


def test_storage_options_pass_through_and_merge():
    cfg = quiet({"storage": {"storage_options": {"endpoint_url": "http://h", "any_key": [1, 2]}}},
                ["storage.storage_options.prefetch_window=8", "++workload.storage.storage_library=s3dlio"])
    assert dict(cfg.storage.storage_options) == {"endpoint_url": "http://h", "any_key": (1, 2),
                                                  "prefetch_window": 8, "storage_library": "s3dlio"}
    with pytest.raises(TypeError):
        cfg.storage.storage_options["x"] = 1  # read-only


def test_output_metric_keys_live_under_output_metric():
    cfg = quiet({"output": {"metric": {"exclude_start_steps": 3, "exclude_end_steps": 2}}})
    assert (cfg.output.exclude_start_steps, cfg.output.exclude_end_steps) == (3, 2)
    assert cfg.to_dict()["output"]["metric"] == {"exclude_start_steps": 3, "exclude_end_steps": 2}
    assert cfg.get("output.metric.exclude_start_steps") == cfg.get("output.exclude_start_steps") == 3
    with pytest.raises(ConfigError, match="did you mean output.metric.exclude_start_steps"):
        load_config({"output": {"exclude_start_steps": 3}})


def test_extensions():
    cfg = quiet({"train": {"computation_device": "gpu"}, "output": {"record_access_order": True},
                 "reader": {"data_loader": "native"}, "framework": "jax"})
    assert cfg.train.computation_device == "gpu" and cfg.output.record_access_order
    assert cfg.reader.data_loader == "native" and cfg.framework == "jax"
    defaults = RunConfig()
    assert defaults.train.computation_device == "cpu" and defaults.output.record_access_order is False
    assert defaults.reader.data_loader == "tensorflow" and defaults.framework == "tensorflow"  # DLIO's code defaults


def test_dlio_code_defaults():
    cfg = RunConfig()
    assert cfg.dataset.num_files_train == 8 and cfg.dataset.record_length_bytes == 65536
    assert cfg.reader.prefetch_size == 2 and cfg.reader.shuffle_size == 1024
    assert cfg.model.model_size_bytes == 10240 and cfg.model.transformer.ffn_hidden_size == 8192
    assert cfg.checkpoint.time_between_checkpoints.mean == -1 and cfg.checkpoint.steps_between_checkpoints == -1
    assert cfg.output.folder is None and cfg.output.log_file == "dlio.log"
    assert cfg.metric.au == 0.90 and cfg.profiling.profiler == "iostat"


def test_key_table_covers_aliases_and_no_effect():
    rows = {r["key"]: r for r in key_table()}
    assert set(ALIASES) <= set(rows) and set(NO_EFFECT) <= set(rows)
    assert rows["dataset.record_length"]["note"].startswith("= dataset.record_length_bytes")
    assert all(resolve(k).kind in ("leaf", "noeffect") for k in canonical_keys())
    assert suggest("reader.batch_sise") == "reader.batch_size"


def test_section_objects_validate_directly():
    from dlio_core.config import ReaderConfig

    assert ReaderConfig(batch_size="8").batch_size == 8
    with pytest.raises(ConfigError, match=r"^reader\.batch_size: -3 is not allowed; expected an integer >= 1$"):
        ReaderConfig(batch_size=-3)
    with pytest.raises(ConfigError, match="reader.nope: unknown key"):
        RunConfig(reader={"nope": 1})


def test_keys_we_do_not_act_on_warn_instead_of_being_ignored():
    """keep_files: False and a profiler are DLIO features dl-driver does not run: say so, don't ignore."""
    from dlio_core.config import load_config

    cfg = load_config("default", ["++workload.dataset.keep_files=False", "++workload.workflow.profiling=True"])
    text = " | ".join(cfg.warnings)
    assert "dataset.keep_files" in text and "profiling.profiler" in text
    assert not load_config("default").warnings  # the stock default (profiling off, keep_files on) is quiet
