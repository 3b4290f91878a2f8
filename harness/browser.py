"""How the tests and the benchmarks drive the app in a real browser: Chromium's flags and when a page is done.

Both the browser tests and the benchmarks use these, so neither imports the
other; the app itself is started by ``mechmnistic.serve`` (the launcher ``make
run`` uses).
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

#: A page is finished when its script has run, nothing is pending, no element is still a loading skeleton
#: (Streamlit draws widgets and charts whose code loads lazily as skeletons first: a page without them is not
#: yet what the user sees), ``text`` is in the main area, and at least ``charts`` Plotly charts are there, all
#: drawn. Argument: ``[text, charts]``.
PAGE_FINISHED_JS = """
([text, charts]) => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
  if (document.querySelector("[data-testid='stStatusWidget'], [data-testid='stSkeleton']")) return false;
  const main = document.querySelector("[data-testid='stMain']");
  if (!main || !main.innerText.includes(text)) return false;
  const all = [...document.querySelectorAll("[data-testid='stPlotlyChart']")];
  return all.length >= charts && all.every(chart => chart.querySelector(".main-svg"));
}
"""


def wait_until_finished(page, text: str, charts: int) -> None:
    """Block until ``page`` (Playwright, sync) is finished as ``PAGE_FINISHED_JS`` says."""
    page.wait_for_function(PAGE_FINISHED_JS, arg=[text, charts], polling=25, timeout=120_000)
