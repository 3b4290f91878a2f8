"""Proof that nothing changed on disk: a snapshot of the model zoo, the MNIST folder and the analysis cache.

Each file is recorded by size and modification time, and small files by their
SHA-256 too, so a rewrite with the same size and time is still seen.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mechmnistic.paths import cache_root, data_root, zoo_root

#: Files up to this size are hashed; larger ones (MNIST itself) are compared by size and mtime.
HASHED_BYTES = 2**20


def snapshot(*roots: Path) -> dict[str, tuple]:
    """``{path: (size, mtime_ns, sha256 or None)}`` for every file under ``roots`` (default: zoo, data, cache)."""
    state = {}
    for root in roots or (zoo_root(), data_root(), cache_root()):
        for path in sorted(Path(root).rglob("*")) if Path(root).is_dir() else ():
            if path.is_file():
                stat = path.stat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.st_size <= HASHED_BYTES else None
                state[str(path)] = (stat.st_size, stat.st_mtime_ns, digest)
    return state


def changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """What differs between two snapshots, one line per file (empty: nothing changed)."""
    return ([f"new: {p}" for p in sorted(after.keys() - before.keys())]
            + [f"gone: {p}" for p in sorted(before.keys() - after.keys())]
            + [f"changed: {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]])
