"""Train a small Flax model for a few steps from the dlio_jax iterator, checkpointing with Orbax.

The data is a DLIO workload (``default``: 64x64 uint8 npz samples, generated here on first use); the
model is a two-layer MLP regressing each sample's mean pixel (the point is the input pipeline and the
checkpoints, not the model). A resumed run restores parameters, optimizer state and the iterator's
position, so it repeats the interrupted run's losses step for step. Each step reads a batch that the iterator already copied to the device while the previous
step ran; the script prints per-step wait and H2D times and the Orbax save times.

Run:
    python examples/flax_train.py --data /tmp/dl-driver-flax/data --ckpt /tmp/dl-driver-flax/ckpt --steps 8

Resume (restores the latest checkpoint, including the iterator's position):
    python examples/flax_train.py --data /tmp/dl-driver-flax/data --ckpt /tmp/dl-driver-flax/ckpt --steps 8 --resume
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

import dlio_jax
from dlio_jax.checkpoint import OrbaxCheckpointer


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape((x.shape[0], -1)).astype(jnp.float32) / 255.0
        x = nn.relu(nn.Dense(32)(x))
        return nn.Dense(1)(x)[:, 0]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="dataset folder (generated when empty)")
    ap.add_argument("--ckpt", required=True, help="checkpoint directory or URI (s3://... is staged and committed)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--save-every", type=int, default=4)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)

    overrides = [f"++workload.dataset.data_folder={args.data}", "++workload.dataset.num_files_train=64",
                 "++workload.reader.batch_size=8", "++workload.reader.read_threads=2",
                 f"++workload.workflow.generate_data={not args.resume}"]
    it = dlio_jax.make_iterator("default", overrides=overrides)

    model = MLP()
    params = model.init(jax.random.key(0), jnp.zeros((1, 64, 64), jnp.uint8))
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)
    step = 0
    ckpt = OrbaxCheckpointer(args.ckpt)
    if args.resume and ckpt.latest_step() is not None:
        restored = ckpt.restore(like={"params": params, "opt_state": opt_state, "step": np.zeros((), np.int64),
                                      "iterator": np.zeros((), np.int64)})
        params, opt_state, step = restored["params"], restored["opt_state"], int(restored["step"])
        it.load_state_dict({**it.state_dict(), "next_step": int(restored["iterator"])})

    @jax.jit
    def train_step(params, opt_state, x):
        target = x.astype(jnp.float32).mean(axis=(1, 2)) / 255.0

        def loss_fn(p):
            return jnp.mean((model.apply(p, x) - target) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    losses, saves = [], []
    last = step + args.steps
    while step < last:
        t0 = time.perf_counter()
        try:
            x = next(it)
        except StopIteration:  # next epoch: a new iterator over the next plan epoch
            it = dlio_jax.make_iterator("default", overrides=overrides[:-1], epoch=it.epoch + 1)
            continue
        wait_s = time.perf_counter() - t0
        params, opt_state, loss = train_step(params, opt_state, x)
        loss = float(loss)
        step += 1
        losses.append(loss)
        print(f"step {step}: loss {loss:.5f} wait {wait_s * 1e3:.2f} ms h2d {it.last.h2d_s * 1e3:.2f} ms")
        if step % args.save_every == 0:
            # 0-d arrays: Orbax's StandardSave takes arrays, not numpy scalars.
            state = {"params": params, "opt_state": opt_state, "step": np.asarray(step, np.int64),
                     "iterator": np.asarray(it.state_dict()["next_step"], np.int64)}
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
