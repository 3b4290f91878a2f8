"""``mechmnistic fetch-data``: fetch and verify MNIST."""

from __future__ import annotations

import argparse

from . import emit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fetch-data", help="fetch MNIST (if needed) and verify all four files")
    p.add_argument("--root", help="data root (default: $MECHMNISTIC_DATA or ./data)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=fetch_data)


def fetch_data(args: argparse.Namespace) -> int:
    from ..data import ensure_mnist, load_mnist

    folder = ensure_mnist(args.root)
    counts = {split: len(load_mnist(split, args.root).labels) for split in ("train", "test")}
    emit(args, {"folder": str(folder), "verified": True, **counts},
         lambda r: f"MNIST verified in {r['folder']}: {r['train']:,} train and {r['test']:,} test images")
    return 0
