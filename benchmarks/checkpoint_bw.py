"""Checkpoint bandwidth of every mechanism against the device's own ceiling, in one run on local files.

For each mechanism (``raw``, ``stream``, ``torch_save``, ``dcp``, ``tf_save``, ``orbax``, and ``stream`` with
zstd) the checkpoint engine saves checkpoints of ``--gib`` GiB (one file, DLIO's CNN layout, fsync on,
incompressible content) and loads them back after evicting them from the page cache, in one fresh process per
mechanism (clean memory figures; JAX and TensorFlow apart) that this script drives round by round. The ceiling,
in the same folder: a plain sequential write of the same number of equally unique bytes (made before its clock
starts, written in ``--piece-mib`` writes, then ``fsync``) and a cold sequential read of that file (evicted with
``POSIX_FADV_DONTNEED`` after its ``fsync``, as the engine evicts a checkpoint, and checked with ``mincore``): one
sequential reader in reads of ``--read-mib``, the size of the engine's own reused load buffer (by default the
engine's 32 MiB), so both sides ask the disk for the same requests.

The disk this was written for (a VM's virtio disk) gives a plain fsync'd write anywhere from 0.4 to 2 GiB/s from
one minute to the next, so a ceiling measured once and a mechanism measured later compare two different disks.
Each of ``--rounds`` rounds therefore measures the ceiling and the mechanism back to back, alternating which goes
first (ABBA: ceiling, mechanism; then mechanism, ceiling; ...), and the figure is the ratio within each round:
the headline is the median of those paired ratios, with their min and max. Both sides start alike: ``sync``
before every timed write, a fresh file in the same folder, the same piece size, ``fsync`` at the end; every read
begins with the file evicted and reports what the page cache still held; every file is evicted again after its
read; and right before each timed operation the same amount of memory is touched and freed (see
:func:`warm_memory`: this VM returns idle memory to its host). Printed per mechanism, each comparison on a line
containing ``ratio``:

- write: checkpoint bytes over the engine's duration (barrier to commit marker durable) against the plain
  fsync'd write; for ``raw`` and ``stream`` also against a plain write that starts each piece's writeback as
  soon as it is written (``sync_file_range``, what those two do with ``fsync``), for reference;
- read: GiB/s over the cold plain read;
- peak resident memory growth during the save (the kernel's ``VmHWM``) over the largest piece (``--piece-mib``),
  and the whole process's peak;
- for framework mechanisms, their metadata overhead (stored bytes over tensor bytes) and, for asynchronous
  ones, the time the training loop was blocked against the time to durable.

Each mechanism process makes one untimed save and load first (unless ``--no-warmup``: steady state, as a run
writes many). Aims (issue 16): ``raw`` and ``stream`` write at >= 0.95 of the plain write and ``raw`` reads at
>= 0.95 of the plain read.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/checkpoint_bw.py [--gib 1] [--rounds 5] [--dir /var/tmp]
[--only raw stream] [--direct]``; ``--direct`` adds ``raw``, ``stream`` and ``torch_save`` on ``direct://``
against an ``O_DIRECT`` plain write and read.
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
SETTLE_S = 1.0  # idle time after a round's deletions, before the next round's first timed write
EARLY_WRITEBACK = ("raw", "stream")  # the mechanisms that start writeback per piece (dlio_core.checkpoint.writeback)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ------------------------------------------------------------------------------------------- ceilings
def _aligned(nbytes: int) -> np.ndarray:
    raw = np.empty(nbytes + 4096, dtype=np.uint8)
    start = (-raw.ctypes.data) % 4096
    return raw[start:start + nbytes]


def make_bytes(data: np.ndarray, piece: int) -> None:
    """Fill ``data`` with bytes as unique as a checkpoint's (a ChunkSource key per piece, a fresh nonce per call: a
    deduplicating or compressing layer must not write less), refilled each round in memory the process owns."""
    from dlio_core.checkpoint import ChunkSource

    src = ChunkSource(piece, nonce=int.from_bytes(os.urandom(8), "little") >> 1)
    for i, off in enumerate(range(0, data.nbytes, piece)):
        n = min(piece, data.nbytes - off)
        src.chunk("plain.bin", i, n, out=data[off:off + n])


def evict(path: str) -> int | None:
    """Evict ``path`` from the page cache (its pages are clean: it was fsync'd); the bytes still cached after."""
    from dlio_core.checkpoint.coldread import resident_file_bytes

    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return resident_file_bytes(path)


def warm_memory(nbytes: int) -> None:
    """Touch ``nbytes`` of memory and free it, right before a timed write or read (both sides alike), so the page
    cache that operation fills takes pages the host backs already. This VM hands memory it has not used for a while
    back to its host (free page reporting, DAMON), and the first touch of such a page costs a host fault: an
    fsync'd 0.5 GiB write whose page cache grew into such memory took 1.8 s instead of 0.12 s to copy, and whichever
    of two reads came second in a round ran 2-3x slower, whatever the operation."""
    np.ones(nbytes, dtype=np.uint8)  # allocated, touched and freed at once (a large array is its own mapping)


def evict_tree(folder: str) -> None:
    """Evict every file under ``folder`` (a checkpoint just loaded), as :func:`plain_read` leaves its file: both
    sides of a round leave the page cache as they found it (see :func:`warm_memory` for why it matters here)."""
    for d, _, files in os.walk(folder):
        for f in files:
            evict(os.path.join(d, f))


def plain_write(path: str, data: np.ndarray, piece: int, direct: bool, early: bool = False) -> float:
    """Seconds to write ``data`` (made before the clock starts) to a new file in ``piece``-byte writes, then fsync;
    the file is then evicted from the page cache, as the engine evicts a saved checkpoint. ``early``: start each
    piece's writeback as soon as it is written (what ``raw`` and ``stream`` do), for reference."""
    from dlio_core.checkpoint.writeback import Writeback

    nbytes = data.nbytes
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | (getattr(os, "O_DIRECT", 0) if direct else 0)
    view = memoryview(data)
    os.sync()  # start from a clean slate: no one's dirty pages flushed on our clock
    t0 = time.perf_counter()
    fd = os.open(path, flags, 0o644)
    try:
        wb = Writeback(fd) if early else None
        done = 0
        while done < nbytes:
            if direct and nbytes - done < piece and (nbytes - done) % 4096:
                # the last, partial block: O_DIRECT needs whole blocks (the mechanisms do the same)
                import fcntl

                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
            n = os.write(fd, view[done:min(done + piece, nbytes)])
            done += n
            if wb is not None:
                wb.wrote(n)
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - t0
    evict(path)
    return seconds


def plain_read(path: str, piece: int, direct: bool) -> tuple[float, int | None]:
    """Seconds to read ``path`` sequentially in ``piece``-byte reads after evicting it from the page cache, and the
    bytes the cache still held when the read began (0: a cold read). The caller evicts it again after (see
    :func:`evict_tree`)."""
    cached = evict(path)
    buf = _aligned(piece)
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECT", 0) if direct else 0))
    try:
        while os.readv(fd, [buf]) > 0:
            pass
    finally:
        os.close(fd)
    return time.perf_counter() - t0, cached


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
    """Serve one mechanism in this fresh process: after the warm-up, ``save K`` / ``load K`` lines on stdin
    each save or load checkpoint (1, K) and answer one JSON line; ``quit`` answers the process's peak memory."""
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
                           read_buffer_bytes=args.read_mib << 20)
    first = None
    if args.warmup:  # one-time costs (lazy framework set-up, first page-cache growth) are not the steady state
        first = eng.save(1, 0).peak_memory_bytes  # the first save allocates the buffers later saves reuse
        eng.load(1, 0)
        shutil.rmtree(os.path.join(args.folder, eng.folder(1, 0)), ignore_errors=True)
    print(json.dumps({"ready": True, "warmup_peak_bytes": first}), flush=True)
    for line in sys.stdin:
        verb, _, arg = line.strip().partition(" ")
        if verb == "save":
            os.sync()  # as before the plain write
            out = {"save": eng.save(1, int(arg)).to_dict()}
        elif verb == "load":
            out = {"load": eng.load(1, int(arg)).to_dict()}
        else:
            print(json.dumps({"maxrss_bytes": peak_bytes()}), flush=True)  # VmHWM: ru_maxrss survives exec
            return
        print(json.dumps(out), flush=True)


