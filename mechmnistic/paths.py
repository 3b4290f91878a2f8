"""Where MechMNISTic keeps its data, model zoo and analysis cache.

Each location can be moved with an environment variable; the defaults are
git-ignored folders inside the repository when running from a checkout, and a
per-user cache folder otherwise (e.g. after a non-editable ``pip install``).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT = PACKAGE_DIR.parent
IS_CHECKOUT = (_CHECKOUT / "pyproject.toml").is_file()


def _default_base() -> Path:
    if IS_CHECKOUT:
        return _CHECKOUT
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mechmnistic"


def data_root() -> Path:
    """Folder holding ``MNIST/raw/*-ubyte`` (``MECHMNISTIC_DATA``)."""
    return Path(os.environ.get("MECHMNISTIC_DATA") or _default_base() / "data")


def cache_root() -> Path:
    """Folder for on-disk analysis caches (``MECHMNISTIC_CACHE``)."""
    return Path(os.environ.get("MECHMNISTIC_CACHE") or _default_base() / "cache")


def zoo_root() -> Path:
    """The model zoo: one folder per model (``MECHMNISTIC_MODELS``).

    Defaults to the repository's bundled ``models/`` folder.
    """
    env = os.environ.get("MECHMNISTIC_MODELS")
    if env:
        return Path(env)
    return _CHECKOUT / "models" if IS_CHECKOUT else _default_base() / "models"
