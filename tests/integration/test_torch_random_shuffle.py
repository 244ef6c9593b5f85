"""Issue 19: ``from_config(..., sample_shuffle=random)`` draws its seed in a single process."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from dlio_torch import DlioIterableDataset  # noqa: E402
from dlio_torch._world import agreed_random_seed  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    from dlio_core.config import load_config
    from dlio_core.generate import generate_dataset

    root = tmp_path_factory.mktemp("rnd")
    cfg = load_config("default", [f"++workload.dataset.data_folder={root}/data", "++workload.dataset.num_files_train=4",
                                  "++workload.dataset.num_files_eval=0", "++workload.dataset.record_length_bytes=64",
                                  "++workload.dataset.record_length_bytes_stdev=0",
                                  "++workload.reader.sample_shuffle=random", "++workload.reader.batch_size=1"])
    generate_dataset(cfg, progress=False)
    return cfg


def test_random_shuffle_in_one_process(cfg):
    ds = DlioIterableDataset.from_config(cfg, rank=0, world=1)
    assert len(list(ds)) == len(ds) > 0


def test_random_seed_needs_agreement_across_ranks(cfg):
    with pytest.raises(ValueError, match="random_seed="):
        DlioIterableDataset.from_config(cfg, rank=0, world=2)
    assert len(DlioIterableDataset.from_config(cfg, rank=0, world=2, random_seed=7)) >= 0


def test_agreed_seed_single_process_draws():
    assert agreed_random_seed(0, 1) != agreed_random_seed(0, 1)
