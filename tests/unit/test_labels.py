"""dlio_core.labels: npz labels from the bytes already read, never another file's, and named failures."""

from __future__ import annotations

import numpy as np
import pytest

from dlio_core.formats import get_format
from dlio_core.labels import formats_with_labels, has_labels, labels_of_file
from dlio_core.storage import open_storage


def _archive(st, name, ys, **kw):
    np.savez(st.path(name), x=np.zeros((2, 2, len(ys)), np.uint8), y=np.asarray(ys), **kw)
    return np.frombuffer(st.read(name), np.uint8)


def test_labels_come_from_the_buffer_a_sample_views(tmp_path):
    st = open_storage(str(tmp_path))
    buf = _archive(st, "a.npz", [3, 1, 4])
    view = get_format("npz").parse(buf)[..., 1]
    reads = []
    got = labels_of_file(view, lambda p: reads.append(p) or st.read(p), "a.npz", buf.size)
    assert got.tolist() == [3, 1, 4] and got.dtype == np.int64 and reads == []  # no second read


def test_a_buffer_holding_several_files_never_lends_the_first_ones_labels(tmp_path):
    st = open_storage(str(tmp_path))
    a, b = _archive(st, "a.npz", [1, 2]), _archive(st, "b.npz", [7, 8])
    arena = np.concatenate([a, b])  # two files in one pooled buffer, b second
    view_b = np.frombuffer(arena, np.uint8, count=4, offset=a.size + 100)  # a sample of b, based on the arena
    reads = []
    got = labels_of_file(view_b, lambda p: reads.append(p) or st.read(p), "b.npz", b.size)
    assert got.tolist() == [7, 8] and reads == ["b.npz"]  # read again rather than take a.npz's labels


def test_compressed_and_odd_dtypes_and_missing_y(tmp_path):
    st = open_storage(str(tmp_path))
    np.savez_compressed(st.path("c.npz"), x=np.zeros((2, 2, 2), np.uint8), y=np.array([5, 6], np.int16))
    assert labels_of_file(np.zeros(1), st.read, "c.npz", st.size("c.npz")).tolist() == [5, 6]
    np.savez(st.path("n.npz"), x=np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="n.npz: npz archive has no y member"):
        labels_of_file(np.zeros(1), st.read, "n.npz", st.size("n.npz"))
    st.write_atomic("bad.npz", b"not a zip at all")
    with pytest.raises(ValueError, match="bad.npz: not a readable npz archive"):
        labels_of_file(np.zeros(1), st.read, "bad.npz", 16)


def test_which_formats_carry_labels():
    assert formats_with_labels() == ("npz",)
    assert has_labels(get_format("npz")) and has_labels("npz") and not has_labels(get_format("npy"))


def test_step_labels_read_each_file_once_then_gather_from_what_they_kept(tmp_path):
    from dlio_core.labels import StepLabels

    st = open_storage(str(tmp_path))
    np.savez(st.path("a.npz"), x=np.zeros((2, 2, 2), np.uint8), y=np.array([8, 9]))
    np.savez(st.path("b.npz"), x=np.zeros((2, 2, 2), np.uint8), y=np.array([3, 4]))
    files = [("a.npz", st.size("a.npz")), ("b.npz", st.size("b.npz"))]
    reads: list[str] = []
    step = StepLabels(lambda p: reads.append(p) or st.read(p), lambda f: st.join(files[f][0]),
                      lambda f: files[f][1], len(files), samples_per_file=2)
    views = [np.zeros(1)] * 3
    assert step(views, np.array([1, 0, 1]), np.array([0, 1, 1])).tolist() == [3, 9, 4]
    assert len(reads) == 2  # each file once in the step, though b has two samples in it
    assert step(views, np.array([0, 1, 0]), np.array([0, 1, 1])).tolist() == [8, 4, 9]
    assert len(reads) == 2  # kept: the second step read no label bytes
    np.savez(st.path("c.npz"), x=np.zeros((2, 2, 2), np.uint8), y=np.array([6, 7]))
    files.append(("c.npz", st.size("c.npz")))
    step = StepLabels(step.read, step.path_of, step.size_of, 3, samples_per_file=2)
    step._seen[:2], step._labels[:4] = True, [8, 9, 3, 4]  # a and b seen in earlier steps
    assert step(views, np.array([2, 0, 1]), np.array([1, 0, 1])).tolist() == [7, 8, 4]
    assert reads[2:] == [st.join("c.npz")]  # a step with one new file reads that file only
    uncached = StepLabels.of_files(st, files, samples_per_file=0)
    uncached.read = lambda p: reads.append(p) or st.read(p)
    uncached(views[:1], np.array([0]), np.array([1]))
    uncached(views[:1], np.array([0]), np.array([1]))
    assert len(reads) == 5  # samples_per_file=0 keeps nothing: two more reads


def test_step_labels_name_the_file_without_labels(tmp_path):
    from dlio_core.labels import StepLabels

    st = open_storage(str(tmp_path))
    np.savez(st.path("n.npz"), x=np.zeros((2, 2, 2), np.uint8))
    step = StepLabels.of_files(st, [("n.npz", st.size("n.npz"))], samples_per_file=2)
    with pytest.raises(ValueError, match="n.npz.*no y member"):
        step([np.zeros(1)], np.array([0]), np.array([0]))
