"""Checkpoint bytes: incompressible, different in every chunk of every file of every checkpoint, and cheap.

DLIO fills each tensor with ``torch.rand``/``randint`` before writing -- slow (one RNG pass per byte per
checkpoint) and every byte held in RAM. We draw one random block once (``chunk_bytes``, 8 MiB by default)
and hand out chunks that are that block XOR-ed, 64-bit word by word, with a key derived from
(run nonce, file path, chunk index). So:

- no chunk compresses (a random block XOR a constant is still random);
- no two chunks are equal, within a file, across files, or across checkpoints (the path names the
  checkpoint folder), so block- or content-defined deduplication finds nothing; the nonce, drawn per run
  and shared by all ranks, also keeps a second run from deduplicating against the first;
- producing a chunk costs one XOR over an L2/L3-resident block (~40 GiB/s on one core here), far above
  any storage write rate, and memory stays at two chunk buffers however large the checkpoint.

A storage system could in principle notice that two chunks differ by a constant XOR; none we know of does.
``randomize_tensor: False`` (DLIO writes ``torch.ones``) fills chunks with the element type's 1.0 pattern
instead, which compresses and deduplicates completely, as in DLIO.

Example:
    >>> src = ChunkSource(1 << 16, nonce=7)
    >>> a = bytes(src.chunk("global_epoch1_step1/x.pt", 0, 4096))
    >>> b = bytes(src.chunk("global_epoch1_step2/x.pt", 0, 4096))
    >>> len(a), a != b, a == bytes(src.chunk("global_epoch1_step1/x.pt", 0, 4096))
    (4096, True, True)
    >>> bytes(ChunkSource(64, randomize=False).chunk("x", 0, 4, dtype="fp16")).hex()
    '003c003c'
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["ChunkSource", "DEFAULT_CHUNK_BYTES"]

# 8 MiB: large enough that per-write overhead vanishes, small enough that the XOR runs in cache.
DEFAULT_CHUNK_BYTES = 8 << 20

_ONES = {"int8": np.int8, "uint8": np.uint8, "fp16": np.float16, "bf16": None, "fp32": np.float32,
         "fp64": np.float64}
_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """splitmix64 finaliser: spreads consecutive chunk indices over all 64 bits."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _ones_pattern(dtype: str, nbytes: int) -> np.ndarray:
    """``nbytes`` of the element type's 1.0 (or 1), as torch.ones writes it."""
    if dtype == "bf16":
        word = np.array([0x3F80], dtype="<u2")  # bfloat16 1.0
    else:
        word = np.ones(1, dtype=np.dtype(_ONES.get(dtype) or np.int8).newbyteorder("<"))
    reps = -(-nbytes // word.nbytes)
    return np.tile(word.view(np.uint8), reps)[:nbytes]


class ChunkSource:
    """Makes checkpoint chunks of up to ``chunk_bytes`` bytes into one reused buffer.

    Args:
        chunk_bytes: the largest chunk asked for (rounded up to 8 bytes).
        randomize: False for DLIO's ``randomize_tensor: False`` (ones of the element type).
        nonce: per-run value shared by all ranks (rank 0 draws it); it seeds the random block too.

    A returned view stays valid until the next ``chunk`` call.
    """

    def __init__(self, chunk_bytes: int = DEFAULT_CHUNK_BYTES, *, randomize: bool = True, nonce: int = 0) -> None:
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
        words = -(-int(chunk_bytes) // 8)
        self.chunk_bytes = words * 8  # whole words, so every chunk starts on an element boundary
        self.randomize = randomize
        self.nonce = int(nonce) & _MASK64
        if randomize:
            self._base = np.random.default_rng(self.nonce).integers(0, _MASK64, size=words, dtype=np.uint64,
                                                                    endpoint=True)
        else:
            self._base = np.zeros(words, dtype=np.uint64)
        self._out = np.empty_like(self._base)
        self._ones: dict[str, np.ndarray] = {}

    def file_key(self, path: str) -> int:
        """A 64-bit key for one file of one checkpoint (the path includes the checkpoint folder)."""
        digest = hashlib.blake2b(path.encode("utf8"), digest_size=8, key=self.nonce.to_bytes(8, "little")).digest()
        return int.from_bytes(digest, "little")

    def chunk(self, path: str, index: int, nbytes: int, *, dtype: str = "int8", key: int | None = None,
              out: np.ndarray | None = None, start: int = 0) -> memoryview:
        """Chunk ``index`` (0-based) of file ``path``: ``nbytes`` bytes (at most ``chunk_bytes``).

        ``key`` is ``file_key(path)`` when the caller has it already (it is hashed once per file). Without
        ``out`` the view is of an internal buffer (valid until the next call; with ``randomize=False`` a
        shared read-only pattern); with ``out`` (a uint8 array of ``nbytes``) the bytes go there. ``start`` (a
        multiple of 8) asks for bytes ``start .. start + nbytes`` of the chunk instead: a writer can make a
        piece in slices that stay in the CPU cache until written, and get the same bytes.

        >>> src = ChunkSource(64, nonce=5)
        >>> bytes(src.chunk("a", 1, 16, start=40)) == bytes(src.chunk("a", 1, 56))[40:]
        True
        """
        if not 0 < nbytes <= self.chunk_bytes - start or start % 8:
            raise ValueError(f"bytes {start}..{start + nbytes} of a chunk asked; expected a start that is a multiple "
                             f"of 8 and 1..{self.chunk_bytes - start} bytes after it")
        if not self.randomize:
            pattern = self._ones.get(dtype)
            if pattern is None:
                pattern = self._ones[dtype] = _ones_pattern(dtype, self._base.nbytes)
            if out is None:
                return memoryview(pattern)[start:start + nbytes]
            out[:nbytes] = pattern[start:start + nbytes]
            return memoryview(out)[:nbytes]
        dest = self._out.view(np.uint8)[:nbytes] if out is None else out[:nbytes]
        k = _mix64((self.file_key(path) if key is None else key) ^ _mix64(index))
        first, words, whole = start // 8, nbytes // 8, (nbytes // 8) * 8
        if words:
            np.bitwise_xor(self._base[first:first + words], np.uint64(k), out=dest[:whole].view(np.uint64))
        if whole < nbytes:  # the tail past the last whole word, from the same key stream
            tail = np.bitwise_xor(self._base[first + words:first + words + 1], np.uint64(k)).view(np.uint8)
            dest[whole:] = tail[:nbytes - whole]
        return memoryview(dest)

    def fill(self, path: str, index: int, out: np.ndarray, *, dtype: str = "int8", key: int | None = None) -> memoryview:
        """Write chunk ``index`` of ``path`` into ``out`` (a uint8 array of 1..``chunk_bytes`` bytes); return a view.

        The same bytes as :meth:`chunk`, into a buffer the caller owns: a producer thread fills a ring of
        buffers, and a framework mechanism fills its tensors in place.

        >>> src = ChunkSource(64, nonce=3); out = np.empty(40, np.uint8)
        >>> bytes(src.fill("a", 2, out)) == bytes(src.chunk("a", 2, 40))
        True
        """
        return self.chunk(path, index, out.nbytes, dtype=dtype, key=key, out=out)
