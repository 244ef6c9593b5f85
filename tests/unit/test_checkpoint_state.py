"""Checkpoint sizes and names by DLIO's rules (CheckpointPlan), computed without allocating anything."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlio_core.checkpoint import CheckpointPlan, ModelShape, num_parameters
from dlio_core.config import ConfigError, load_config

GIB = 2**30


def plan(name: str, world: int, *overrides: str) -> CheckpointPlan:
    return CheckpointPlan.from_config(load_config(name, [f"++workload.{o}" for o in overrides]), world)


# --- CNN style: one tensor of model_size_bytes on rank 0 -------------------------------------------

@pytest.mark.parametrize("world", [1, 4])
def test_unet3d_is_one_file_on_rank_0(world):
    p = plan("unet3d_h100", world)
    assert p.rank_files(0) == [("model_states-0.pt", 499_153_191)]
    assert all(p.rank_files(r) == [] for r in range(1, world))
    assert p.total_bytes == 499_153_191


@pytest.mark.parametrize("spelling", ["model.model_size", "model.model_size_bytes", "checkpoint.model_size"])
def test_every_model_size_spelling_sizes_the_file(spelling):
    assert plan("default", 1, f"{spelling}=12345").rank_files(0) == [("model_states-0.pt", 12345)]


def test_bert_default_model_size_and_zero_size_writes_nothing():
    assert plan("bert_v100", 2).rank_files(0) == [("model_states-0.pt", 4_034_713_312)]
    assert plan("default", 1, "model.model_size_bytes=0").total_bytes == 0


def test_folder_name_is_dlios():
    assert CheckpointPlan.folder(3, 250) == "global_epoch3_step250"


# --- transformer totals against MLPerf Storage (mlperf_storage.md §4) at the CLOSED process counts ----

@pytest.mark.parametrize("name, world, gib, model_gib, optimizer_gib", [
    ("llama3_8b", 8, 104.7, 15, 90),
    ("llama3_70b", 64, 911, 130, 781),
    ("llama3_405b", 512, 5292, 755, 4533),
    ("llama3_1t", 1024, 15425, 2203.7, 13222.9),  # LLM_SIZE_BY_RANK's 2571/15426 sum to the "18 TB" label
])
def test_llama3_closed_totals(name, world, gib, model_gib, optimizer_gib):
    p = plan(name, world)
    assert p.total_bytes / GIB == pytest.approx(gib, rel=2e-3)
    assert p.part_bytes("model") / GIB == pytest.approx(model_gib, rel=1.5e-2)
    assert p.part_bytes("optimizer") / GIB == pytest.approx(optimizer_gib, rel=1.5e-2)


@pytest.mark.parametrize("world", [32, 256])
def test_dlio_llama_70b_is_911_gib_at_any_data_parallelism(world):
    assert plan("llama_70b", world).total_bytes / GIB == pytest.approx(911, rel=2e-3)


def test_llama3_8b_parameter_count():
    assert plan("llama3_8b", 8).num_parameters == 8_030_261_248  # Llama 3 8B: 8.03 B


def test_default_mode_ignores_parallelism_data_with_a_note():
    p = plan("llama3_8b", 8, "model.parallelism.data=1")  # data: 1 in default mode (the stock YAML sets none)
    assert p.dp == 8 and p.notes and "model.parallelism.data=1" in p.notes[0]
    assert not plan("llama3_405b", 512, "model.parallelism.data=2").notes  # data: 2 agrees with 512 / (8 * 32)


def test_subset_mode_writes_the_share_of_the_larger_job():
    full = plan("llama3_70b", 64)
    sub = plan("llama3_70b", 8, "checkpoint.mode=subset", "model.parallelism.data=8")
    assert sub.total_bytes / GIB == pytest.approx(114, rel=1e-2)  # MLPerf v2.0's 8-process subset size
    assert sub.rank_files(3) == full.rank_files(3)  # the ranks that exist write what they would in the full job


# --- who writes what ------------------------------------------------------------------------------

def test_zero3_divides_model_states_across_data_parallel_ranks():
    p8, p16 = plan("llama3_8b", 8), plan("llama3_8b", 16)
    m8 = dict(p8.rank_files(0))["zero_pp_rank_0_mp_rank_0_model_states.pt"]
    m16 = dict(p16.rank_files(0))["zero_pp_rank_0_mp_rank_0_model_states.pt"]
    assert m16 == pytest.approx(m8 / 2, rel=1e-6)
    assert p16.part_bytes("model") == pytest.approx(p8.part_bytes("model"), rel=1e-6)
    assert [n for n, _ in p16.rank_files(15)] == ["zero_pp_rank_15_mp_rank_0_model_states.pt",
                                                  "zero_pp_rank_15_mp_rank_0_optim_states.pt"]


def test_zero1_with_pipeline_writes_layer_files_on_dp0_only():
    p = plan("llama3_405b", 512)  # TP8 PP32 DP2
    first = [n for n, _ in p.rank_files(0)]
    assert first[0] == "layer_0-model_0_model_states.pt" and first[-1] == "zero_pp_rank_0_mp_rank_0_optim_states.pt"
    assert [n for n, _ in p.rank_files(256)] == ["zero_pp_rank_1_mp_rank_0_optim_states.pt"]  # DP rank 1
    last_stage = [n for n, _ in p.rank_files(255)]  # pp 31, tp 7 -> mp 255
    assert "layer_128-model_255_model_states.pt" in last_stage  # L+2 = final norm on the last stage
    layers = sorted(int(n.split("_")[1].split("-")[0]) for r in range(0, 256, 8) for n, _ in p.rank_files(r)
                    if n.startswith("layer_"))
    assert layers == list(range(0, 126 + 3))  # every layer once per TP rank


def test_zero1_without_pipeline_writes_one_model_file():
    p = plan("llama_7b", 2)  # TP1 PP1 ZeRO1 (DLIO's llama_7b)
    assert [n for n, _ in p.rank_files(0)] == ["model_0_model_states.pt", "zero_pp_rank_0_mp_rank_0_optim_states.pt"]
    assert [n for n, _ in p.rank_files(1)] == ["zero_pp_rank_1_mp_rank_0_optim_states.pt"]


def test_zero0_only_the_first_replica_writes():
    p = plan("llama_7b", 4, "model.parallelism.zero_stage=0")
    assert [n for n, _ in p.rank_files(0)] == ["zero_pp_rank_0_mp_rank_0_model_states.pt",
                                               "zero_pp_rank_0_mp_rank_0_optim_states.pt"]
    assert all(p.rank_files(r) == [] for r in (1, 2, 3))
    n = p.num_parameters
    assert dict(p.rank_files(0))["zero_pp_rank_0_mp_rank_0_optim_states.pt"] == 3 * (n + 4096 * 5) * 4


def test_datatypes_set_bytes_per_element():
    fp16 = plan("llama3_8b", 8).part_bytes("model")
    assert plan("llama3_8b", 8, "model.model_datatype=bf16").part_bytes("model") == fp16
    assert plan("llama3_8b", 8, "model.model_datatype=fp32").part_bytes("model") == 2 * fp16
    opt = plan("llama3_8b", 8).part_bytes("optimizer")
    assert plan("llama3_8b", 8, "model.optimizer_datatype=fp16").part_bytes("optimizer") == opt // 2


ZERO0 = "model.parallelism.zero_stage=0"  # the stock megatron_deepspeed_LLNL runs ZeRO 1 (the bundled copy said 0)


@pytest.mark.filterwarnings("ignore:checkpoint.type")
def test_legacy_lists_override_the_formula():
    p = plan("megatron_deepspeed_LLNL", 32, ZERO0)  # TP4 PP8 ZeRO0, layer_parameters + optimization_groups
    files = dict(p.rank_files(9))  # tp 1, pp 2
    assert files["model_states-9.pt"] == 30102  # model.model_size (HEAD ignores this spelling; we do not)
    assert files["zero_pp_rank_0_mp_rank_9_model_states.pt"] == 5 * (52583936 // 4 + 209715200 // 4)  # 40 / 8 layers
    assert files["zero_pp_rank_0_mp_rank_9_optim_states.pt"] == 3 * (1009254400 + 865075200 + 793600)
    assert plan("megatron_deepspeed_LLNL", 64, ZERO0).rank_files(40) == []  # ZeRO 0: only ranks < TP*PP write


# --- layouts DLIO rejects ---------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, world, key", [
    (["model.parallelism.pipeline=2"], 16, "model.parallelism.zero_stage"),  # ZeRO 3 with PP
    (["model.num_layers=2", "model.parallelism.pipeline=4", "model.parallelism.zero_stage=1"], 4, "model.num_layers"),
    ([], 12, "model.parallelism"),  # 12 % (8*1)
    (["checkpoint.mode=subset", "model.parallelism.data=-1"], 8, "model.parallelism.data"),
    (["checkpoint.mode=subset", "model.parallelism.data=1"], 16, "checkpoint.mode"),
])
def test_rejected_layouts_name_the_key(overrides, world, key):
    with pytest.raises(ConfigError) as e:
        plan("llama3_70b", world, *overrides)
    assert e.value.key == key and str(e.value).startswith(key + ":")


# --- properties -----------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(tp=st.sampled_from([1, 2, 4]), pp=st.sampled_from([1, 2, 3, 4]), dp=st.integers(1, 4),
       zero=st.integers(0, 3), layers=st.integers(4, 13))
def test_totals_are_independent_of_how_the_job_is_split(tp, pp, dp, zero, layers):
    if zero == 3 and pp > 1:
        return
    shape = ModelShape(model_type="transformer", num_layers=layers, hidden_size=256, ffn_hidden_size=512,
                       vocab_size=1000, num_attention_heads=8, num_kv_heads=2, tensor=tp, pipeline=pp,
                       zero_stage=zero)
    p = CheckpointPlan(shape, world=tp * pp * dp)
    n = num_parameters(shape)
    h = shape.hidden_size
    # fp16 model ~ 2 bytes/param; norms are replicated on every TP rank, integer division may drop a little
    assert 2 * n * 0.95 <= p.part_bytes("model") <= 2 * n * tp
    # optimizer: 3 fp32 groups of N/(ranks writing) + 3 * 5h per writing rank
    writers = tp * pp * (dp if zero else 1)
    assert p.part_bytes("optimizer") == writers * 3 * (n // writers + 5 * h) * 4
    names = [name for r in range(p.world) for name, _ in p.rank_files(r)]
    assert len(names) == len(set(names))  # no two ranks write the same file
