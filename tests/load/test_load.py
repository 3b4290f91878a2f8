"""Twenty people using one server at once: nothing breaks, nobody sees another's state, memory stays bounded.

Runs the load scenario of ``harness.load_scenario`` (the same code as ``python -m bench.load``: a real ``streamlit
run`` with a fresh cache, warmed first, then one session alone, then 20
browser sessions at once for 60 s, each cycling through Neuron Explorer deep
links, test examples and drawings, while another session imports a model
privately). The timing figures are printed, not asserted: they depend on the
machine, and the benchmark (``python -m bench.load``) reports them.
"""

from __future__ import annotations

import json

import pytest

from harness.load_scenario import SECONDS, SESSIONS, run_load

#: The lone session runs for less than the crowd: its median needs only a few cycles, and the test stays short.
SINGLE_SECONDS = 30
PEAK_RSS_LIMIT_MB = 2048


@pytest.fixture(scope="module")
def load(tmp_path_factory):
    result = run_load(SESSIONS, SECONDS, SINGLE_SECONDS, cache=tmp_path_factory.mktemp("load-cache"))
    figures = {key: result[key] for key in ("single", "concurrent", "p95_over_single_median", "server_peak_rss_mb")}
    print("\nload figures (timings depend on the machine; not asserted):\n" + json.dumps(figures, indent=1))
    return result


pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_every_page_of_every_session_finishes_without_an_exception(load):
    concurrent = load["concurrent"]
    assert concurrent["timeouts"] == 0 and concurrent["exceptions"] == 0, concurrent["problems"]
    assert concurrent["problem_count"] == 0, concurrent["problems"]
    assert len(concurrent["finishes_per_session"]) == SESSIONS and min(concurrent["finishes_per_session"]) >= 1
    assert load["single"]["count"] >= 1 and not load["single"]["problems"], load["single"]["problems"]


def test_no_session_sees_another_sessions_state(load):
    # Each finish showed the session's own URL and exactly what a lone session saw for the same action
    # (unit header and metrics, test example, prediction and logit of its own drawing).
    assert load["concurrent"]["problem_count"] == 0, load["concurrent"]["problems"]
    isolation = load["isolation"]
    assert "error" not in isolation, isolation
    assert isolation["own_session_lists_it"], isolation
    assert isolation["other_sessions_checked"] == SESSIONS - 1 and not isolation["other_session_problems"], isolation
    assert load["isolation_holds"]


def test_server_memory_stays_bounded(load):
    assert load["server_peak_rss_mb"] < PEAK_RSS_LIMIT_MB, load["server_rss_mb"]
