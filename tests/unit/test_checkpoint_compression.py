"""checkpoint.compression: zstd -- round trips, bytes before and after, verification on read, standard frames."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from dlio_core.checkpoint import MARKER, CheckpointEngine, CheckpointError, ChunkSource
from dlio_core.checkpoint.codec import Codec, CodecError, FrameIndex
from dlio_core.config import load_config

try:
    Codec("zstd", 3)
except CodecError as e:  # neither zstandard nor pyarrow: the error itself is tested below
    pytest.skip(f"no zstd implementation here: {e}", allow_module_level=True)

SIZE = 3 * (1 << 20) + 12345  # three whole pieces and a partial one


def engine(tmp_path, *overrides: str) -> CheckpointEngine:
    cfg = load_config("unet3d_h100", [f"++workload.checkpoint.checkpoint_folder={tmp_path}/ck",
                                      f"++workload.model.model_size_bytes={SIZE}",
                                      *[f"++workload.{o}" for o in overrides]])
    return CheckpointEngine(cfg, progress=False, chunk_bytes=1 << 20)


FILE = "ck/global_epoch1_step1/model_states-0.pt"


@pytest.mark.parametrize("mechanism", ["raw", "stream"])
@pytest.mark.parametrize("randomize", [True, False])
def test_round_trip_reports_bytes_before_and_after(tmp_path, mechanism, randomize):
    eng = engine(tmp_path, f"checkpoint.checkpoint_mechanism={mechanism}", "checkpoint.compression=zstd",
                 "checkpoint.compression_level=5", f"checkpoint.randomize_tensor={randomize}")
    rec = eng.save(1, 1)
    on_disk = os.path.getsize(tmp_path / FILE)
    assert rec.bytes == SIZE and rec.stored_bytes == on_disk and rec.compression == "zstd:5"
    if randomize:  # incompressible: zstd stores it raw, plus frame headers and the index
        assert SIZE < on_disk < SIZE * 1.01
    else:  # DLIO's torch.ones: nearly nothing
        assert on_disk < SIZE / 100
    marker = json.loads((tmp_path / "ck/global_epoch1_step1" / MARKER).read_text())
    assert marker["compression"] == "zstd:5" and marker["stored_bytes"] == on_disk and marker["bytes"] == SIZE
    back = eng.load(1, 1)
    assert (back.bytes, back.stored_bytes, back.compression) == (SIZE, on_disk, "zstd:5")


def test_compressed_file_is_a_standard_zstd_stream_of_the_raw_bytes(tmp_path):
    if shutil.which("zstd") is None:
        pytest.skip("no zstd command")
    eng = engine(tmp_path, "checkpoint.compression=zstd")
    eng.save(1, 1)
    out = subprocess.run(["zstd", "-d", "-c", str(tmp_path / FILE)], capture_output=True, check=True).stdout
    rel = "global_epoch1_step1/model_states-0.pt"  # the content key: the path under the checkpoint folder
    expected = b"".join(bytes(eng.source.chunk(rel, i, min(1 << 20, SIZE - off)))
                        for i, off in enumerate(range(0, SIZE, 1 << 20)))
    assert out == expected  # the skippable index frame is ignored by standard decoders


def test_a_flipped_bit_is_caught_on_read(tmp_path):
    eng = engine(tmp_path, "checkpoint.compression=zstd", "checkpoint.randomize_tensor=False")
    eng.save(1, 1)
    path = tmp_path / FILE
    data = bytearray(path.read_bytes())
    data[20] ^= 0x40  # inside the first frame
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model_states-0\.pt: (piece 0 does not match its CRC-32|zstd frame)"):
        eng.load(1, 1)


def test_a_truncated_file_is_caught_on_read(tmp_path):
    eng = engine(tmp_path, "checkpoint.compression=zstd")
    eng.save(1, 1)
    os.truncate(tmp_path / FILE, os.path.getsize(tmp_path / FILE) - 100)
    with pytest.raises(CheckpointError, match="not a dl-driver compressed checkpoint|index"):
        eng.load(1, 1)


def test_reading_needs_the_codec_it_was_written_with(tmp_path):
    engine(tmp_path, "checkpoint.compression=zstd").save(1, 1)
    with pytest.raises(CheckpointError, match="written with checkpoint compression zstd:3.*checkpoint.compression=zstd"):
        engine(tmp_path).load(1, 1)
    engine(tmp_path / "plain").save(1, 1)
    with pytest.raises(CheckpointError, match="written with checkpoint compression none"):
        engine(tmp_path / "plain", "checkpoint.compression=zstd").load(1, 1)
    # another level reads fine: the level only matters when writing
    assert engine(tmp_path, "checkpoint.compression=zstd", "checkpoint.compression_level=9").load(1, 1).bytes == SIZE


def test_index_round_trip_and_damage():
    idx = FrameIndex()
    idx.add(10, 100, b"a" * 100)
    idx.add(20, 50, b"b" * 50)
    trailer = idx.trailer()
    assert FrameIndex.trailer_length(trailer[-16:]) == len(trailer)
    assert FrameIndex.parse(trailer).raw_bytes == 150
    with pytest.raises(CodecError, match="damaged"):
        FrameIndex.parse(b"\0" * 8 + trailer[8:])
    with pytest.raises(CodecError, match="no index at its end"):
        FrameIndex.trailer_length(b"x" * 16)


def test_missing_zstd_is_a_clear_error(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_zstd(name, *a, **k):
        if name in ("zstandard", "pyarrow"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_zstd)
    with pytest.raises(CodecError, match="needs the zstandard package .*checkpoint.compression=none"):
        Codec("zstd", 3)


def test_content_source_decides_compressibility():
    # randomize_tensor: True -> incompressible, False -> constant (what DLIO's torch.ones gives)
    codec = Codec("zstd", 3)
    rnd = ChunkSource(1 << 20, nonce=3).chunk("a", 0, 1 << 20)
    ones = ChunkSource(1 << 20, randomize=False).chunk("a", 0, 1 << 20, dtype="fp16")
    assert len(codec.compress(rnd)) > (1 << 20) and len(codec.compress(ones)) < 1000
