"""Load: many people using one server at once, each in their own browser session.

One ``streamlit run app.py`` on loopback, with a fresh analysis cache, and one
headless Chromium holding ``SESSIONS`` browser contexts (separate users). Each
session repeats a cycle for ``SECONDS``:

1. opens a Neuron Explorer deep link (``/neuron?model=M&layer=L&unit=U``, several models and units);
2. opens a Classification Explorer deep link (``/classify?model=mlp-1x64&test_index=I``);
3. types another test index into the number input (Enter);
4. switches the input to "Drawing" (a blank canvas);
5. draws a digit on the canvas with mouse strokes (the prediction of the drawing).

Sessions start at different points of the lists, so at any moment they look
at different units, examples and drawings. Between actions a session waits
``THINK_S`` (a user looking at the page; 0 gives a stress test).

A *page finish* is the time from the action (navigation, Enter, click or the
end of a stroke) to the page being done: the script has finished, no status
widget shows, the page shows what was asked for, and every chart the page
has is drawn. (A drawing's time includes the canvas component's own wait of
about 0.8 s before it sends the drawing.)

Warm-up, as a deployment would do it before letting users in: one session
walks every distinct action once, so the first-time analyses (activations and
neuron atlases of each layer on the list, computed once per model and stored
on disk), the models, MNIST and the page code are loaded into the server
before anything is timed; a first visitor's wait for a layer never analysed
before is a one-off per deployment, not a per-user cost, and the Neuron
Explorer benchmark measures it. The warm-up also records, per action, what the
page shows (headers, metrics, prediction, logits) and how many charts it has.

Then one session runs the cycle alone for ``SINGLE_SECONDS`` (the baseline),
then ``SESSIONS`` sessions at once, each in a browser that has opened the app
once before (its cache holds the app's code, as a returning user's does).
Every finish of both is checked: no exception on the page, the URL is the
session's own, and the page shows what the warm-up recorded for that action:
a session never shows another's unit, example or drawing. (A page that
differs at first and matches a second later was still completing when it
looked finished: counted apart, as ``incomplete_when_finished``.) While the sessions run, one more tab (in the first
session's browser context, a separate Streamlit session) uploads a model with
a unique name through the import page and loads it privately; at the end its
own picker must list it and no other session's may, and a deep link to it
from another session must be refused with a message.

The server's memory (resident set of its process tree) is sampled every 0.2 s,
and the CPU time of the server and of the browser is measured per phase:
here the browsers share the server's machine, so the server runs at a
higher CPU priority than they do (as if they were on the users' machines),
and each finish also records when the server's part was over (the script
done and its result on the page, before the browser has drawn the charts).
Sessions start ``RAMP_S`` apart.

Run: ``python -m bench.load [--sessions N] [--seconds S] [--think S]``. The
result is ``bench/results/load.json``.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

from mechmnistic.serve import running_app

from .browser import CHROMIUM_ARGS, REPO

SESSIONS = 20
SECONDS = 60.0
SINGLE_SECONDS = 60.0
THINK_S = 1.0
#: The server's nice value: see prioritise().
SERVER_NICE = -10
#: A session starts this long after the previous one (users do not all arrive in the same millisecond).
RAMP_S = 0.5
FINISH_TIMEOUT_S = 180.0
#: How long a finished page that shows only the start of what it should may take to show the rest.
INCOMPLETE_WAIT_S = 30
RSS_PERIOD_S = 0.2
TARGETS = {"p95_over_single_median": 3.0, "server_peak_rss_mb": 2048, "exceptions": 0}

NEURON_LINKS = [("mlp-1x64", "layers.0", 3), ("mlp-2x64", "layers.1", 5), ("mlp-1x64", "layers.0", 17),
                ("cnn-digits", "conv2", 7), ("mlp-1x64", "layers.0", 42)]
CONV_LAYERS = {"conv1", "conv2"}
CLASSIFY_MODEL = "mlp-1x64"
TEST_INDICES = [8, 1234, 4321, 77, 9001]
#: Pen strokes in canvas pixels (280x280): a "1", a "7" and an "L"-like "4" stem.
STROKES = {
    "one": [(140, 40), (140, 240)],
    "seven": [(70, 50), (210, 50), (120, 240)],
    "four": [(90, 40), (90, 150), (210, 150), (190, 40), (190, 250)],
}
PRIVATE_WEIGHTS = REPO / "models" / "mlp-1x64" / "model.safetensors"

# Done when the script has finished, nothing is pending, the main area shows ``text`` and at least
# ``charts`` charts, all drawn; or at once when an exception is shown. Polled in every session's page, so
# it reads textContent (no layout) until the page is done. Notes in ``window.__loadServerDone`` when the
# server's part was over (the script done and the text there, charts maybe not yet drawn); returns what
# the page shows.
_FINISHED_JS = """
([text, charts, secret]) => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
  if (document.querySelector("[data-testid='stStatusWidget'], [data-testid='stSkeleton']")) return false;
  const main = document.querySelector("[data-testid='stMain']");
  const exceptions = document.querySelectorAll("[data-testid='stException']").length;
  if (!exceptions) {
    if (!main || !main.textContent.includes(text)) return false;
    window.__loadServerDone = window.__loadServerDone || Date.now();
    const all = [...document.querySelectorAll("[data-testid='stPlotlyChart']")];
    if (all.length < charts || !all.every(chart => chart.querySelector(".main-svg"))) return false;
  }
  const lines = main ? main.innerText.split("\\n") : [];
  const shown = [
    ...[...document.querySelectorAll("[data-testid='stMain'] h2")].map(h => h.innerText),
    ...[...document.querySelectorAll("[data-testid='stMetric']")].map(m => m.innerText.replace(/\\s+/g, " ")),
    ...lines.filter(line => /^(Predicted class|probability |test image #|Nothing drawn)/.test(line)),
  ];
  return {url: location.href, exceptions, charts: document.querySelectorAll("[data-testid='stPlotlyChart']").length,
          shown: shown.join(" | "), leaked: document.body.innerText.includes(secret),
          serverDone: window.__loadServerDone || Date.now()};
}
"""
_CHART_COUNT_JS = """() => {
  const all = [...document.querySelectorAll("[data-testid='stPlotlyChart']")];
  return all.every(chart => chart.querySelector(".main-svg")) ? all.length : -1;
}"""


@dataclass(frozen=True)
class Action:
    """One step of the cycle: ``key`` names what the page then shows (the same for every session)."""

    key: str
    text: str  # on the page once it shows the result
    url_has: tuple[str, ...] = ()
    url_lacks: tuple[str, ...] = ()
    goto: str | None = None  # a path to open, else one of the in-page steps below
    test_index: int | None = None
    draw: str | None = None
    click_drawing: bool = False


def cycle(session: int, round_: int) -> list[Action]:
    """Session ``session``'s actions in its ``round_``-th cycle."""
    i = session + round_
    model, layer, unit = NEURON_LINKS[i % len(NEURON_LINKS)]
    kind = "channel" if layer in CONV_LAYERS else "neuron"
    first, second = TEST_INDICES[i % len(TEST_INDICES)], TEST_INDICES[(i + 1) % len(TEST_INDICES)]
    stroke = list(STROKES)[i % len(STROKES)]
    return [
        Action(f"neuron {model} {layer} {unit}", f"{layer} · {kind} {unit}",
               url_has=(f"model={model}", f"layer={layer}", f"unit={unit}"),
               goto=f"/neuron?model={model}&layer={layer}&unit={unit}"),
        Action(f"test {first}", f"test image #{first}:", url_has=(f"test_index={first}",),
               goto=f"/classify?model={CLASSIFY_MODEL}&test_index={first}"),
        Action(f"test {second}", f"test image #{second}:", url_has=(f"test_index={second}",), test_index=second),
        Action("blank canvas", "Nothing drawn yet", url_lacks=("test_index",), click_drawing=True),
        Action(f"drawing {stroke}", "Your drawing, after MNIST-style preprocessing", url_lacks=("test_index",),
               draw=stroke),
    ]


def warm_up_rounds() -> int:
    """Cycles of the first session that take it through every distinct action."""
    return max(len(NEURON_LINKS), len(TEST_INDICES), len(STROKES))


@dataclass
class Finish:
    """One action's outcome; ``problem`` (of ``kind`` timeout, exception, mismatch or error) when it went wrong."""

    session: int
    key: str
    seconds: float  # to the finished page
    server_seconds: float = 0.0  # to the server's part done (script finished, the result's text on the page)
    problem: str | None = None
    kind: str | None = None


@dataclass
class Expected:
    """What the warm-up saw for each action: the page's text fingerprint and its number of charts."""

    shown: dict[str, str] = field(default_factory=dict)
    charts: dict[str, int] = field(default_factory=dict)


# -- server memory -------------------------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            children = [int(c) for task in Path(f"/proc/{current}/task").iterdir()
                        for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        found.append(current)
        todo += children
    return found


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (kB)."""
    total = 0
    for member in _tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith("VmRSS:"))
    return total


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants, those that have ended
    included (their time is added to the parent that waited for them)."""
    ticks = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def prioritise(server: int) -> int:
    """Give the server's threads a higher CPU priority than the browsers' (nice ``SERVER_NICE``), as on a
    real deployment, where the users' browsers do not run on the server's cores (Chromium sets its own
    processes' priorities, so the server is raised rather than the browser lowered). Threads the server
    starts later inherit it. Returns the nice value the server got (0 where raising it is not allowed)."""
    got = 0
    for pid in _tree(server):
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                os.setpriority(os.PRIO_PROCESS, int(task.name), SERVER_NICE)
                got = SERVER_NICE
            except (ProcessLookupError, PermissionError):
                continue
    return got


def _client_cpu_s(server: int) -> float:
    """CPU seconds of this driver and its browser: this process's tree less the server's."""
    return _tree_cpu_s(os.getpid()) - _tree_cpu_s(server)


class RssSampler:
    """Samples the server tree's resident memory every ``RSS_PERIOD_S`` in a thread; ``mark()`` notes a phase."""

    def __init__(self, pid: int):
        self.pid, self.peak_kb, self.marks = pid, 0, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(RSS_PERIOD_S):
            self.peak_kb = max(self.peak_kb, _tree_rss_kb(self.pid))

    def mark(self, name: str) -> None:
        now = _tree_rss_kb(self.pid)
        self.marks[name] = {"rss_mb": round(now / 1024), "peak_so_far_mb": round(max(now, self.peak_kb) / 1024)}

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# -- one browser session ---------------------------------------------------------------------------------------


async def _finished(page, text: str, charts: int, secret: str) -> dict:
    handle = await page.wait_for_function(_FINISHED_JS, arg=[text, charts, secret], polling=50,
                                          timeout=FINISH_TIMEOUT_S * 1000)
    return await handle.json_value()


async def _canvas_pixels(page) -> str:
    return await page.locator("canvas.dc-canvas.lower-canvas").evaluate("canvas => canvas.toDataURL('image/png')")


async def _stroke(page, points: list[tuple[int, int]]) -> None:
    """Draw ``points`` as one stroke, as a mouse does. A stroke made while the canvas is still mounting never
    reaches it (nor would a user's), so it is drawn again, up to three times, until the canvas shows it; the
    time is taken from the last mouse-up."""
    canvas = page.locator("canvas.upper-canvas")
    await canvas.wait_for(state="visible", timeout=FINISH_TIMEOUT_S * 1000)
    before = await _canvas_pixels(page)
    for _ in range(3):
        box = await canvas.bounding_box()
        await page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        await page.mouse.down()
        for x, y in points[1:]:
            await page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
        await page.mouse.up()
        for _ in range(20):
            if await _canvas_pixels(page) != before:
                return
            await page.wait_for_timeout(100)
    raise RuntimeError("the canvas never showed the stroke")


async def _act(page, base: str, action: Action) -> Callable[[], Awaitable[None]]:
    """Prepare ``action``; returns the part that is timed (the user's last move)."""
    if action.goto is not None:
        return lambda: page.goto(base + action.goto, wait_until="commit", timeout=FINISH_TIMEOUT_S * 1000)
    await page.evaluate("() => { window.__loadServerDone = 0; }")
    if action.test_index is not None:
        field_ = page.locator(".st-key-classify_test_index input")
        await field_.fill(str(action.test_index))
        return lambda: field_.press("Enter")
    if action.click_drawing:
        return lambda: page.get_by_text("Drawing", exact=True).click()
    await _stroke(page, STROKES[action.draw])
    return lambda: asyncio.sleep(0)  # the stroke has ended: the canvas sends it by itself


def _check(action: Action, seen: dict, expected: Expected | None) -> str | None:
    """What is wrong with a finished page, or None."""
    if seen["exceptions"]:
        return f"{seen['exceptions']} exception(s) on the page"
    if seen["leaked"]:
        return "another session's private model is named on the page"
    if any(part not in seen["url"] for part in action.url_has) or any(p in seen["url"] for p in action.url_lacks):
        return f"the URL {seen['url']} is not this session's"
    if expected is not None and seen["shown"] != expected.shown[action.key]:
        return f"the page shows {seen['shown']!r}, expected {expected.shown[action.key]!r}"
    return None


async def _settled_charts(page) -> int:
    """The page's number of charts once they have all mounted and drawn (stable for a second)."""
    last, stable_since = -2, time.perf_counter()
    while True:
        count = await page.evaluate(_CHART_COUNT_JS)
        if count != last:
            last, stable_since = count, time.perf_counter()
        elif count >= 0 and time.perf_counter() - stable_since > 1.0:
            return count
        await page.wait_for_timeout(100)


async def run_action(page, base: str, session: int, action: Action, expected: Expected | None, secret: str,
                     learn: Expected | None = None) -> Finish:
    """Do ``action`` and wait for its page to finish; with ``learn``, record what the page shows there."""
    charts = 0 if expected is None else expected.charts[action.key]
    try:
        timed = await _act(page, base, action)
        start, wall_start = time.perf_counter(), time.time()
        await timed()
        seen = await _finished(page, action.text, charts, secret)
        seconds = time.perf_counter() - start
    except Exception as exc:  # a timeout or a page that broke: recorded, the session goes on
        kind = "timeout" if "Timeout" in type(exc).__name__ else "error"
        return Finish(session, action.key, FINISH_TIMEOUT_S, FINISH_TIMEOUT_S,
                      f"{type(exc).__name__}: {str(exc).splitlines()[0]}", kind)
    problem = _check(action, seen, expected)
    if problem is not None and expected is not None and not seen["exceptions"]:
        # Seen again a second later, and for as long as what it shows is the start of what it should show (on
        # a saturated machine the browser may take seconds to draw the rest): a page still completing is
        # noted apart from one showing the wrong state, which no wait turns into the right one.
        for _ in range(INCOMPLETE_WAIT_S):
            await page.wait_for_timeout(1000)
            again = await _finished(page, action.text, charts, secret)
            if _check(action, again, expected) is None:
                return Finish(session, action.key, seconds, seconds, f"incomplete when first finished: {problem}",
                              "incomplete")
            if not expected.shown[action.key].startswith(again["shown"]):
                break
    if learn is not None and problem is None:
        learn.charts[action.key] = await _settled_charts(page)
        learn.shown[action.key] = (await _finished(page, action.text, 0, secret))["shown"]
    kind = None if problem is None else "exception" if seen["exceptions"] else "mismatch"
    server_seconds = min(seconds, max(0.0, seen["serverDone"] / 1000 - wall_start))
    return Finish(session, action.key, seconds, server_seconds, problem, kind)


async def _visit_once(context, base: str) -> None:
    page = await context.new_page()
    await page.goto(f"{base}/", wait_until="commit", timeout=FINISH_TIMEOUT_S * 1000)
    await _finished(page, "", 0, "\0")
    await page.close()


async def run_session(context, base: str, session: int, until: float, think: float, expected: Expected,
                      secret: str) -> list[Finish]:
    """Cycle through the actions until ``until`` (an action started before it is finished)."""
    page = await context.new_page()
    finishes: list[Finish] = []
    round_ = 0
    while time.perf_counter() < until:
        for action in cycle(session, round_):
            if time.perf_counter() >= until:
                break
            finishes.append(await run_action(page, base, session, action, expected, secret))
            await asyncio.sleep(think)
        round_ += 1
    await page.close()
    return finishes


# -- the private model ---------------------------------------------------------------------------------------


def _picker(page):
    return page.locator("[data-testid='stSidebar']").get_by_role("combobox", name="Model")


async def picker_options(page) -> list[str]:
    """The labels the sidebar's model picker offers in this session."""
    await _picker(page).click(timeout=FINISH_TIMEOUT_S * 1000)
    await page.get_by_role("option").first.wait_for(timeout=FINISH_TIMEOUT_S * 1000)
    options = await page.get_by_role("option").all_inner_texts()
    await page.keyboard.press("Escape")
    return options


async def import_privately(page, base: str, label: str, folder: Path) -> str:
    """Upload a model file named ``label`` on the import page and load it privately; returns its name."""
    weights = folder / f"{label}.safetensors"
    shutil.copyfile(PRIVATE_WEIGHTS, weights)
    await page.goto(f"{base}/import", wait_until="commit", timeout=FINISH_TIMEOUT_S * 1000)
    await _finished(page, "Import a model", 0, "\0")
    await page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(weights))
    # A state dict does not say its activation, and ReLU and GELU score alike on mlp-1x64: the page asks.
    await page.get_by_text(re.compile(r"^activation relu \(")).click(timeout=FINISH_TIMEOUT_S * 1000)
    await page.get_by_role("button", name="Load privately into this session").click(timeout=FINISH_TIMEOUT_S * 1000)
    await _finished(page, "privately into this session: every page now analyses it", 0, "\0")
    name = unquote(re.search(r"[?&]model=([^&]+)", page.url).group(1))
    if not name.startswith(f"{label}@"):
        raise RuntimeError(f"the import page's URL names {name!r}")
    return name


