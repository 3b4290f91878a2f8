"""What ``make run`` gives a user: a fresh checkout, set up and served by ``make run`` itself, then deep links.

The other browser benchmarks start the server through ``mechmnistic.serve``
in the developer's checkout. Once they passed their own flags to Streamlit
(``--server.fileWatcherType none``) while ``make run`` did not: users' server
walked every torch and numpy module in ``.venv`` on each script run (about 5
CPU-seconds a page) and no benchmark saw it. Now every launch shares one
command line and ``.streamlit/config.toml``; this benchmark checks the user's
own path end to end, so nothing of the developer's checkout (its ``.venv``,
analysis cache, environment) can hide a cost:

1. ``git clone`` of this repository's HEAD into a temporary folder (commit
   first: uncommitted changes are not measured), then ``make run PORT=P
   HEADLESS=1`` in it, as a user types it, in an environment without this
   process's virtual environment or ``MECHMNISTIC_*`` variables. Make creates
   ``.venv``, installs everything, fetches and verifies MNIST and serves the
   app. ``setup``: seconds from ``make run`` to the health endpoint answering
   ``ok``, split by make's own steps (install, data, server start).
2. The server is make's descendant running ``streamlit run`` (``make`` starts
   ``python -m mechmnistic.serve``, which replaces itself with streamlit); its
   CPU time and peak memory (``VmHWM``) are read from ``/proc``.
3. Headless Chromium (``common.CHROMIUM_ARGS``) first opens each page once
   (warm-up: a layer's first-ever analysis is a one-off, measured by
   ``bench.neuron_explorer``), then ``--repeats`` times, interleaved: a Neuron
   Explorer deep link to an ``mlp-1x64`` neuron, a Classification Explorer
   deep link to a test example, and a Neuron Explorer deep link to a
   ``cnn-digits`` conv2 channel, each with a different unit or example, each
   in a new tab as a user following a link would. Per page: seconds from
   navigation to finished (``common.PAGE_FINISHED_JS``: script done, nothing
   pending, every chart drawn) and the server's CPU seconds over the same
   span. ``server_cpu_per_page_all_s`` divides the server's CPU over the
   whole measured phase (idle gaps included) by the pages opened.
4. Stops make's process group and saves ``bench/results/make_run.json``
   (make's output: ``bench/results/make_run.log``).

Set-up takes a few minutes (torch is installed from local disk). Options:
``--data DIR`` points ``MECHMNISTIC_DATA`` at an already verified MNIST copy
(``make run`` still verifies it) instead of fetching it as a user's first run
does; ``--keep`` keeps the clone (its path is printed); ``--reuse DIR`` serves
an earlier kept clone (updated to HEAD, analysis cache emptied, ``.venv``
kept) through ``make run`` again, skipping the install.

Run: ``python -m bench.make_run [--repeats 5] [--data DIR] [--keep | --reuse DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from harness.browser import CHROMIUM_ARGS, PAGE_FINISHED_JS, REPO, wait_until_finished
from mechmnistic.serve import free_port
from ui.links import READS

from .classification_explorer import CHARTS as CLASSIFY_CHARTS
from .classification_explorer import _measure, _summary
from .common import RESULTS, peak_memory_mb, save, server_cpu_s
from .neuron_explorer import TAB_CHARTS

REPEATS = 5
TARGETS = {"server_cpu_per_page_s": 0.6, "deep_link_s": 2.0}
SETUP_TIMEOUT_S = 45 * 60
#: Pause after closing a tab, so the server's work for that session's end is not counted in the next page.
SETTLE_S = 0.5
#: Lines make echoes as it starts each step (in order), for the split of the set-up time.
MAKE_STEPS = {"install": " -m venv ", "data": " -m mechmnistic fetch-data",
              "server_start": " -m mechmnistic.serve "}


def _pages(repeat: int) -> dict[str, tuple[str, str, int]]:
    """Name -> (path, text on the finished page, charts) for round ``repeat`` (-1: the warm-up round)."""
    neuron, index, channel = (5 + 7 * repeat) % 64, (8 + 1237 * repeat) % 10_000, (3 + 5 * repeat) % 16
    return {
        "neuron_explorer": (f"/neuron?model=mlp-1x64&layer=layers.0&unit={neuron}",
                            f"layers.0 · neuron {neuron}", TAB_CHARTS[READS]),
        "classification_explorer": (f"/classify?model=mlp-1x64&test_index={index}",
                                    f"test image #{index}:", CLASSIFY_CHARTS),
        "neuron_explorer_cnn_conv2": (f"/neuron?model=cnn-digits&layer=conv2&unit={channel}",
                                      f"conv2 · channel {channel}", 4),
    }


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout.strip()


def _checkout(commit: str, reuse: Path | None) -> Path:
    """A clean checkout of ``commit``: a new clone in a temporary folder, or ``reuse`` brought to it."""
    if reuse is None:
        clone = Path(tempfile.mkdtemp(prefix="mechmnistic-make-run-")) / "MechMNISTic"
        _git("clone", "--quiet", "--no-checkout", str(REPO), str(clone))
    else:
        clone = reuse.resolve()
        if not (clone / ".git").is_dir() or _git("status", "--porcelain", cwd=clone):
            sys.exit(f"--reuse {clone}: not a clean clone (kept by --keep)")
        if subprocess.run(["git", "-C", str(clone), "cat-file", "-e", f"{commit}^{{commit}}"],
                          capture_output=True).returncode:
            _git("fetch", "--quiet", str(REPO), commit, cwd=clone)
        shutil.rmtree(clone / "cache", ignore_errors=True)  # a first analysis in the warm-up, as in a fresh one
    _git("checkout", "--quiet", "--detach", commit, cwd=clone)
    return clone


def _user_env(data: Path | None) -> dict[str, str]:
    """This process's environment as a user's shell would have it: no virtual environment, no make
    variables, no ``MECHMNISTIC_*`` (but ``MECHMNISTIC_DATA`` for ``--data``)."""
    venv_bin = str(Path(sys.prefix) / "bin") if sys.prefix != sys.base_prefix else None
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MECHMNISTIC_")
           and key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    if data is not None:
        env["MECHMNISTIC_DATA"] = str(data.resolve())
    return env


def _log_make(process: subprocess.Popen, log: Path, steps: dict[str, float]) -> None:
    """Copy make's output to ``log``, noting when each of ``MAKE_STEPS`` starts (``time.perf_counter``)."""
    with log.open("w") as out:
        for line in process.stdout:
            for step, marker in MAKE_STEPS.items():
                if step not in steps and marker in line:
                    steps[step] = time.perf_counter()
            out.write(line)
            out.flush()


