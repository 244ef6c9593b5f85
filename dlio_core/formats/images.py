"""DLIO's ``jpeg`` and ``png`` formats: one sample per file (Pillow, extra ``dl-driver[formats]``).

Two ways to write a file, ``dataset.image_encoding`` (read by :meth:`ImageFormat.configure`):

* ``encoded`` (the default): a real image, as argonne's DLIO writes it (``PIL.Image.fromarray(sample)``
  saved as JPEG with Pillow's default quality, or PNG): 2-D uint8 samples are greyscale, ``(h, w, 3)``
  RGB, ``(h, w, 4)`` RGBA (PNG only); PNG also takes 2-D uint16. The default because a dataset
  should open as what its name says: Pillow, DALI's decoder or a trainer's pipeline can decode
  it, so ``decode`` mode measures real decoding. The file's size depends on the pixels (JPEG of noise is
  not ``record_length_bytes`` long), so ``file_size`` is None.
* ``raw``: the sample's bytes as they are, what the MLCommons fork writes unless the loader is native
  DALI (it is 3x / 27x faster to generate, and the fork only counts bytes when reading). Files are exactly
  ``record_length_bytes`` long but are not images; choose it to reproduce the fork's datasets.

Reading is whole-file (``whole_file = True``); ``reader.decode`` (``decode``) picks what ``parse`` does:
``False`` (bytes, as the fork measures) hands back the file's bytes, ``(file_bytes, 1)`` uint8, decoding
nothing, after checking the trailer of a file that starts with the format's signature (a file without
one is the fork's raw bytes: counted as its readers count it, so the fork's datasets read unchanged);
``True`` decodes the pixels with Pillow,
``(h, w[, channels], 1)``. Raw files are handed back as bytes in both modes (there is nothing to
decode). A file holds one sample, as DLIO writes them: any other ``dataset.num_samples_per_file`` is
a ``FormatError``.

Example:
    >>> import tempfile, numpy as np
    >>> from dlio_core.storage import open_storage
    >>> st = open_storage(tempfile.mkdtemp())
    >>> x = np.arange(64, dtype=np.uint8).reshape(8, 8, 1)
    >>> _ = PNG.write_file(st, "a.png", x)
    >>> from PIL import Image; Image.open(st.path("a.png")).size
    (8, 8)
    >>> PNG.parse(st.read("a.png")).shape[1], bool((PNG_DECODE.parse(st.read("a.png")) == x).all())
    (1, True)
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from dlio_core.formats._extras import pil_image
from dlio_core.formats._rows import decode_flag, option_name, sample_count
from dlio_core.formats.base import FormatError, where

if TYPE_CHECKING:
    from dlio_core.storage import Storage

__all__ = ["JPEG", "PNG", "PNG_DECODE", "ImageFormat", "ENCODINGS"]

ENCODINGS = ("encoded", "raw")
_SIGNATURE = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}
_TRAILER = {"jpeg": b"\xff\xd9", "png": b"IEND\xaeB`\x82"}   # EOI marker; the IEND chunk's type and CRC
# (format, ndim for greyscale or channels, dtype) -> the Pillow mode fromarray gives such an array
_PIL_MODES = {("jpeg", 2, "uint8"): "L", ("jpeg", 3, "uint8"): "RGB", ("png", 2, "uint8"): "L",
              ("png", 3, "uint8"): "RGB", ("png", 4, "uint8"): "RGBA", ("png", 2, "uint16"): "I;16"}


def _one_sample(fmt: str, n: int) -> None:
    if n != 1:
        raise FormatError(f"dataset.num_samples_per_file: {n}, but {fmt} files hold one sample each "
                          f"(as DLIO writes them); set it to 1")


@dataclass(frozen=True)
class ImageFormat:
    """DLIO's jpeg or png format; ``encoding`` and ``decode`` as the module docstring says."""

    name: str
    extension: str
    whole_file: ClassVar[bool] = True
    encoding: str = "encoded"
    decode: bool = False

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise FormatError(f"dataset.image_encoding: {self.encoding!r} is not one of {', '.join(ENCODINGS)}")

    def configure(self, dataset: Any, reader: Any = None) -> ImageFormat:
        """This format with ``dataset.image_encoding`` and ``reader.decode``; ``FormatError`` when
        ``dataset.num_samples_per_file`` is not 1.

        Example:
            >>> from types import SimpleNamespace as NS
            >>> JPEG.configure(NS(num_samples_per_file=1, image_encoding="raw"), NS(decode=True)).encoding
            'raw'
        """
        _one_sample(self.name, int(getattr(dataset, "num_samples_per_file", 1) or 1))
        return replace(self, encoding=option_name(getattr(dataset, "image_encoding", None), "encoded"),
                       decode=decode_flag(reader, self.decode))

    def _check(self, shape: tuple[int, ...], compression: str | None) -> None:
        if not shape:
            raise FormatError(f"{self.name}: the array needs a sample axis (the last one)")
        _one_sample(self.name, int(shape[-1]))
        if option_name(compression) not in ("none", ""):
            raise FormatError(f"{self.name} files are compressed by their own encoding; dataset.compression "
                              f"{option_name(compression)!r} does not apply")

    def file_size(self, shape: tuple[int, ...], dtype: Any, *, compression: str | None = "none") -> int | None:
        """The sample's bytes for raw files; None for encoded images (their size depends on the pixels).

        Example:
            >>> replace(JPEG, encoding="raw").file_size((568, 568, 1), "uint8"), JPEG.file_size((568, 568, 1), "uint8")
            (322624, None)
        """
        self._check(tuple(shape), compression)
        if self.encoding == "raw":
            return math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize
        return None

    def encode(self, sample: np.ndarray) -> bytes:
        """The JPEG or PNG bytes of one sample, as DLIO's generator saves it with Pillow."""
        a = np.asarray(sample)
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        mode = _PIL_MODES.get((self.name, a.ndim if a.ndim == 2 else a.shape[-1], a.dtype.name))
        if a.ndim not in (2, 3) or mode is None:
            raise FormatError(f"{self.name}: cannot encode a sample of shape {a.shape} {a.dtype} as an image "
                              f"(uint8 greyscale, RGB{' or RGBA, or uint16 greyscale' if self.name == 'png' else ''}); "
                              f"use dataset.image_encoding: raw to write the bytes as they are")
        out = io.BytesIO()
        image = pil_image(self.name).fromarray(np.ascontiguousarray(a, a.dtype.newbyteorder("=")))
        image.save(out, format=self.name.upper(), **({"bits": 8} if self.name == "jpeg" else {}))
        return out.getvalue()

    def write_file(self, storage: Storage, path: str, x: np.ndarray, *, compression: str | None = "none") -> int:
        """Write the one sample of ``x`` (``(*sample_shape, 1)``) as an image or its raw bytes; return
        the bytes written."""
        self._check(tuple(np.shape(x)), compression)
        sample_count(x, self.name)
        sample = np.asarray(x)[..., 0]
        if self.encoding == "raw":
            return storage.write_atomic(path, np.ascontiguousarray(sample).reshape(-1).view(np.uint8))
        return storage.write_atomic(path, self.encode(sample))

    @property
    def parse_reads_length_only(self) -> bool:
        """Whether ``parse`` looks at nothing but the buffer's length (the fork's raw bytes: no signature,
        no end marker to check), so a reader may read file after file into one reused buffer and parse
        each read as it lands (the engine's ``read_large``).

        Example:
            >>> JPEG.parse_reads_length_only, replace(JPEG, encoding="raw").parse_reads_length_only
            (False, True)
        """
        return self.encoding == "raw"

    def parse(self, buffer: Any, path: str | None = None) -> np.ndarray:
        """The one sample of a whole file: its bytes ``(n, 1)`` uint8, or (``decode`` on an encoded file)
        its pixels ``(h, w[, c], 1)``. ``FormatError`` naming ``path`` on a wrong signature or a
        truncated image."""
        mv = memoryview(buffer).cast("B")
        raw = np.frombuffer(mv, np.uint8)
        if self.encoding == "raw":
            return raw[:, None]
        sig = _SIGNATURE[self.name]
        if bytes(mv[:len(sig)]) != sig:
            if not self.decode:  # the fork's raw bytes: its readers count them, and so do we
                return raw[:, None]
            raise FormatError(f"{where(path)}: not a {self.name.upper()} file (bad magic {bytes(mv[:8])!r}); "
                              f"for the MLCommons fork's raw-bytes files set dataset.image_encoding: raw")
        if not self.decode:
            tail = _TRAILER[self.name]
            if bytes(mv[-len(tail):]) != tail:
                raise FormatError(f"{where(path)}: truncated {self.name.upper()} file (no end marker)")
            return raw[:, None]
        image_module = pil_image(self.name)
        try:
            with image_module.open(io.BytesIO(mv)) as image:
                image.load()
                pixels = np.asarray(image)
        except (OSError, SyntaxError, ValueError, image_module.DecompressionBombError) as e:
            raise FormatError(f"{where(path)}: cannot decode {self.name.upper()} ({e})") from None
        return pixels[..., None]


JPEG = ImageFormat("jpeg", "jpeg")
PNG = ImageFormat("png", "png")
PNG_DECODE = replace(PNG, decode=True)
