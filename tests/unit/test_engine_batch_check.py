"""The batch header check of reused scratch buffers (``_Scratch.parse_batch``, the C extension's
``spans_match``): a batch whose files' headers are the bytes of last time is checked in one call; a file
whose header changed, in the middle of a batch and epochs later, still fails with the file named, and
checksums (``DL_DRIVER_VERIFY_CHECKSUMS``) are still checked file by file."""

from __future__ import annotations

import io

import numpy as np
import pytest

from dlio_core.engine import NativeLoader, buffers
from dlio_core.engine.buffers import _Scratch
from dlio_core.formats import FormatError, get_format
from dlio_core.formats.base import VERIFY_ENV

from ._engine_helpers import _drain, _plan, _run_in_thread

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(buffers._spans_match is None, reason="the C extension _cread is not built")]


def _damage(raw: bytearray, where: str) -> None:
    """Change one byte of a file's headers so that a full parse must fail (see the parametrisations)."""
    if where == "shape":  # a larger shape in the npy header, same length: the data is then too short
        raw[raw.index(b"'shape': (") + 10] = ord("9")
    elif where == "magic":
        raw[raw.index(b"NUMPY") - 1] = 0
    elif where == "local signature":
        raw[0] ^= 0x40
    elif where == "eocd":
        raw[len(raw) - 22] = 0


@pytest.mark.parametrize("fmt,where", [("npz", "shape"), ("npz", "magic"), ("npz", "local signature"),
                                       ("npz", "eocd"), ("npy", "shape"), ("npy", "magic")])
def test_a_changed_header_in_the_middle_of_a_batch_fails_naming_the_file(dataset, mode, monkeypatch, fmt, where):
    st, paths, sizes = dataset(8, 1, fmt)
    assert len(set(sizes)) == 1
    checks = []
    real = buffers._spans_match
    monkeypatch.setattr(buffers, "_spans_match", lambda bufs, spans: checks.append(real(bufs, spans)) or checks[-1])
    loader = NativeLoader(st, get_format(fmt), paths, sizes=sizes, read_threads=1, prefetch_size=1)
    for _ in range(3):  # every scratch set sees both steps' files: their batch checks are remembered
        assert [b.num_samples for b in _drain(loader, _plan(8, 1, 4))] == [4, 4]
    if mode not in ("chunks", "one-by-one"):  # (large batches: each file checked as its chunk is read)
        assert True in checks  # the batch check ran and passed on the unchanged files
    raw = bytearray(open(st.path(paths[5]), "rb").read())  # file 5: the second of step 1's four
    _damage(raw, where)
    open(st.path(paths[5]), "wb").write(raw)
    steps = []

    def epoch():
        for b in loader.epoch(_plan(8, 1, 4)):
            steps.append(b.step)
            b.release()

    box = _run_in_thread(epoch)
    assert isinstance(box.get("error"), FormatError), box
    assert f"f005.{fmt}" in str(box["error"]) and steps == [0]


def test_checksums_are_still_checked_file_by_file(dataset, mode, monkeypatch):
    monkeypatch.setenv(VERIFY_ENV, "1")  # read when the loader's parsers are made
    st, paths, sizes = dataset(8, 1)
    loader = NativeLoader(st, get_format("npz"), paths, sizes=sizes, read_threads=1, prefetch_size=1)
    for _ in range(2):
        _drain(loader, _plan(8, 1, 4))
    raw = bytearray(open(st.path(paths[6]), "rb").read())
    raw[raw.index(b"NUMPY") + 130] ^= 0x04  # a bit of x's data: headers unchanged, CRC-32 wrong
    open(st.path(paths[6]), "wb").write(raw)
    box = _run_in_thread(lambda: _drain(loader, _plan(8, 1, 4)))
    assert isinstance(box.get("error"), FormatError) and "f006.npz" in str(box["error"])
    assert "CRC-32" in str(box["error"])


def test_parse_batch_gives_what_the_parser_gives_file_by_file():
    fmt = get_format("npz")
    scratch = _Scratch(fmt)
    files = []
    for i, shape in enumerate([(3, 1), (3, 1), (5, 1)]):

        out = io.BytesIO()
        np.savez(out, x=np.full(shape, i, np.uint32), y=[0])
        files.append(out.getvalue())
    bufs = scratch.batch_views([len(f) for f in files])
    for b, f in zip(bufs, files):
        b[:] = f
    arrays, first = scratch.parse_batch(bufs, ["a", "b", "c"])
    again, first_again = scratch.parse_batch(bufs, ["a", "b", "c"])
    assert again is arrays and first == first_again == 3 * 4 + 3 * 4 + 5 * 4
    assert [int(x[0, 0]) for x in arrays] == [0, 1, 2]
    bufs[1][:] = files[0]  # another file with the same header: the same views, its bytes
    assert scratch.parse_batch(bufs, ["a", "b", "c"])[0] is arrays and int(arrays[1][0, 0]) == 0
    bufs[2][len(files[2]) - 22] = 0  # no end-of-central-directory record: the full parse names the file
    with pytest.raises(FormatError, match="^c: "):
        scratch.parse_batch(bufs, ["a", "b", "c"])
