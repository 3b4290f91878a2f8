"""Crash-safe file writes.

Every file MechMNISTic writes that a later run trusts (MNIST raw files, model
weights and cards, analysis caches) goes through here: the bytes land in a
temporary file in the destination folder, are flushed to disk, and only then
renamed over the destination. A rename within one filesystem is atomic, so a
reader sees either the old complete file or the new complete file, never half of
one, even if the writer is killed mid-way. Leftover temporaries carry the
``.tmp-`` marker and are never read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

TMP_MARKER = ".tmp-"


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` on success.

    If the block raises, the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes only ('wb' or 'w'), got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{path.name}{TMP_MARKER}", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def remove_stale_temporaries(folder: str | os.PathLike, min_age_s: float = 3600.0) -> int:
    """Delete temporaries left by killed writers; returns how many were removed.

    Only temporaries older than ``min_age_s`` go, so a writer still at work in
    another process keeps its file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    now = time.time()
    for candidate in folder.rglob(f"*{TMP_MARKER}*"):
        if candidate.is_file() and now - candidate.stat().st_mtime > min_age_s:
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed += 1
    return removed