async def other_session_refuses(page, base: str, private: str) -> str | None:
    """In a session that did not import ``private``: it is not offered, and a deep link to it is refused."""
    if any(private in option for option in await picker_options(page)):
        return "lists another session's private model"
    await page.goto(f"{base}/?model={quote(private)}", wait_until="commit", timeout=FINISH_TIMEOUT_S * 1000)
    await _finished(page, "was imported privately in another browser session", 0, "\0")
    if await _picker(page).input_value() != CLASSIFY_MODEL:
        return "opened another session's private model by deep link"
    return None


# -- the scenario ----------------------------------------------------------------------------------------------


def _seconds_summary(finishes: list[Finish]) -> dict:
    """Median, p95 and max of the finish times (and of the server's part) of the actions that went right."""
    ok = [f for f in finishes if f.problem is None]
    if not ok:
        return {"count": 0}

    def p95(values: list[float]) -> float:
        return sorted(values)[min(len(values) - 1, int(0.95 * len(values)))]

    times, server = [f.seconds for f in ok], [f.server_seconds for f in ok]
    return {"count": len(ok), "median_s": round(statistics.median(times), 3), "p95_s": round(p95(times), 3),
            "max_s": round(max(times), 3), "server_part_median_s": round(statistics.median(server), 3),
            "server_part_p95_s": round(p95(server), 3)}


