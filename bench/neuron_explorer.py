"""Neuron Explorer benchmark: first-ever analysis, page load by deep link, neuron switch, server memory.

* ``first_analysis_s``: all 64 neurons' top examples and feature clusters of
  ``mlp-1x64`` from an empty cache (activations over the training set
  included), in a fresh process.
* ``browser``: a real ``streamlit run`` driven by headless Chromium, warm
  cache, for each of the page's tabs (``view=``; the headline figures are the
  first tab's, which a link without ``view`` opens). *Deep link*: from
  navigation to a finished page (``common.PAGE_FINISHED_JS``: script done,
  nothing pending or still a loading skeleton, the unit's header there and
  all the tab's Plotly charts drawn) in a new browser tab. For comparison,
  measured in turn with each other: the model zoo page (this app, no chart)
  and two reference pages in ``bench/reference_pages/``, each its own
  Streamlit app: a bare page (a title and a line of text) and the same with
  one three-bar Plotly chart (what any page with a Plotly figure costs to
  open on the machine). *Switch*: from clicking "Next" to the next neuron's
  finished page, clicking through neurons on one tab; the first switch after
  the load is reported apart. Medians over several repeats. ``latents``: the
  same deep link and switch for the latents of the bundled dictionary of
  ``mlp-1x64``'s layer (``basis=dictionary:ID``, first tab).
* ``server_compute``: the same two script runs through Streamlit's AppTest, on
  each tab, which is the server's share of the time without the browser; and
  ``server_compute_deep``, the same for a deeper MLP layer, conv channels and
  a CNN's fully connected units (warm cache: each layer's atlas is computed in
  the warm-up round).
* ``server_peak_mb``: the server process's peak resident memory (VmHWM).

Run: ``python -m bench.neuron_explorer``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from urllib.parse import quote_plus

from harness.browser import CHROMIUM_ARGS, REPO, wait_until_finished
from mechmnistic.serve import running_app
from ui.links import CLUSTERS, ON_INPUT, READS, TOP_EXAMPLES

from .common import peak_memory_mb, save

MODEL, LAYER, START_NEURON = "mlp-1x64", "layers.0", 5
DEEP_UNITS = [("mlp-2x64", "layers.1"), ("cnn-digits", "conv1"), ("cnn-digits", "conv2"), ("challenge-cnn", "fc1")]
REPEATS = 5
#: Reference pages (script, Plotly charts): what a deep link costs on the machine before any of this app's work.
REFERENCE_PAGES = {"bare_page": ("bench/reference_pages/bare.py", 0),
                   "page_with_one_plotly_chart": ("bench/reference_pages/one_chart.py", 1)}
#: The page's tabs by slug (``ui.links.NEURON_VIEWS``) and the charts each draws for an mlp-1x64 neuron: input
#: and output weights, histogram, firing by digit | the input, its effective weights and embedding | the examples
#: mosaic | the cluster mosaic, the digits per cluster, the members mosaic.
TAB_CHARTS = {READS.slug: 4, ON_INPUT.slug: 3, TOP_EXAMPLES.slug: 1, CLUSTERS.slug: 3}
#: A latent's first tab: the neurons it reads and writes (one figure), its logit effects, histogram and firing by digit.
LATENT_BASIS, LATENT_CHARTS = "dictionary:layers.0-topk512", 4

_FIRST_ANALYSIS = """
import json, sys, time
from mechmnistic import load_mnist, load_model
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.atlas import neuron_atlas
model = load_model(sys.argv[1]); load_mnist("train")
start = time.perf_counter()
layer_activations(model, sys.argv[2])
activations = time.perf_counter() - start
atlas = neuron_atlas(model, sys.argv[2])
total = time.perf_counter() - start
print(json.dumps({"seconds": round(total, 3), "of_which_activations_s": round(activations, 3),
                  "units": int(atlas.n_units), "max_clusters": int(atlas.n_clusters.max())}))
"""

_SERVER_COMPUTE = """
import json, statistics, sys, time
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=300)
at.run()
at.switch_page("app_pages/neuron_explorer.py")
result = {}
for view in sys.argv[6:]:
    loads, switches = [], []
    for repeat in range(int(sys.argv[2]) + 1):  # the first round warms the process caches
        at.query_params.update({"model": sys.argv[3], "layer": sys.argv[4], "unit": sys.argv[5], "view": view})
        start = time.perf_counter(); at.run(); load = time.perf_counter() - start
        assert not at.exception, at.exception
        at.button(key="nx_next").click()
        start = time.perf_counter(); at.run(); switch = time.perf_counter() - start
        assert not at.exception, at.exception
        if repeat:
            loads.append(load); switches.append(switch)
    result[view] = {"deep_link_s": round(statistics.median(loads), 3),
                    "switch_s": round(statistics.median(switches), 3)}
