"""one_thread: one thread inside, the original thread-pool sizes after, even when callers overlap."""

import threading

import numpy  # noqa: F401  (loads the BLAS pool under watch)
from threadpoolctl import threadpool_info

from mechmnistic.threads import one_thread


def _sizes() -> dict[str, int]:
    return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()}


def test_overlapping_callers_leave_the_original_sizes():
    """Two sessions' script threads inside at once; the first leaves while the second still works."""
    before = _sizes()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first() -> None:
        with one_thread():
            seen["first"] = _sizes()
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second() -> None:
        first_in.wait(10)
        with one_thread():
            second_in.set()
            first_out.wait(10)
            seen["second, after the first left"] = _sizes()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert set(seen["first"].values()) == {1}, seen
    assert set(seen["second, after the first left"].values()) == {1}, seen
    assert _sizes() == before
