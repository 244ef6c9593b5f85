"""dlio_jax.make_iterator: process sharding, resume via state, sharded global arrays, DlioSource."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import pytest

jax = pytest.importorskip("jax")

from dlio_jax import DlioSource, make_iterator  # noqa: E402

from ._jax_data import ids, overrides, write_labelled_npy  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("files,spf,batch,count,shuffle", [
    (12, 1, 2, 3, "off"), (10, 3, 4, 2, "seed"), (7, 2, 3, 4, "seed"), (16, 1, 4, 1, "off"), (9, 4, 5, 3, "random"),
])
def test_processes_cover_without_overlap_and_equal_counts(tmp_path, files, spf, batch, count, shuffle):
    write_labelled_npy(tmp_path, files, spf)
    ov = overrides(tmp_path, files, spf, batch, f"++workload.reader.sample_shuffle={shuffle}",
                   f"++workload.reader.file_shuffle={shuffle}")
    seen, steps = [], []
    for index in range(count):
        it = make_iterator("default", overrides=ov, process_index=index, process_count=count, random_seed=42)
        batches = list(it)
        assert all(b.shape == (batch, 4, 4) for b in batches)
        steps.append(len(batches))
        seen += [i for b in batches for i in ids(b)]
    total = files * spf
    assert steps == [total // (batch * count)] * count  # equal on every process: no collective hangs
    assert len(seen) == len(set(seen)) == steps[0] * batch * count  # no sample twice
    assert set(seen) <= {(f, s) for f in range(files) for s in range(spf)}
    assert total - len(seen) < batch * count  # only the short tail is dropped


def test_resume_from_state_yields_the_rest(tmp_path):
    write_labelled_npy(tmp_path, 12, 2)
    ov = overrides(tmp_path, 12, 2, 4, "++workload.reader.sample_shuffle=seed")
    full = [ids(b) for b in make_iterator("default", overrides=ov)]
    it = make_iterator("default", overrides=ov)
    head = [ids(next(it)) for _ in range(2)]
    state = it.get_state()
    it.close()
    assert state["step"] == 2 and state["steps"] == 6
    again = make_iterator("default", overrides=ov)
    again.set_state(state)
    assert head + [ids(b) for b in again] == full
    other = make_iterator("default", overrides=ov, process_index=0, process_count=2)
    with pytest.raises(ValueError, match="process_count"):
        other.set_state(state)


def test_iterator_follows_the_stateful_protocol(tmp_path):
    from dlio_core.state import IterationState, Stateful

    write_labelled_npy(tmp_path, 12, 1)
    ov = overrides(tmp_path, 12, 1, 4)
    it = make_iterator("default", overrides=ov)
    assert isinstance(it, Stateful)
    next(it)
    state = it.state_dict()
    it.close()
    assert IterationState.from_dict(state) == IterationState(epoch=1, next_step=1, seed=state["seed"])
    assert it.get_state() == {**{k: v for k, v in state.items() if k != "next_step"}, "step": 1}
    for saved in (state, it.get_state()):  # either form loads
        again = make_iterator("default", overrides=ov)
        again.load_state_dict(saved)
        assert again.state_dict() == state and len(list(again)) == 2
    with pytest.raises(ValueError, match="step=1 and next_step=2"):
        make_iterator("default", overrides=ov).load_state_dict({**state, "step": 1, "next_step": 2})
    with pytest.raises(ValueError, match="split"):
        make_iterator("default", overrides=ov).load_state_dict({k: v for k, v in state.items() if k != "split_id"})


def test_batches_carry_timings_and_live_on_the_device(tmp_path):
    write_labelled_npy(tmp_path, 8, 1)
    it = make_iterator("default", overrides=overrides(tmp_path, 8, 1, 4))
    b = next(it)
    assert isinstance(b, jax.Array) and b.devices() == {jax.devices()[0]}
    assert it.last.bytes_read > 0 and it.last.num_samples == 4
    assert (it.last.h2d_s is None) == (jax.devices()[0].platform == "cpu")  # no device copy on a CPU
    it.close()


def test_sharding_splits_the_process_batch_over_local_devices(tmp_path):
    write_labelled_npy(tmp_path, 8, 1)
    code = textwrap.dedent(f"""
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
        import jax, numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        from dlio_jax import make_iterator
        from tests.integration._jax_data import overrides
        mesh = Mesh(np.array(jax.devices()), ("data",))
        it = make_iterator("default", overrides=overrides({str(tmp_path)!r}, 8, 1, 4), sharding=NamedSharding(mesh, P("data")))
        b = next(it)
        print(b.shape, len(b.addressable_shards), b.addressable_shards[0].data.shape)
        try:
            make_iterator("default", overrides=overrides({str(tmp_path)!r}, 8, 1, 3), sharding=NamedSharding(mesh, P("data")))
        except ValueError as e:
            print("error:", e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=_repo()).stdout
    assert "(4, 4, 4) 4 (1, 4, 4)" in out
    assert "multiple of 4" in out


def test_dlio_source_is_grain_compatible(tmp_path):
    write_labelled_npy(tmp_path, 5, 3)
    src = DlioSource.from_config("default", overrides=overrides(tmp_path, 5, 3, 1))
    assert len(src) == 15
    assert src[7][0, 0] == 2 and src[7][0, 1] == 1 and src[-1][0, 0] == 4
    clone = pickle.loads(pickle.dumps(src))
    assert repr(clone) == repr(src) and "files=5" in repr(src)
    assert [int(clone[i][0, 1]) for i in range(3)] == [0, 1, 2]
    with pytest.raises(IndexError):
        src[15]


def _repo() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parents[2])


def test_a_file_table_is_read_as_it_is_not_copied_to_a_list(tmp_path):
    from dlio_core.config import load_config
    from dlio_core.file_table import FileTable
    from dlio_core.listing import dataset_files, dataset_storage
    from dlio_jax import JaxIterator

    write_labelled_npy(tmp_path, 6, 2)
    cfg = load_config("default", overrides(tmp_path, 6, 2, 4))
    table = FileTable.from_pairs(dataset_files(cfg, dataset_storage(cfg), "train"))
    it = JaxIterator(cfg, files=table)
    assert it.files is table
    assert sorted(i for b in it for i in ids(b)) == [(f, s) for f in range(6) for s in range(2)]