print(json.dumps(result))
"""


def _python(code: str, *args: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                         cwd=REPO, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _unit_header(neuron: int, basis: str | None = None) -> str:
    if basis:
        return f"{LAYER} · latent {neuron} of {basis.split(':', 1)[1]}"
    return f"{LAYER} · neuron {neuron}"


def _link(base: str, view: str, basis: str | None = None) -> str:
    """The deep link to the start unit on ``view`` (the first tab: a link without ``view``, as most are)."""
    tab = "" if view == next(iter(TAB_CHARTS)) else f"&view={view}"
    in_basis = f"&basis={quote_plus(basis)}" if basis else ""
    return f"{base}/neuron?model={MODEL}&layer={LAYER}&unit={START_NEURON}{tab}{in_basis}"


def _timed_open(context, address: str, text: str, charts: int) -> float:
    """Seconds from navigating a new tab to ``address`` until the page is finished, showing ``text``."""
    page = context.new_page()
    start = time.perf_counter()
    page.goto(address)
    wait_until_finished(page, text, charts)
    seconds = time.perf_counter() - start
    page.close()
    return seconds


def _timed_load(context, address: str, neuron: int, charts: int, basis: str | None = None) -> float:
    return _timed_open(context, address, _unit_header(neuron, basis), charts)


def _tab(context, base: str, view: str, charts: int, basis: str | None = None) -> dict:
    """Deep link to the view's tab, then switches with "Next" on it; medians (and all samples)."""
    url = _link(base, view, basis)
    loads = [_timed_load(context, url, START_NEURON, charts, basis) for _ in range(REPEATS)]
    page = context.new_page()
    page.goto(url)
    wait_until_finished(page, _unit_header(START_NEURON, basis), charts)
    switches = []
    for step in range(1, REPEATS + 2):
        start = time.perf_counter()
        page.get_by_role("button", name="Next ▶").click()
        page.wait_for_url(f"**unit={START_NEURON + step}**")
        wait_until_finished(page, _unit_header(START_NEURON + step, basis), charts)
        switches.append(time.perf_counter() - start)
    page.close()
    return {"deep_link_s": round(statistics.median(loads), 3), "switch_s": round(statistics.median(switches[1:]), 3),
            "first_switch_after_load_s": round(switches[0], 3),
            "deep_link_all_s": [round(v, 3) for v in loads], "switch_all_s": [round(v, 3) for v in switches[1:]]}


def _browser(base: str, references: dict[str, tuple[str, int]]) -> dict:
    """Every tab of the page (the first is what a link without ``view`` opens), the zoo page, and the
    ``references`` (name -> (URL, charts) of a reference page)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        for view, charts in TAB_CHARTS.items():  # warms the server's caches and the browser's copy of the app
            _timed_load(context, _link(base, view), START_NEURON, charts)
        tabs = {view: _tab(context, base, view, charts) for view, charts in TAB_CHARTS.items()}
        first = next(iter(TAB_CHARTS))
        _timed_load(context, _link(base, first, LATENT_BASIS), START_NEURON, LATENT_CHARTS, LATENT_BASIS)  # warm-up
        latents = _tab(context, base, first, LATENT_CHARTS, LATENT_BASIS)
        # What opening a page costs on the machine before the Neuron Explorer's own work: this app's model zoo
        # (text, tables, no chart) and the two reference pages, measured in turn so that they share the
        # machine's moods.
        pages = {"zoo_page": (f"{base}/?model={MODEL}", "Model zoo", 0),
                 **{name: (url, "Reference page", charts) for name, (url, charts) in references.items()}}
        for url, text, charts in pages.values():  # the reference pages' first visit fills the browser's cache
            _timed_open(context, url, text, charts)
        loads = {name: [] for name in pages}
        for _ in range(REPEATS):
            for name, (url, text, charts) in pages.items():
                loads[name].append(_timed_open(context, url, text, charts))
        browser.close()
    default = tabs[next(iter(TAB_CHARTS))]
    return {"deep_link_s": default["deep_link_s"], "switch_s": default["switch_s"],
            **{f"{name}_load_s": round(statistics.median(times), 3) for name, times in loads.items()},
            "tabs": tabs, "latents": latents}


def main() -> None:
    # Other work on the machine slows everything here; the load average says how much there was.
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mechmnistic-bench-") as cache:
        env = {**os.environ, "MECHMNISTIC_CACHE": cache, "PYTHONPATH": str(REPO)}
        result = {"first_analysis_mlp_1x64": _python(_FIRST_ANALYSIS, MODEL, LAYER, env=env)}
        result["server_compute"] = _python(_SERVER_COMPUTE, str(REPO / "app.py"), str(REPEATS), MODEL, LAYER,
                                           str(START_NEURON), *TAB_CHARTS, env=env)
        result["server_compute_deep"] = {
            f"{model} {layer}": _python(_SERVER_COMPUTE, str(REPO / "app.py"), str(REPEATS), model, layer,
                                        str(START_NEURON), *TAB_CHARTS, env=env)
            for model, layer in DEEP_UNITS}
        with ExitStack() as servers:
            base, pid = servers.enter_context(running_app(env))
            references = {name: (servers.enter_context(running_app(env, script))[0], charts)
                          for name, (script, charts) in REFERENCE_PAGES.items()}
            result["browser"] = _browser(base, references)
            result["server_peak_mb"] = round(peak_memory_mb(pid), 1)
    result["load_average_1m"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    result["targets"] = {"switch_s": 0.8, "deep_link_s": 1.0, "server_peak_mb": 1024, "first_analysis_s": 10,
                         "server_switch_s": 0.5}
    save("neuron_explorer", result)


if __name__ == "__main__":
    main()
