"""Two ranks under ``torchrun``: ``DlioIterableDataset`` in a real DDP loop, and ``dl-driver run``.

Each rank trains one epoch through ``DataLoader(num_workers=2)`` with a DDP step per batch; a rank with
more steps than the other would hang in the all-reduce, so the subprocess has a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from dlio_core.config import load_config  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402

from . import _torch_ddp_script as script  # noqa: E402
from ._cli import assert_two_rank_run, small_run_args  # noqa: E402

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
TORCHRUN = shutil.which("torchrun", path=str(BIN))
needs_torchrun = pytest.mark.skipif(TORCHRUN is None, reason="no torchrun next to the test's python")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI_", "PMIX_"))}
    env["OMP_NUM_THREADS"] = "1"
    return env


def torchrun(*args: str, timeout: float) -> subprocess.CompletedProcess:
    cmd = [TORCHRUN, "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())


@needs_torchrun
@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_ddp_two_ranks_disjoint_equal_steps(tmp_path, context):
    data = tmp_path / "data"
    generate_dataset(load_config("default", script.overrides(str(data))), progress=False)
    out = tmp_path / "out"
    out.mkdir()
    res = torchrun(script.__file__, str(data), str(out), context, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]

    for r, rep in enumerate(ranks):
        assert (rep["rank"], rep["world"]) == (r, 2)
        # Resolved from the process group (RANK/WORLD_SIZE were removed from the environment).
        assert (rep["dataset_rank"], rep["dataset_world"], rep["source"]) == (r, 2, "torch.distributed")
    steps = [len(rep["steps"]) for rep in ranks]
    expected = (script.NUM_FILES * script.SAMPLES_PER_FILE) // (script.BATCH * 2)
    assert steps == [expected, expected] == [rep["planned_steps"] for rep in ranks]
    for rep in ranks:
        assert [s["step"] for s in rep["steps"]] == list(range(expected))  # in order, each once
        assert all(s["rows"] == s["num_samples"] == script.BATCH for s in rep["steps"])
    ids = [i for rep in ranks for s in rep["steps"] for i in s["ids"]]
    assert len(ids) == len(set(ids)) == expected * script.BATCH * 2  # no overlap, the whole share covered
    assert set(ids) <= set(range(script.NUM_FILES * script.SAMPLES_PER_FILE))
    assert ranks[0]["weight"] == ranks[1]["weight"]  # DDP kept the replicas in step


@needs_torchrun
def test_dl_driver_run_under_torchrun(tmp_path):
    args = small_run_args(tmp_path, "++workload.reader.data_loader=pytorch", "++workload.reader.read_threads=1")
    res = torchrun("--no-python", str(BIN / "dl-driver"), "run", *args, timeout=300)
    assert_two_rank_run(res, tmp_path / "out")
