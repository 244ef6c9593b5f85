"""``Dist.release``: dl-driver leaves a torch process group it created once the run is over (left to the
interpreter's shutdown, gloo's threads can abort a rank with SIGABRT after a complete run), and never one
the caller created, nor any group after a rank was lost."""

from __future__ import annotations

import pytest

from dlio_core.collectives import TorchComm
from dlio_core.dist import Dist


class _Group:
    """torch.distributed's surface that TorchComm.close touches."""

    def __init__(self) -> None:
        self.destroyed = 0

    def is_initialized(self) -> bool:
        return self.destroyed == 0

    def destroy_process_group(self) -> None:
        self.destroyed += 1


@pytest.mark.parametrize("owns,lost,destroyed", [(True, False, 1), (False, False, 0), (True, True, 0)])
def test_release_leaves_only_a_group_dl_driver_created(owns, lost, destroyed):
    group = _Group()
    dist = Dist(rank=0, world=2, comm=TorchComm(group, None, owns_group=owns))
    dist.lost = lost
    dist.release()
    dist.release()  # twice: still once
    assert group.destroyed == destroyed


def test_release_without_a_group_is_a_no_op():
    Dist().release()