def _by_kind(finishes: list[Finish]) -> dict:
    kinds: dict[str, list[Finish]] = {}
    for finish in finishes:
        kinds.setdefault(finish.key.split()[0], []).append(finish)
    return {kind: _seconds_summary(group) for kind, group in sorted(kinds.items())}


def _cpu_shares(server: float, client: float, finishes: int) -> dict:
    """CPU seconds of the server and of the browser side in a phase, in all and per finished page."""
    per = max(finishes, 1)
    return {"server_cpu_s": round(server, 1), "client_cpu_s": round(client, 1),
            "server_cpu_per_finish_s": round(server / per, 3), "client_cpu_per_finish_s": round(client / per, 3)}


async def _scenario(base: str, pid: int, sampler: RssSampler, sessions: int, seconds: float,
                    single_seconds: float, think: float, folder: Path) -> dict:
    from playwright.async_api import async_playwright

    label = f"load-private-{secrets.token_hex(4)}"
    result: dict = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                                   args=CHROMIUM_ARGS)
        viewport = {"width": 1400, "height": 1000}

        # Warm-up: every distinct action once, learning what each page shows.
        expected = Expected()
        context = await browser.new_context(viewport=viewport)
        page = await context.new_page()
        started = time.perf_counter()
        warm = []
        for round_ in range(warm_up_rounds()):
            for action in cycle(0, round_):
                known = action.key in expected.shown  # seen before: checked against the first time
                warm.append(await run_action(page, base, 0, action, expected if known else None, label,
                                             learn=None if known else expected))
        await context.close()
        result["warm_up"] = {"seconds": round(time.perf_counter() - started, 1),
                             "problems": [f"{f.key}: {f.problem}" for f in warm if f.problem]}
        if result["warm_up"]["problems"]:
            raise RuntimeError(f"the warm-up failed: {result['warm_up']['problems']}")
        result["charts_per_page"] = expected.charts
        sampler.mark("after_warm_up")

        # One session alone: the baseline.
        context = await browser.new_context(viewport=viewport)
        cpu, client_cpu, start = _tree_cpu_s(pid), _client_cpu_s(pid), time.perf_counter()
        single = await run_session(context, base, 0, start + single_seconds, think, expected, label)
        result["single"] = {**_seconds_summary(single), "wall_s": round(time.perf_counter() - start, 1),
                            **_cpu_shares(_tree_cpu_s(pid) - cpu, _client_cpu_s(pid) - client_cpu, len(single)),
                            "by_kind": _by_kind(single),
                            "problems": [f"{f.key}: {f.problem}" for f in single if f.problem][:20]}
        await context.close()
        sampler.mark("after_single")

        # Many at once, and a private import beside them. Each browser has visited the app once before (its
        # cache holds the app's code, as a returning user's does), so the phase is about using the app, not
        # about 20 browsers compiling its JavaScript at the same moment.
        contexts = [await browser.new_context(viewport=viewport) for _ in range(sessions)]
        await asyncio.gather(*(_visit_once(context, base) for context in contexts))
        importer = await contexts[0].new_page()
        load_before, cpu, client_cpu = os.getloadavg()[0], _tree_cpu_s(pid), _client_cpu_s(pid)
        start = time.perf_counter()

        async def delayed(session: int) -> list[Finish]:
            await asyncio.sleep(session * RAMP_S)
            return await run_session(contexts[session], base, session, start + seconds, think, expected, label)

        private_task = asyncio.create_task(import_privately(importer, base, label, folder))
        per_session = await asyncio.gather(*(delayed(k) for k in range(sessions)))
        wall = time.perf_counter() - start
        server_cpu, client_cpu = _tree_cpu_s(pid) - cpu, _client_cpu_s(pid) - client_cpu
        sampler.mark("after_sessions")
        finishes = [f for group in per_session for f in group]

        # Isolation of the private model: its session lists it, no other session does or can open it.
        isolation: dict = {}
        try:
            private = await private_task
            isolation["private_model"] = private
            isolation["own_session_lists_it"] = any(private in o for o in await picker_options(importer))
            pages = [await c.new_page() for c in contexts[1:]]
            await asyncio.gather(*(p.goto(f"{base}/classify?model={CLASSIFY_MODEL}&test_index={TEST_INDICES[0]}",
                                          wait_until="commit", timeout=FINISH_TIMEOUT_S * 1000) for p in pages))
            await asyncio.gather(*(_finished(p, f"test image #{TEST_INDICES[0]}:", 0, label) for p in pages))
            refusals = await asyncio.gather(*(other_session_refuses(p, base, private) for p in pages),
                                            return_exceptions=True)
            isolation["other_sessions_checked"] = len(refusals)
            isolation["other_session_problems"] = [str(r) for r in refusals if r is not None]
        except Exception as exc:  # reported, and fails the isolation check
            isolation["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        await browser.close()

    problems = [f"session {f.session} {f.key}: {f.problem}" for f in finishes if f.problem and f.kind != "incomplete"]
    ok = [f for f in finishes if f.problem is None]
    result["concurrent"] = {
        "sessions": sessions, "wall_s": round(wall, 1), "finishes": len(finishes),
        "throughput_per_s": round(len(ok) / wall, 2), **_seconds_summary(finishes),
        **_cpu_shares(server_cpu, client_cpu, len(finishes)), "by_kind": _by_kind(finishes),
        "finishes_per_session": [len(group) for group in per_session],
        "timeouts": sum(1 for f in finishes if f.kind == "timeout"),
        "exceptions": sum(1 for f in finishes if f.kind == "exception"),
        "incomplete_when_finished": sum(1 for f in finishes if f.kind == "incomplete"),
        "problems": problems[:20], "problem_count": len(problems),
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }
    single_median = result["single"].get("median_s")
    p95 = result["concurrent"].get("p95_s")
    result["p95_over_single_median"] = round(p95 / single_median, 2) if single_median and p95 else None
    result["isolation"] = isolation
    result["isolation_holds"] = (
        not problems and "error" not in isolation and isolation.get("own_session_lists_it") is True
        and not isolation["other_session_problems"] and isolation["other_sessions_checked"] == sessions - 1)
    return result


def run_load(sessions: int = SESSIONS, seconds: float = SECONDS, single_seconds: float = SINGLE_SECONDS,
             think: float = THINK_S, cache: Path | None = None) -> dict:
    """The whole scenario against a fresh server; returns its figures (see the module docstring).

    ``cache``: the analysis cache folder the server uses (a fresh temporary one by default).
    """
    with tempfile.TemporaryDirectory(prefix="mechmnistic-load-") as scratch:
        cache = cache or Path(scratch) / "cache"
        with running_app({"MECHMNISTIC_CACHE": str(cache)}) as (base, pid), RssSampler(pid) as sampler:
            server_nice = prioritise(pid)
            scenario = _scenario(base, pid, sampler, sessions, seconds, single_seconds, think, Path(scratch))
            # On a thread of its own: the caller's thread may already run an event loop (pytest-playwright's
            # sync API keeps one for the whole test session), and asyncio.run refuses to nest.
            with ThreadPoolExecutor(max_workers=1) as worker:
                result = worker.submit(asyncio.run, scenario).result()
    result["server_peak_rss_mb"] = round(sampler.peak_kb / 1024)
    result["server_rss_mb"] = sampler.marks
    result["settings"] = {"sessions": sessions, "seconds": seconds, "single_seconds": single_seconds,
                          "think_s": think, "ramp_s": RAMP_S, "finish_timeout_s": FINISH_TIMEOUT_S,
                          "server_nice": server_nice}
    result["targets"] = TARGETS
    result["meets_targets"] = {
        "p95_over_single_median": (result["p95_over_single_median"] or float("inf")) < TARGETS[
            "p95_over_single_median"],
        "server_peak_rss_mb": result["server_peak_rss_mb"] < TARGETS["server_peak_rss_mb"],
        "exceptions": result["concurrent"]["exceptions"] == 0,
    }
    return result
