"""Run by ``test_torch_distributed`` under ``torchrun`` (gloo): which samples each rank reads.

``python _torch_dist_script.py MODE DATA_FOLDER OUT_DIR``; MODE ``device`` reads one epoch through
``DeviceLoader(device="cpu")`` with no rank or world given (only the process group knows them), MODE
``map`` reads ``DlioMapDataset`` through a ``DataLoader`` with a ``DistributedSampler`` and 2 workers.
Writes ``OUT_DIR/rank{r}.json``: ``{"rank", "world", "ids", "labels"}`` (sample ids in x, labels from y).
"""

from __future__ import annotations

import json
import os
import sys

import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from dlio_torch import DeviceLoader, DlioMapDataset

try:
    from ._torch_ddp_script import group_only
except ImportError:  # run as a script by torchrun: its folder is on sys.path
    from _torch_ddp_script import group_only

NUM_FILES, SAMPLES_PER_FILE, BATCH = 10, 3, 4  # 30 samples


def overrides(data_folder: str) -> list[str]:
    return [f"++workload.dataset.data_folder={data_folder}", f"++workload.dataset.num_files_train={NUM_FILES}",
            f"++workload.dataset.num_samples_per_file={SAMPLES_PER_FILE}", "++workload.dataset.num_files_eval=0",
            f"++workload.reader.batch_size={BATCH}", "++workload.reader.read_threads=1",
            "++workload.reader.file_shuffle=seed", "++workload.reader.sample_shuffle=seed"]


def main(mode: str, data_folder: str, out_dir: str) -> None:
    rank, world = group_only()
    ids: list[int] = []
    labels: list[int] = []
    if mode == "device":
        loader = DeviceLoader("default", device="cpu", overrides=overrides(data_folder))
        for batch in loader:
            ids += [int(v) for v in batch.data.reshape(len(batch.data), -1)[:, 0].tolist()]
    else:
        ds = DlioMapDataset.from_uri(os.path.join(data_folder, "train"), format="npz")
        sampler = DistributedSampler(ds, shuffle=True, seed=5)
        sampler.set_epoch(1)
        for x, y in DataLoader(ds, batch_size=BATCH, sampler=sampler, num_workers=2):
            ids += [int(v) for v in x.reshape(len(x), -1)[:, 0].tolist()]
            labels += [int(v) for v in y.tolist()]
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"rank": rank, "world": world, "ids": ids, "labels": labels}, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:4])
