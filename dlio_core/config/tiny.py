"""A small run of the ``default`` workload in a fresh folder: what docstring examples and first tries need.

Example:
    >>> cfg = tiny_run_config(data_loader="native", epochs=2)
    >>> cfg.reader.data_loader.value, cfg.train.epochs, cfg.workflow.generate_data, cfg.workflow.evaluation
    ('native', 2, True, False)
"""

from __future__ import annotations

import tempfile
from typing import Any

from .load import load_config
from .schema import RunConfig

__all__ = ["tiny_run_config"]


def tiny_run_config(folder: str | None = None, *, data_loader: str = "native", epochs: int = 1,
                    overrides: tuple[str, ...] = ()) -> RunConfig:
    """``default`` generating its data into ``folder/data`` and writing results to ``folder/out`` (a fresh
    temporary folder when None), read by ``data_loader``, ``epochs`` epochs, no compute time, no evaluation;
    ``overrides`` (DLIO's ``++workload.a.b=v`` forms) come last."""
    d: Any = folder or tempfile.mkdtemp(prefix="dl-driver-")
    return load_config("default", [
        f"++workload.dataset.data_folder={d}/data", f"++workload.reader.data_loader={data_loader}",
        "++workload.workflow.generate_data=True", f"++workload.train.epochs={epochs}",
        "++workload.train.computation_time=0", "++workload.workflow.evaluation=False", f"++hydra.run.dir={d}/out",
        *overrides])
