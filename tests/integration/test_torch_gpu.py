"""Host-to-device copies timed with CUDA events (needs a CUDA device; skipped with a reason without one)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from dlio_torch import DeviceCopy, instrument  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.integration,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


def test_pinned_copy_is_timed():
    batch = torch.ones(64, 1024, 1024, dtype=torch.uint8).pin_memory()
    out, h2d_s = DeviceCopy()(batch)
    assert out.is_cuda and h2d_s is not None and h2d_s > 0
    assert torch.equal(out.cpu(), batch)


def test_instrument_reports_h2d():
    timed = instrument([torch.ones(8, 1024).pin_memory() for _ in range(4)], device="cuda")
    assert all(b.is_cuda for b in timed)
    assert timed.report()["stages"]["h2d"]["count"] == 4
