"""``dlio_jax`` pinned staging: on a CPU-only JAX only the fallback runs, with its reason recorded."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from dlio_jax import make_iterator  # noqa: E402
from dlio_jax._pinned import PinnedDevicePut, make_put  # noqa: E402

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(jax.devices()[0].platform != "cpu", reason="tests the CPU fallback; GPU: tests/gpu")]


def test_pinned_staging_falls_back_on_cpu_with_the_reason(tmp_path):
    over = [f"++workload.dataset.data_folder={tmp_path}", "++workload.workflow.generate_data=True",
            "++workload.dataset.num_files_train=8", "++workload.reader.batch_size=2"]
    pinned = make_iterator("default", overrides=over, staging="pinned_host", labels=False)
    st = pinned.staging
    assert st["asked"] == "pinned_host" and st["used"] == "plain"
    assert "cpu" in st["reason"] and st["stage_bytes"] == 0
    got = [np.asarray(b) for b in pinned]
    assert pinned.last is not None and pinned.last.h2d_s is None  # the device is the CPU: no copy to time
    plain = make_iterator("default", overrides=over[:1] + over[2:], labels=False)
    assert plain.staging == {"asked": "plain", "used": "plain", "reason": None}
    want = [np.asarray(b) for b in plain]
    assert len(got) == len(want) == 4 and all(np.array_equal(a, b) for a, b in zip(got, want))


def test_sharding_and_bad_names():
    assert "sharding" in PinnedDevicePut(jax.sharding.SingleDeviceSharding(jax.devices()[0])).reason
    with pytest.raises(ValueError, match="pinned_host"):
        make_put(staging="pinned")
