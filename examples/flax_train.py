"""Train a small Flax classifier on labelled npz files through ``dlio_jax.from_uri``, checkpointing with Orbax.

The data: npz archives in DLIO's layout (``x``: 16x16 uint8 images, samples on the last axis; ``y``: one
class per sample), written on first use by ``examples/labelled_npz.py``. Each class lights a different
quadrant of the image under noise, so the classes can be learnt: the loss falls well below its start within a few dozen
steps. The iterator yields ``(images, labels)`` with the labels the files carry; iterating it again
starts the next epoch (reshuffled). Each step reads a batch the iterator copied to the device while
the previous step ran; the script prints per-step wait and H2D times (``n/a`` on a CPU: no copy) and
the Orbax save times. The iterator's state is a dict of integers, saved in the same Orbax checkpoint
as the parameters, so a resumed run repeats the interrupted run's losses step for step.

Run:
    python examples/flax_train.py --data /tmp/dl-driver-flax/data --ckpt /tmp/dl-driver-flax/ckpt --steps 60

Resume (restores the latest checkpoint, including the iterator's position):
    python examples/flax_train.py --data /tmp/dl-driver-flax/data --ckpt /tmp/dl-driver-flax/ckpt --steps 8 --resume
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # labelled_npz beside this script

import dlio_jax  # noqa: E402
from dlio_jax.checkpoint import OrbaxCheckpointer  # noqa: E402
from labelled_npz import CLASSES, SIDE, write_labelled_npz  # noqa: E402

BATCH = 16


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape((x.shape[0], -1)).astype(jnp.float32) / 255.0
        x = nn.relu(nn.Dense(32)(x))
        return nn.Dense(CLASSES)(x)


def batches(it: dlio_jax.JaxIterator):
    """The iterator's batches, epoch after epoch (iterating it again starts the next epoch)."""
    while True:
        yield from it


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="dataset folder (labelled npz files are written when empty)")
    ap.add_argument("--ckpt", required=True, help="checkpoint directory or URI (s3://... is staged and committed)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--save-every", type=int, default=4)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)

    if not (os.path.isdir(args.data) and os.listdir(args.data)):
        write_labelled_npz(args.data)
    it = dlio_jax.from_uri(args.data, format="npz", batch_size=BATCH, shuffle=True, seed=0, read_threads=2)

    model = MLP()
    params = model.init(jax.random.key(0), jnp.zeros((1, SIDE, SIDE), jnp.uint8))
    tx = optax.adam(3e-3)
    opt_state = tx.init(params)
    step = 0
    ckpt = OrbaxCheckpointer(args.ckpt)
    if args.resume and ckpt.latest_step() is not None:
        restored = ckpt.restore(like={"params": params, "opt_state": opt_state, "step": np.zeros((), np.int64),
                                      "iterator": it.state_dict()})
        params, opt_state, step = restored["params"], restored["opt_state"], int(restored["step"])
        it.load_state_dict(restored["iterator"])  # integers only: Orbax stored it as is

    @jax.jit
    def train_step(params, opt_state, x, y):
        def loss_fn(p):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    losses, saves = [], []
    last = step + args.steps
    feed = batches(it)
    while step < last:
        t0 = time.perf_counter()
        x, y = next(feed)
        wait_s = time.perf_counter() - t0
        params, opt_state, loss = train_step(params, opt_state, x, y)
        loss = float(loss)
        step += 1
        losses.append(loss)
        h2d = "n/a" if it.last.h2d_s is None else f"{it.last.h2d_s * 1e3:.2f} ms"
        print(f"step {step}: loss {loss:.5f} wait {wait_s * 1e3:.2f} ms h2d {h2d}")
        if step % args.save_every == 0:
            # 0-d arrays: Orbax's StandardSave takes arrays, not numpy scalars.
            state = {"params": params, "opt_state": opt_state, "step": np.asarray(step, np.int64),
                     "iterator": it.state_dict()}
            saves.append(ckpt.save(step, state))
    ckpt.wait_until_finished()  # fills finish_s of every save still in flight
    ckpt.close()
    it.close()
    for t in saves:
        print(f"checkpoint {t.step}: save() blocked {t.blocking_s * 1e3:.1f} ms, finished after "
              f"{t.finish_s * 1e3:.1f} ms, {t.bytes_written} bytes")
    result = {"steps": step, "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
              "checkpoints": [t.step for t in saves]}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
