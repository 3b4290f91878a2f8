"""Files the command line writes (``--save``, ``--out``): checked before any work, written atomically.

A bad path fails before anything is computed, with one line naming the
option and the problem; the file itself lands through ``mechmnistic.atomic``,
so an interrupted or failed write leaves no half file behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import MechMNISTicError


def npz_target(path: str | None, option: str) -> Path | None:
    """``path`` as the ``.npz`` file ``option`` will write, after checking it can be written (``None``: none asked)."""
    if path is None:
        return None
    target = Path(path)
    if target.suffix != ".npz":
        raise MechMNISTicError(f"{option} {path}: the file name must end in .npz")
    if target.is_dir():
        raise MechMNISTicError(f"{option} {path}: that is a folder; name a file inside it")
    if not target.parent.is_dir():
        raise MechMNISTicError(f"{option} {path}: folder {target.parent} does not exist")
    try:  # a real try (permissions alone do not tell: root, read-only mounts, /proc): a file made and gone
        with tempfile.TemporaryFile(dir=target.parent):
            pass
    except OSError as exc:
        raise MechMNISTicError(f"{option} {path}: cannot write in folder {target.parent} "
                               f"({exc.strerror or exc})") from None
    return target


def write_npz(target: Path, arrays: dict[str, np.ndarray], option: str = "--save") -> None:
    """Write ``arrays`` to ``target`` atomically; a failure is one clear error and leaves no file."""
    from ..atomic import atomic_open

    try:
        with atomic_open(target) as handle:
            np.savez(handle, **arrays)
            os.fchmod(handle.fileno(), 0o666 & ~_umask())  # a user's file: as their umask says, not 0600
    except OSError as exc:
        raise MechMNISTicError(f"{option} {target}: could not write it ({exc.strerror or exc}); "
                               "nothing was written") from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
