"""A sweep: dictionaries of several sizes (or k) on one layer, and which of them are worth their density.

Dictionary learning trades sparsity (L0, the latents active per row) against
fidelity (variance explained, the spliced model's accuracy); a sweep trains one
dictionary per setting and the Pareto front says which settings no other one
beats on both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from ..models.architectures import MNISTNet
from .dictionary import Dictionary, DictionaryError, DictionaryExistsError, dictionary_dir, save_dictionary
from .training import Progress, SparseAutoencoder, default_dictionary_id, train_dictionary

SWEEP_SIZES = (64, 128, 256, 512, 1024, 2048)
SWEEP_KS = (1, 2, 4, 8, 16, 32, 64)
MAX_SWEEP = 12


def sweep_dictionary_id(layer: str, trainer: SparseAutoencoder, over_k: bool) -> str:
    """``default_dictionary_id``, with ``-k<K>`` added in a sweep over k (whose dictionaries share a size)."""
    base = default_dictionary_id(layer, trainer.kind, trainer.n_latents)
    return f"{base}-k{trainer.k}" if over_k and trainer.kind == "topk" else base


def pareto_front(cost: Sequence[float], quality: Sequence[float]) -> np.ndarray:
    """bool ``[P]``: the points that no other point beats on both (lower or equal ``cost``, higher or equal
    ``quality``, one of them strictly); NaN points are never on it."""
    cost, quality = np.asarray(cost, dtype=np.float64), np.asarray(quality, dtype=np.float64)
    valid = np.isfinite(cost) & np.isfinite(quality)
    front = valid.copy()
    for i in np.flatnonzero(valid):
        others = valid & (cost <= cost[i]) & (quality >= quality[i]) & ((cost < cost[i]) | (quality > quality[i]))
        front[i] = not others.any()
    return front


def train_sweep(model: MNISTNet, layer: str, trainers: Sequence[SparseAutoencoder], progress: Progress | None = None,
                images: np.ndarray | None = None, overwrite: bool = False,
                zoo: str | os.PathLike | None = None, name: Callable[[SparseAutoencoder], str] | None = None,
                ) -> list[Dictionary]:
    """Train and save one dictionary per trainer on ``layer`` (ids from ``name``, by default
    ``sweep_dictionary_id``); ``progress`` hears about all of them on one scale.

    Every id is checked before anything trains, so a sweep that would overwrite
    a dictionary without ``overwrite`` changes nothing.
    """
    if not 1 <= len(trainers) <= MAX_SWEEP:
        raise DictionaryError(f"a sweep trains 1 to {MAX_SWEEP} dictionaries, got {len(trainers)}")
    name = name or (lambda t: sweep_dictionary_id(layer, t, over_k=len({t.k for t in trainers}) > 1))
    ids = [name(t) for t in trainers]
    if len(set(ids)) != len(ids):
        raise DictionaryError(f"a sweep's dictionaries need different ids, got {ids}")
    n_units = model.layout.check_hidden(layer).n_units
    for trainer, dictionary_id in zip(trainers, ids, strict=True):
        trainer.check_params(n_units)
        if not overwrite and (dictionary_dir(model.card.name, dictionary_id, zoo) / "card.json").exists():
            raise DictionaryExistsError(f"{model.card.name} already has a dictionary {dictionary_id!r}; allow "
                                        "overwriting to replace it")
    done = []
    for index, (trainer, dictionary_id) in enumerate(zip(trainers, ids, strict=True)):
        def report(step: int, total: int, message: str, index: int = index, dictionary_id: str = dictionary_id
                   ) -> None:
            if progress is not None:
                progress(index * total + step, len(trainers) * total,
                         f"{dictionary_id} ({index + 1} of {len(trainers)}): {message}")

        dictionary = train_dictionary(model, layer, trainer, dictionary_id, progress=report, images=images)
        save_dictionary(dictionary, zoo, overwrite=overwrite)
        done.append(dictionary)
    return done
