"""The on-disk analysis cache: compute once per model and parameters, read lazily after.

An entry is one ``.npz`` file of named numpy arrays (read with
``allow_pickle=False``: the cache can never run code) at

    <cache root>/<analysis>/<model fingerprint>-<parameter hash>.npz

where the fingerprint is the SHA-256 of the model's weights, so retraining or
re-importing a model under the same name never serves stale results. Entries
are written atomically (temporary file, then rename) under a file lock, so a
crash never leaves a half entry that is trusted, and two processes computing
the same entry at once do the work once and never corrupt it. An unreadable
entry is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from .atomic import atomic_open
from .paths import cache_root

log = logging.getLogger(__name__)

#: Bump when an analysis changes what it stores, to invalidate old entries.
CACHE_FORMAT = 1
_META = "__meta__"

Arrays = dict[str, np.ndarray]


def model_fingerprint(model: Any) -> str:
    """SHA-256 of a model's weights and input normalisation (memoised on the model;
    weights are never mutated in place).

    The normalisation is part of the model: an imported model's weights may be
    loaded with different normalisations, which give different activations.
    """
    cached = getattr(model, "_mechmnistic_fingerprint", None)
    if cached is None:
        from .models.zoo import weights_bytes

        norm = getattr(getattr(model, "config", None), "normalization", None)
        digest = hashlib.sha256(weights_bytes(model))
        if norm is not None and not norm.is_identity:  # identity keeps the fingerprints of existing cache entries
            digest.update(f"normalization:{norm.mean!r},{norm.std!r}".encode())
        cached = digest.hexdigest()
        object.__setattr__(model, "_mechmnistic_fingerprint", cached)
    return cached


def entry_path(model: Any, analysis: str, params: Mapping[str, Any], root: Path | None = None) -> Path:
    """Where the entry for ``analysis`` of ``model`` with ``params`` lives."""
    blob = json.dumps({"format": CACHE_FORMAT, "params": params}, sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return (root or cache_root()) / analysis / f"{model_fingerprint(model)[:24]}-{digest}.npz"


def _read(path: Path) -> Arrays | None:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files if key != _META}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        log.warning("ignoring unreadable cache entry %s (%s); recomputing", path, exc)
        return None


def cached(
    model: Any,
    analysis: str,
    params: Mapping[str, Any],
    compute: Callable[[], Mapping[str, np.ndarray]],
    root: Path | None = None,
) -> Arrays:
    """Return ``compute()``'s arrays for ``(model, analysis, params)``, from disk when present.

    ``compute`` must return a mapping of names to numpy arrays (no object
    dtypes). ``params`` must be JSON-serialisable and include everything the
    result depends on besides the weights.
    """
    path = entry_path(model, analysis, params, root)
    found = _read(path) if path.exists() else None
    if found is not None:
        return found
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        found = _read(path) if path.exists() else None  # another process may have finished it
        if found is not None:
            return found
        arrays = {key: np.asarray(value) for key, value in compute().items()}
        for key, value in arrays.items():
            if value.dtype == object:
                raise TypeError(f"cache entry {analysis}/{key} has object dtype; store plain arrays")
        meta = np.array(json.dumps({"analysis": analysis, "params": params}, default=str))
        # Through a file handle: given a name, numpy would append ".npz" to the temporary's, and a killed
        # writer would leave a file that looks like an entry to anything globbing for them.
        with atomic_open(path, "wb") as handle:
            np.savez(handle, **arrays, **{_META: meta})
    return arrays


def is_cached(model: Any, analysis: str, params: Mapping[str, Any], root: Path | None = None) -> bool:
    """Whether an entry exists (so a page can say "computing for the first time")."""
    return entry_path(model, analysis, params, root).exists()
