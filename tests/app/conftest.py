"""App fixtures: AppTest helpers, and a real server driven by Debian's Chromium.

Browser tests follow ../shared/notes/testing-streamlit.md: Chromium from Debian
(never `playwright install`), launched with the flags that keep it off the
network; the app under test is a real `streamlit run` on a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
APP_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        ],
    }


@contextlib.contextmanager
def _serving(tmp_path_factory, env: dict[str, str]) -> Iterator[str]:
    """Run `streamlit run app.py` with ``env`` added; yields its base URL, stops it after."""
    port = _free_port()
    env = {**os.environ, "MECHMNISTIC_CACHE": str(tmp_path_factory.mktemp("app-cache")), **env}
    log = open(tmp_path_factory.mktemp("app-log") / "streamlit.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + APP_TIMEOUT_S
    while True:
        try:
            if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise RuntimeError(f"streamlit did not start; see {log.name}")
        time.sleep(0.3)
    try:
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """Start `streamlit run app.py` once per session; yields its base URL."""
    with _serving(tmp_path_factory, {}) as base:
        yield base


@pytest.fixture(scope="module")
def app_with_tmp_zoo(tmp_path_factory):
    """A server whose model zoo is a temporary folder holding only mlp-1x64, for tests that write into the zoo.

    Yields ``(base URL, zoo folder)``.
    """
    zoo = tmp_path_factory.mktemp("zoo")
    shutil.copytree(REPO / "models" / "mlp-1x64", zoo / "mlp-1x64")
    with _serving(tmp_path_factory, {"MECHMNISTIC_MODELS": str(zoo)}) as base:
        yield base, zoo


def wait_for_app(page, timeout_ms: int = 60_000) -> None:
    """Wait until the script has finished running and nothing is pending."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=timeout_ms)


def assert_no_exception(page) -> None:
    exceptions = page.locator("[data-testid='stException']")
    assert exceptions.count() == 0, exceptions.first.inner_text()
