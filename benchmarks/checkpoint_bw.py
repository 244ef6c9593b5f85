"""Checkpoint bandwidth of every mechanism against the device's own ceiling, in one run on local files.

For each mechanism (``raw``, ``stream``, ``torch_save``, ``dcp``, ``tf_save``, ``orbax``, and ``stream`` with
zstd) the checkpoint engine saves one checkpoint of ``--gib`` GiB (one file, DLIO's CNN layout, fsync on,
incompressible content) and loads it back after evicting it from the page cache, each in a fresh process
(clean memory figures; JAX and TensorFlow apart). Against it, in the same folder and right before, a plain
sequential write of the same number of equally unique bytes (made before its clock starts, written in
``--piece-mib`` writes, then ``fsync``)
and a cold sequential read of that file (evicted with ``POSIX_FADV_DONTNEED``) set the ceiling. Printed per
mechanism, each comparison on a line containing ``ratio``:

- write GiB/s (checkpoint bytes over the engine's duration: barrier to commit marker durable) over the plain
  fsync'd write;
- read GiB/s over the cold plain read;
- peak resident memory growth during the save (the kernel's ``VmHWM``) over the largest piece (``--piece-mib``),
  and the whole process's peak;
- for framework mechanisms, their metadata overhead (stored bytes over tensor bytes) and, for asynchronous
  ones, the time the training loop was blocked against the time to durable.

Each round measures the ceiling, the mechanism (after one untimed save and load of another checkpoint in the
same process, unless ``--no-warmup``: steady state, as a run writes many), then the ceiling again; the best of ``--repeat`` rounds is
reported on both sides (on a shared machine other work only ever slows a run down; memory and timing
splits are medians). Aims (issue 16): ``raw``
and ``stream`` write at >= 0.95 of the plain write and ``raw`` reads at >= 0.95 of the plain read.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/checkpoint_bw.py [--gib 1] [--repeat 3] [--dir /var/tmp]
[--only raw stream] [--direct]``; ``--direct`` adds ``raw``, ``stream`` and ``torch_save`` on ``direct://``
against an ``O_DIRECT`` plain write and read. Each load also says how many of its bytes were still in the page
cache when it began (0: a cold read).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

GIB = 1 << 30
MECHANISMS = ["raw", "stream", "stream+zstd", "torch_save", "dcp", "tf_save", "orbax"]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ------------------------------------------------------------------------------------------- ceilings
def _aligned(nbytes: int) -> np.ndarray:
    raw = np.empty(nbytes + 4096, dtype=np.uint8)
    start = (-raw.ctypes.data) % 4096
    return raw[start:start + nbytes]


def plain_write(path: str, nbytes: int, piece: int, direct: bool) -> float:
    """Seconds to write ``nbytes`` sequentially in ``piece``-byte writes, then fsync.

    The bytes are made before the clock starts (all of them, in memory) and are as unique as a checkpoint's
    (one :class:`~dlio_core.checkpoint.ChunkSource` key per piece): repeating one buffer would let a storage
    layer that deduplicates or compresses (a VM's host, a filer) write less than the checkpoint does.
    """
    from dlio_core.checkpoint import ChunkSource

    data = _aligned(nbytes)
    src = ChunkSource(piece, nonce=int.from_bytes(os.urandom(8), "little") >> 1)
    for i, off in enumerate(range(0, nbytes, piece)):
        n = min(piece, nbytes - off)
        src.chunk("plain.bin", i, n, out=data[off:off + n])
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (getattr(os, "O_DIRECT", 0) if direct else 0)
    view = memoryview(data)
    os.sync()  # start from a clean slate: no one's dirty pages flushed on our clock
    t0 = time.perf_counter()
    fd = os.open(path, flags, 0o644)
    try:
        done = 0
        while done < nbytes:
            done += os.write(fd, view[done:min(done + piece, nbytes)])
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - t0


def plain_read(path: str, piece: int, direct: bool) -> float:
    """Seconds to read ``path`` sequentially after evicting it from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    buf = _aligned(piece)
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECT", 0) if direct else 0))
    try:
        while os.readv(fd, [buf]) > 0:
            pass
    finally:
        os.close(fd)
    return time.perf_counter() - t0


def generation_gibps(piece: int, pieces: int = 128) -> float:
    """How fast one thread makes checkpoint content (what ``raw`` adds to each write)."""
    from dlio_core.checkpoint import ChunkSource

    src = ChunkSource(piece, nonce=1)
    t0 = time.perf_counter()
    for i in range(pieces):
        src.chunk("bench/x.pt", i, piece)
    return piece * pieces / GIB / (time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------- one mechanism
def child(args: argparse.Namespace) -> None:
    """Save and load one checkpoint with one mechanism (in this fresh process); print JSON."""
    from dlio_core.checkpoint import CheckpointEngine
    from dlio_core.checkpoint.memory import peak_bytes
    from dlio_core.config import load_config

    mechanism, _, codec = args.child.partition("+")
    folder = ("direct://" if args.child_direct else "") + args.folder
    overrides = [f"++workload.checkpoint.checkpoint_folder={folder}", f"++workload.model.model_size_bytes={args.bytes}",
                 f"++workload.checkpoint.checkpoint_mechanism={mechanism}", "++workload.checkpoint.fsync=True",
                 f"++workload.checkpoint.compression={codec or 'none'}"]
    piece = args.piece_mib << 20
    eng = CheckpointEngine(load_config("unet3d_h100", overrides), progress=False, chunk_bytes=piece,
                           read_buffer_bytes=piece)
    first = None
    if args.warmup:  # one-time costs (lazy framework set-up, first page-cache growth) are not the steady state
        first = eng.save(1, 0).peak_memory_bytes  # the first save allocates the buffers later saves reuse
        eng.load(1, 0)
        shutil.rmtree(os.path.join(args.folder, "global_epoch1_step0"), ignore_errors=True)
    os.sync()  # as before the plain write
    save = eng.save(1, 1)
    load = eng.load(1, 1)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would report the parent's peak
    peak = max(p for p in (first, save.peak_memory_bytes) if p is not None) if save.peak_memory_bytes is not None else None
    print(json.dumps({"save": save.to_dict(), "load": load.to_dict(), "maxrss_bytes": peak_bytes(),
                      "save_peak_bytes": peak}))


def run_child(name: str, folder: str, nbytes: int, piece_mib: int, direct: bool, warmup: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
               TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--folder", folder, "--bytes", str(nbytes),
           "--piece-mib", str(piece_mib)] + (["--child-direct"] if direct else []) + ([] if warmup else ["--no-warmup"])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------- report
def _mib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / (1 << 20):.0f} MiB"


def measure(name: str, base: str, nbytes: int, piece_mib: int, repeat: int, direct: bool, warmup: bool = True) -> None:
    piece = piece_mib << 20
    rows = []
    for _ in range(repeat):
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(base)
        ceiling = os.path.join(base, "plain.bin")
        times = []
        for when in ("before", "after"):  # the ceiling on both sides of the mechanism: drift cancels out
            if when == "after":
                got = run_child(name, os.path.join(base, "ck"), nbytes, piece_mib, direct, warmup)
                shutil.rmtree(os.path.join(base, "ck"), ignore_errors=True)
            w = plain_write(ceiling, nbytes, piece, direct)
            times.append((w, plain_read(ceiling, piece, direct)))
            os.unlink(ceiling)
        w, r = min(t[0] for t in times), min(t[1] for t in times)
        rows.append((nbytes / GIB / w, nbytes / GIB / r, got))
        shutil.rmtree(base, ignore_errors=True)
    plain_w = max(r[0] for r in rows)
    plain_r = max(r[1] for r in rows)
    saves = [r[2]["save"] for r in rows]
    loads = [r[2]["load"] for r in rows]
    write = max(s["throughput_GiB_per_s"] for s in saves)
    read = max(s["throughput_GiB_per_s"] for s in loads)
    peak = statistics.median(r[2]["save_peak_bytes"] or 0 for r in rows)
    rss = statistics.median(r[2]["maxrss_bytes"] for r in rows)
    tag = f"{name}{' (direct://)' if direct else ''}"
    print(f"{tag:<24} write {write:6.3f} GiB/s; write ratio {write / plain_w:5.3f} vs plain fsync'd write "
          f"({plain_w:.3f} GiB/s)")
    print(f"{tag:<24} read  {read:6.3f} GiB/s; read ratio {read / plain_r:5.3f} vs cold plain read ({plain_r:.3f} GiB/s)")
    print(f"{tag:<24} memory: save peak +{_mib(peak)}, memory ratio {peak / piece:6.1f} x the largest piece "
          f"({piece_mib} MiB); process peak {_mib(rss)}")
    s = saves[len(saves) // 2]
    if s["stored_bytes"] != s["bytes"]:
        print(f"{tag:<24} stored/tensor bytes ratio {s['stored_bytes'] / s['bytes']:.6f} "
              f"(overhead {s['stored_bytes'] - s['bytes']:+d} bytes)")
    blocked = statistics.median(x["blocked_s"] for x in saves)
    durable = statistics.median(x["duration_s"] for x in saves)
    cached = [x.get("cached_bytes") for x in loads]
    print(f"{tag:<24} loads began with {', '.join('n/a' if c is None else _mib(c) for c in cached)} of the checkpoint "
          "in the page cache")
    if name in ("dcp", "tf_save", "orbax"):
        print(f"{tag:<24} async: loop blocked {blocked:.3f} s of {durable:.3f} s to durable (blocked ratio "
              f"{blocked / durable:.3f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gib", type=float, default=1.0, help="checkpoint size (GiB)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--piece-mib", type=int, default=8, help="write/read piece (the engine's chunk)")
    ap.add_argument("--dir", default="/var/tmp", help="a folder on the storage to measure (not tmpfs)")
    ap.add_argument("--only", nargs="*", default=None, choices=MECHANISMS)
    ap.add_argument("--direct", action="store_true", help="also raw, stream, torch_save on direct:// (O_DIRECT)")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="measure each process's first save and load (one-time costs included)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-direct", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--bytes", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return 0
    nbytes = int(args.gib * GIB)
    base = tempfile.mkdtemp(prefix="dl-driver-ckpt-bw-", dir=args.dir)
    print(f"checkpoint of {nbytes / GIB:.2f} GiB, one file, fsync, in {args.dir}; best of {args.repeat} rounds; "
          f"{args.piece_mib} MiB pieces")
    print(f"content generation {generation_gibps(args.piece_mib << 20):.2f} GiB/s on one thread (raw generates on "
          "the writing thread, stream on a producer thread)")
    failed = 0
    try:
        for name in args.only or MECHANISMS:
            try:
                measure(name, os.path.join(base, "run"), nbytes, args.piece_mib, args.repeat, False, args.warmup)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print(f"{name}: {e}")
                failed += 1
        if args.direct:
            for name in ("raw", "stream", "torch_save"):
                try:
                    measure(name, os.path.join(base, "run"), nbytes, args.piece_mib, args.repeat, True, args.warmup)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    print(f"{name} (direct://): {e}")
                    failed += 1
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
