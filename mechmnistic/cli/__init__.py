"""The ``mechmnistic`` command line: one subcommand per task, ``--json`` for scripts.

Each subcommand lives in a small module with a ``register(subparsers)``
function; errors from bad input (``MechMNISTicError``) print one clear line and
exit with status 2, with nothing written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import MechMNISTicError


def _commands() -> list:
    # Imported here so `mechmnistic --help` stays fast and each module stays small.
    from . import (
        circuit_cmds,
        classify_cmds,
        data_cmds,
        geometry_cmds,
        import_cmd,
        intervention_cmds,
        model_cmds,
        sae_cmds,
        unit_cmds,
    )

    return [data_cmds, model_cmds, import_cmd, unit_cmds, classify_cmds, intervention_cmds, circuit_cmds,
            geometry_cmds, sae_cmds]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mechmnistic",
        description="Reverse-engineer small networks trained on MNIST.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"mechmnistic {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _commands():
        module.register(sub)
    return parser


def emit(args: argparse.Namespace, result: Any, human: Callable[[Any], str]) -> None:
    """Print ``result`` as one JSON object with ``--json``, else as ``human(result)``."""
    if getattr(args, "json", False):
        print(json.dumps(result, indent=None, default=_json_default))
    else:
        print(human(result))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except MechMNISTicError as exc:
        print(f"mechmnistic {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mechmnistic {args.command}: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`mechmnistic zoo | head -1`): not an error of ours. Point stdout at
        # /dev/null so that Python's own flush at exit does not raise a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
