"""Run every benchmark in turn: `python -m bench` (or `make bench`)."""

import importlib
import pkgutil
from pathlib import Path

for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
    if info.name not in {"common", "__main__"}:
        print(f"== bench.{info.name}")
        importlib.import_module(f"bench.{info.name}").main()
