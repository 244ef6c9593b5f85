"""A dataset generated with 4 samples per file, read through TensorFlow with the config's 1: the
tensorflow loader and ``make_dataset`` fail when built, naming ``num_samples_per_file`` and both values
(not inside tf.data's iteration, wrapped in TensorFlow's ``UnknownError``)."""

from __future__ import annotations

import pytest

tf = pytest.importorskip("tensorflow")

from dlio_core.config import load_config  # noqa: E402
from dlio_core.manifest import DatasetError  # noqa: E402
from dlio_tf import make_dataset  # noqa: E402

from ._cli import run_args  # noqa: E402

pytestmark = pytest.mark.integration

MESSAGE = r"dataset.num_samples_per_file is 1, but the files hold 4 samples each.*num_samples_per_file=4"
FILES = ["++workload.dataset.num_files_train=8", "++workload.dataset.num_files_eval=0"]


@pytest.fixture
def four_per_file(run_cli, tmp_path):
    res = run_cli("generate", "default", f"++workload.dataset.data_folder={tmp_path}/data",
                  "++workload.dataset.num_samples_per_file=4", *FILES)
    assert res.returncode == 0, res.stderr
    return tmp_path


def _cfg(root, spf: int):
    return load_config("default", [f"++workload.dataset.data_folder={root}/data", *FILES,
                                   f"++workload.dataset.num_samples_per_file={spf}"])


def test_make_dataset_refuses_the_wrong_samples_per_file_when_built(four_per_file):
    with pytest.raises(DatasetError, match=MESSAGE):
        make_dataset(_cfg(four_per_file, 1))


def test_make_dataset_with_the_right_samples_per_file_reads_every_sample(four_per_file):
    ds = make_dataset(_cfg(four_per_file, 4), labels=False)
    assert sum(int(tf.shape(batch["image"])[0]) for batch in ds) == 8 * 4  # labels=False: {"image": ...}


def test_tensorflow_loader_run_refuses_the_wrong_samples_per_file(run_cli, four_per_file):
    res = run_cli("run", *run_args(four_per_file, "++workload.reader.data_loader=tensorflow", *FILES,
                                   "++workload.workflow.evaluation=False"))
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert "num_samples_per_file is 1" in last and "hold 4" in last and "Traceback" not in res.stderr
