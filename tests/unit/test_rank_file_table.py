"""The file table in arrays (dlio_core/file_table.py): the same pairs as the list it replaces, far less memory."""

from __future__ import annotations

import pickle
import sys

import numpy as np
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


def test_out_of_range_and_inconsistent_tables_say_so():
    table = FileTable.from_pairs([("a", 1)])
    with pytest.raises(IndexError, match="file 1 out of range: the table holds 1 files"):
        table[1]
    with pytest.raises(ValueError, match="inconsistent file table"):
        FileTable(np.zeros(3, np.uint8), np.array([0, 2], np.int64), np.zeros(1, np.int64))


def test_memory_is_name_bytes_plus_16_a_file():
    pairs = [(f"train/{i % 7}/img_{i}_of_100000.npz", 4096 + i) for i in range(100_000)]
    table = FileTable.from_pairs(pairs)
    assert list(table) == pairs and table[70_000] == pairs[70_000]  # iteration goes block by block: across one
    name_bytes = sum(len(n.encode()) for n, _ in pairs)
    assert table.nbytes == name_bytes + 16 * len(pairs) + 8
    as_objects = sys.getsizeof(pairs) + sum(sys.getsizeof(p) + sys.getsizeof(p[0]) + sys.getsizeof(p[1])
                                            for p in pairs)
    assert table.nbytes * 3 < as_objects  # the list of tuples it replaces costs several times more


def test_one_rank_computes_and_errors_reach_the_caller():
    assert shared_file_table(Dist(), lambda: [("x", 3)]) == [("x", 3)]

    def broken():
        raise OSError("cannot list s3://b/data")

    with pytest.raises(OSError, match="cannot list"):
        shared_file_table(Dist(), broken)