class Child:
    """One mechanism's process, driven a save or a load at a time (so the ceiling can run between them)."""

    def __init__(self, name: str, folder: str, nbytes: int, piece_mib: int, direct: bool, warmup: bool, read_mib: int
                 ) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
                   TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--folder", folder, "--bytes", str(nbytes),
               "--piece-mib", str(piece_mib), "--read-mib", str(read_mib)]
        cmd += (["--child-direct"] if direct else []) + ([] if warmup else ["--no-warmup"])
        self.name, self.folder = name, folder
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True)
        self.warmup_peak = self._answer()["warmup_peak_bytes"]

    def ask(self, verb: str, step: int | None = None) -> dict:
        self.proc.stdin.write(f"{verb} {'' if step is None else step}\n")
        self.proc.stdin.flush()
        return self._answer()

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=60)
            self.stderr.seek(0)
            raise RuntimeError(f"{self.name} failed:\n{self.stderr.read().decode(errors='replace')[-3000:]}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()


# ------------------------------------------------------------------------------------------- report
def _mib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / (1 << 20):.0f} MiB"


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def one_round(proc: Child, base: str, data: np.ndarray, piece: int, direct: bool, early: bool, step: int,
              mech_first: bool, read: int) -> dict:
    """Writes, then reads, of the ceiling and the mechanism (checkpoint step ``step``) in the order asked; every
    file is evicted after it is written and after it is read (see :func:`evict_tree`), and all are deleted at
    the end, outside every timed operation."""
    plain, folder = os.path.join(base, "plain.bin"), os.path.join(base, "ck", f"global_epoch1_step{step}")
    order = ["mech", "plain"] if mech_first else ["plain", "mech"]
    got: dict = {}
    for what in (["early", *order] if mech_first else [*order, "early"]) if early else order:
        warm_memory(data.nbytes)
        if what == "mech":
            got["save"] = proc.ask("save", step)["save"]
        elif what == "plain":
            got["plain_write_s"] = plain_write(plain, data, piece, direct)
        else:  # the reference ceiling on the other side of the mechanism
            got["early_write_s"] = plain_write(plain + ".early", data, piece, direct, early=True)
    for what in order:
        warm_memory(data.nbytes)
        if what == "mech":
            got["load"] = proc.ask("load", step)["load"]
            evict_tree(folder)
        else:
            got["plain_read_s"], got["plain_cached"] = plain_read(plain, read, direct)
            evict(plain)
    # Deleted only now, then settled: this disk discards freed blocks (ext4 -o discard), and a timed write
    # that followed a deletion was 2-3x slower (the mechanism's, in the rounds where it came right after the
    # reference write's file was deleted)
    for f in (plain, plain + ".early"):
        if os.path.exists(f):
            os.unlink(f)
    shutil.rmtree(folder, ignore_errors=True)
    os.sync()
    time.sleep(SETTLE_S)
    return got