def _descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            pass  # the process ended while we looked
    found, todo = [], [pid]
    while todo:
        pid = todo.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        found += children
        todo += children
    return found


def _server_pid(make_pid: int) -> int | None:
    """The process under make that runs ``streamlit run`` (``mechmnistic.serve`` exec'ed into it)."""
    for pid in _descendants(make_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in command and b"run" in command:
            return pid
    return None


def _healthy(base: str) -> bool:
    try:
        return urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False


def _wait_for_server(make: subprocess.Popen, base: str, log: Path) -> int:
    """Block until the app answers its health check; return the server's pid."""
    deadline = time.perf_counter() + SETUP_TIMEOUT_S
    while not _healthy(base):
        if make.poll() is not None or time.perf_counter() > deadline:
            tail = "".join(log.read_text().splitlines(keepends=True)[-30:]) if log.exists() else ""
            raise RuntimeError(f"make run did not serve the app (see {log}):\n{tail}")
        time.sleep(0.5)
    pid = _server_pid(make.pid)
    if pid is None:
        raise RuntimeError("the app answers, but no streamlit process runs under make")
    return pid


def _stop(make: subprocess.Popen) -> None:
    """Stop make and everything it started (its own process group), as Ctrl-C in the user's terminal would."""
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        deadline = time.perf_counter() + wait_s
        try:
            os.killpg(make.pid, sig)
            while time.perf_counter() < deadline:
                make.poll()  # reaps make, so that only live members of its group remain
                os.killpg(make.pid, 0)
                time.sleep(0.2)
        except ProcessLookupError:
            return  # the whole group is gone
    make.wait()


def _open(context, pid: int, base: str, page_spec: tuple[str, str, int], timeout_ms: int | None = None):
    """(wall seconds, server CPU seconds) from navigating a new tab to the page until it is finished."""
    path, text, charts = page_spec
    page = context.new_page()
    if timeout_ms is None:
        finished = lambda: wait_until_finished(page, text, charts)  # noqa: E731
    else:  # the warm-up: a layer's first analysis may take longer than a page should
        finished = lambda: page.wait_for_function(PAGE_FINISHED_JS, arg=[text, charts], polling=25,  # noqa: E731
                                                  timeout=timeout_ms)
    sample = _measure(pid, lambda: page.goto(base + path), finished)
    page.close()
    time.sleep(SETTLE_S)
    return sample


def _browse(base: str, pid: int, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        warm_up = {name: round(_open(context, pid, base, spec, timeout_ms=900_000)[0], 3)
                   for name, spec in _pages(-1).items()}
        samples = {name: [] for name in _pages(0)}
        cpu, start = server_cpu_s(pid), time.perf_counter()
        for repeat in range(repeats):
            for name, spec in _pages(repeat).items():
                samples[name].append(_open(context, pid, base, spec))
        phase_cpu, phase_s = server_cpu_s(pid) - cpu, time.perf_counter() - start
        browser.close()
    pages = {name: {"example": _pages(0)[name][0], **_summary(runs),
                    "server_cpu_samples_s": [round(c, 3) for _, c in runs]} for name, runs in samples.items()}
    opened = repeats * len(samples)
    return {"warm_up_s": warm_up, "pages": pages,
            "server_cpu_per_page_all_s": round(phase_cpu / opened, 3), "measured_phase_s": round(phase_s, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.make_run", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="deep links per page (default %(default)s)")
    parser.add_argument("--data", type=Path, help="a verified MNIST copy (MECHMNISTIC_DATA) instead of fetching")
    reuse = parser.add_mutually_exclusive_group()
    reuse.add_argument("--keep", action="store_true", help="keep the clone (and its .venv) for --reuse")
    reuse.add_argument("--reuse", type=Path, metavar="CLONE_DIR", help="serve a clone kept by --keep")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    if dirty:
        print(f"note: uncommitted changes are not measured; the clone is of HEAD ({commit[:10]})")
    start = time.perf_counter()
    clone = _checkout(commit, args.reuse)
    clone_s = time.perf_counter() - start
    print(f"make run in {clone}")

    if args.data:
        data = f"MECHMNISTIC_DATA={args.data} (verified by make run)"
    elif (clone / "data").exists():
        data = "the reused clone's data/ (fetched by an earlier make run; verified by this one)"
    else:
        data = "fetched by make run, as a user's first run"
    RESULTS.mkdir(exist_ok=True)
    log, port = RESULTS / "make_run.log", free_port()
    base, steps = f"http://127.0.0.1:{port}", {}
    start = time.perf_counter()
    make = subprocess.Popen(["make", "run", f"PORT={port}", "HEADLESS=1"], cwd=clone, env=_user_env(args.data),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    reader = threading.Thread(target=_log_make, args=(make, log, steps), daemon=True)
    reader.start()
    try:
        pid = _wait_for_server(make, base, log)
        healthy = time.perf_counter()
        setup = {"clone_s": round(clone_s, 1), "make_run_until_healthy_s": round(healthy - start, 1)}
        begins = [(step, steps[step]) for step in MAKE_STEPS if step in steps]  # a reused .venv: no install
        ends = [begin for _, begin in begins[1:]] + [healthy]
        setup["steps_s"] = {step: round(end - begin, 1) for (step, begin), end in zip(begins, ends, strict=True)}
        result = {"commit": commit, "uncommitted_changes_not_measured": dirty,
                  "clone": "reused" if args.reuse else "fresh", "repeats": args.repeats,
                  "data": data, "setup": setup}
        result.update(_browse(base, pid, args.repeats))
        result["server_peak_mb"] = round(peak_memory_mb(pid), 1)
    finally:
        _stop(make)
        reader.join(10)
        if args.keep:
            print(f"kept {clone}: next time `python -m bench.make_run --reuse {clone}`")
        elif not args.reuse:
            shutil.rmtree(clone.parent, ignore_errors=True)

    result["load_average_1m"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    result["targets"] = TARGETS
    result["meets_targets"] = {
        name: {"deep_link_s": page["median_s"] < TARGETS["deep_link_s"],
               "server_cpu_per_page_s": page["server_cpu_median_s"] < TARGETS["server_cpu_per_page_s"]}
        for name, page in result["pages"].items()}
    save("make_run", result)
    print(f"\nmake run: set-up {setup['make_run_until_healthy_s']} s ({setup['steps_s']})")
    for name, page in result["pages"].items():
        print(f"{name}: deep link {page['median_s']} s (target < {TARGETS['deep_link_s']}), "
              f"server CPU {page['server_cpu_median_s']} s a page (target < {TARGETS['server_cpu_per_page_s']})")
    print(f"server peak {result['server_peak_mb']} MB; load average {result['load_average_1m']}")


if __name__ == "__main__":
    main()
