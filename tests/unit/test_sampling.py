"""Property tests of EpochPlan: no overlap, full cover, equal steps, worker split, shuffles, seeds."""

from __future__ import annotations

import dataclasses
import enum
import pickle
import tracemalloc
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dlio_core.sampling import EpochPlan, Shuffle, draw_random_seed

PROPS = settings(max_examples=150, deadline=None, derandomize=True)

POLICIES = st.sampled_from(["off", "seed", "random", Shuffle.OFF, Shuffle.SEED, Shuffle.RANDOM, "SEED"])


@st.composite
def plan_kwargs(draw: Any, max_files: int = 24, max_spf: int = 12) -> dict[str, Any]:
    world = draw(st.integers(1, 5))
    return dict(
        num_files=draw(st.integers(1, max_files)),
        samples_per_file=draw(st.integers(1, max_spf)),
        batch_size=draw(st.integers(1, 8)),
        world=world,
        rank=0,
        seed=draw(st.integers(-(2**40), 2**40)),
        epoch=draw(st.integers(0, 5)),
        file_shuffle=draw(POLICIES),
        sample_shuffle=draw(POLICIES),
        seed_change_epoch=draw(st.booleans()),
        random_seed=draw(st.integers(0, 2**63 - 1)),
    )


# -- views of a plan that only these tests need (EpochPlan keeps what the readers use) ------------------


def sample_ids(plan: EpochPlan, step: int) -> np.ndarray:
    """Global sample ids ``file_idx * samples_per_file + sample_idx`` read by ``step`` (int64)."""
    files, samples = plan.batch(step)
    return files * plan.samples_per_file + samples