def measure(name: str, base: str, nbytes: int, piece_mib: int, rounds: int, direct: bool, warmup: bool = True,
            read_mib: int = 16) -> None:
    """``rounds`` interleaved rounds of ceiling and mechanism (see the module doc); print the paired ratios."""
    piece = piece_mib << 20
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    early = name in EARLY_WRITEBACK and not direct
    data = _aligned(nbytes)
    proc = Child(name, os.path.join(base, "ck"), nbytes, piece_mib, direct, warmup, read_mib)
    w_ratio, w_early_ratio, r_ratio, w_mech, w_plain, r_mech, r_plain = [], [], [], [], [], [], []
    saves, loads, ceiling_cached = [], [], []
    gib = nbytes / GIB
    try:
        if warmup:  # the ceiling's warm-up, as the mechanism had its own: on this VM the first time the page
            make_bytes(data, piece)  # cache grows into memory the guest has not used yet costs 10x (measured)
            one_round(proc, base, data, piece, direct, early, rounds + 1, False, read_mib << 20)
        for k in range(1, rounds + 1):
            make_bytes(data, piece)
            mech_first = k % 2 == 0  # ABBA: the ceiling first in odd rounds, the mechanism first in even ones
            got = one_round(proc, base, data, piece, direct, early, k, mech_first, read_mib << 20)
            saves.append(got["save"]), loads.append(got["load"]), ceiling_cached.append(got["plain_cached"])
            w, pw = got["save"]["throughput_GiB_per_s"], gib / got["plain_write_s"]
            rd, pr = got["load"]["throughput_GiB_per_s"], gib / got["plain_read_s"]
            w_mech.append(w), w_plain.append(pw), r_mech.append(rd), r_plain.append(pr)
            w_ratio.append(w / pw), r_ratio.append(rd / pr)
            line = f"  round {k} ({'mechanism first' if mech_first else 'ceiling first'}): write {w:.3f} / {pw:.3f} GiB/s"
            if early:
                w_early_ratio.append(w / (gib / got["early_write_s"]))
                line += f" (early-writeback plain {gib / got['early_write_s']:.3f})"
            print(f"{line}; read {rd:.3f} / {pr:.3f} GiB/s", flush=True)
        maxrss = proc.ask("quit")["maxrss_bytes"]
    finally:
        proc.close()
        shutil.rmtree(base, ignore_errors=True)
    tag = f"{name}{' (direct://)' if direct else ''}"
    print(f"{tag:<24} write ratio {_spread(w_ratio)} over {rounds} paired rounds vs plain fsync'd write; "
          f"GiB/s {_spread(w_mech)}, plain {_spread(w_plain)}")
    if early:
        print(f"{tag:<24} write ratio vs a plain write with the same early writeback (reference) "
              f"{_spread(w_early_ratio)}")
    print(f"{tag:<24} read ratio {_spread(r_ratio)} over {rounds} paired rounds vs cold plain read; "
          f"GiB/s {_spread(r_mech)}, plain {_spread(r_plain)}")
    # the largest growth of any save: the first one (the warm-up's) allocates the pieces later saves reuse
    peak = max([s["peak_memory_bytes"] or 0 for s in saves] + [proc.warmup_peak or 0])
    load_peak = max([x.get("peak_memory_bytes") or 0 for x in loads])
    print(f"{tag:<24} memory: save peak +{_mib(peak)}, memory ratio {peak / piece:6.1f} x the largest piece "
          f"({piece_mib} MiB); load peak +{_mib(load_peak)} (its read buffer: {read_mib} MiB); process peak "
          f"{_mib(maxrss)}")
    s = saves[len(saves) // 2]
    if s["stored_bytes"] != s["bytes"]:
        print(f"{tag:<24} stored/tensor bytes ratio {s['stored_bytes'] / s['bytes']:.6f} "
              f"(overhead {s['stored_bytes'] - s['bytes']:+d} bytes)")
    cached = [x.get("cached_bytes") for x in loads]
    print(f"{tag:<24} loads began with {', '.join('n/a' if c is None else _mib(c) for c in cached)} of the checkpoint "
          f"in the page cache (plain reads: {', '.join('n/a' if c is None else _mib(c) for c in ceiling_cached)})")
    if name in ("dcp", "tf_save", "orbax"):
        blocked = statistics.median(x["blocked_s"] for x in saves)
        durable = statistics.median(x["duration_s"] for x in saves)
        print(f"{tag:<24} async: loop blocked {blocked:.3f} s of {durable:.3f} s to durable (blocked ratio "
              f"{blocked / durable:.3f})")


def main(argv: list[str] | None = None) -> int:
    from dlio_core.checkpoint.engine import DEFAULT_READ_BUFFER_BYTES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gib", type=float, default=1.0, help="checkpoint size (GiB)")
    ap.add_argument("--rounds", "--repeat", type=int, default=5,
                    help="interleaved rounds of ceiling and mechanism (the median paired ratio is the figure)")
    ap.add_argument("--piece-mib", type=int, default=8, help="write/read piece (the engine's chunk)")
    ap.add_argument("--read-mib", type=int, default=DEFAULT_READ_BUFFER_BYTES >> 20,
                    help="the engine's load buffer, one read per call, and the plain read's request size "
                         "(default: the engine's own)")
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
    if args.rounds < 1:
        ap.error(f"--rounds must be at least 1, got {args.rounds}")
    nbytes = int(args.gib * GIB)
    base = tempfile.mkdtemp(prefix="dl-driver-ckpt-bw-", dir=args.dir)
    print(f"checkpoint of {nbytes / GIB:.2f} GiB, one file, fsync, in {args.dir}; {args.rounds} interleaved rounds "
          f"(ABBA) of plain write/read and mechanism; {args.piece_mib} MiB pieces; the engine loads in "
          f"{args.read_mib} MiB reads, the plain read too (one sequential reader)")
    print(f"content generation {generation_gibps(args.piece_mib << 20):.2f} GiB/s on one thread (raw generates on "
          "the writing thread, stream on a producer thread)")
    failed = 0
    try:
        runs = [(name, False) for name in (args.only or MECHANISMS)]
        runs += [(name, True) for name in ("raw", "stream", "torch_save")] if args.direct else []
        for name, direct in runs:
            try:
                measure(name, os.path.join(base, "run"), nbytes, args.piece_mib, args.rounds, direct, args.warmup,
                        args.read_mib)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                print(f"{name}{' (direct://)' if direct else ''}: {e}")
                failed += 1
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
