"""dlio_torch.checkpoint: torch.save/load through storage URIs and DCP through fsspec, bit-exact."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from dlio_torch import checkpoint as ckpt  # noqa: E402

pytestmark = pytest.mark.integration


def state():
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(64, 32)
    return {"model": model.state_dict(), "step": 7, "blob": torch.randn(1000, generator=g),
            "ints": torch.randint(0, 2**30, (257,), generator=g)}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            assert_same(a[k], b[k])
        elif isinstance(a[k], torch.Tensor):
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k])  # bit-exact
        else:
            assert a[k] == b[k]


def test_save_load_roundtrip_local(tmp_path):
    uri = f"file://{tmp_path}/ckpts/a/model.pt"
    s = state()
    stats = ckpt.save(s, uri)
    assert stats.size_bytes == os.path.getsize(tmp_path / "ckpts/a/model.pt")
    assert stats.blocking_s == stats.total_s and stats.background_s is None
    back, load_stats = ckpt.load(uri, return_stats=True)
    assert_same(s, back)
    assert load_stats.size_bytes == stats.size_bytes


def test_nothing_visible_when_save_fails(tmp_path):
    class Boom:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        ckpt.save({"x": torch.zeros(3), "bad": Boom()}, str(tmp_path / "m.pt"))
    assert os.listdir(tmp_path) == []  # no partial file, no temporary left behind


def test_background_save_reports_blocking_and_background(tmp_path):
    s = state()
    handle = ckpt.save(s, str(tmp_path / "bg.pt"), background=True)
    s["blob"].add_(1.0)  # the loop goes on changing its tensors: the snapshot must not see it
    stats = handle.wait(timeout=60)
    assert stats.background_s is not None and stats.blocking_s <= stats.total_s
    back = ckpt.load(str(tmp_path / "bg.pt"))
    assert torch.equal(back["blob"] + 1.0, s["blob"])


@pytest.mark.parametrize("background", [False, True])
def test_dcp_roundtrip(tmp_path, background):
    s = {"w": torch.randn(128, 64), "b": torch.arange(10)}
    out = ckpt.dcp_save(s, str(tmp_path / "dcp"), background=background)
    stats = out.wait(timeout=60) if background else out
    assert stats.size_bytes > s["w"].nbytes and os.path.exists(tmp_path / "dcp" / ".metadata")
    target = {"w": torch.zeros(128, 64), "b": torch.zeros(10, dtype=torch.int64)}
    load_stats = ckpt.dcp_load(target, str(tmp_path / "dcp"))
    assert torch.equal(target["w"], s["w"]) and torch.equal(target["b"], s["b"])
    assert load_stats.size_bytes == stats.size_bytes


def test_save_load_roundtrip_s3(s3_uri):
    uri, options = s3_uri
    s = state()
    stats = ckpt.save(s, f"{uri.rstrip('/')}/torch/model.pt", storage_options=options)
    back = ckpt.load(f"{uri.rstrip('/')}/torch/model.pt", storage_options=options)
    assert stats.size_bytes > 0
    assert_same(s, back)


class Trusted:
    """A pickled object that is not a tensor: weights-only loads must refuse it."""

    def __init__(self, value: int = 3) -> None:
        self.value = value


def test_load_is_weights_only_unless_asked(tmp_path):
    import pickle

    uri = str(tmp_path / "obj.pt")
    ckpt.save({"w": torch.ones(2), "obj": Trusted()}, uri)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        ckpt.load(uri)  # no code from a checkpoint runs by default
    assert ckpt.load(uri, weights_only=False)["obj"].value == 3  # the caller vouches for this file
    ckpt.save({"w": torch.ones(2), "step": 7, "nested": {"lr": 0.1, "names": ["a", "b"]}}, uri)
    assert ckpt.load(uri)["nested"]["names"] == ["a", "b"]  # plain containers load weights-only


def test_background_dcp_uses_dcps_async_save(tmp_path):
    import torch.distributed.checkpoint as dcp

    if not hasattr(dcp, "async_save"):
        pytest.skip("this torch has no dcp.async_save")
    s = {"w": torch.randn(256, 256)}
    handle = ckpt.dcp_save(s, str(tmp_path / "dcp"), background=True)
    stats = handle.wait(timeout=60)
    assert stats.mechanism == "dcp.async_save" and stats.blocking_s <= stats.total_s
    assert stats.background_s is not None and os.path.exists(tmp_path / "dcp" / ".metadata")


def _damage_dcp(folder) -> None:
    """Cut DCP's data file short (its .metadata stays): what a torn copy or a bad disk leaves."""
    data = next(p for p in os.listdir(folder) if p.endswith(".distcp"))
    with open(os.path.join(folder, data), "r+b") as f:
        f.truncate(64)


def test_a_damaged_dcp_checkpoint_is_one_line_an_except_exception_catches(tmp_path):
    from dlio_core.checkpoint import CheckpointError

    s = {"w": torch.randn(64, 64)}
    ckpt.dcp_save(s, str(tmp_path / "dcp"))
    _damage_dcp(tmp_path / "dcp")
    try:  # DCP's own CheckpointException is a BaseException: it would fly past this handler
        ckpt.dcp_load({"w": torch.empty(64, 64)}, str(tmp_path / "dcp"))
    except Exception as e:  # noqa: BLE001 - the point of the test
        caught = e
    assert isinstance(caught, CheckpointError)
    text = str(caught)
    assert text.startswith(f"dcp.load from {tmp_path / 'dcp'} failed (rank 0: ") and "\n" not in text


def test_a_failing_background_dcp_save_is_a_checkpoint_error(tmp_path):
    from dlio_core.checkpoint import CheckpointError

    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a folder")
    with pytest.raises(CheckpointError, match=r"^dcp.async_save to .*file/dcp failed \("):
        ckpt.dcp_save({"w": torch.ones(4)}, str(blocker / "dcp"), background=True).wait(timeout=60)


def test_the_workloads_dcp_load_of_a_damaged_folder_is_a_checkpoint_error(tmp_path):
    from dlio_core.checkpoint import CheckpointEngine, CheckpointError
    from dlio_core.config import load_config

    cfg = load_config("unet3d_h100", [f"++workload.checkpoint.checkpoint_folder={tmp_path}",
                                      "++workload.checkpoint.checkpoint_mechanism=dcp",
                                      "++workload.model.model_size_bytes=100000"])
    eng = CheckpointEngine(cfg, progress=False)
    eng.save(1, 1)
    _damage_dcp(tmp_path / "global_epoch1_step1" / "model_states-0.dcp")
    with pytest.raises(CheckpointError, match=r"failed on rank 0: dcp load of .*model_states-0.dcp failed \(rank 0: "):
        eng.load(1, 1)
