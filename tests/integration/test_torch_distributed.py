"""Two ranks under ``torchrun`` (gloo): ``DeviceLoader`` shards by ``torch.distributed`` with no rank
given, and ``DlioMapDataset`` under ``DistributedSampler``; every sample read exactly once across ranks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from . import _torch_dist_script as script  # noqa: E402
from .test_torch_samples import write_labelled_npz  # noqa: E402

pytestmark = pytest.mark.integration

TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent))
needs_torchrun = pytest.mark.skipif(TORCHRUN is None, reason="no torchrun next to the test's python")
TOTAL = script.NUM_FILES * script.SAMPLES_PER_FILE


def run_two_ranks(tmp_path, mode: str) -> list[dict]:
    data = tmp_path / "data"
    write_labelled_npz(str(data / "train"), script.NUM_FILES, script.SAMPLES_PER_FILE)
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI_", "PMIX_"))}
    env["OMP_NUM_THREADS"] = "1"
    res = subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node=2", script.__file__, mode, str(data), str(out)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


@needs_torchrun
def test_device_loader_reads_its_own_share_under_torchrun(tmp_path):
    ranks = run_two_ranks(tmp_path, "device")
    per_rank = (TOTAL // (script.BATCH * 2)) * script.BATCH  # whole steps, the same on both ranks
    assert [len(r["ids"]) for r in ranks] == [per_rank, per_rank]
    both = ranks[0]["ids"] + ranks[1]["ids"]
    assert len(set(both)) == len(both) == 2 * per_rank  # disjoint: not every rank reading everything
    assert set(both) <= set(range(TOTAL))


@needs_torchrun
def test_map_dataset_with_distributed_sampler(tmp_path):
    ranks = run_two_ranks(tmp_path, "map")
    assert [len(r["ids"]) for r in ranks] == [TOTAL // 2, TOTAL // 2]
    both = ranks[0]["ids"] + ranks[1]["ids"]
    assert sorted(both) == list(range(TOTAL))  # exactly once across the two ranks
    assert all(y == 1000 + i for r in ranks for i, y in zip(r["ids"], r["labels"]))
    assert ranks[0]["ids"] != sorted(ranks[0]["ids"])  # the sampler's shuffle decides the order
