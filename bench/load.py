"""The load benchmark: ``harness.load_scenario`` run at its full size, its result saved (``bench/results/load.json``).

The scenario (many browser sessions on one server, what they do and what is
measured) is described in ``harness/load_scenario.py``; ``tests/load`` runs it
smaller and checks everything but the timings.
"""

from __future__ import annotations

import argparse

from harness.load_scenario import SECONDS, SESSIONS, SINGLE_SECONDS, THINK_S, run_load

from .common import save


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load",
                                     description="Many browser sessions on one server at once.")
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    parser.add_argument("--seconds", type=float, default=SECONDS, help="how long the sessions run at once")
    parser.add_argument("--single-seconds", type=float, default=SINGLE_SECONDS, help="the lone session's run")
    parser.add_argument("--think", type=float, default=THINK_S, help="pause between a user's actions (s)")
    args = parser.parse_args(argv)
    save("load", run_load(args.sessions, args.seconds, args.single_seconds, args.think))


if __name__ == "__main__":
    main()
