"""``mechmnistic ARGS`` run in this process, as the tests of what the commands compute call it.

Each run returns what a subprocess would (exit status, stdout, stderr) without a new interpreter importing
torch (about 3 s a command). ``tests/test_cli.py`` runs the real entry point, ``python -m mechmnistic``, as a
subprocess: exit codes, a closed pipe, one clear line on errors.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import NamedTuple

import torch

from mechmnistic.cli import main


class CliResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    """``mechmnistic ARGS`` with ``env`` added to the environment for the run (argparse's exits included)."""
    out, err = io.StringIO(), io.StringIO()
    saved_env, threads = dict(os.environ), torch.get_num_threads()
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(arg) for arg in args])
            except SystemExit as exc:  # argparse: --help, or a usage error (2)
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        torch.set_num_threads(threads)  # training sets its own
    return CliResult(code, out.getvalue(), err.getvalue())
