"""Sources (file, bundled name, --config-dir, dict, RunConfig), command lines, overrides and hydra keys."""

from __future__ import annotations

import pickle
import warnings

import pytest

from dlio_core.config import (
    CommandLine, ConfigError, ConfigWarning, RunConfig, load_config, parse_command_line, parse_override,
)


@pytest.fixture(autouse=True)
def _no_config_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        yield


# ----------------------------------------------------------------------------- command lines
@pytest.mark.parametrize("argv, expected", [
    (["workload=unet3d_h100"], CommandLine("unet3d_h100", (), None)),
    (["unet3d_h100"], CommandLine("unet3d_h100", (), None)),
    (["cfg/my.yaml", "reader.batch_size=2"], CommandLine("cfg/my.yaml", ("reader.batch_size=2",), None)),
    (["--config-dir", "D", "workload=x"], CommandLine("x", (), "D")),
    (["--config-dir=D", "workload=x"], CommandLine("x", (), "D")),
    (["--config-path", "D", "workload=x"], CommandLine("x", (), "D")),
    (["--config-path=D", "x"], CommandLine("x", (), "D")),
    (["-cd", "D", "--config-name", "x"], CommandLine("x", (), "D")),
    (["++workload.reader.batch_size=8", "workload=x", "+workload.train.epochs=2", "workload.train.seed=1",
      "dataset.num_files_train=4", "--config-dir", "D", "++hydra.run.dir=out", "hydra.output_subdir=null"],
     CommandLine("x", ("++workload.reader.batch_size=8", "+workload.train.epochs=2", "workload.train.seed=1",
                       "dataset.num_files_train=4", "++hydra.run.dir=out", "hydra.output_subdir=null"), "D")),
    ([], CommandLine(None, (), None)),
])
def test_parse_command_line_forms(argv, expected):
    assert parse_command_line(argv) == expected


@pytest.mark.parametrize("argv, message", [
    (["a", "b"], "two workloads given"),
    (["workload=a", "b"], "two workloads given"),
    (["--config-dir"], "missing value"),
    (["--frobnicate"], "unknown option"),
    (["=5"], "override without a key"),
    (["workload="], "empty workload name"),
])
def test_parse_command_line_errors(argv, message):
    with pytest.raises(ConfigError, match=message):
        parse_command_line(argv)


@pytest.mark.parametrize("token, key, value", [
    ("++workload.reader.batch_size=8", "reader.batch_size", 8),
    ("+workload.workflow.generate_data=True", "workflow.generate_data", True),
    ("workload.train.computation_time=0.5", "train.computation_time", 0.5),
    ("train.computation_time=1e-3", "train.computation_time", 0.001),
    ("profiling.iostat_devices=[md0]", "profiling.iostat_devices", ["md0"]),
    ("output.folder=null", "output.folder", None),
    ("dataset.data_folder=s3://bucket/a=b", "dataset.data_folder", "s3://bucket/a=b"),
    ("model.name=2024-01-01", "model.name", "2024-01-01"),
    ("dataset.file_prefix=", "dataset.file_prefix", ""),
    ("++hydra.run.dir=out/x", "hydra.run.dir", "out/x"),
    ("train.computation_time={type: uniform, min: 1, max: 2}", "train.computation_time",
     {"type": "uniform", "min": 1, "max": 2}),
])
def test_parse_override_values(token, key, value):
    assert parse_override(token) == (key, value)


@pytest.mark.parametrize("token, message", [
    ("reader.batch_size", "not an override"),
    ("~reader.batch_size", "deleting keys is not supported"),
    ("reader..batch_size=1", "malformed key"),
    ("workload=x", "selects a workload"),
    ("reader.batch_size=[1", "not valid YAML"),
])
def test_parse_override_errors(token, message):
    with pytest.raises(ConfigError, match=message):
        parse_override(token)


def test_command_line_round_trip_into_load(tmp_path):
    (tmp_path / "workload").mkdir()
    (tmp_path / "workload" / "mine.yaml").write_text("model:\n  name: mine\nreader:\n  batch_size: 3\n")
    cl = parse_command_line(["workload=mine", f"--config-dir={tmp_path}", "++workload.reader.batch_size=5"])
    cfg = load_config(cl.source, cl.overrides, config_dir=cl.config_dir)
    assert (cfg.model.name, cfg.reader.batch_size) == ("mine", 5)


