"""The native engine reading from a local S3 server against a raw concurrent GET of the same objects.

A seaweedfs S3 gateway (``weed mini``, as the tests start it) runs on 127.0.0.1. For each dataset
((a) 24 npz objects of 16 MiB, (b) 512 npz objects of 64 KiB; one sample per object) this measures,
in one process, with the same concurrency ``T``, alternating run by run:

- **raw GET**: ``T`` threads, each with a share of the objects, calling boto3's ``get_object`` and
  reading the body (one pooled boto3 client with ``T`` connections; no parsing);
- **engine**: ``NativeLoader.epoch`` (``reader.read_threads = T``, ``batch_size`` 4, ``prefetch_size`` T)
  drained by a bare loop, through ``S3Storage.read_into``: one ranged GET per object, streamed into a
  pooled buffer, then the npz parse.

Printed: GB/s and objects/s of each, the best-of-``--repeat`` ratio engine/raw, and the median of the
run-by-run ratios. Both sides share the machine with the server (2 cores here), so the ratio, not
the absolute figure, is the result.

Run: ``.venv/bin/python benchmarks/object_store.py [--threads 4] [--repeat 3] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dlio_core.config import load_config  # noqa: E402
from dlio_core.generate import generate_dataset  # noqa: E402
from dlio_core.loaders import native_loader  # noqa: E402
from dlio_core.listing import dataset_files, dataset_storage  # noqa: E402
from dlio_core.sampling import EpochPlan  # noqa: E402
from tests.integration.conftest_servers import start_seaweed  # noqa: E402

DATASETS = {"large": (24, 16 * 2**20), "small": (512, 64 * 2**10)}


def _cfg(name: str, files: int, size: int, options: dict, threads: int):
    return load_config("default", [
        f"++workload.dataset.data_folder=s3://bench-{name}/data", "++workload.reader.data_loader=native",
        f"++workload.dataset.num_files_train={files}", "++workload.dataset.num_files_eval=0",
        f"++workload.dataset.record_length_bytes={size}", "++workload.dataset.num_samples_per_file=1",
        "++workload.reader.batch_size=4", f"++workload.reader.read_threads={threads}",
        f"++workload.reader.prefetch_size={threads}", "++workload.train.computation_time=0",
        *[f"++workload.storage.storage_options.{k}={v}" for k, v in options.items()],
    ])


def _raw(client, bucket: str, keys: list[str], threads: int) -> tuple[float, int]:
    def share(t: int) -> int:
        n = 0
        for k in keys[t::threads]:
            n += len(client.get_object(Bucket=bucket, Key=k)["Body"].read())
        return n

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        total = sum(ex.map(share, range(threads)))
    return time.perf_counter() - t0, total


def _engine(loader, files: int) -> tuple[float, int]:
    plan = EpochPlan(num_files=files, samples_per_file=1, batch_size=4, world=1, rank=0, seed=1, epoch=1)
    t0 = time.perf_counter()
    total = 0
    for batch in loader.epoch(plan):
        total += batch.bytes_read
        batch.release()
    return time.perf_counter() - t0, total


def measure(name: str, files: int, size: int, options: dict, threads: int, repeat: int) -> dict:
    import boto3
    from botocore.config import Config

    cfg = _cfg(name, files, size, options, threads)
    generate_dataset(cfg, progress=False)
    storage = dataset_storage(cfg)
    flist = dataset_files(cfg, storage, "train")
    loader = native_loader(cfg, storage, flist, split="train")
    client = boto3.client("s3", endpoint_url=options["endpoint_url"], aws_access_key_id=options["access_key_id"],
                          aws_secret_access_key=options["secret_access_key"], region_name="us-east-1",
                          config=Config(max_pool_connections=max(10, threads)))
    bucket, prefix = f"bench-{name}", "data"
    keys = [f"{prefix}/{rel}" for rel, _ in flist]
    _raw(client, bucket, keys, threads)  # warm both: connections, server caches
    _engine(loader, files)
    raw_s, eng_s, ratios = [], [], []
    nbytes = 0
    for _ in range(repeat):
        r, nbytes = _raw(client, bucket, keys, threads)
        e, ebytes = _engine(loader, files - files % 4)
        e *= files / (files - files % 4)  # the plan drops a last partial batch
        raw_s.append(r)
        eng_s.append(e)
        ratios.append(r / e)
        print(f"    run: raw {r:.3f} s, engine {e:.3f} s", flush=True)
    best_raw, best_eng = min(raw_s), min(eng_s)
    return {"objects": files, "object_bytes": size, "threads": threads,
            "raw_GB_per_s": nbytes / best_raw / 1e9, "raw_objects_per_s": files / best_raw,
            "engine_GB_per_s": nbytes / best_eng / 1e9, "engine_objects_per_s": files / best_eng,
            "ratio_best": best_raw / best_eng, "ratio_median": statistics.median(ratios)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=sorted(DATASETS), nargs="*", default=None)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    results: dict = {"machine": {"cpus": os.cpu_count()}, "server": "seaweedfs weed mini on 127.0.0.1"}
    with start_seaweed() as srv:
        for name, (files, size) in DATASETS.items():
            if args.only and name not in args.only:
                continue
            r = measure(name, files, size, dict(srv.options), args.threads, args.repeat)
            results[name] = r
            print(f"{name}: {files} objects of {size:,} B, {args.threads} requests in flight")
            print(f"  raw boto3 GET : {r['raw_GB_per_s']:.3f} GB/s, {r['raw_objects_per_s']:,.0f} objects/s")
            print(f"  engine (S3)   : {r['engine_GB_per_s']:.3f} GB/s, {r['engine_objects_per_s']:,.0f} objects/s")
            print(f"  {name} engine/raw ratio: best {r['ratio_best']:.3f}, median of runs {r['ratio_median']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
