"""Neuron Explorer benchmark: first-ever analysis, page load by deep link, neuron switch, server memory.

* ``first_analysis_s``: all 64 neurons' top examples and feature clusters of
  ``mlp-1x64`` from an empty cache (activations over the training set
  included), in a fresh process.
* ``browser``: a real ``streamlit run`` driven by headless Chromium, warm
  cache. *Deep link*: from navigation to a finished page (script done and
  every Plotly chart drawn) in a new tab; the model zoo page's load is given
  for comparison (what opening any page of the app costs on the machine).
  *Switch*: from clicking "Next" to the next neuron's finished page, clicking
  through neurons in one tab; the first switch after the load is reported
  apart. Medians over several repeats.
* ``server_compute``: the same two script runs through Streamlit's AppTest,
  which is the server's share of the time without the browser; and
  ``server_compute_deep``, the same for a deeper MLP layer, conv channels and
  a CNN's fully connected units (warm cache: each layer's atlas is computed in
  the warm-up round).
* ``server_peak_mb``: the server process's peak resident memory (VmHWM).

Run: ``python -m bench.neuron_explorer``.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .common import save

REPO = Path(__file__).resolve().parents[1]
MODEL, LAYER, START_NEURON = "mlp-1x64", "layers.0", 5
DEEP_UNITS = [("mlp-2x64", "layers.1"), ("cnn-digits", "conv1"), ("cnn-digits", "conv2"), ("challenge-cnn", "fc1")]
REPEATS = 5
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

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
loads, switches = [], []
for repeat in range(int(sys.argv[2]) + 1):  # the first round warms the process caches
    at.query_params.update({"model": sys.argv[3], "layer": sys.argv[4], "neuron": sys.argv[5]})
    start = time.perf_counter(); at.run(); load = time.perf_counter() - start
    assert not at.exception, at.exception
    at.button(key="nx_next").click()
    start = time.perf_counter(); at.run(); switch = time.perf_counter() - start
    assert not at.exception, at.exception
    if repeat:
        loads.append(load); switches.append(switch)
print(json.dumps({"deep_link_s": round(statistics.median(loads), 3),
                  "switch_s": round(statistics.median(switches), 3)}))
"""


def _python(code: str, *args: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                         cwd=REPO, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(env: dict, log) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.fileWatcherType", "none"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                return process, base
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise RuntimeError("streamlit did not start")
        time.sleep(0.3)


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM")


def _finished(page, neuron: int | None = None) -> None:
    """Wait until the script has run (for ``neuron``, when given) and every Plotly chart is drawn."""
    page.wait_for_function(
        """(neuron) => {
            const app = document.querySelector("[data-testid='stApp']");
            if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
            if (document.querySelector("[data-testid='stStatusWidget']")) return false;
            const header = neuron === null ||
                [...document.querySelectorAll('h2')].some(h => h.innerText.includes('neuron ' + neuron));
            const charts = [...document.querySelectorAll("[data-testid='stPlotlyChart']")];
            return header && charts.every(chart => chart.querySelector('.main-svg'));
        }""",
        arg=neuron, timeout=120_000, polling="raf",
    )
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def _browser(base: str) -> dict:
    from playwright.sync_api import sync_playwright

    url = f"{base}/neuron?model={MODEL}&layer={LAYER}&neuron={START_NEURON}"

    def timed_load(browser, address: str, neuron: int | None) -> float:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        start = time.perf_counter()
        page.goto(address)
        _finished(page, neuron)
        seconds = time.perf_counter() - start
        page.close()
        return seconds

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        timed_load(browser, url, START_NEURON)  # warms the server's caches and the browser's copy of the app
        loads = [timed_load(browser, url, START_NEURON) for _ in range(REPEATS)]
        # The same for the model zoo page: what any page of this app costs to open here.
        zoo_loads = [timed_load(browser, f"{base}/?model={MODEL}", None) for _ in range(REPEATS)]
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        _finished(page, START_NEURON)
        switches = []
        for step in range(1, REPEATS + 2):
            start = time.perf_counter()
            page.get_by_role("button", name="Next ▶").click()
            page.wait_for_url(f"**neuron={START_NEURON + step}**")
            _finished(page, START_NEURON + step)
            switches.append(time.perf_counter() - start)
        browser.close()
    return {"deep_link_s": round(statistics.median(loads), 3),
            "switch_s": round(statistics.median(switches[1:]), 3),
            "first_switch_after_load_s": round(switches[0], 3),
            "zoo_page_load_s": round(statistics.median(zoo_loads), 3),
            "deep_link_all_s": [round(v, 3) for v in loads], "switch_all_s": [round(v, 3) for v in switches[1:]]}


def main() -> None:
    # Other work on the machine slows everything here; the load average says how much there was.
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mechmnistic-bench-") as cache:
        env = {**os.environ, "MECHMNISTIC_CACHE": cache, "PYTHONPATH": str(REPO)}
        result = {"first_analysis_mlp_1x64": _python(_FIRST_ANALYSIS, MODEL, LAYER, env=env)}
        result["server_compute"] = _python(_SERVER_COMPUTE, str(REPO / "app.py"), str(REPEATS), MODEL, LAYER,
                                           str(START_NEURON), env=env)
        result["server_compute_deep"] = {
            f"{model} {layer}": _python(_SERVER_COMPUTE, str(REPO / "app.py"), str(REPEATS), model, layer,
                                        str(START_NEURON), env=env)
            for model, layer in DEEP_UNITS}
        with open(Path(cache) / "streamlit.log", "w") as log:
            process, base = _start_server(env, log)
            try:
                result["browser"] = _browser(base)
                result["server_peak_mb"] = _peak_mb(process.pid)
            finally:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
    result["load_average_1m"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    result["targets"] = {"switch_s": 0.8, "deep_link_s": 1.0, "server_peak_mb": 1024, "first_analysis_s": 10,
                         "server_switch_s": 0.5}
    save("neuron_explorer", result)


if __name__ == "__main__":
    main()
