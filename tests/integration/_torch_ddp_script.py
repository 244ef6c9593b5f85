"""Run by ``test_torch_ddp`` under ``torchrun``: one epoch of ``DlioIterableDataset`` through DDP.

``python _torch_ddp_script.py DATA_FOLDER OUT_DIR MP_CONTEXT`` initialises ``torch.distributed``
(gloo), then removes ``RANK``/``WORLD_SIZE`` from the environment so that only the process group can
tell the dataset (and its DataLoader workers) which rank this is. Each step is a DDP forward/backward,
so ranks with different step counts would hang in the gradient all-reduce. Writes
``OUT_DIR/rank{r}.json`` with the sample ids of every step this rank trained on.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from dlio_torch import DlioIterableDataset

# Shared with the test, which generates the dataset with the same overrides.
NUM_FILES, SAMPLES_PER_FILE, BATCH = 30, 2, 4  # 60 samples: 7 steps per rank, 4 samples dropped


def overrides(data_folder: str) -> list[str]:
    return [f"++workload.dataset.data_folder={data_folder}", f"++workload.dataset.num_files_train={NUM_FILES}",
            f"++workload.dataset.num_samples_per_file={SAMPLES_PER_FILE}", "++workload.dataset.num_files_eval=0",
            "++workload.dataset.record_length_bytes=256", f"++workload.reader.batch_size={BATCH}",
            "++workload.reader.file_shuffle=seed", "++workload.reader.sample_shuffle=seed"]


def group_only() -> tuple[int, int]:
    """``(rank, world)`` of a new gloo group, with the torchrun variables removed from the environment:
    from here on, only ``torch.distributed`` knows the rank."""
    dist.init_process_group("gloo")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"):
        os.environ.pop(name, None)
    return dist.get_rank(), dist.get_world_size()


def main(data_folder: str, out_dir: str, context: str) -> None:
    rank, world = group_only()

    ds = DlioIterableDataset.from_config("default", overrides=overrides(data_folder), batched=True,
                                         content="samples", with_info=True)
    ds_rank, ds_world, source = ds.rank_world()
    plan = ds.plan()
    loader = DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context=context)

    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(1, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    steps: list[dict] = []
    for (data, _labels), info in loader:  # npz: the samples and their labels
        x = data.float().flatten(1).mean(1, keepdim=True)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()  # an all-reduce: a rank with an extra step would wait here forever
        opt.step()
        files, samples = plan.batch(info["step"])
        steps.append({"step": info["step"], "rows": int(data.shape[0]), "num_samples": info["num_samples"],
                      "ids": (files * SAMPLES_PER_FILE + samples).tolist()})
    dist.barrier()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"rank": rank, "world": world, "dataset_rank": ds_rank, "dataset_world": ds_world,
                   "source": source, "planned_steps": plan.steps, "steps": steps,
                   "weight": model.module.weight.item()}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:4])