# ----------------------------------------------------------------------------- sources
def test_config_dir_lookup_order(tmp_path):
    (tmp_path / "workload").mkdir()
    (tmp_path / "workload" / "w.yaml").write_text("model: {name: in_workload}\n")
    (tmp_path / "w.yaml").write_text("model: {name: at_root}\n")
    (tmp_path / "r.yaml").write_text("model: {name: root_only}\n")
    assert load_config("w", config_dir=tmp_path).model.name == "in_workload"
    assert load_config("r", config_dir=tmp_path).model.name == "root_only"
    assert load_config("r.yaml", config_dir=tmp_path).model.name == "root_only"
    # a name not in the config dir falls back to the bundled workloads
    assert load_config("default", config_dir=tmp_path).model.name == "default"


def test_yaml_path_source(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("dataset:\n  num_files_train: 3\n")
    cfg = load_config(path)
    assert cfg.dataset.num_files_train == 3 and cfg.source == str(path)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing but a comment\n")
    with pytest.raises(ConfigError, match=rf"^{empty}: the workload file is empty"):  # was silently defaults
        load_config(empty)


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("reader:\n  batch_size: 4\n   read_threads: [1\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3:\d+: malformed YAML"):
        load_config(path)


def test_yaml_top_level_must_be_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping of DLIO sections"):
        load_config(path)


def test_missing_name_lists_close_bundled_names():
    with pytest.raises(ConfigError, match=r"unet3d_h10: no such YAML file or bundled workload; did you mean "
                                          r"unet3d_h100"):
        load_config("unet3d_h10")
    with pytest.raises(ConfigError, match="looked in"):
        load_config("nothing_like_it", config_dir="/nonexistent")


def test_dict_source_and_hydra_wrapper():
    assert load_config({"reader": {"batch_size": 2}}).reader.batch_size == 2
    cfg = load_config({"workload": {"reader": {"batch_size": 2}}, "hydra": {"run": {"dir": "h/out"}}})
    assert cfg.reader.batch_size == 2 and cfg.output.folder == "h/out"


def test_runconfig_source_keeps_and_extends_overrides():
    base = load_config("unet3d_h100", ["reader.batch_size=8"])
    again = load_config(base, ["train.epochs=2"])
    assert (again.reader.batch_size, again.train.epochs, again.source) == (8, 2, "unet3d_h100")
    assert again.overrides == ("reader.batch_size=8", "train.epochs=2")
    assert load_config(base) == base


def test_hydra_run_dir_sets_output_folder_only_when_unset():
    assert load_config("default", ["++hydra.run.dir=runs/a"]).output.folder == "runs/a"
    assert load_config("default", ["hydra.run.dir=runs/a", "output.folder=mine"]).output.folder == "mine"
    assert load_config({"output": {"folder": "file"}}, ["hydra.run.dir=runs/a"]).output.folder == "file"
    cfg = load_config("default", ["hydra.output_subdir=null", "hydra.job.name=x"])
    assert cfg.output.folder is None
    assert dict(cfg.hydra) == {"output_subdir": None, "job.name": "x"}


def test_time_subkey_and_stdev_overrides():
    cfg = load_config("unet3d_h100", ["train.computation_time_stdev=0.01"])
    assert cfg.train.computation_time.kind == "normal" and cfg.train.computation_time.stdev == 0.01
    assert cfg.get("train.computation_time_stdev") == 0.01
    cfg = load_config("unet3d_h100", ["train.computation_time.stdev=0.02"])
    assert (cfg.train.computation_time.mean, cfg.train.computation_time.stdev) == (0.323, 0.02)
    cfg = load_config({"train": {"computation_time": {"type": "gamma", "shape": 2, "scale": 0.1}}},
                      ["train.computation_time=0.5"])
    assert cfg.train.computation_time.kind == "fixed" and cfg.train.computation_time.mean_s == 0.5


def test_get_accepts_every_spelling():
    cfg = load_config("unet3d_h100_s3")
    assert cfg.get("reader.batch_size") == cfg.get("data_reader.batch_size") == 7
    assert cfg.get("dataset.record_length") == cfg.get("dataset.record_length_bytes") == 146600628
    assert cfg.get("reader.file_shuffle") == "seed"
    assert cfg.get("train.computation_time") == 0.323
    assert cfg.get("storage.storage_options.region") == "us-east-1"
    assert cfg.get("storage.storage_options.secret_access_key", redact=True) == "***"
    assert cfg.get("model.parallelism")["tensor"] == 1
    with pytest.raises(ConfigError, match="did you mean reader.batch_size"):
        cfg.get("reader.batch_sise")
    with pytest.raises(ConfigError, match="no effect"):
        cfg.get("workflow.query")


def test_pickle_and_hash():
    cfg = load_config("unet3d_h100_s3")
    clone = pickle.loads(pickle.dumps(cfg))
    assert clone == cfg and hash(clone) == hash(cfg)
    assert clone.storage.storage_options["secret_access_key"] == "secret-key"
