"""The object-store path as a user sees it: fresh ``dl-driver run`` processes reading from a local S3
server, against a raw concurrent GET of the same objects measured just before each.

A seaweedfs S3 gateway (``weed mini``, as the tests start it) runs on 127.0.0.1. For each dataset
((a) 24 npz objects of 16 MiB, (b) 512 npz objects of 64 KiB; one sample per object, as
``object_store.py``), interleaved round by round:

- **raw GET**: ``T`` threads, each with a share of the objects, calling boto3's ``get_object`` and
  reading the body (one pooled client with ``T`` connections; no parsing), in this process;
- **engine, fresh process**: a new ``dl-driver run`` (``reader.data_loader: native``, ``read_threads``
  = ``prefetch_size`` = ``T``, ``batch_size`` 4, ``computation_time: 0``, ``--epochs`` epochs) over
  ``s3://``: DLIO's training throughput over the measured window, with the process's peak RSS.

Printed: min / median / max over the rounds of the engine's samples/s and of its ratio to the raw GET
run just before it. ``object_store.py`` measures the same engine inside one warm process.

Run: ``.venv/bin/python benchmarks/object_store_fresh.py [--threads 4] [--repeat 5] [--epochs 1] [--json out.json]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from _fresh_runs import fresh_run, load_average, spread, spread_text, write_json  # noqa: E402
from object_store import DATASETS, _cfg, _raw  # noqa: E402

from dlio_core.generate import generate_dataset  # noqa: E402
from dlio_core.listing import dataset_files, dataset_storage  # noqa: E402
from tests.integration.conftest_servers import start_seaweed  # noqa: E402


def _run_overrides(name: str, files: int, size: int, options: dict, threads: int, epochs: int) -> list[str]:
    return [f"++workload.dataset.data_folder=s3://bench-{name}/data", "++workload.reader.data_loader=native",
            f"++workload.dataset.num_files_train={files}", "++workload.dataset.num_files_eval=0",
            f"++workload.dataset.record_length_bytes={size}", "++workload.dataset.num_samples_per_file=1",
            "++workload.reader.batch_size=4", f"++workload.reader.read_threads={threads}",
            f"++workload.reader.prefetch_size={threads}", "++workload.train.computation_time=0",
            f"++workload.train.epochs={epochs}", "++workload.workflow.evaluation=False",
            "++workload.workflow.checkpoint=False", "++workload.workflow.generate_data=False",
            *[f"++workload.storage.storage_options.{k}={v}" for k, v in options.items()]]


def measure(name: str, files: int, size: int, options: dict, threads: int, repeat: int, epochs: int,
            out_dir: str) -> dict:
    import boto3
    from botocore.config import Config

    cfg = _cfg(name, files, size, options, threads)
    generate_dataset(cfg, progress=False)
    flist = dataset_files(cfg, dataset_storage(cfg), "train")
    client = boto3.client("s3", endpoint_url=options["endpoint_url"], aws_access_key_id=options["access_key_id"],
                          aws_secret_access_key=options["secret_access_key"], region_name="us-east-1",
                          config=Config(max_pool_connections=max(10, threads)))
    bucket, keys = f"bench-{name}", [f"data/{rel}" for rel, _ in flist]
    overrides = _run_overrides(name, files, size, options, threads, epochs)
    _raw(client, bucket, keys, threads)  # warm: connections, the server's caches
    raw_rates, runs = [], []
    for _ in range(repeat):
        seconds, _ = _raw(client, bucket, keys, threads)
        raw_rates.append(files / seconds)
        runs.append(fresh_run(overrides, out_dir=out_dir))
        print(f"    round: raw GET {raw_rates[-1]:,.0f} objects/s, fresh dl-driver run "
              f"{runs[-1].samples_per_s:,.0f} samples/s", flush=True)
    rates = [r.samples_per_s for r in runs]
    return {"objects": files, "object_bytes": size, "threads": threads, "epochs": epochs, "repeat": repeat,
            "raw_objects_per_s": spread(raw_rates), "engine_samples_per_s": spread(rates),
            "ratio": spread([e / r for e, r in zip(rates, raw_rates)]),
            "peak_rss_mib": round(max(r.peak_rss_mib for r in runs), 1), "load_average": load_average()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=1, help="epochs per fresh `dl-driver run` process")
    ap.add_argument("--only", choices=sorted(DATASETS), nargs="*", default=None)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    results: dict = {"machine": {"cpus": os.cpu_count()}, "server": "seaweedfs weed mini on 127.0.0.1"}
    out_dir = tempfile.mkdtemp(prefix="dl-driver-fresh-s3-")
    with start_seaweed() as srv:
        for name, (files, size) in DATASETS.items():
            if args.only and name not in args.only:
                continue
            r = measure(name, files, size, dict(srv.options), args.threads, args.repeat, args.epochs, out_dir)
            results[name] = r
            print(f"{name}: {files} objects of {size:,} B, {args.threads} requests in flight, {args.repeat} rounds, "
                  f"load average {r['load_average']}")
            print(f"  raw boto3 GET: {spread_text(r['raw_objects_per_s'])} objects/s")
            print(f"  engine, fresh `dl-driver run`: {spread_text(r['engine_samples_per_s'])} samples/s; "
                  f"peak RSS {r['peak_rss_mib']:.0f} MiB")
            print(f"  {name} fresh engine/raw ratio: {spread_text(r['ratio'], '.3f')}")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
