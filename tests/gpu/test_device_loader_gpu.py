"""``dlio_torch.DeviceLoader`` on CUDA: pinned staging, copies on a side stream, CUDA-event h2d timing.

Needs an NVIDIA GPU; skipped with a reason elsewhere. Run: ``pytest -m gpu tests/gpu``.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu, pytest.mark.integration,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


def _cfg(tmp_path, files=16, batch=4):
    from dlio_core.config import load_config
    from dlio_core.generate import generate_dataset

    cfg = load_config("default", [f"++workload.dataset.data_folder={tmp_path}",
                                  f"++workload.dataset.num_files_train={files}", f"++workload.reader.batch_size={batch}",
                                  "++workload.reader.file_shuffle=seed"])
    generate_dataset(cfg, progress=False)
    return cfg


def test_batches_land_on_the_gpu_equal_to_the_cpu_path_with_h2d_timed(tmp_path):
    from dlio_torch import DeviceLoader

    cfg = _cfg(tmp_path)
    gpu = list(DeviceLoader(cfg, device="cuda", threads=4))
    cpu = list(DeviceLoader(cfg, device="cpu", threads=4))
    assert len(gpu) == len(cpu) == 4
    for g, c in zip(gpu, cpu):
        assert g.data.is_cuda and g.h2d_s is not None and g.h2d_s > 0
        assert torch.equal(g.data.cpu(), c.data)
    loader = DeviceLoader(cfg, device="cuda")
    assert loader.pinned  # the engine reads kept samples into pinned staging buffers from the allocator


def test_staging_buffers_are_pinned():
    from dlio_torch._device_loader import pinned_allocator

    buf = pinned_allocator(1 << 20)
    assert torch.from_numpy(buf).is_pinned()


def test_consumer_work_is_ordered_after_the_copy(tmp_path):
    """The step's kernels see the whole batch even though the copy ran on another stream."""
    from dlio_torch import DeviceLoader

    cfg = _cfg(tmp_path, files=32, batch=8)
    sums = [int(b.data.to(torch.int64).sum()) for b in DeviceLoader(cfg, device="cuda", threads=8)]
    want = [int(b.data.to(torch.int64).sum()) for b in DeviceLoader(cfg, device="cpu", threads=8)]
    assert sums == want


def test_early_close_on_cuda(tmp_path):
    from dlio_torch import DeviceLoader

    loader = DeviceLoader(_cfg(tmp_path), device="cuda")
    it = iter(loader)
    assert next(it).data.is_cuda
    it.close()
    assert np.isfinite(torch.cuda.memory_allocated())
