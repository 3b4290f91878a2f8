"""Classification Explorer benchmark: a real `streamlit run` driven by headless Chromium, warm cache.

Measures, for ``mlp-1x64``, the time from the user's action to the finished
page (``common.PAGE_FINISHED_JS``: the script has finished, nothing is
pending or still a loading skeleton, and every Plotly chart is drawn in the
browser), on the page's default tab (logit effects):

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

import statistics
import time

from harness.browser import CHROMIUM_ARGS, wait_until_finished
from mechmnistic.serve import running_app

from .common import peak_memory_mb, save, server_cpu_s

MODEL = "mlp-1x64"
REPEATS = 5
TEST_INDICES = [8, 1234, 4321, 77, 9001, 2500]
TARGETS = {"deep_link_load_s": 2.5, "change_example_s": 1.7, "rerun_after_stroke_s": 1.5, "server_peak_mb": 1024}
#: Charts on the page for a test example of mlp-1x64, default tab (input, logits, probabilities, logit
#: effects).
CHARTS = 4



def _wait_finished(page, text: str, charts: int = CHARTS) -> None:
    wait_until_finished(page, text, charts)


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
