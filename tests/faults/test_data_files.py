"""Damaged data files in every format the engine reads (npz, npy, hdf5, tfrecord): truncated, empty,
wrong magic, a flipped bit, gone, grown, or changed while a run reads them. Each ends as the README's
faults table says: one line naming the file and exit 2 where the damage can be seen; what cannot be
seen (a flipped bit in sample data, bytes appended past the listed size) is pinned here too, so the
table claims only what is tested."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dlio_core.cli import main

from ._runs import local_args, log_says, wait_for

FORMATS = ["npz", "npy", "hdf5", "tfrecord"]
# A byte of each format's header that a reader checks (npz: the inner npy header; npy: the header dict;
# hdf5: metadata under a checksum; tfrecord: the first record's length field).
HEADER_BYTE = {"npz": 100, "npy": 40, "hdf5": 100, "tfrecord": 1}


def _dataset(tmp_path: Path, fmt: str, capsys) -> Path:
    assert main(["generate", *local_args(tmp_path, fmt=fmt)]) == 0
    capsys.readouterr()
    files = sorted(p for p in (tmp_path / "data" / "train").iterdir() if p.suffix == f".{fmt}")
    return files[3]


def _run(tmp_path: Path, fmt: str, capsys, *extra: str) -> tuple[int, str]:
    code = main(["run", *local_args(tmp_path, *extra, fmt=fmt)])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


DAMAGE = {
    "truncated": lambda d, fmt: d[: len(d) // 2],
    "zero-length": lambda d, fmt: b"",
    "wrong magic": lambda d, fmt: b"XXXX" + d[4:],
    "flipped header bit": lambda d, fmt: _flip(d, HEADER_BYTE[fmt]),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_file_is_one_line_naming_it(tmp_path, capsys, fmt, damage):
    victim = _dataset(tmp_path, fmt, capsys)
    victim.write_bytes(DAMAGE[damage](victim.read_bytes(), fmt))
    code, line = _run(tmp_path, fmt, capsys)
    assert code == 2, line
    assert line.startswith("dl-driver: error:") and str(victim) in line and "Traceback" not in line, line


@pytest.mark.parametrize("fmt", FORMATS)
def test_vanished_file_is_one_line_naming_it(tmp_path, capsys, fmt):
    victim = _dataset(tmp_path, fmt, capsys)
    victim.unlink()  # listed in the manifest, gone by the time it is read
    code, line = _run(tmp_path, fmt, capsys)
    assert code == 2 and str(victim) in line and "No such file" in line, line


@pytest.mark.parametrize("fmt", FORMATS)
def test_what_cannot_be_seen_is_read_as_it_is(tmp_path, capsys, fmt):
    """A flipped bit in sample data, or bytes appended past the listed size, are not detected: the
    formats' checksums (zip CRC-32, TFRecord CRC-32C) are not verified, and reads stop at the size
    listed when the dataset was generated."""
    victim = _dataset(tmp_path, fmt, capsys)
    data = victim.read_bytes()
    victim.write_bytes(_flip(data, len(data) - 10) + b"\0" * 1000)
    code, line = _run(tmp_path, fmt, capsys)
    assert code == 0, line


def _change_in_epoch_2(tmp_path: Path, capsys, change) -> tuple[int, str, Path]:
    victim = _dataset(tmp_path, "npz", capsys)
    original = victim.read_bytes()
    out = tmp_path / "out"
    done = threading.Event()

    def mutate() -> None:
        if wait_for(log_says(out, "Starting epoch 2"), timeout_s=60, every_s=0.005):
            change(victim, original)
        done.set()

    t = threading.Thread(target=mutate, daemon=True)
    t.start()
    code, line = _run(tmp_path, "npz", capsys, "++workload.train.epochs=4", "++workload.train.computation_time=0.02")
    t.join(10)
    assert done.is_set()
    return code, line, victim


def _replace(victim: Path, data: bytes) -> None:
    tmp = victim.with_name(victim.name + ".new")
    tmp.write_bytes(data)
    tmp.replace(victim)


def test_file_replaced_by_a_shorter_one_mid_run(tmp_path, capsys):
    code, line, victim = _change_in_epoch_2(tmp_path, capsys, lambda v, d: _replace(v, d[: len(d) // 2]))
    assert code == 2 and str(victim) in line and "file changed or truncated" in line, line


def test_file_vanished_mid_run(tmp_path, capsys):
    code, line, victim = _change_in_epoch_2(tmp_path, capsys, lambda v, d: v.unlink())
    assert code == 2 and str(victim) in line and "No such file" in line, line


def _append(victim: Path, data: bytes) -> None:
    # Appended in place: rewriting the file (truncate, then write) would leave it empty for a moment, and a
    # read in that moment is a truncated file, not a grown one
    with victim.open("ab") as f:
        f.write(b"\0" * 4096)


def test_file_grown_mid_run_reads_the_listed_bytes(tmp_path, capsys):
    code, line, _ = _change_in_epoch_2(tmp_path, capsys, _append)
    assert code == 0, line
