"""Host-to-device: copy ceilings, the torch and JAX loaders' H2D GB/s, and files-to-GPU GB/s, in one run.

Measured in the same process, on the same GPU, over the same page-cached files:

- ceilings: one large ``copy_`` host -> device from pinned and from pageable memory (CUDA events);
- JAX: ``jax.device_put`` from numpy (plain) and the pinned_host-staged device leg, on the same array;
- loaders' H2D GB/s (bytes copied / summed ``h2d_s``): ``dlio_torch.DeviceLoader``, and ``dlio_jax``'s
  iterator with ``staging="plain"`` and ``staging="pinned_host"``;
- files to GPU (wall clock over a warm epoch, bytes that reached the device): ``DeviceLoader`` with
  ``--threads`` reader threads against ``DataLoader(num_workers=--threads, pin_memory=True)`` reading
  the same npy files (``np.load`` per file, default collate, ``.to("cuda", non_blocking=True)``).

Every comparison is printed on a line containing ``ratio``. Without a CUDA device it prints that it
needs one and exits 0 (``make bench`` passes); ``--dry-run`` runs every code path on the CPU with tiny
sizes (figures meaningless) to check the script itself.

Run (on a GPU machine): ``PYTHONPATH=. python benchmarks/h2d.py [--files 64] [--file-mib 16] [--threads 8]
[--batch 8] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

GB = 1e9


def _copy_gbps(nbytes: int, pinned: bool, device: str, repeat: int) -> float:
    """One host -> device ``copy_`` of ``nbytes``, best of ``repeat``, timed with CUDA events."""
    import torch

    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned and device == "cuda")
    host.fill_(1)
    dev = torch.empty(nbytes, dtype=torch.uint8, device=device)
    best = float("inf")
    for _ in range(repeat + 1):  # the first is a warm-up
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            dev.copy_(host, non_blocking=pinned)
            end.record()
            end.synchronize()
            dt = start.elapsed_time(end) / 1000.0
        else:
            t0 = time.perf_counter()
            dev.copy_(host)
            dt = time.perf_counter() - t0
        best = min(best, dt)
    return nbytes / best / GB


def _jax_gbps(nbytes: int, repeat: int) -> tuple[float, float | None, str | None]:
    """``(plain device_put GB/s, pinned_host-staged device leg GB/s or None, fallback reason)``."""
    from dlio_jax._device import DevicePut
    from dlio_jax._pinned import PinnedDevicePut

    host = np.ones(nbytes, dtype=np.uint8)
    plain, pinned = DevicePut(), PinnedDevicePut()
    best_plain = best_pinned = float("inf")
    for _ in range(repeat + 1):
        best_plain = min(best_plain, plain.timed(host)[1])
        best_pinned = min(best_pinned, pinned.timed(host)[1])
    staged = None if pinned.reason else nbytes / best_pinned / GB
    return nbytes / best_plain / GB, staged, pinned.reason


def _epoch_gbps(run_epoch: Callable[[], tuple[int, float]], repeat: int) -> tuple[float, float]:
    """``(median files-to-device GB/s over warm epochs, median H2D GB/s or nan)``; epoch 1 warms."""
    run_epoch()
    wall, h2d = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        nbytes, h2d_s = run_epoch()
        wall.append(nbytes / (time.perf_counter() - t0) / GB)
        h2d.append(nbytes / h2d_s / GB if h2d_s > 0 else float("nan"))
    return statistics.median(wall), statistics.median(h2d)


def _device_loader_epoch(cfg: Any, device: str, threads: int) -> Callable[[], tuple[int, float]]:
    from dlio_torch import DeviceLoader

    loader = DeviceLoader(cfg, device=device, threads=threads)
    if loader.notes:
        print("DeviceLoader notes: " + "; ".join(loader.notes))

    def run() -> tuple[int, float]:
        nbytes, h2d_s = 0, 0.0
        for b in loader:
            nbytes += b.data.numel() * b.data.element_size()
            h2d_s += b.h2d_s or 0.0
        return nbytes, h2d_s

    return run


def _dataloader_epoch(paths: list[str], device: str, threads: int, batch: int) -> Callable[[], tuple[int, float]]:
    import torch

    class Files(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, i: int) -> Any:
            return torch.from_numpy(np.load(paths[i]))

    kwargs: dict[str, Any] = {"batch_size": batch, "num_workers": threads, "pin_memory": device == "cuda",
                              "drop_last": True}
    if threads > 0:
        kwargs["persistent_workers"] = True
    dl = torch.utils.data.DataLoader(Files(), **kwargs)

    def run() -> tuple[int, float]:
        nbytes = 0
        for x in dl:
            y = x.to(device, non_blocking=True)
            nbytes += y.numel() * y.element_size()
        if device == "cuda":
            torch.cuda.synchronize()
        return nbytes, 0.0

    return run


def _jax_loader_epoch(cfg: Any, staging: str) -> tuple[Callable[[], tuple[int, float]], list[str | None]]:
    from dlio_jax import make_iterator

    reasons: list[str | None] = []

    def run() -> tuple[int, float]:
        it = make_iterator(cfg, staging=staging, labels=False)  # images only: the bytes copied
        nbytes, h2d_s = 0, 0.0
        for a in it:
            nbytes += int(a.nbytes)
            h2d_s += it.last.h2d_s  # type: ignore[union-attr]
        reasons[:] = [it.staging["reason"]]
        return nbytes, h2d_s

    return run, reasons


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--file-mib", type=float, default=16.0)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ceiling-mib", type=int, default=1024)
    ap.add_argument("--dry-run", action="store_true", help="every code path on the CPU, tiny sizes")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("benchmarks/h2d.py needs torch (pip install 'dl-driver[torch]'); nothing measured")
        return 0
    if args.dry_run:
        device = "cpu"
        args.files, args.file_mib, args.threads, args.batch, args.repeat, args.ceiling_mib = 8, 0.0625, 2, 2, 1, 4
    elif not torch.cuda.is_available():
        print("benchmarks/h2d.py needs a CUDA GPU (torch.cuda.is_available() is False here): nothing measured. "
              "Run it on a GPU machine: PYTHONPATH=. python benchmarks/h2d.py")
        return 0
    else:
        device = "cuda"

    from dlio_core.config import load_config
    from dlio_core.generate import generate_dataset
    from dlio_core.listing import dataset_files, dataset_storage

    gpu = torch.cuda.get_device_name() if device == "cuda" else "none (dry run on the CPU)"
    print(f"GPU: {gpu}; torch {torch.__version__}; {os.cpu_count()} CPUs")
    nbytes = args.ceiling_mib << 20
    pinned = _copy_gbps(nbytes, True, device, args.repeat)
    pageable = _copy_gbps(nbytes, False, device, args.repeat)
    print(f"copy ceiling ({args.ceiling_mib} MiB copy_): pinned {pinned:.1f} GB/s, pageable {pageable:.1f} GB/s")

    work = tempfile.mkdtemp(prefix="dl-driver-h2d-")
    record = int(args.file_mib * (1 << 20))
    cfg = load_config("default", [
        f"++workload.dataset.data_folder={work}/data", "++workload.dataset.format=npy",
        f"++workload.dataset.num_files_train={args.files}", "++workload.dataset.num_samples_per_file=1",
        f"++workload.dataset.record_length_bytes={record}", "++workload.dataset.num_files_eval=0",
        f"++workload.reader.batch_size={args.batch}", f"++workload.reader.read_threads={args.threads}",
        "++workload.reader.file_shuffle=seed", "++workload.workflow.generate_data=False"])
    generate_dataset(cfg, progress=False)
    st = dataset_storage(cfg)
    paths = [st.local_path(rel) or st.join(rel) for rel, _ in dataset_files(cfg, st, "train")]
    total = sum(size for _, size in dataset_files(cfg, st, "train"))
    print(f"files: {args.files} x {total / args.files / (1 << 20):.1f} MiB npy (page-cached after the first epoch), "
          f"batch {args.batch}, {args.threads} threads/workers")

    # The DataLoader forks its workers before JAX is imported (forking a multithreaded JAX can deadlock).
    dl_wall, _ = _epoch_gbps(_dataloader_epoch(paths, device, args.threads, args.batch), args.repeat)
    dev_wall, dev_h2d = _epoch_gbps(_device_loader_epoch(cfg, device, args.threads), args.repeat)
    jplain, jpinned, jreason = _jax_gbps(nbytes, args.repeat)
    print(f"jax device_put ({args.ceiling_mib} MiB): plain {jplain:.1f} GB/s, pinned_host-staged "
          + (f"{jpinned:.1f} GB/s" if jpinned is not None else f"not run ({jreason})"))
    jrun, jreasons = _jax_loader_epoch(cfg, "plain")
    _, jax_plain_h2d = _epoch_gbps(jrun, args.repeat)
    jrun, jreasons = _jax_loader_epoch(cfg, "pinned_host")
    _, jax_pinned_h2d = _epoch_gbps(jrun, args.repeat)

    print(f"DeviceLoader: files to GPU {dev_wall:.2f} GB/s, H2D {dev_h2d:.2f} GB/s")
    print(f"DataLoader(num_workers={args.threads}, pin_memory=True): files to GPU {dl_wall:.2f} GB/s")
    print(f"jax iterator H2D: plain {jax_plain_h2d:.2f} GB/s, pinned_host {jax_pinned_h2d:.2f} GB/s"
          + (f" (fell back: {jreasons[0]})" if jreasons and jreasons[0] else ""))
    print(f"ratio pageable/pinned copy ceiling: {pageable / pinned:.2f}")
    print(f"ratio DeviceLoader/DataLoader files-to-GPU: {dev_wall / dl_wall:.2f} (target >= 4)")
    print(f"ratio DeviceLoader files-to-GPU / pinned ceiling: {dev_wall / pinned:.2f}")
    print(f"ratio DeviceLoader H2D / pinned ceiling: {dev_h2d / pinned:.2f}")
    print(f"ratio jax pinned_host iterator H2D / pinned ceiling: {jax_pinned_h2d / pinned:.2f} (target >= 0.9)")
    print(f"ratio jax plain iterator H2D / pinned ceiling: {jax_plain_h2d / pinned:.2f}")
    print(f"ratio jax plain device_put / pinned ceiling: {jplain / pinned:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
