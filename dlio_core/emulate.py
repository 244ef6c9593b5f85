"""Accelerator emulation: the time a simulated accelerator spends computing one step.

DLIO replaces each training step's compute with ``time.sleep``; we do the same (``time.sleep``
releases the GIL, so reader threads keep running while the "accelerator" is busy), and we measure
the time actually spent rather than trusting the requested figure: oversleep is real time during
which no batch was consumed.

``train.computation_device: gpu`` (extension) makes each step real GPU work instead: a matmul loop
(torch, else CuPy, imported only then) whose iteration count is calibrated once per process so one step
takes the drawn time, synchronised at the step's end. Host-to-device copies and this compute then
overlap and contend on a real device, and AU measures a busy GPU, not a sleep. The runner picks the
mode through :func:`make_compute`.

Example:
    >>> import numpy as np
    >>> from dlio_core.emulate import Compute
    >>> c = Compute(lambda rng: 0.001, np.random.default_rng(0))
    >>> 0.001 <= c.step() < 0.1
    True
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Protocol

import numpy as np

__all__ = ["Compute", "ComputeUnavailable", "KernelCompute", "NoCompute", "TorchMatmul", "busy_sleep", "calibrate",
           "gpu_kernel", "make_compute"]

GPU_ERROR = "train.computation_device: gpu needs a CUDA device; use cpu"

# Below this, time.sleep's wake-up latency (50-100 us on Linux) is a large relative error.
_SPIN_BELOW_S = 200e-6


def busy_sleep(seconds: float) -> None:
    """Sleep ``seconds``; short waits finish with a spin so a 0.1 ms step is not a 0.2 ms step."""
    if seconds <= 0:
        return
    deadline = time.perf_counter() + seconds
    if seconds > _SPIN_BELOW_S:
        time.sleep(seconds - _SPIN_BELOW_S)
    while time.perf_counter() < deadline:
        pass


class Compute:
    """Emulated compute for one phase (train or eval).

    ``draw`` returns the step's compute time in seconds given a numpy Generator (a fixed value or a
    draw from a distribution). ``step()`` performs it and returns the seconds actually spent.
    """

    def __init__(self, draw: Callable[[np.random.Generator], float], rng: np.random.Generator) -> None:
        self._draw = draw
        self._rng = rng

    def step(self) -> float:
        requested = float(self._draw(self._rng))
        start = time.perf_counter()
        busy_sleep(requested)
        return time.perf_counter() - start


class NoCompute(Compute):
    """A phase whose compute time is 0 on every draw (``computation_time: 0``): ``step()`` returns 0.0
    without drawing or timing anything, so a step costs only its read.

    >>> NoCompute().step()
    0.0
    """

    def __init__(self) -> None:  # noqa: D107 - nothing to draw from
        super().__init__(lambda rng: 0.0, None)

    def step(self) -> float:
        return 0.0


class ComputeUnavailable(RuntimeError):
    """``train.computation_device: gpu`` cannot run here; the message says what to use instead."""


class Kernel(Protocol):
    """A unit of emulated work: ``run(n)`` does ``n`` iterations and returns once they are done."""

    seconds_per_iter: float

    def run(self, n: int) -> None: ...


def calibrate(run: Callable[[int], None], *, min_s: float = 0.05, min_iters: int = 8, repeats: int = 3,
              max_iters: int = 1 << 24, clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per iteration of ``run(n)`` (which must return only once its work is done).

    One warm-up call (lazy initialisation, kernel selection), then ``n`` grows until one call takes at
    least ``min_s`` with at least ``min_iters`` iterations, so a fixed per-call cost (a launch, a
    synchronisation) is spread over many iterations and the estimate converges on the per-iteration
    time. That ``n`` is then timed ``repeats`` times in all and the fastest kept: interference (another
    process, a copy on the same device) only ever adds time.

    >>> t = [0.0]
    >>> def fake(n):  # 1 ms per iteration plus 0.5 ms per call
    ...     t[0] += 0.0005 + n * 0.001
    >>> round(calibrate(fake, clock=lambda: t[0]) * 1e3, 2)
    1.01
    """
    if min_s <= 0:
        raise ValueError(f"min_s must be > 0, got {min_s}")

    def timed(n: int) -> float:
        t0 = clock()
        run(n)
        return clock() - t0

    run(1)
    n = 1
    while True:
        dt = timed(n)
        if (dt >= min_s and n >= min_iters) or n >= max_iters:
            break
        grow = 2 * n if dt <= 0 else int(n * min_s / dt * 1.25) + 1  # aim a little past min_s
        n = min(max_iters, max(2 * n, grow))
    best = min([dt] + [timed(n) for _ in range(max(0, repeats - 1))])
    return max(best, 1e-12) / n


