"""Run many small dense products on one thread, safely when several sessions do it at once.

For the small matrices of per-unit analyses (a few hundred rows), BLAS and
OpenMP thread pools cost more than they give: on the 2-core machines this
project runs on they made the neuron atlas several times slower. But the two
kinds of pool are sized differently. An OpenMP size belongs to the calling
thread, so each caller sets and restores its own. A BLAS size is one per
process, and ``threadpoolctl`` restores the size it found on entry, so two
overlapping callers (two sessions of one server) could leave it wrong for
good; ``one_thread()`` therefore counts who is inside: the first caller in
sets one BLAS thread, the last one out restores the original size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController, threadpool_limits

_lock = threading.Lock()
_inside = 0
_blas_limit = None


@contextmanager
def one_thread() -> Iterator[None]:
    global _inside, _blas_limit
    with _lock:
        if _inside == 0:
            _blas_limit = ThreadpoolController().limit(limits=1, user_api="blas")
        _inside += 1
    try:
        with threadpool_limits(limits=1, user_api="openmp"):
            yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None
