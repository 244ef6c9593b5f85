"""A drop-in ``dlio_benchmark``: DLIO's own command line, run by dl-driver.

mlpstorage launches ``<dlio-bin-path>/dlio_benchmark workload=NAME ++workload.x=y
++hydra.run.dir=DIR ++hydra.output_subdir=dlio_config --config-dir DIR``; this entry runs it as
``dl-driver run`` does, then adds the files mlpstorage's checks read that dl-driver's own layout
lacks: DLIO 2.0.0's ``per_epoch_stats.json`` (next to HEAD's ``{rank}_per_epoch_stats.json``),
``<output_subdir>/hydra.yaml`` and a ``workload=NAME`` line in ``<output_subdir>/overrides.yaml``.

Example::

    python -m dlio_core.dlio_benchmark workload=unet3d_h100 ++hydra.run.dir=/tmp/out
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

from .mlperf.dlio_files import hydra_value, write_mlpstorage_files

__all__ = ["main", "write_mlpstorage_files"]

_RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID", "RANK")


def _this_rank() -> int:
    for name in _RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dlio_benchmark`` console script; returns the exit code."""
    from .cli import main as dl_driver_main

    argv = list(sys.argv[1:] if argv is None else argv)
    code = dl_driver_main(["run", *argv])
    folder = hydra_value(argv, "run.dir")
    if code == 0 and folder and _this_rank() == 0:
        write_mlpstorage_files(folder, argv)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
