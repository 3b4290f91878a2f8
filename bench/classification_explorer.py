"""Classification Explorer benchmark: a real `streamlit run` driven by headless Chromium, warm cache.

Measures, for ``mlp-1x64``, the time from the user's action to the finished
page (the script has finished, nothing is pending, and every Plotly chart is
drawn in the browser):

* ``deep_link_load_s``: a new visitor opens ``/classify?model=mlp-1x64&test_index=I``;
* ``change_example_s``: typing another test index (Enter) on the open page;
* ``rerun_after_stroke_s``: from the end of a stroke on the blank canvas to the
  page showing its prediction (this includes the component's own delay before
  it sends the drawing).

For each it also records the server's CPU time spent (``/proc/<pid>/stat``,
all threads: the server-side compute), and at the end the server's peak
resident memory (``VmHWM``). Run: ``python -m bench.classification_explorer``.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .common import save

REPO = Path(__file__).resolve().parents[1]
MODEL = "mlp-1x64"
REPEATS = 5
TEST_INDICES = [8, 1234, 4321, 77, 9001, 2500]
TARGETS = {"deep_link_load_s": 2.5, "change_example_s": 1.7, "rerun_after_stroke_s": 1.5, "server_peak_mb": 1024}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
#: Charts on the page for a test example of mlp-1x64 (input, logits, probabilities, activations, output
#: weights, logit effects, important units, combined embeddings).
CHARTS = 8

# True when the script has finished, nothing is pending, ``text`` is on the page and every chart is drawn.
_FINISHED_JS = """
([text, charts]) => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
  if (document.querySelector("[data-testid='stStatusWidget']")) return false;
  if (!document.body.innerText.includes(text)) return false;
  const drawn = [...document.querySelectorAll("[data-testid='stPlotlyChart']")]
    .filter(chart => chart.querySelector(".main-svg"));
  return drawn.length >= charts;
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """A `streamlit run app.py` on a free port, with ``env`` added to this process's environment (by default
    none: the default, warm analysis cache); yields (base URL, pid)."""
    port = _free_port()
    log = tempfile.NamedTemporaryFile("w", prefix="bench-streamlit-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.fileWatcherType", "none"],
        cwd=REPO, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not start; see {log.name}")
            time.sleep(0.3)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def _wait_finished(page, text: str, charts: int = CHARTS) -> None:
    page.wait_for_function(_FINISHED_JS, arg=[text, charts], polling=25, timeout=120_000)


def _measure(pid: int, action, finished) -> tuple[float, float]:
    """(wall seconds, server CPU seconds) from ``action()`` to ``finished()`` returning."""
    cpu = server_cpu_s(pid)
    start = time.perf_counter()
    action()
    finished()
    return time.perf_counter() - start, server_cpu_s(pid) - cpu


def _stroke(page, points: list[tuple[float, float]]) -> None:
    box = page.locator("canvas.upper-canvas").bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=6)


def _summary(samples: list[tuple[float, float]]) -> dict:
    walls, cpus = [s[0] for s in samples], [s[1] for s in samples]
    return {"median_s": round(statistics.median(walls), 3), "max_s": round(max(walls), 3),
            "samples_s": [round(w, 3) for w in walls],
            "server_cpu_median_s": round(statistics.median(cpus), 3)}


def main() -> None:
    from playwright.sync_api import sync_playwright

    base_url = f"/classify?model={MODEL}&test_index="
    with running_app() as (base, pid), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})

        # Warm up: the first visit loads the model, MNIST and the page's code; the benchmark is about warm use.
        warm = context.new_page()
        warm.goto(base + base_url + "0")
        _wait_finished(warm, "test image #0")
        warm.close()

        loads = []
        for index in TEST_INDICES[:REPEATS]:
            page = context.new_page()
            loads.append(_measure(pid, lambda page=page, index=index: page.goto(base + base_url + str(index)),
                                  lambda page=page, index=index: _wait_finished(page, f"test image #{index}:")))
            page.close()

        page = context.new_page()
        page.goto(base + base_url + "0")
        _wait_finished(page, "test image #0:")
        field = page.locator(".st-key-classify_test_index input")
        changes = []
        for index in TEST_INDICES[1:REPEATS + 1]:
            field.fill(str(index))
            changes.append(_measure(pid, lambda: field.press("Enter"),
                                    lambda index=index: _wait_finished(page, f"test image #{index}:")))

        page.get_by_text("Drawing", exact=True).click()
        _wait_finished(page, "Nothing drawn yet", charts=0)
        strokes = []
        for shift in range(REPEATS):
            _stroke(page, [(130 + 5 * shift, 40), (130 + 5 * shift, 240)])
            strokes.append(_measure(pid, page.mouse.up, lambda: _wait_finished(page, "Predicted class")))
            page.get_by_role("button", name="Clear").click()
            _wait_finished(page, "Nothing drawn yet", charts=0)
        browser.close()
        peak = peak_memory_mb(pid)

    result = {
        "model": MODEL,
        "deep_link_load_s": _summary(loads),
        "change_example_s": _summary(changes),
        "rerun_after_stroke_s": _summary(strokes),
        "server_peak_mb": round(peak),
        "targets": TARGETS,
    }
    result["meets_targets"] = {
        key: (result[key] if key == "server_peak_mb" else result[key]["median_s"]) < limit
        for key, limit in TARGETS.items()
    }
    save("classification_explorer", result)


if __name__ == "__main__":
    main()
