"""Train a small real classifier on labelled npz files, with dl-driver's PyTorch plugin end to end.

What it shows:
  1. a small labelled dataset in DLIO's npz layout (``x``: the samples on the last axis, ``y``: their
     labels; DLIO's generator writes zero labels, so this one is written here, with learnable classes);
  2. ``DlioIterableDataset.from_config`` reads it (the samples and their labels, shuffled per epoch,
     sharded by ``RANK``/``WORLD_SIZE`` when run under ``torchrun``) through an ordinary ``DataLoader``,
     with a ``transform`` (uint8 to float) applied in the workers;
  3. ``dlio_torch.instrument`` measures how long the loop waited for data;
  4. ``dlio_torch.checkpoint.save``/``load`` write the model and the loader position through the storage
     layer (a local folder here; an ``s3://`` URI works the same), and training resumes from it.

Run: ``python examples/torch_trainer.py [--workdir DIR] [--steps N] [--workers W]`` (CPU is enough).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile

import numpy as np
import torch
from torch import nn

import dlio_torch
from dlio_core.config import load_config
from dlio_core.storage import open_storage
from dlio_torch import DlioIterableDataset, instrument
from dlio_torch import checkpoint as ckpt

SIDE, CLASSES, FILES, PER_FILE = 16, 4, 64, 2  # SIDE x SIDE uint8 images; class k brightens quadrant k


def write_dataset(folder: str) -> None:
    """``FILES`` npz archives named as DLIO names them, each with ``PER_FILE`` noisy images and their labels."""
    rng, st, half = np.random.default_rng(0), open_storage(folder), SIDE // 2
    for i in range(FILES):
        labels = rng.integers(0, CLASSES, PER_FILE)
        x = rng.integers(0, 96, (SIDE, SIDE, PER_FILE), dtype=np.uint8)
        for j, k in enumerate(labels):
            x[(k // 2) * half:(k // 2 + 1) * half, (k % 2) * half:(k % 2 + 1) * half, j] += 128
        raw = io.BytesIO()
        np.savez(raw, x=x, y=labels)
        st.write_atomic(f"train/img_{i}_of_{FILES}.npz", raw.getvalue())


def make_config(workdir: str):
    return load_config("default", [
        f"++workload.dataset.data_folder={workdir}/data", f"++workload.dataset.num_files_train={FILES}",
        "++workload.dataset.num_files_eval=0", f"++workload.dataset.num_samples_per_file={PER_FILE}",
        "++workload.reader.batch_size=8", "++workload.reader.file_shuffle=seed", "++workload.reader.sample_shuffle=seed",
    ])


def to_float(x: torch.Tensor) -> torch.Tensor:
    """The transform, run in the DataLoader workers: uint8 pixels to floats in [0, 1]."""
    return x.float() / 255.0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="dl-driver-torch-")
    cfg = make_config(workdir)
    write_dataset(f"{workdir}/data")

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(SIDE * SIDE, 32), nn.ReLU(), nn.Linear(32, CLASSES))
    opt = torch.optim.SGD(model.parameters(), lr=0.2)

    ds = DlioIterableDataset.from_config(cfg, batched=True, transform=to_float)  # (images, labels) per step
    loader = dlio_torch.DlioDataLoader(ds, batch_size=None, num_workers=args.workers,
                                       persistent_workers=args.workers > 0)
    timed = instrument(loader)
    losses: list[float] = []
    seen: set[int] = set()  # the classes the labels named
    for epoch in range(2):
        loader.set_epoch(epoch)
        for step, (x, y) in enumerate(timed):
            seen.update(y.tolist())
            loss = nn.functional.cross_entropy(model(x), y)
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
    ds2 = DlioIterableDataset.from_config(cfg, batched=True, transform=to_float)
    loader2 = dlio_torch.DlioDataLoader(ds2, batch_size=None, num_workers=0)
    loader2.load_state_dict(state["loader"])
    remaining = sum(1 for _ in loader2)
    report = timed.write_report(f"{workdir}/instrument.json")
    print(f"resumed at step {state['loader']['next_step']}: {remaining} steps left in epoch 1")
    print(f"data stall {report['data_stall_percentage']:.1f} %, wait p95 {report['stages']['wait']['p95_s'] * 1e3:.2f} ms, "
          f"{report['throughput_samples_per_s']:.0f} samples/s")
    result = {"losses": losses, "classes_seen": sorted(seen), "remaining_steps": remaining, "steps_per_epoch": ds.steps_per_epoch(),
              "resume_step": state["loader"]["next_step"], "report": report, "workdir": workdir}
    with open(os.path.join(workdir, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
