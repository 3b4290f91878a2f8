"""Starting the app: the one command line that ``make run``, ``make dev``, the tests and the benchmarks use.

Every setting users get lives in ``.streamlit/config.toml`` (Streamlit reads it
from the working directory, the checkout). The command line adds only the
port, headless mode (no browser window; the tests and benchmarks) and, for
``make dev``, reload-on-save. So no test or benchmark can start the server
with settings of its own that hide what users get: a flag that made the tests
fast while users waited (``--server.fileWatcherType none``, once) would now
have to go into the shared config, where users get it too.

``python -m mechmnistic.serve [--port P] [--headless] [--dev]`` replaces
itself with ``streamlit run app.py ...`` (``exec``), so stopping it stops the
server. This module never imports streamlit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence

from .paths import PACKAGE_DIR

CHECKOUT = PACKAGE_DIR.parent
APP = "app.py"
DEFAULT_PORT = 8501
# `make dev` watches the project's own code only: with the virtual environment inside the
# checkout, Streamlit's watcher would otherwise walk every torch and numpy module it imports.
DEV_WATCH_IGNORED = (".venv", "data", "cache", "models", "bench/results", ".git", ".pytest_cache")
#: The server's environment: Streamlit runs each session's script in its own thread, and glibc gives each
#: thread's allocations an arena of their own, which keeps what they freed. Two arenas keep a server that
#: analysed a wide network's layers from holding on to every session's peak.
SERVER_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2"}


def app_command(port: int = DEFAULT_PORT, headless: bool = False, dev: bool = False, script: str = APP) -> list[str]:
    """``streamlit run`` for ``script`` (a path under the checkout) with the project's settings.

    ``headless`` keeps Streamlit from opening a browser window; ``dev`` turns on
    the file watcher with reload-on-save, watching only the project's folders.
    """
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(int(port))]
    if headless:
        command += ["--server.headless", "true"]
    if dev:
        command += ["--server.fileWatcherType", "auto", "--server.runOnSave", "true"]
        for folder in DEV_WATCH_IGNORED:
            command += ["--server.folderWatchBlacklist", folder]
    return command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(base: str, process: subprocess.Popen, log: str, timeout_s: float = 120) -> None:
    """Poll Streamlit's health endpoint until it answers ``ok``; raise if the server died or never answered."""
    deadline = time.time() + timeout_s
    while True:
        try:
            if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"streamlit did not start; see {log}")
        time.sleep(0.3)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_app(env: dict[str, str] | None = None, script: str = APP) -> Iterator[tuple[str, int]]:
    """The app served headless on a free port, exactly as ``make run`` serves it otherwise.

    ``env`` is added to this process's environment (e.g. ``MECHMNISTIC_CACHE``
    for an empty analysis cache). Yields ``(base URL, server pid)``; stops the
    server after.
    """
    port = free_port()
    log = tempfile.NamedTemporaryFile("w", prefix="mechmnistic-serve-", suffix=".log", delete=False)
    process = subprocess.Popen(app_command(port, headless=True, script=script), cwd=CHECKOUT,
                               env={**os.environ, **SERVER_ENVIRONMENT, **(env or {})}, stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process, log.name)
        yield base, process.pid
    finally:
        stop(process)
        log.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mechmnistic.serve", description="Serve the MechMNISTic app.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--headless", action="store_true", help="do not open a browser window")
    parser.add_argument("--dev", action="store_true", help="reload on save (watches the project's own folders)")
    args = parser.parse_args(argv)
    if not (CHECKOUT / APP).is_file():
        parser.error(f"the app ({APP}) is served from a checkout of MechMNISTic; none at {CHECKOUT}")
    os.chdir(CHECKOUT)  # Streamlit reads .streamlit/config.toml from the working directory
    command = app_command(args.port, args.headless, args.dev)
    os.execve(command[0], command, {**os.environ, **SERVER_ENVIRONMENT})


if __name__ == "__main__":
    main()