class TorchMatmul:
    """``run(n)``: ``n`` square matmuls on ``device`` (torch), synchronised at the end; calibrated on creation.

    ``size`` defaults to 4096 (fp16) on CUDA, so one iteration (~0.2 ms on an H100) dwarfs its launch,
    and to 64 (fp32) on the CPU, which serves only to test the calibration.

    >>> k = TorchMatmul("cpu", size=16, min_s=0.005)
    >>> k.seconds_per_iter > 0 and k.iterations(100 * k.seconds_per_iter) == 100
    True
    """

    def __init__(self, device: Any = "cuda", *, size: int | None = None, dtype: Any = None,
                 min_s: float = 0.05) -> None:
        import torch

        self._torch = torch
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        if self.cuda and not torch.cuda.is_available():
            raise ComputeUnavailable(GPU_ERROR)
        self.size = int(size or (4096 if self.cuda else 64))
        dtype = dtype or (torch.float16 if self.cuda else torch.float32)
        gen = torch.Generator(device="cpu").manual_seed(0)
        self.a = torch.randn(self.size, self.size, generator=gen).to(self.device, dtype) / self.size ** 0.5
        self.b = torch.randn(self.size, self.size, generator=gen).to(self.device, dtype) / self.size ** 0.5
        self.c = torch.empty_like(self.a)
        self.seconds_per_iter = calibrate(self.run, min_s=min_s)

    def run(self, n: int) -> None:
        mm, a, b, c = self._torch.mm, self.a, self.b, self.c
        for _ in range(n):
            mm(a, b, out=c)
        if self.cuda:  # this stream only: copies on a loader's side stream are not waited for
            self._torch.cuda.current_stream(self.device).synchronize()

    def iterations(self, seconds: float) -> int:
        """Iterations that take ``seconds`` (rounded; 0 for a step shorter than half an iteration)."""
        return int(round(seconds / self.seconds_per_iter)) if seconds > 0 else 0


class CupyMatmul(TorchMatmul):
    """The same loop with CuPy (used when torch is absent)."""

    def __init__(self, device: int = 0, *, size: int = 4096, min_s: float = 0.05) -> None:  # noqa: D107
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise ComputeUnavailable(GPU_ERROR)
        self._cupy = cupy
        self.cuda, self.size = True, size
        with cupy.cuda.Device(device):
            rs = cupy.random.RandomState(0)
            self.a = (rs.standard_normal((size, size)) / size ** 0.5).astype(cupy.float16)
            self.b = (rs.standard_normal((size, size)) / size ** 0.5).astype(cupy.float16)
            self.c = cupy.empty_like(self.a)
        self.seconds_per_iter = calibrate(self.run, min_s=min_s)

    def run(self, n: int) -> None:
        matmul, a, b, c = self._cupy.matmul, self.a, self.b, self.c
        for _ in range(n):
            matmul(a, b, out=c)
        self._cupy.cuda.get_current_stream().synchronize()


def _local_device_index() -> int:
    """This process's GPU on a multi-GPU node (torchrun, Open MPI, Slurm local ranks), else 0."""
    for key in ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


_KERNELS: dict[Any, Kernel] = {}


def gpu_kernel() -> Kernel:
    """The process's calibrated GPU kernel (made once: train and eval share it).

    Raises :class:`ComputeUnavailable` without a CUDA device (or without torch and CuPy).
    """
    key = "gpu"
    if key in _KERNELS:
        return _KERNELS[key]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        if not torch.cuda.is_available():
            raise ComputeUnavailable(GPU_ERROR)
        kernel: Kernel = TorchMatmul(f"cuda:{_local_device_index() % torch.cuda.device_count()}")
    else:
        try:
            import cupy
        except ImportError as exc:
            raise ComputeUnavailable(f"{GPU_ERROR} (and torch or CuPy: pip install 'dl-driver[torch]')") from exc
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # no driver
            raise ComputeUnavailable(GPU_ERROR) from exc
        if count < 1:
            raise ComputeUnavailable(GPU_ERROR)
        kernel = CupyMatmul(_local_device_index() % count)
    _KERNELS[key] = kernel
    return kernel


class KernelCompute(Compute):
    """Emulated compute as real work: each step runs the kernel's iterations for the drawn time.

    ``step()`` returns the seconds actually spent (launch to synchronisation), which exceed the drawn
    time when the device is contended (e.g. by host-to-device copies): that is what is measured.

    >>> k = TorchMatmul("cpu", size=16, min_s=0.005)
    >>> c = KernelCompute(lambda rng: 0.002, np.random.default_rng(0), k)
    >>> c.step() > 0 and c.last_iterations == k.iterations(0.002)
    True
    """

    def __init__(self, draw: Callable[[np.random.Generator], float], rng: np.random.Generator, kernel: Any) -> None:
        super().__init__(draw, rng)
        self.kernel = kernel
        self.last_iterations = 0

    def step(self) -> float:
        requested = float(self._draw(self._rng))
        kernel = self.kernel
        n = int(round(requested / kernel.seconds_per_iter)) if requested > 0 else 0
        self.last_iterations = n
        start = time.perf_counter()
        if n:
            kernel.run(n)
        return time.perf_counter() - start


def make_compute(cfg: Any, rng: np.random.Generator, *, phase: str = "train") -> Compute:
    """The runner's compute for ``phase`` (``train``: ``train.computation_time``; ``eval``:
    ``evaluation.eval_time``), as ``train.computation_device`` says (it applies to both phases).

    >>> from types import SimpleNamespace as NS
    >>> cfg = NS(train=NS(computation_time=NS(sample=lambda rng: 0.0), computation_device="cpu"),
    ...          evaluation=NS(eval_time=NS(sample=lambda rng: 0.0)))
    >>> type(make_compute(cfg, np.random.default_rng(0))).__name__
    'Compute'
    >>> from dlio_core.config.timespec import TimeSpec
    >>> cfg.train.computation_time = TimeSpec.parse(0, key="train.computation_time")
    >>> type(make_compute(cfg, np.random.default_rng(0))).__name__
    'NoCompute'
    """
    if phase not in ("train", "eval"):
        raise ValueError(f"phase must be 'train' or 'eval', got {phase!r}")
    spec = cfg.train.computation_time if phase == "train" else cfg.evaluation.eval_time
    device = str(getattr(cfg.train.computation_device, "value", cfg.train.computation_device)).lower()
    if device != "gpu":
        return NoCompute() if getattr(spec, "is_zero", False) else Compute(spec.sample, rng)
    return KernelCompute(spec.sample, rng, gpu_kernel())
