"""Opt-in checksum verification (``DL_DRIVER_VERIFY_CHECKSUMS=1``): a flipped bit in an npz member (zip
CRC-32) or a TFRecord record (CRC-32C) is a ``FormatError`` naming the file; off by default, where the
same bytes read as they are (what the README's fault table says)."""

from __future__ import annotations

import numpy as np
import pytest

from dlio_core.cli import main
from dlio_core.formats import FormatError, get_format
from dlio_core.formats.base import VERIFY_ENV
from dlio_core.formats.npz import Parser
from dlio_core.formats.tfrecord import FORMAT as TFRECORD
from dlio_core.storage import open_storage


@pytest.fixture
def st(tmp_path):
    return open_storage(str(tmp_path))


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x04
    return bytes(b)


def _samples(n: int = 3) -> np.ndarray:
    return np.random.default_rng(5).integers(0, 255, size=(16, 16, n), dtype=np.uint8)


@pytest.mark.parametrize("compression", ["none", "zip"])
def test_npz_flipped_bit_is_caught_only_when_asked(st, monkeypatch, compression):
    npz = get_format("npz")
    npz.write_file(st, "a.npz", _samples(), compression=compression)
    data = st.read("a.npz")
    damaged = _flip(data, len(data) // 3)  # inside x's data (stored) or its deflate stream
    monkeypatch.delenv(VERIFY_ENV, raising=False)
    if compression == "none":
        assert npz.parse(damaged, "a.npz").shape == (16, 16, 3)   # not verified: read as it is
    monkeypatch.setenv(VERIFY_ENV, "1")
    assert npz.parse(data, "a.npz").shape == (16, 16, 3)            # intact files still parse
    for parse in (npz.parse, Parser()):
        with pytest.raises(FormatError, match=r"a\.npz: .*(CRC-32 check|corrupt deflated).*"):
            parse(damaged, "a.npz")


def test_tfrecord_flipped_bit_is_caught_only_when_asked(st, monkeypatch):
    x = _samples(4)
    TFRECORD.write_file(st, "t.tfrecord", x)
    data = st.read("t.tfrecord")
    record = len(data) // 4
    st.write_atomic("t.tfrecord", _flip(data, 2 * record + 40))   # record 2's image bytes
    size = st.size("t.tfrecord")
    monkeypatch.delenv(VERIFY_ENV, raising=False)
    unverified = TFRECORD.open_reader(st, "t.tfrecord", size)
    assert len(unverified.read([0, 1, 2, 3], keep=True)[2]) == 4
    monkeypatch.setenv(VERIFY_ENV, "1")  # read when a reader is made, not at every read
    assert len(unverified.read(np.array([3, 2]), keep=True)[2]) == 2
    reader = TFRECORD.open_reader(st, "t.tfrecord", size)
    assert len(reader.read([0, 1, 3], keep=True)[2]) == 3        # the intact records pass
    with pytest.raises(FormatError, match=r"t\.tfrecord: record 2 \(byte \d+\) fails its data CRC-32C check"):
        reader.read(np.array([3, 2]), keep=False)


def test_npz_shared_parse_reads_the_setting_once(st, monkeypatch):
    # The engine's parse for kept samples (shared by reader threads) looks the variable up when made.
    npz = get_format("npz")
    npz.write_file(st, "a.npz", _samples())
    data = st.read("a.npz")
    damaged = _flip(data, len(data) // 3)
    monkeypatch.setenv(VERIFY_ENV, "1")
    checking = npz.shared_parser()
    monkeypatch.delenv(VERIFY_ENV)
    assert npz.shared_parser()(damaged, "a.npz").shape == (16, 16, 3)
    with pytest.raises(FormatError, match=r"a\.npz: .*CRC-32 check"):
        checking(damaged, "a.npz")
    assert npz.parse(damaged, "a.npz", verify=False).shape == (16, 16, 3)
    with pytest.raises(FormatError, match=r"a\.npz: .*CRC-32 check"):
        npz.parse(damaged, "a.npz", verify=True)


def test_kept_samples_are_verified_when_the_loader_is_made_with_verification(st, monkeypatch):
    # A loader keeping samples (torch, JAX and DALI) checks every file it reads: the setting is
    # taken once, at construction, and a damaged file is a ReadError naming it.
    from dlio_core.engine import NativeLoader, ReadError
    from dlio_core.sampling import EpochPlan

    npz = get_format("npz")
    sizes = [npz.write_file(st, f"f{i}.npz", _samples(1)) for i in range(4)]
    data = st.read("f2.npz")
    st.write_atomic("f2.npz", _flip(data, len(data) // 3))
    plan = EpochPlan(num_files=4, samples_per_file=1, batch_size=2)
    monkeypatch.setenv(VERIFY_ENV, "1")
    loader = NativeLoader(st, npz, [f"f{i}.npz" for i in range(4)], sizes=sizes, keep_samples=True)
    monkeypatch.delenv(VERIFY_ENV)
    with pytest.raises((ReadError, FormatError), match=r"f2\.npz.*CRC-32"):
        for batch in loader.epoch(plan):
            batch.release()
    loader.close()


def test_a_run_with_verification_stops_on_the_damaged_file(tmp_path, capsys, monkeypatch):
    args = ["default", f"++workload.dataset.data_folder={tmp_path}/data", "++workload.dataset.num_files_train=8",
            "++workload.dataset.num_files_eval=0", "++workload.dataset.num_subfolders_train=0",
            "++workload.reader.data_loader=native", "++workload.train.computation_time=0",
            "++workload.workflow.evaluation=False", f"++hydra.run.dir={tmp_path}/out"]
    assert main(["generate", *args]) == 0
    victim = sorted((tmp_path / "data/train").glob("*.npz"))[5]
    data = victim.read_bytes()
    victim.write_bytes(_flip(data, len(data) // 2))
    monkeypatch.setenv(VERIFY_ENV, "1")
    capsys.readouterr()
    code = main(["run", *args])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2, line
    assert line.startswith("dl-driver: error:") and str(victim) in line and "CRC-32" in line, line
