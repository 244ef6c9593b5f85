"""``dlio_core.reader``: the one place that turns a config into a reader (format options, seed, plan).

The plugin paths (torch, TF, JAX) are checked against the same rules in
``tests/integration/test_reader_paths_torch_tf.py`` and ``test_jax_reader_paths.py``.
"""

from __future__ import annotations

import ast
import pathlib
from types import SimpleNamespace as NS

import pytest

from dlio_core.config import load_config
from dlio_core.formats import FormatError, get_format
from dlio_core.generate import generate_dataset
from dlio_core.listing import dataset_files, dataset_storage
from dlio_core.loaders import make_loader
from dlio_core.reader import epoch_plan, native_reader, reader_format, reader_seed
from dlio_core.sampling import EpochPlan

from .._reader_probe import record_readers

ROOT = pathlib.Path(__file__).resolve().parents[2]
# (format, override, what the option binds): options get_format alone would lose.
BOUND_OPTIONS = [
    ("tfrecord", "++workload.dataset.num_samples_per_file=4", lambda f: f.samples_per_file == 4),
    ("hdf5", "++workload.dataset.hdf5.layout=records", lambda f: f.layout == "records"),
]


def _cfg(tmp_path, fmt="npz", *more):
    return load_config("default", [f"++workload.dataset.data_folder={tmp_path}/data", f"++workload.dataset.format={fmt}",
                                   "++workload.dataset.num_files_train=4", "++workload.dataset.num_files_eval=2",
                                   "++workload.train.seed=11", *more])


@pytest.fixture
def recorded(monkeypatch):
    return record_readers(monkeypatch)


@pytest.mark.parametrize("fmt, override, bound", BOUND_OPTIONS)
def test_format_options_reach_the_reader(tmp_path, fmt, override, bound):
    cfg = _cfg(tmp_path, fmt, override)
    assert not bound(get_format(fmt))  # the option is one get_format by name would lose
    assert bound(reader_format(cfg))
    assert bound(native_reader(cfg, dataset_storage(cfg), [("train/a", 10)]).fmt)


@pytest.mark.parametrize("fmt, override, bound", BOUND_OPTIONS)
def test_the_runners_native_loader_is_the_factorys_reader(tmp_path, recorded, fmt, override, bound):
    cfg = _cfg(tmp_path, fmt, override, "++workload.reader.data_loader=native", "++workload.reader.read_threads=3",
               "++workload.reader.prefetch_size=5")
    st = dataset_storage(cfg)
    make_loader(cfg, st, [("train/a", 10), ("train/b", 20)], split="train", rank=2)
    (args, kwargs), = recorded
    assert bound(args[1])
    assert args[2] == [st.join("train/a"), st.join("train/b")] and kwargs["sizes"] == [10, 20]
    assert (kwargs["read_threads"], kwargs["prefetch_size"], kwargs["seed"]) == (3, 5, 11 + 7919 * 2)
    assert kwargs["keep_samples"] is False and kwargs["allocator"] is None


def test_one_seed_rule_spaces_ranks_by_a_prime(tmp_path, recorded):
    cfg = _cfg(tmp_path)
    assert [reader_seed(cfg, r) for r in range(3)] == [11, 11 + 7919, 11 + 2 * 7919]
    for rank in range(3):
        native_reader(cfg, dataset_storage(cfg), [], rank=rank, keep_samples=True, read_threads=7)
    assert [kw["seed"] for _, kw in recorded] == [reader_seed(cfg, r) for r in range(3)]
    assert {(kw["read_threads"], kw["keep_samples"]) for _, kw in recorded} == {(7, True)}


@pytest.mark.parametrize("split, alias", [("train", "train"), ("valid", "eval"), ("valid", "validation")])
def test_epoch_plan_is_the_configs_plan(tmp_path, split, alias):
    cfg = _cfg(tmp_path, "npz", "++workload.reader.file_shuffle=seed", "++workload.reader.sample_shuffle=seed")
    got = epoch_plan(cfg, split=alias, epoch=3, world=2, rank=1, random_seed=5)
    assert got == EpochPlan.from_config(cfg, split=split, epoch=3, world=2, rank=1, random_seed=5)
    assert got.batch_size == (cfg.reader.batch_size if split == "train" else cfg.reader.batch_size_eval)


def test_bad_inputs_fail_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset split 'test'"):
        epoch_plan(_cfg(tmp_path), split="test")
    hand_built = NS(dataset=NS(format="npzz"), reader=_cfg(tmp_path).reader, train=NS(seed=1))  # no validation
    with pytest.raises(FormatError, match="did you mean 'npz'"):
        native_reader(hand_built, None, [])


def test_a_reader_from_the_factory_reads_the_plan(tmp_path):
    cfg = _cfg(tmp_path, "tfrecord", "++workload.dataset.num_samples_per_file=2")
    generate_dataset(cfg, progress=False)
    st = dataset_storage(cfg)
    reader = native_reader(cfg, st, dataset_files(cfg, st, "train"), keep_samples=True)
    batches = list(reader.epoch(epoch_plan(cfg, epoch=1)))
    assert sum(b.num_samples for b in batches) == 4 * 2 and all(len(b.samples) == b.num_samples for b in batches)
    for b in batches:
        b.release()


# -- the rule: one place turns a config into a reader ----------------------------------------------------------
# Building the engine is allowed in the factory; dlio_torch's Source builds one from its explicit storage,
# format and files (no config: from_uri has none), with the format the factory bound.
ENGINE_BUILDERS = {"dlio_core/reader.py", "dlio_torch/_source.py"}
CONFIG_TO_FORMAT = {"dlio_core/reader.py", "dlio_core/generate.py"}  # generation writes with the options too


def _calls(name: str, attr: str | None = None) -> set[str]:
    """Source files of the four packages that call ``name(...)`` (or ``name.attr(...)``)."""
    found = set()
    for pkg in ("dlio_core", "dlio_torch", "dlio_tf", "dlio_jax"):
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                f = node.func
                hit = (isinstance(f, ast.Name) and f.id == name and attr is None) or \
                      (isinstance(f, ast.Attribute) and attr is not None and f.attr == attr
                       and isinstance(f.value, ast.Name) and f.value.id == name)
                if hit:
                    found.add(path.relative_to(ROOT).as_posix())
    return found


def test_only_the_factory_turns_a_config_into_a_reader():
    assert _calls("NativeLoader") <= ENGINE_BUILDERS
    assert _calls("format_for") <= CONFIG_TO_FORMAT
    assert _calls("EpochPlan", "from_config") <= {"dlio_core/reader.py"}
    seeded = {p.relative_to(ROOT).as_posix() for pkg in ("dlio_core", "dlio_torch", "dlio_tf", "dlio_jax")
              for p in (ROOT / pkg).rglob("*.py") if "7919" in p.read_text()}
    assert seeded == {"dlio_core/reader.py"}
