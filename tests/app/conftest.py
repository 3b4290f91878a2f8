"""App fixtures: AppTest helpers, and a real server driven by Debian's Chromium.

Browser tests follow ../shared/notes/testing-streamlit.md: Chromium from Debian
(never `playwright install`), launched with the flags that keep it off the
network; the app under test is a real `streamlit run` on a free loopback port.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from harness.browser import CHROMIUM_ARGS, REPO
from mechmnistic.serve import running_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@contextlib.contextmanager
def _serving(tmp_path_factory, env: dict[str, str]) -> Iterator[str]:
    """The app served as `make run` serves it (``mechmnistic.serve``), with its own empty analysis cache and
    ``env`` added; yields its base URL, stops it after."""
    with running_app({"MECHMNISTIC_CACHE": str(tmp_path_factory.mktemp("app-cache")), **env}) as (base, _pid):
        yield base


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


def open_app_page(page: str, **params: str) -> AppTest:
    """A new session that arrives on ``page`` (a path under app_pages/) by a link carrying ``params``; run once."""
    at = AppTest.from_file("../../app.py", default_timeout=300)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(page)
    return at.run()


def wait_for_app(page, timeout_ms: int = 60_000) -> None:
    """Wait until the script has finished running and nothing is pending."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=timeout_ms)


def assert_no_exception(page) -> None:
    exceptions = page.locator("[data-testid='stException']")
    assert exceptions.count() == 0, exceptions.first.inner_text()