def worker_batches(plan: EpochPlan, worker: int = 0, workers: int = 1, *, start: int = 0,
                   stop: int | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(step, file_idx, sample_idx)`` for steps in ``[start, stop)`` with ``step % workers == worker``."""
    if not 0 <= worker < workers:
        raise ValueError(f"worker must be < workers ({workers}), got {worker}")
    end = plan.steps if stop is None else min(stop, plan.steps)
    first = start + (worker - start) % workers  # first step >= start owned by this worker
    for step in range(first, end, workers):
        yield (step, *plan.batch(step))


def access_order(plan: EpochPlan, max_steps: int | None = None) -> Iterator[tuple[int, int]]:
    """``(file_idx, sample_idx)`` per sample, in read order."""
    for step in range(plan.steps if max_steps is None else min(max_steps, plan.steps)):
        files, samples = plan.batch(step)
        yield from zip(files.tolist(), samples.tolist())


def locate(plan: EpochPlan, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(file_idx, sample_idx)`` of global-order positions in ``[0, S)``."""
    p = np.asarray(positions, dtype=np.int64)
    if p.size and (int(p.min()) < 0 or int(p.max()) >= plan.total_samples):
        raise ValueError(f"positions must lie in [0, {plan.total_samples})")
    return plan._locate(p)


def distinct_files(files: np.ndarray) -> int:
    """How many different files a batch touches."""
    return int(np.unique(np.asarray(files)).size)


def read_amplification_hint(plan: EpochPlan, max_steps: int = 8) -> float:
    """Files touched x samples per file over samples used, per batch, over the first ``max_steps`` steps."""
    n = min(max_steps, plan.steps)
    if n == 0 or plan.samples_per_file == 1:
        return 1.0
    touched = sum(distinct_files(plan.batch(step)[0]) for step in range(n))
    return touched * plan.samples_per_file / (n * plan.batch_size)


def rank_plans(kw: dict[str, Any], **changes: Any) -> list[EpochPlan]:
    kw = {**kw, **changes}
    return [EpochPlan(**{**kw, "rank": r}) for r in range(kw["world"])]


def epoch_ids(kw: dict[str, Any], **changes: Any) -> np.ndarray:
    """Global sample ids read in the epoch: rank-major, then step, then position in batch."""
    plans = rank_plans(kw, **changes)
    parts = [sample_ids(p, s) for p in plans for s in range(p.steps)]
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


# -- partition: no overlap, cover, equal steps -------------------------------------------------------


@PROPS
@given(kw=plan_kwargs())
def test_ranks_partition_the_epoch(kw: dict[str, Any]) -> None:
    plans = rank_plans(kw)
    S, per_step = plans[0].total_samples, kw["batch_size"] * kw["world"]
    assert {p.steps for p in plans} == {S // per_step}  # equal steps on every rank
    ids = epoch_ids(kw)
    assert ids.size == plans[0].steps * per_step
    assert np.unique(ids).size == ids.size  # no sample read twice in an epoch
    assert ids.size == 0 or (ids.min() >= 0 and ids.max() < S)
    if S % per_step == 0:
        assert np.array_equal(np.sort(ids), np.arange(S))  # full cover
    for p in plans:
        for step in range(p.steps):
            files, samples = p.batch(step)
            assert files.dtype == samples.dtype == np.int64
            assert files.shape == samples.shape == (kw["batch_size"],)
            assert ((0 <= files) & (files < kw["num_files"])).all()
            assert ((0 <= samples) & (samples < kw["samples_per_file"])).all()


@PROPS
@given(kw=plan_kwargs())
def test_ranks_read_contiguous_blocks_of_the_global_order(kw: dict[str, Any]) -> None:
    plans = rank_plans(kw)
    b, steps = kw["batch_size"], plans[0].steps
    for r, p in enumerate(plans):
        for k in range(steps):
            start = r * steps * b + k * b
            assert np.array_equal(p.positions(k), np.arange(start, start + b))


@PROPS
@given(kw=plan_kwargs())
def test_drop_last_false_pads_by_wrapping(kw: dict[str, Any]) -> None:
    plans = rank_plans(kw, drop_last=False)
    S, per_step = plans[0].total_samples, kw["batch_size"] * kw["world"]
    assert {p.steps for p in plans} == {-(-S // per_step)}
    ids = epoch_ids(kw, drop_last=False)
    assert ids.size == plans[0].steps * per_step
    assert np.array_equal(np.unique(ids), np.arange(S))  # every sample read
    # The padding re-reads the start of the order: positions wrap modulo S.
    order = np.concatenate([p.positions(s) for p in plans for s in range(p.steps)])
    assert np.array_equal(order, np.arange(order.size) % S)


@PROPS
@given(kw=plan_kwargs(), drop_last=st.booleans(), data=st.data())
def test_batch_block_rows_are_the_steps_batches(kw: dict[str, Any], drop_last: bool, data: Any) -> None:
    for p in rank_plans(kw, drop_last=drop_last):
        if p.steps == 0:
            continue
        first = data.draw(st.integers(0, p.steps - 1))
        count = data.draw(st.integers(1, p.steps - first))
        files, samples = p.batch_block(first, count)
        assert files.shape == samples.shape == (count, kw["batch_size"])
        for i in range(count):
            f, s = p.batch(first + i)
            assert files[i].tolist() == f.tolist() and samples[i].tolist() == s.tolist()
        with pytest.raises(IndexError):
            p.batch_block(first, p.steps - first + 1)


@PROPS
@given(kw=plan_kwargs(), workers=st.integers(1, 6), rank=st.integers(0, 4))
def test_workers_split_steps_exactly_once(kw: dict[str, Any], workers: int, rank: int) -> None:
    plan = EpochPlan(**{**kw, "rank": rank % kw["world"]})
    seen: list[int] = []
    for w in range(workers):
        for step, files, samples in worker_batches(plan, worker=w, workers=workers):
            assert step % workers == w
            f, s = plan.batch(step)
            assert np.array_equal(files, f) and np.array_equal(samples, s)
            seen.append(step)
    assert sorted(seen) == list(range(plan.steps))


def test_batches_start_stop() -> None:
    plan = EpochPlan(100, 1, 2)  # 50 steps
    assert [s for s, _, _ in worker_batches(plan, 1, 3, start=5, stop=17)] == [7, 10, 13, 16]
    assert [s for s, _, _ in worker_batches(plan, 0, 1, start=48, stop=1000)] == [48, 49]
    with pytest.raises(ValueError, match="worker"):
        next(worker_batches(plan, worker=2, workers=2))


# -- order: shuffles, seeds, epochs ----------------------------------------------------------------


def test_off_is_identity_order() -> None:
    plan = EpochPlan(5, 3, 4, world=1)
    assert np.array_equal(np.concatenate([sample_ids(plan, s) for s in range(plan.steps)]), np.arange(12))


@PROPS
@given(kw=plan_kwargs())
def test_file_shuffle_alone_reads_files_whole_in_shuffled_order(kw: dict[str, Any]) -> None:
    plan = EpochPlan(**{**kw, "sample_shuffle": "off", "world": 1, "drop_last": False})
    files = np.concatenate([plan.batch(s)[0] for s in range(plan.steps)])[: plan.total_samples]
    samples = np.concatenate([plan.batch(s)[1] for s in range(plan.steps)])[: plan.total_samples]
    spf = kw["samples_per_file"]
    assert np.array_equal(samples, np.tile(np.arange(spf), kw["num_files"]))
    by_file = files.reshape(kw["num_files"], spf)
    assert (by_file == by_file[:, :1]).all()  # each file's samples are consecutive
    assert np.array_equal(np.sort(by_file[:, 0]), np.arange(kw["num_files"]))


@PROPS
@given(kw=plan_kwargs(max_files=40, max_spf=40), which=st.sampled_from(["file", "sample"]))
def test_shuffles_change_order_and_epochs(kw: dict[str, Any], which: str) -> None:
    policy = {"file_shuffle": "off", "sample_shuffle": "off", f"{which}_shuffle": "seed"}
    # One rank, one step holding the whole epoch: the order does not depend on the batching.
    size = kw["num_files"] * kw["samples_per_file"]
    kw = {**kw, **policy, "world": 1, "drop_last": False, "batch_size": size}
    if which == "file":
        assume(kw["num_files"] >= 10)  # a random order of >= 10 items is the identity with p < 3e-7
    else:
        assume(kw["num_files"] * kw["samples_per_file"] >= 64)
    base = epoch_ids(kw)
    assert not np.array_equal(base, np.sort(base))  # differs from identity
    assert np.array_equal(base, epoch_ids(kw))  # same seed, same order
    other_epoch = epoch_ids(kw, epoch=kw["epoch"] + 1)
    assert np.array_equal(base, other_epoch) != kw["seed_change_epoch"]
    assert not np.array_equal(base, epoch_ids(kw, seed=kw["seed"] + 1000))


def test_random_needs_a_shared_seed() -> None:
    with pytest.raises(ValueError, match="shared seed must be drawn once"):
        EpochPlan(4, 4, 2, sample_shuffle="random")
    seed = draw_random_seed()
    kw = dict(num_files=16, samples_per_file=8, batch_size=4, world=2, sample_shuffle="random",
              file_shuffle="random", random_seed=seed)
    ids = epoch_ids(kw)
    assert np.array_equal(np.sort(ids), np.arange(128))
    assert not np.array_equal(ids, epoch_ids(kw, random_seed=seed ^ 1))
    # the configured seed plays no part in a random order
    assert np.array_equal(ids, epoch_ids(kw, seed=kw.get("seed", 123) + 7))


def test_accepts_a_foreign_shuffle_enum() -> None:
    class ConfigShuffle(enum.Enum):  # what dlio_core.config may define
        OFF = "off"
        SEED = "seed"
        RANDOM = "random"

    a = EpochPlan(8, 2, 4, file_shuffle=ConfigShuffle.SEED, sample_shuffle=ConfigShuffle.OFF)
    b = EpochPlan(8, 2, 4, file_shuffle="seed", sample_shuffle=False)
    assert a == b and a.file_shuffle is Shuffle.SEED
    assert np.array_equal(sample_ids(a, 0), sample_ids(b, 0))


# -- records, helpers, pickling -----------------------------------------------------------------------


def test_access_order_matches_batches() -> None:
    plan = EpochPlan(6, 5, 4, world=2, rank=1, file_shuffle="seed", sample_shuffle="seed")
    recorded = list(access_order(plan))
    assert len(recorded) == plan.steps * plan.batch_size  # the samples this rank reads
    expected = [(int(f), int(s)) for _, fs, ss in worker_batches(plan) for f, s in zip(fs, ss)]
    assert recorded == expected
    assert list(access_order(plan, max_steps=1)) == expected[:4]
    assert locate(plan, plan.positions(1))[0].tolist() == [f for f, _ in expected[4:8]]


def test_pickles_small_and_identical() -> None:
    plan = EpochPlan(100_000, 2, 8, file_shuffle="seed", sample_shuffle="seed")
    assert plan.file_permutation is not None  # cached; must not travel
    blob = pickle.dumps(plan)
    assert len(blob) < 2_000
    clone = pickle.loads(blob)
    assert clone == plan and np.array_equal(sample_ids(clone, 3), sample_ids(plan, 3))


def test_read_amplification_hint() -> None:
    assert read_amplification_hint(EpochPlan(64, 1, 8, sample_shuffle="seed")) == 1.0
    assert read_amplification_hint(EpochPlan(64, 4, 8, file_shuffle="seed")) == 1.0  # 2 whole files
    assert read_amplification_hint(EpochPlan(4096, 16, 8, sample_shuffle="seed")) > 12
    assert distinct_files(np.array([5, 5, 1])) == 2
    assert read_amplification_hint(EpochPlan(2, 2, 8)) == 1.0  # zero steps


def test_from_config_reads_sections_by_attribute() -> None:
    cfg = SimpleNamespace(
        dataset=SimpleNamespace(num_files_train=10, num_files_eval=2, num_samples_per_file=3),
        reader=SimpleNamespace(batch_size=4, batch_size_eval=1, file_shuffle="seed", sample_shuffle="off"),
        train=SimpleNamespace(seed=7, seed_change_epoch=False),
    )
    plan = EpochPlan.from_config(cfg, world=2, rank=1, epoch=3)
    assert (plan.num_files, plan.batch_size, plan.steps, plan.file_seed) == (10, 4, 3, 7)
    assert EpochPlan.from_config(cfg, split="eval").steps == EpochPlan.from_config(cfg, split="valid").steps == 6
    assert dataclasses.replace(plan, epoch=4).file_seed == 7  # seed_change_epoch False


@pytest.mark.parametrize(
    "field, value, message",
    [("num_files", 0, "num_files"), ("samples_per_file", 0, "samples_per_file"), ("batch_size", 0, "batch_size"),
     ("batch_size", 2.0, "batch_size"), ("world", 0, "world"), ("rank", -1, "rank"), ("rank", 3, "rank"),
     ("epoch", -1, "epoch"), ("seed", "x", "seed"), ("file_shuffle", "sometimes", "file_shuffle"),
     ("sample_shuffle", 3, "sample_shuffle"), ("drop_last", "yes", "drop_last"),
     ("seed_change_epoch", None, "seed_change_epoch"), ("random_seed", 1.5, "random_seed"),
     ("samples_per_file", 2**62, r"num_files \* samples_per_file")],
)
def test_validation_names_the_field(field: str, value: Any, message: str) -> None:
    kw: dict[str, Any] = dict(num_files=4, samples_per_file=2, batch_size=2, world=3, rank=0)
    kw[field] = value
    with pytest.raises(ValueError, match=message):
        EpochPlan(**kw)


def test_step_out_of_range() -> None:
    plan = EpochPlan(4, 1, 2)
    with pytest.raises(IndexError, match="2 steps"):
        plan.batch(2)
    with pytest.raises(ValueError):
        locate(plan, np.array([4]))


# -- scale: dlrm (4.8e9 samples) plans in O(files) memory ---------------------------------------------


def test_dlrm_epoch_plans_within_100_mb() -> None:
    tracemalloc.start()
    try:
        plan = EpochPlan(1024, 4_718_592, 16_384, world=1, rank=0, seed=123, epoch=1,
                         file_shuffle="seed", sample_shuffle="seed")
        assert plan.steps == 294_912
        _, built_peak = tracemalloc.get_traced_memory()
        seen = []
        for step in range(0, plan.steps, plan.steps // 20)[:20]:
            files, samples = plan.batch(step)
            seen.append(files * plan.samples_per_file + samples)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert built_peak < 1 << 20  # construction allocates nothing per sample
    assert peak < 100 * 2**20
    ids = np.concatenate(seen)
    assert np.unique(ids).size == ids.size == 20 * 16_384
    assert distinct_files(seen[0] // plan.samples_per_file) > 1000  # spread over (nearly) all 1024 files
