"""Where the retinanet bytes-mode gap of ``formats.py --only jpeg`` goes: the raw-read ceiling (each
thread reads every file into one reused buffer), the same reads into buffers that rotate through as much
memory as a loader's batches in flight (the CPU-cache effect apart), and the engine's epoch, interleaved.

Files: the fork's raw retinanet files (322,624 B, one sample per file), generated as ``formats.py`` does.
Figures: files/s, best of ``--rounds`` interleaved rounds, and each against the headline ceiling (the
reused buffer); the engine's read path and its reads' thread CPU per file.

(A diagnostic, not a benchmark of its own: ``run_all.py`` skips modules whose name starts with ``_``.)

Run: ``.venv/bin/python benchmarks/_jpeg_reads.py [--files 512] [--threads 2] [--rounds 5] [--dir DIR]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _reference_readers import _files_per_second, raw_ceiling  # noqa: E402
from formats import _cfg, _engine_epoch, _files, _generate  # noqa: E402


def rotating_ceiling(paths: list[str], sizes: list[int], threads: int, span_bytes: int) -> float:
    """``raw_ceiling``'s reads, but each file into the next of the thread's buffers, which together
    span ``span_bytes`` (as a loader's buffers of the batches in flight do): the copies miss the CPU cache."""

    def prepare(share):
        size = max(s for _, s in share)
        count = max(1, span_bytes // size)
        bufs = [memoryview(bytearray(size)) for _ in range(count)]

        def read() -> None:
            o_open, o_readv, o_close, flags = os.open, os.readv, os.close, os.O_RDONLY
            for i, (p, s) in enumerate(share):
                fd = o_open(p, flags)
                try:
                    if o_readv(fd, [bufs[i % count][:s]]) != s:
                        raise OSError(f"short read of {p}")
                finally:
                    o_close(fd)

        return read

    return _files_per_second(paths, sizes, threads, prepare)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dir", default=None, help="where to generate the files (default: a temp dir, removed)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        cfg = _cfg("retinanet_b200", Path(tmp) / "bytes", f"++workload.dataset.num_files_train={args.files}",
                   "++workload.dataset.image_encoding=raw", "++workload.reader.decode=False")
        _generate(cfg, threads=args.threads)
        paths, sizes = _files(cfg)
        batch = cfg.reader.batch_size
        span = batch * max(sizes) * 3  # a batch being read, one in flight, one being consumed
        head = "ceiling (one reused buffer a thread)"
        runs = {head: lambda: raw_ceiling(paths, sizes, args.threads),
                f"rotating buffers ({span / 2**20:.0f} MiB a thread)":
                    lambda: rotating_ceiling(paths, sizes, args.threads, span),
                "engine epoch": lambda: (lambda s, n, _: n / s)(*_engine_epoch(cfg, threads=args.threads))}
        best: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, fn in runs.items():
                c0 = time.process_time()
                best[name] = max(best.get(name, 0.0), fn())
                cpu[name] = min(cpu.get(name, 1e9), (time.process_time() - c0) / len(paths))
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"retinanet bytes mode: {len(paths)} files of {sizes[0]:,} B, {args.threads} threads, batch {batch}, "
              f"best of {args.rounds} rounds (load average {load}); process CPU per file, least of the rounds")
        for name, v in best.items():
            print(f"  {name:40s} {v:9,.0f} files/s  {v * sizes[0] / 1e9:5.2f} GB/s  ratio {v / best[head]:4.2f}"
                  f"  CPU {cpu[name] * 1e6:6.1f} us a file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
