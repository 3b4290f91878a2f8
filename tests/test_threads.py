"""one_thread: one thread inside, the original thread-pool sizes after, even when callers overlap.

The scenario runs in a fresh interpreter: BLAS pool sizes are per process, so a
thread left behind by another test (an AppTest script still computing after its
timeout, say) could change them mid-check and make this test about that thread
rather than about ``one_thread``.
"""

import json
import os
import subprocess
import sys

SCENARIO = r'''
import json, threading
import numpy  # loads the BLAS pool under watch
from threadpoolctl import threadpool_info
from mechmnistic.threads import one_thread

def sizes():
    return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()}

before = sizes()
first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
seen = {}

def first():
    with one_thread():
        seen["first"] = sizes()
        first_in.set()
        second_in.wait(10)
    first_out.set()

def second():
    first_in.wait(10)
    with one_thread():
        second_in.set()
        first_out.wait(10)
        seen["second, after the first left"] = sizes()

threads = [threading.Thread(target=first), threading.Thread(target=second)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(20)
print(json.dumps({"before": before, "after": sizes(), **seen}))
'''


def test_overlapping_callers_leave_the_original_sizes():
    """Two sessions' script threads inside at once; the first leaves while the second still works."""
    # Two threads per pool to start with, so that "one thread inside" is a change we can see.
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    result = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert set(seen["before"].values()) == {2}, seen
    assert set(seen["first"].values()) == {1}, seen
    assert set(seen["second, after the first left"].values()) == {1}, seen
    assert seen["after"] == seen["before"]
