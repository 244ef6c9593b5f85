"""A dataset generated with 4 samples per file, read with the config's 1: every path fails naming
``num_samples_per_file`` and both values, instead of reading a quarter of the samples (issue 19)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from dlio_core.config import load_config  # noqa: E402
from dlio_core.manifest import DatasetError  # noqa: E402
from dlio_torch import DeviceLoader, DlioIterableDataset, make_dataloader  # noqa: E402

from ._cli import run_args  # noqa: E402

pytestmark = pytest.mark.integration

MESSAGE = r"dataset.num_samples_per_file is 1, but the files hold 4 samples each.*num_samples_per_file=4"


@pytest.fixture
def four_per_file(run_cli, tmp_path):
    res = run_cli("generate", "default", f"++workload.dataset.data_folder={tmp_path}/data",
                  "++workload.dataset.num_samples_per_file=4", "++workload.dataset.num_files_train=8",
                  "++workload.dataset.num_files_eval=0")
    assert res.returncode == 0, res.stderr
    return tmp_path


def _cfg(root, spf: int):
    return load_config("default", [f"++workload.dataset.data_folder={root}/data", "++workload.dataset.num_files_train=8",
                                   "++workload.dataset.num_files_eval=0", "++workload.reader.read_threads=0",
                                   f"++workload.dataset.num_samples_per_file={spf}"])


@pytest.mark.parametrize("loader", ["native", "pytorch"])
def test_run_refuses_the_wrong_samples_per_file(run_cli, four_per_file, loader):
    res = run_cli("run", *run_args(four_per_file, f"++workload.reader.data_loader={loader}",
                                   "++workload.dataset.num_files_train=8", "++workload.dataset.num_files_eval=0",
                                   "++workload.workflow.evaluation=False"))
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert "num_samples_per_file is 1" in last and "hold 4" in last and "Traceback" not in res.stderr


def test_plugins_refuse_the_wrong_samples_per_file(four_per_file):
    cfg = _cfg(four_per_file, 1)
    with pytest.raises(DatasetError, match=MESSAGE):
        DlioIterableDataset.from_config(cfg)
    with pytest.raises(DatasetError, match=MESSAGE):
        make_dataloader(cfg)
    with pytest.raises(DatasetError, match=MESSAGE):
        DeviceLoader(cfg, device="cpu")


def test_the_right_samples_per_file_reads_every_sample(four_per_file):
    ds = DlioIterableDataset.from_config(_cfg(four_per_file, 4))
    assert sum(1 for _ in ds) == 8 * 4
