"""Train a small real model on data dl-driver generated, with its PyTorch plugin end to end.

What it shows:
  1. ``dl-driver generate``'s Python form writes a small npz dataset (DLIO's layout and names);
  2. ``DlioIterableDataset.from_config`` reads it (real samples, shuffled per epoch, sharded by
     ``RANK``/``WORLD_SIZE`` when run under ``torchrun``) through an ordinary ``DataLoader``;
  3. ``dlio_torch.instrument`` measures how long the loop waited for data;
  4. ``dlio_torch.checkpoint.save``/``load`` write the model and the loader position through the storage
     layer (a local folder here; an ``s3://`` URI works the same), and training resumes from it.

Run: ``python examples/torch_trainer.py [--workdir DIR] [--steps N] [--workers W]`` (CPU is enough).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import torch
from torch import nn

import dlio_torch
from dlio_core.config import load_config
from dlio_core.generate import generate_dataset
from dlio_torch import DlioIterableDataset, instrument
from dlio_torch import checkpoint as ckpt

SIDE = 32  # each sample is a SIDE x SIDE uint8 image (record_length_bytes = SIDE * SIDE)


def make_config(workdir: str):
    return load_config("default", [
        f"++workload.dataset.data_folder={workdir}/data", "++workload.dataset.num_files_train=64",
        f"++workload.dataset.record_length_bytes={SIDE * SIDE}", "++workload.dataset.num_samples_per_file=2",
        "++workload.reader.batch_size=8", "++workload.reader.file_shuffle=seed", "++workload.reader.sample_shuffle=seed",
    ])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="dl-driver-torch-")
    cfg = make_config(workdir)
    generate_dataset(cfg, progress=False)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(SIDE * SIDE, 64), nn.ReLU(), nn.Linear(64, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    ds = DlioIterableDataset.from_config(cfg, content="samples", batched=True)
    loader = dlio_torch.DlioDataLoader(ds, batch_size=None, num_workers=args.workers,
                                       persistent_workers=args.workers > 0)
    timed = instrument(loader)
    losses = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        for step, batch in enumerate(timed):
            x = batch.float() / 255.0
            loss = ((model(x).squeeze(1) - x.mean(dim=(1, 2))) ** 2).mean()  # learn the mean brightness
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if step + 1 == args.steps:
                break
        # A checkpoint: model, optimiser and where the loader stands, visible only once complete.
        stats = ckpt.save({"model": model.state_dict(), "opt": opt.state_dict(), "loader": loader.state_dict()},
                          f"{workdir}/checkpoints/epoch{epoch}.pt")
        print(f"epoch {epoch}: loss {losses[-1]:.4f}; checkpoint {stats.size_bytes} bytes in {stats.total_s:.3f} s")

    # Resume from the last checkpoint into a fresh model and loader, and finish that epoch.
    state = ckpt.load(f"{workdir}/checkpoints/epoch1.pt")
    model.load_state_dict(state["model"])
    ds2 = DlioIterableDataset.from_config(cfg, content="samples", batched=True)
    loader2 = dlio_torch.DlioDataLoader(ds2, batch_size=None, num_workers=0)
    loader2.load_state_dict(state["loader"])
    remaining = sum(1 for _ in loader2)
    report = timed.write_report(f"{workdir}/instrument.json")
    print(f"resumed at step {state['loader']['next_step']}: {remaining} steps left in epoch 1")
    print(f"data stall {report['data_stall_percentage']:.1f} %, wait p95 {report['stages']['wait']['p95_s'] * 1e3:.2f} ms, "
          f"{report['throughput_samples_per_s']:.0f} samples/s")
    result = {"losses": losses, "remaining_steps": remaining, "steps_per_epoch": ds.steps_per_epoch(),
              "resume_step": state["loader"]["next_step"], "report": report, "workdir": workdir}
    with open(os.path.join(workdir, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
