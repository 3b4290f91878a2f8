"""Feature splitting: where a latent of a smaller dictionary went in a larger one of the same layer.

Dictionaries of growing size on one layer tend to split a broad latent into
several narrower ones (a "0" latent into round and narrow zeros). The match is
read off the decoders: each latent writes its decoder row into the layer's
space, and two latents say the same thing to the rest of the network when
their rows point the same way (cosine similarity near 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dictionaries.dictionary import Dictionary, DictionaryMismatchError
from .units import UnitError


def _unit_rows(weights) -> np.ndarray:
    rows = np.asarray(weights, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def check_same_layer(small: Dictionary, large: Dictionary) -> None:
    """Refuse two dictionaries that do not read the same layer of the same weights."""
    if (small.layer, small.card.model_fingerprint) != (large.layer, large.card.model_fingerprint):
        raise DictionaryMismatchError(f"{small.id} ({small.layer}) and {large.id} ({large.layer}) are not "
                                      "dictionaries of the same layer of the same model weights")


def decoder_cosines(small: Dictionary, large: Dictionary) -> np.ndarray:
    """Cosine similarity of every decoder row of ``small`` with every one of ``large``: float64
    ``[small.d_sae, large.d_sae]``."""
    check_same_layer(small, large)
    return _unit_rows(small.W_dec.numpy()) @ _unit_rows(large.W_dec.numpy()).T


@dataclass(frozen=True)
class SplitLatents:
    """Latent ``latent`` of ``small`` and its ``count`` closest latents of ``large``: ``indices`` int64
    ``[count]`` and their decoder ``cosines`` float64 ``[count]``, closest first."""

    small: str
    large: str
    latent: int
    indices: np.ndarray
    cosines: np.ndarray


def split_latents(small: Dictionary, large: Dictionary, latent: int, count: int = 4) -> SplitLatents:
    """Latent ``latent`` of ``small`` linked to the ``count`` latents of ``large`` whose decoder rows are
    closest to its own."""
    if not (isinstance(latent, int | np.integer) and 0 <= latent < small.d_sae):
        raise UnitError(f"latent {latent!r} is out of range: {small.id} has latents 0..{small.d_sae - 1}")
    if not (isinstance(count, int | np.integer) and 1 <= count <= large.d_sae):
        raise UnitError(f"count must be from 1 to {large.d_sae}, got {count!r}")
    row = decoder_cosines(small, large)[int(latent)]
    order = np.argsort(-row, kind="stable")[: int(count)]
    return SplitLatents(small.id, large.id, int(latent), order.astype(np.int64), row[order])


def best_matches(small: Dictionary, large: Dictionary) -> np.ndarray:
    """For each latent of ``small``, the highest decoder cosine it has with any latent of ``large``: float64
    ``[small.d_sae]`` (near 1: kept as it was; lower: split or gone)."""
    return decoder_cosines(small, large).max(axis=1)
