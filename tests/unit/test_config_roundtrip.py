"""``to_dict`` is plain, redacts on request, and parses back to an equal config (property test)."""

from __future__ import annotations

import json
import warnings

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from dlio_core.config import ConfigWarning, RunConfig, load_config
from dlio_core.config.frozen import redact

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
times = st.one_of(
    st.floats(0, 10, allow_nan=False),
    st.fixed_dictionaries({"mean": st.floats(0, 10, allow_nan=False), "stdev": st.floats(0, 1, allow_nan=False)}),
    st.fixed_dictionaries({"type": st.just("uniform"), "min": st.just(0.5), "max": st.floats(0.5, 3)}),
    st.fixed_dictionaries({"type": st.just("exponential"), "scale": st.floats(0.01, 3)}),
)
workloads = st.fixed_dictionaries(
    {},
    optional={
        "framework": st.sampled_from(["tensorflow", "pytorch", "jax"]),
        "model": st.one_of(names, st.fixed_dictionaries({}, optional={
            "name": names, "type": st.one_of(st.none(), st.just("transformer"), st.just("cnn")),
            "model_size_bytes": st.integers(0, 2**40),
            "parallelism": st.fixed_dictionaries({}, optional={"tensor": st.integers(1, 8),
                                                               "zero_stage": st.integers(0, 3)}),
        })),
        "dataset": st.fixed_dictionaries({}, optional={
            "format": st.sampled_from(["npz", "npy", "tfrecord", "hdf5", "jpeg", "parquet", "indexed_binary"]),
            "num_files_train": st.integers(1, 10**6),  # 0 with training is refused at load (test_config_checks)
            "num_samples_per_file": st.integers(1, 10**4),
            "record_length": st.one_of(st.integers(1, 2**30), st.floats(1, 2**30)),
            "record_length_bytes_stdev": st.integers(0, 10**6),
            "data_folder": st.sampled_from(["data/x/", "s3://bucket/p", "/abs/path", "file:///"]),
        }),
        "data_reader": st.fixed_dictionaries({}, optional={
            "data_loader": st.sampled_from(["pytorch", "tensorflow", "native", "dali", "jax"]),
            "batch_size": st.integers(1, 4096),
            "read_threads": st.integers(0, 64),
            "file_shuffle": st.sampled_from(["off", "seed", "random", True, False]),
            "sample_shuffle": st.sampled_from(["off", "seed", "random"]),
            "preprocess_time": times,
            "transfer_size": st.one_of(st.none(), st.integers(1, 2**24)),
        }),
        "train": st.fixed_dictionaries({}, optional={
            "epochs": st.integers(1, 100), "computation_time": times, "seed": st.integers(0, 2**32 - 1),
            "total_training_steps": st.one_of(st.just(-1), st.integers(0, 10**6)),
        }),
        "checkpoint": st.fixed_dictionaries({}, optional={
            "time_between_checkpoints": st.one_of(st.just(-1), times),
            "steps_between_checkpoints": st.one_of(st.just(-1), st.integers(1, 1000)),
            "fsync": st.booleans(),
        }),
        "storage": st.fixed_dictionaries({}, optional={
            "storage_type": st.sampled_from(["local_fs", "s3"]),
            "storage_options": st.dictionaries(names, st.one_of(st.integers(), names, st.booleans(),
                                                                st.lists(st.integers(), max_size=3)), max_size=4),
        }),
        "output": st.fixed_dictionaries({}, optional={
            "folder": st.one_of(st.none(), names), "metric": st.fixed_dictionaries({"exclude_start_steps": st.integers(0, 5)}),
        }),
        "metric": st.fixed_dictionaries({"au": st.floats(0, 1)}),
        "profiling": st.fixed_dictionaries({}, optional={"iostat_devices": st.one_of(names, st.lists(names, max_size=3))}),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads)
def test_to_dict_round_trips(node):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        cfg = load_config(node)
        plain = cfg.to_dict()
        assert json.loads(json.dumps(plain)) == plain  # plain JSON types only
        assert yaml.safe_load(yaml.safe_dump(plain)) == plain
        again = load_config(plain)
        assert again == cfg
        assert again.to_dict() == plain
        # the YAML text of the resolved config loads to the same config
        assert load_config(yaml.safe_load(yaml.safe_dump({"workload": plain}))) == cfg


def test_to_dict_uses_head_spelling():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        cfg = load_config("megatron_deepspeed")
    d = cfg.to_dict()
    assert list(d)[:2] == ["model", "framework"]
    assert d["dataset"]["record_length_bytes"] == 2048 and "record_length" not in d["dataset"]
    assert d["model"]["model_size_bytes"] == 30102 and "model_size" not in d.get("checkpoint", {})
    assert "data_reader" not in d and d["reader"]["batch_size"] == 1024


SECRETS = {
    "access_key_id": "AKIAVISIBLE",
    "secret_access_key": "s3cr3t",
    "session_token": "tkn-9f8e",
    "account_key": "acct-77aa",
    "connection_string": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k3y;EndpointSuffix=x",
    "sas_token": "sv=1&sig=abc",
    "password": "pw-xyzzy",
    "credentials_file": "/secret/path",
    "endpoint_url": "https://user:hunter2@host:9000",
    "storage_library": "s3dlio",
    "region": "us-east-1",
}


def test_redaction():
    cfg = RunConfig(storage={"storage_type": "s3", "storage_options": SECRETS})
    shown = cfg.to_dict(redact=True)["storage"]["storage_options"]
    assert shown["access_key_id"] == "AKIAVISIBLE"
    assert shown["storage_library"] == "s3dlio" and shown["region"] == "us-east-1"
    for key in ("secret_access_key", "session_token", "account_key", "connection_string", "sas_token", "password",
                "credentials_file"):
        assert shown[key] == "***", key
    assert shown["endpoint_url"] == "https://user:***@host:9000"
    text = repr(cfg) + str(cfg.storage) + json.dumps(cfg.to_dict(redact=True))
    for secret in ("s3cr3t", "tkn-9f8e", "acct-77aa", "k3y", "sig=abc", "hunter2", "pw-xyzzy", "/secret/path"):
        assert secret not in text, secret
    assert cfg.to_dict()["storage"]["storage_options"]["secret_access_key"] == "s3cr3t"  # unredacted on request


def test_redact_embedded_secrets():
    assert redact("DefaultEndpointsProtocol=https;AccountKey=abc;X=y") == "DefaultEndpointsProtocol=https;AccountKey=***;X=y"
    assert redact({"nested": [{"token": "t"}]}) == {"nested": [{"token": "***"}]}
