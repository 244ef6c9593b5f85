"""dlio_core.prefetch.background_map: order, bounded run-ahead, errors, early close (no thread leak)."""

from __future__ import annotations

import threading
import time

import pytest

from dlio_core.prefetch import background_map


class Source:
    """An iterator over ``range(n)`` that records what was taken and whether it was closed; fails at ``fail_at``."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.taken = 0
        self.closed = False
        self.close_thread: str | None = None

    def __iter__(self) -> Source:
        return self

    def __next__(self) -> int:
        if self.taken == self.fail_at:
            raise OSError(f"source failed at {self.taken}")
        if self.taken >= self.n:
            raise StopIteration
        self.taken += 1
        return self.taken - 1

    def close(self) -> None:
        self.closed = True
        self.close_thread = threading.current_thread().name


def _settle(cond, timeout: float = 2.0) -> bool:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def baseline():
    before = threading.active_count()
    yield before
    assert _settle(lambda: threading.active_count() == before), [t.name for t in threading.enumerate()]


def test_order_kept_and_source_closed(baseline):
    src = Source(50)

    def fn(x: int) -> int:
        time.sleep(0.001 * (x % 3))  # uneven work: order must not depend on it
        return x * 10

    assert list(background_map(src, fn, name="t-order")) == [x * 10 for x in range(50)]
    assert src.closed and src.close_thread == "t-order"
    assert threading.active_count() == baseline  # joined before the generator returned


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_at_most_depth_results_out(baseline, depth):
    started: list[int] = []
    out = background_map(iter(range(20)), lambda x: started.append(x) or x, depth=depth, name="t-depth")
    for consumed, x in enumerate(out, start=1):
        assert x == consumed - 1
        # the thread fills every free slot, then stops: the result held here plus depth - 1 more
        assert _settle(lambda: len(started) == min(20, consumed + depth - 1))
        if consumed <= 4:
            time.sleep(0.03)  # and it goes no further while this step "runs"
            assert len(started) == consumed + depth - 1


def test_on_ready_runs_on_consumer_thread_before_yield(baseline):
    seen: list[tuple[int, str]] = []
    out = background_map(iter(range(4)), lambda x: x + 1, name="t-ready",
                         on_ready=lambda r: seen.append((r, threading.current_thread().name)))
    got = []
    for r in out:
        assert seen[-1] == (r, threading.current_thread().name)  # ran just before this result came out
        got.append(r)
    assert got == [1, 2, 3, 4]


def test_exception_in_fn_surfaces_after_earlier_results(baseline):
    src = Source(10)

    def fn(x: int) -> int:
        if x == 3:
            raise ValueError("bad item 3")
        return x

    out = background_map(src, fn, name="t-fn-error")
    assert [next(out) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="bad item 3"):
        next(out)
    assert src.closed
    with pytest.raises(StopIteration):
        next(out)


def test_exception_in_source_surfaces(baseline):
    src = Source(10, fail_at=2)
    out = background_map(src, lambda x: x, name="t-src-error")
    assert next(out) == 0 and next(out) == 1
    with pytest.raises(OSError, match="source failed at 2"):
        next(out)
    assert src.closed


def test_exception_in_close_surfaces(baseline):
    class Bad(Source):
        def close(self) -> None:
            raise RuntimeError("close failed")

    with pytest.raises(RuntimeError, match="close failed"):
        list(background_map(Bad(3), lambda x: x, name="t-close-error"))


def test_results_that_look_like_sentinels_pass_through(baseline):
    exc = KeyError("a value, not an error")
    assert list(background_map(iter([exc, None]), lambda x: x, name="t-values")) == [exc, None]


@pytest.mark.parametrize("depth", [1, 2])
def test_early_close_stops_thread_and_closes_source(baseline, depth):
    src = Source(1000)
    dropped: list[int] = []
    mapped: list[int] = []
    out = background_map(src, lambda x: mapped.append(x) or x, depth=depth, name="t-close",
                         on_drop=dropped.append)
    assert next(out) == 0
    assert _settle(lambda: src.taken == depth + 1)  # blocked on a slot with one item in hand
    out.close()
    assert threading.active_count() == baseline
    assert src.closed
    assert src.taken < 1000
    assert dropped == [depth] and mapped == list(range(depth))  # the item in hand went to on_drop, not fn


def test_break_and_collect_stop_thread(baseline):
    src = Source(1000)
    for x in background_map(src, lambda x: x, name="t-break"):
        if x == 5:
            break  # the generator is dropped: CPython closes it at once
    assert _settle(lambda: src.closed)


def test_never_started_starts_no_thread(baseline):
    src = Source(3)
    out = background_map(src, lambda x: x, name="t-unstarted")
    assert not any(t.name == "t-unstarted" for t in threading.enumerate())
    out.close()
    assert not src.closed and src.taken == 0


def test_close_while_fn_runs(baseline):
    """Closing while the thread is inside a slow ``fn`` waits for it, then stops: nothing left running."""
    gate = threading.Event()

    def fn(x: int) -> int:
        if x == 1:
            gate.wait(2)
        return x

    src = Source(5)
    out = background_map(src, fn, depth=3, name="t-slow")
    assert next(out) == 0
    threading.Timer(0.05, gate.set).start()
    out.close()  # waits for fn(1) to finish, then the thread sees stop
    assert src.closed


def test_depth_checked_at_call():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        background_map(iter(()), lambda x: x, depth=0, name="t-bad")
