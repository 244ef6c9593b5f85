"""``dlio_jax`` pinned staging on a GPU: the pinned_host path runs and equals the plain put."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

pytestmark = [pytest.mark.gpu, pytest.mark.integration,
              pytest.mark.skipif(jax.devices()[0].platform != "gpu", reason="JAX sees no GPU on this machine")]


def test_pinned_host_staging_runs_on_the_gpu(tmp_path):
    from dlio_jax import make_iterator

    over = [f"++workload.dataset.data_folder={tmp_path}", "++workload.workflow.generate_data=True",
            "++workload.dataset.num_files_train=8", "++workload.reader.batch_size=2"]
    it = make_iterator("default", overrides=over, staging="pinned_host", labels=False)
    got = [np.asarray(b) for b in it]
    assert it.staging["used"] == "pinned_host" and it.staging["reason"] is None
    assert it.staging["stage_bytes"] > 0 and it.last.h2d_s > 0
    want = [np.asarray(b) for b in make_iterator("default", overrides=over[:1] + over[2:], labels=False)]
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
