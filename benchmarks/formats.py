"""Formats (issue 14): generation, reads, dispatch and memory, each against a ceiling measured in the same run.

    python benchmarks/formats.py [--quick] [--only gen,jpeg,parquet,dispatch,memory] [--threads N] [--gen-files N]

* ``gen``: generation GB/s of npy, npz, indexed_binary and raw-bytes jpeg/png (``generate_dataset``, one
  writer thread, 32 files each) against a raw write of the same files, count and sizes (``os.write`` of
  bytes made beforehand, one thread, no fsync; indexed_binary's index files included), the same with a
  rename into place per file (as ours), and PCG64 random bytes made per file and written; parquet
  (the fork's dlrm_b200 schema) beside ``pyarrow.parquet.write_table`` of a table made beforehand.
* ``jpeg``: retinanet-shaped files, one sample per file, read by the engine in ``bytes`` mode (the fork's
  raw 322,624 B files) and ``decode`` mode (real JPEGs of 568x568 noise), each against the raw-read
  ceiling of the same files (``open`` + ``readv`` per file, same threads).
* ``parquet``: flux_b200 (every column, one row group per file) and dlrm_b200 (its 5 ``read: true``
  columns, 6,144-row groups) read by the engine against pyarrow reading the same columns and row groups
  (``ParquetFile.read_row_groups``, its own thread pool).
* ``dispatch``: dlrm_b200's batches of 16,384: samples planned per second (``EpochPlan.batch``, no I/O),
  and samples handed out per second per rank by the engine with ranged reads (parquet row groups;
  indexed_binary records of 761 B) against reading the same bytes with one ``preadv``.
* ``memory``: peak RSS of a process generating, then one reading (bytes mode), flux_b200 files (stock
  rows; ``--quick``: 16) and a dlrm_b200 file (scaled rows: 1/8 of stock, ``--quick`` 1/384): what the
  action adds over the process after its imports and config (VmHWM reset), beside one row group's bytes.

Files live in the page cache (just written): figures measure the client, not a device. Every line with
a ratio contains the word ``ratio`` (``run_all.py`` collects them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reference_readers import raw_ceiling  # noqa: E402

GB = 1e9
_FLAT = ["++workload.dataset.num_files_eval=0", "++workload.dataset.num_subfolders_train=0",
         "++workload.dataset.num_subfolders_eval=0"]


def _cfg(workload: str, folder: Path, *extra: str):
    from dlio_core.config import load_config

    return load_config(workload, [f"++workload.dataset.data_folder={folder}", *_FLAT, *extra])


def _generate(cfg, threads: int = 1) -> tuple[float, list[tuple[str, int]]]:
    from dlio_core.generate import generate_dataset

    t0 = time.perf_counter()
    manifest = generate_dataset(cfg, progress=False, threads=threads)
    return time.perf_counter() - t0, list(manifest.train)


def _engine_epoch(cfg, *, threads: int, fmt=None) -> tuple[float, int, int]:
    """(seconds, samples, bytes read) of one epoch of the train split through the native engine."""
    from dlio_core.engine import NativeLoader
    from dlio_core.listing import dataset_files, dataset_storage
    from dlio_core.reader import epoch_plan, reader_format

    storage = dataset_storage(cfg)
    files = dataset_files(cfg, storage, "train")
    loader = NativeLoader(storage, fmt or reader_format(cfg), [storage.join(r) for r, _ in files],
                          sizes=[s for _, s in files], read_threads=threads, prefetch_size=max(2, threads))
    samples = nbytes = 0
    with loader:
        t0 = time.perf_counter()
        for batch in loader.epoch(epoch_plan(cfg, split="train", epoch=1)):
            samples += batch.num_samples
            nbytes += batch.bytes_read
            batch.release()
        return time.perf_counter() - t0, samples, nbytes


# --------------------------------------------------------------------------- generation
def _raw_write(folder: Path, sizes: list[int], make_random: bool = False, rename: bool = False) -> float:
    """Seconds to write files of ``sizes`` with one ``os.write`` each, one thread, no fsync: bytes made
    beforehand, or made per file by PCG64 for every byte when ``make_random`` (how ours made them before
    session 5); ``rename`` writes each to a temporary name first and renames it into place, as ours does."""
    folder.mkdir(parents=True, exist_ok=True)
    made = np.random.default_rng(1).integers(0, 255, max(sizes), dtype=np.uint8)
    bitgen = np.random.PCG64(7)
    t0 = time.perf_counter()
    for i, size in enumerate(sizes):
        data = bitgen.random_raw((size + 7) // 8).view(np.uint8)[:size] if make_random else made[:size]
        name = str(folder / f"f{i}")
        fd = os.open(name + ".tmp" if rename else name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        if rename:
            os.replace(name + ".tmp", name)
    return time.perf_counter() - t0


def _written(folder: Path) -> list[int]:
    """Sizes of every file generation left under ``folder`` but its manifest (a data file and, for
    indexed_binary, its two index files): what the ceilings write too."""
    from dlio_core.manifest import MANIFEST_NAME

    return [p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST_NAME]


def bench_generation(tmp: Path, quick: bool, files: int | None = None) -> None:
    """Generation against plain writes of the same files (count and sizes), one thread each, no fsync."""
    files = files or (16 if quick else 32)
    spf, length = (4, 64 << 10) if quick else (8, 128 << 10)
    cases = [("npy", ()), ("npz", ()), ("indexed_binary", ()),
             ("jpeg", ("++workload.dataset.image_encoding=raw",)), ("png", ("++workload.dataset.image_encoding=raw",))]
    print(f"generation, one writer thread ({files} files of {spf} x {length // 1024} KiB samples; images one "
          f"{322_624:,} B sample per file; best of 3, interleaved). Ceilings write the same files (indexed_binary: "
          f"with its two index files; not the manifest) from bytes made beforehand; ours also renames each file "
          f"into place (the 'with rename' ceiling does too)")
    for fmt, extra in cases:
        one = fmt in ("jpeg", "png")
        cfg = _cfg("default", tmp / fmt, f"++workload.dataset.format={fmt}",
                   f"++workload.dataset.num_files_train={files}",
                   f"++workload.dataset.num_samples_per_file={1 if one else spf}",
                   f"++workload.dataset.record_length_bytes={322_957 if one else length}", *extra)
        best = [float("inf")] * 4
        for _ in range(3):
            seconds, manifest = _generate(cfg)
            data_bytes = sum(s for _, s in manifest)
            sizes = _written(tmp / fmt)
            shutil.rmtree(tmp / fmt)
            times = [seconds]
            for kind in ({}, {"rename": True}, {"make_random": True}):
                times.append(_raw_write(tmp / "raw", sizes, **kind))
                shutil.rmtree(tmp / "raw")
            best = [min(b, t) for b, t in zip(best, times)]
        ours, raw, renamed, rand = (data_bytes / t / GB for t in best)
        print(f"  {fmt:<15} {ours:6.2f} GB/s  raw write {raw:6.2f} GB/s  ratio {ours / raw:4.2f}   (with rename "
              f"{renamed:5.2f} GB/s, ratio {ours / renamed:4.2f}; PCG64 random+write {rand:5.2f} GB/s, ratio "
              f"{ours / rand:4.2f}; {len(sizes)} files)")
    _parquet_generation(tmp, quick)


def _parquet_generation(tmp: Path, quick: bool) -> None:
    import pyarrow.parquet as pq

    from dlio_core.formats._parquet_schema import generate_table
    from dlio_core.reader import reader_format

    rows = 6144 * (4 if quick else 32)
    cfg = _cfg("dlrm_b200", tmp / "pq", "++workload.dataset.num_files_train=1",
               f"++workload.dataset.num_samples_per_file={rows}")
    fmt = reader_format(cfg)
    ours = theirs = theirs_made = 0.0
    for _ in range(3):
        seconds, manifest = _generate(cfg)
        ours = max(ours, sum(s for _, s in manifest) / seconds)
        shutil.rmtree(tmp / "pq")
        t0 = time.perf_counter()
        table = generate_table(fmt.schema_columns, rows, np.random.default_rng(3))
        t1 = time.perf_counter()
        pq.write_table(table, tmp / "pyarrow.parquet", row_group_size=fmt.row_group_size, compression="none")
        t2 = time.perf_counter()
        size = (tmp / "pyarrow.parquet").stat().st_size
        theirs, theirs_made = max(theirs, size / (t2 - t1)), max(theirs_made, size / (t2 - t0))
        (tmp / "pyarrow.parquet").unlink()
        del table
    print(f"  parquet dlrm_b200 ({rows:,} rows) {ours / GB:5.3f} GB/s  pyarrow write_table {theirs / GB:5.3f} GB/s  "
          f"ratio {ours / theirs:4.2f}   (pyarrow making the table too {theirs_made / GB:5.3f} GB/s, ratio "
          f"{ours / theirs_made:4.2f})")


# --------------------------------------------------------------------------- retinanet jpeg
def _files(cfg) -> tuple[list[str], list[int]]:
    from dlio_core.listing import dataset_files, dataset_storage

    storage = dataset_storage(cfg)
    listed = dataset_files(cfg, storage, "train")
    return [storage.local_path(r) for r, _ in listed], [s for _, s in listed]


def bench_jpeg(tmp: Path, quick: bool, threads: int) -> None:
    """Bytes mode over the fork's raw files (322,624 B: 568 x 568, DLIO's square of 322,957 B), as MLPerf
    Storage v3 reads retinanet; decode mode over real JPEGs of the same pixels (noise: ~180 KB each)."""
    files = 64 if quick else 512
    modes = {"bytes": ("raw", False), "decode": ("encoded", True)}
    print(f"retinanet jpeg: {files} files, {threads} read threads, page cache, best of 3 interleaved")
    for mode, (encoding, decode) in modes.items():
        over = [f"++workload.dataset.num_files_train={files}", f"++workload.dataset.image_encoding={encoding}",
                f"++workload.reader.decode={decode}"]
        cfg = _cfg("retinanet_b200", tmp / mode, *over)
        _generate(cfg, threads=threads)
        paths, sizes = _files(cfg)
        mean = sum(sizes) / len(sizes)
        ceil = ours = 0.0
        for _ in range(3):
            ceil = max(ceil, raw_ceiling(paths, sizes, threads))
            seconds, samples, _ = _engine_epoch(cfg, threads=threads)
            ours = max(ours, samples / seconds)
        print(f"  {mode:<6} mode ({encoding} files of {mean:,.0f} B): {ours:8.0f} files/s "
              f"({ours * mean / GB:5.2f} GB/s); "
              f"raw read ceiling {ceil:8.0f} files/s  ratio {ours / ceil:4.2f}")
        shutil.rmtree(tmp / mode, ignore_errors=True)


# --------------------------------------------------------------------------- parquet flux / dlrm
def _pyarrow_read(paths: list[Path], columns: list[str]) -> tuple[float, int]:
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    rows = 0
    for p in paths:
        f = pq.ParquetFile(p)
        rows += f.read_row_groups(list(range(f.metadata.num_row_groups)), columns=columns).num_rows
    return time.perf_counter() - t0, rows


def bench_parquet(tmp: Path, quick: bool, threads: int) -> None:
    from dlio_core.reader import reader_format

    shapes = [("flux_b200", 2, 8 if quick else 48), ("dlrm_b200", 2, 6144 * (2 if quick else 32))]
    for workload, nfiles, rows in shapes:
        over = [f"++workload.dataset.num_files_train={nfiles}", f"++workload.dataset.num_samples_per_file={rows}",
                "++workload.reader.batch_size=%d" % (8 if workload == "flux_b200" else 16384)]
        cfg = _cfg(workload, tmp / workload, *over)
        _, manifest = _generate(cfg, threads=threads)
        fmt = reader_format(cfg)
        columns = list(fmt.selected)
        paths = [tmp / workload / rel for rel, _ in manifest]
        best = {"pyarrow": 0.0, "bytes": 0.0, "decode": 0.0}
        nbytes = {}
        for _ in range(3):
            seconds, n = _pyarrow_read(paths, columns)
            best["pyarrow"] = max(best["pyarrow"], n / seconds)
            for mode in ("bytes", "decode"):
                c = _cfg(workload, tmp / workload, *over, f"++workload.reader.decode={mode == 'decode'}")
                seconds, n, nbytes[mode] = _engine_epoch(c, threads=threads)
                best[mode] = max(best[mode], n / seconds)
        print(f"{workload} parquet: {nfiles} files x {rows:,} rows, columns {len(columns)} of "
              f"{len(fmt.schema_columns)}, {nbytes['bytes'] / GB:.3f} GB read per pass, {threads} read threads")
        print(f"  pyarrow read_row_groups {best['pyarrow']:10.0f} rows/s")
        for mode in ("bytes", "decode"):
            print(f"  ours, {mode:<6} mode      {best[mode]:10.0f} rows/s  ratio {best[mode] / best['pyarrow']:5.2f}")
        shutil.rmtree(tmp / workload, ignore_errors=True)


# --------------------------------------------------------------------------- dlrm dispatch
def bench_dispatch(tmp: Path, quick: bool, threads: int) -> None:
    from dlio_core.sampling import EpochPlan

    batch, stock_spf = 16384, 4_718_592
    for ss in ("off", "seed"):
        plan = EpochPlan(1024, stock_spf, batch, world=1, rank=0, seed=123, epoch=1, file_shuffle="off",
                         sample_shuffle=ss)
        n = 50 if quick else 400
        stride = max(plan.steps // n, 1)
        t0 = time.perf_counter()
        for i in range(n):
            plan.batch(i * stride)
        rate = n * batch / (time.perf_counter() - t0)
        print(f"dlrm_b200 planning (sample_shuffle {ss}): {rate:14,.0f} samples/s per rank")
    rows = 6144 * (8 if quick else 96)
    cases = [("parquet (dlrm_b200)", "dlrm_b200", []),
             ("indexed_binary 761 B", "default", ["++workload.dataset.format=indexed_binary",
                                                   "++workload.dataset.record_length_bytes=761",
                                                   "++workload.dataset.record_dims=[761]"])]
    for label, workload, extra in cases:
        cfg = _cfg(workload, tmp / "dispatch", "++workload.dataset.num_files_train=1",
                   f"++workload.dataset.num_samples_per_file={rows}", f"++workload.reader.batch_size={batch}", *extra)
        _, manifest = _generate(cfg, threads=threads)
        path = tmp / "dispatch" / manifest[0][0]
        best_ours = best_raw = 0.0
        for _ in range(3):
            seconds, samples, nbytes = _engine_epoch(cfg, threads=threads)
            best_ours = max(best_ours, samples / seconds)
            buf = np.empty(nbytes, np.uint8)
            fd = os.open(path, os.O_RDONLY)
            t0 = time.perf_counter()
            os.preadv(fd, [memoryview(buf)[:min(nbytes, path.stat().st_size)]], 0)
            best_raw = max(best_raw, samples / (time.perf_counter() - t0))
            os.close(fd)
        print(f"  handed out, {label}: {best_ours:14,.0f} samples/s per rank ({rows:,} rows, batch {batch})  "
              f"one-preadv ceiling {best_raw:14,.0f}  ratio {best_ours / best_raw:4.2f}")
        shutil.rmtree(tmp / "dispatch", ignore_errors=True)


# --------------------------------------------------------------------------- peak memory
def _child(args: list[str]) -> None:
    """``--child ACTION WORKLOAD FOLDER ROWS FILES``: generate or read (bytes mode) after the imports and
    the config, printing the peak RSS reached by the action alone (VmHWM reset through clear_refs)."""
    action, workload, folder, rows, files = args[0], args[1], Path(args[2]), int(args[3]), int(args[4])
    import pyarrow.parquet  # noqa: F401

    from dlio_core.generate import generate_dataset  # noqa: F401
    from dlio_core.reader import native_reader  # noqa: F401

    stock = _cfg(workload, folder).reader.batch_size
    cfg = _cfg(workload, folder, f"++workload.dataset.num_files_train={files}",
               f"++workload.dataset.num_samples_per_file={rows}",
               f"++workload.reader.batch_size={min(stock, rows * files)}")  # at least one step when scaled
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak so far (imports) is not the action's
    if action == "generate":
        _generate(cfg)
        nbytes = 0
    else:
        nbytes = _engine_epoch(cfg, threads=1)[2]
    print(json.dumps({"before_bytes": before, "peak_bytes": _status("VmHWM"), "bytes_read": nbytes}))


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _peak(action: str, workload: str, folder: Path, rows: int, files: int) -> tuple[int, int]:
    out = subprocess.run([sys.executable, __file__, "--child", action, workload, str(folder), str(rows), str(files)],
                         capture_output=True, text=True, check=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if action == "read" and not got["bytes_read"]:
        raise RuntimeError(f"{workload}: the read child read nothing")
    return got["peak_bytes"] - got["before_bytes"], got["peak_bytes"]


def bench_memory(tmp: Path, quick: bool) -> None:
    from dlio_core.reader import reader_format

    cases = [("flux_b200", 16 if quick else 288, 1 if quick else 2), ("dlrm_b200", 12288 if quick else 589_824, 1)]
    for workload, rows, files in cases:
        folder = tmp / f"mem_{workload}"
        fmt = reader_format(_cfg(workload, folder))
        row_bytes = sum(c.nbytes for c in fmt.schema_columns)
        group_bytes = min(rows, fmt.row_group_size) * row_bytes
        gen, gen_peak = _peak("generate", workload, folder, rows, files)
        read, read_peak = _peak("read", workload, folder, rows, files)
        data = sum(p.stat().st_size for p in folder.rglob("*.parquet"))
        print(f"{workload} peak RSS ({files} x {rows:,} rows, {data / GB:.2f} GB on disk, row group "
              f"{group_bytes / 2**20:,.1f} MiB): generate +{gen / 2**20:,.0f} MiB (peak {gen_peak / 2**20:,.0f}), "
              f"read +{read / 2**20:,.0f} MiB (peak {read_peak / 2**20:,.0f}); in row groups: "
              f"{gen / group_bytes:.2f} and {read / group_bytes:.2f}")
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds, for CI and smoke runs)")
    ap.add_argument("--only", default="gen,jpeg,parquet,dispatch,memory", help="comma-separated parts")
    ap.add_argument("--threads", type=int, default=2, help="read (and jpeg/parquet generation) threads")
    ap.add_argument("--gen-files", type=int, default=None, help="files per format in 'gen' (default 32; --quick 16)")
    args = ap.parse_args()
    import warnings

    warnings.simplefilter("ignore")  # record_length_bytes ignored for parquet schemas: expected here
    parts = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="dl-driver-formats-") as d:
        tmp = Path(d)
        if "gen" in parts:
            bench_generation(tmp, args.quick, args.gen_files)
        if "jpeg" in parts:
            bench_jpeg(tmp, args.quick, args.threads)
        if "parquet" in parts:
            bench_parquet(tmp, args.quick, args.threads)
        if "dispatch" in parts:
            bench_dispatch(tmp, args.quick, args.threads)
        if "memory" in parts:
            bench_memory(tmp, args.quick)


if __name__ == "__main__":
    main()
