"""The file table in arrays (dlio_core/file_table.py): the same pairs as the list it replaces, far less memory."""

from __future__ import annotations

import pickle
import sys

import pytest
from hypothesis import given, settings, strategies as st

from dlio_core.dist import Dist
from dlio_core.file_table import FileTable, shared_file_table

names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@settings(max_examples=50, deadline=None)
@given(pairs=st.lists(st.tuples(names, st.integers(0, 2**40)), max_size=40))
def test_the_table_reads_like_its_pairs(pairs):
    table = FileTable.from_pairs(pairs)
    assert len(table) == len(pairs) and list(table) == pairs and table == pairs
    assert [table[i] for i in range(-len(pairs), 0)] == pairs
    assert table[1:3] == pairs[1:3]
    again = pickle.loads(pickle.dumps(table))  # framework workers receive it pickled
    assert again == table and list(again) == pairs


def test_out_of_range_says_so():
    table = FileTable.from_pairs([("a", 1)])
    with pytest.raises(IndexError, match="file 1 out of range: the table holds 1 files"):
        table[1]


@settings(max_examples=50, deadline=None)
@given(numbers=st.lists(st.tuples(st.integers(0, 10**18), st.integers(0, 300)), min_size=1, max_size=40),
       sizes=st.lists(st.integers(0, 2**40), min_size=1, max_size=3))
def test_numbered_names_come_back_exactly(numbers, sizes):
    pairs = [(f"train/{sub}/img_{i}_of_{len(numbers)}.npz", sizes[i % len(sizes)]) for i, (_, sub) in
             enumerate(numbers)] + [(f"x{big}y", 1) for big, _ in numbers]
    table = FileTable.from_pairs(pairs)
    assert list(table) == pairs and pickle.loads(pickle.dumps(table)) == table


def test_dlio_names_cost_a_few_bytes_a_file_and_others_fall_back_to_raw():
    n = 100_000
    pairs = [(f"train/{i % 7}/img_{i}_of_{n}.npz", 4096) for i in range(n)]
    table = FileTable.from_pairs(pairs)
    assert list(table) == pairs and table[70_000] == pairs[70_000]  # iteration goes block by block: across one
    assert table.templates is not None and table.nbytes == n * (1 + 4)  # subfolder uint8, file number uint32
    as_objects = sys.getsizeof(pairs) + sum(sys.getsizeof(p) + sys.getsizeof(p[0]) + sys.getsizeof(p[1])
                                            for p in pairs)
    assert table.nbytes * 30 < as_objects
    for odd in ([("img_007.npz", 1), ("img_8.npz", 1)],                 # a leading zero would come back as 7
                [("a%d1", 1), ("a%d2", 2)],                              # a template holding '%'
                [("a1b2", 1), ("a3", 1)],                                # another count of numbers
                [(f"{chr(0x660 + i % 10)}_{i}", 1) for i in range(20)],  # Arabic-Indic digits are text here
                [(f"{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}_{i}", 1) for i in range(600)]):  # 338 templates
        table = FileTable.from_pairs(odd)
        assert list(table) == odd, odd
        if odd[0][0] == "img_007.npz" or len(odd) > 300:
            assert table.templates is None, odd
    raw = FileTable.from_pairs([("b/x.npz", 5), ("a/007.npz", 6)])
    assert raw.templates is None and raw.nbytes == len("b/x.npza/007.npz") + 8 * 3 + 8 * 2


def test_one_rank_computes_and_errors_reach_the_caller():
    assert shared_file_table(Dist(), lambda: [("x", 3)]) == [("x", 3)]

    def broken():
        raise OSError("cannot list s3://b/data")

    with pytest.raises(OSError, match="cannot list"):
        shared_file_table(Dist(), broken)
