"""How one unit of any hidden layer behaves over a split: its activation distribution, its top examples, the
units whose weights point the same way.

Units are addressed and checked as everywhere else (``analysis.units``): a
fully connected layer's unit is a neuron, a conv layer's is a channel taken at
its maximum on each image (as in ``analysis.activations``; a channel at one
fixed cell is ``analysis.conv.position_activations``, whose values these
functions take as well). What a unit *reads and writes* is
``analysis.connections`` (and ``embeddings.first_layer_effective_weights`` for
an MLP's first layer in pixel space).

The activation is the layer's own (``tanh`` as well as ReLU): numbers "of the
activation" apply it to the pre-activation, and a unit *fires* where its
pre-activation is positive, i.e. where the activation is above its value at
zero (for ReLU: where it is non-zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data import Split, load_mnist
from ..models.architectures import MNISTNet, activate
from ..models.config import Activation
from .activations import layer_activations
from .units import UnitError, check_units


def activation_values(activation: Activation | None, pre: np.ndarray) -> np.ndarray:
    """``f(pre)`` as float32 of ``pre``'s shape, ``f`` a layer's activation (the identity where it has none)."""
    if activation is None:
        return np.asarray(pre, dtype=np.float32)
    # A copy: cached arrays are read-only, and torch warns on wrapping one.
    return activate(activation, torch.from_numpy(np.array(pre, dtype=np.float32))).numpy()


# ------------------------------------------------------------ dataset behaviour
@dataclass(frozen=True)
class ActivationDistribution:
    """How a unit behaves over a whole split.

    ``counts`` int64 ``[B]`` and ``edges`` float32 ``[B + 1]``: a histogram of
    the *pre*-activation (so the part below zero, where the unit is silent, is
    visible too); zero is always an edge. ``firing_fraction``: share of images
    with pre-activation > 0. ``mean``/``std``/``max``: of the activation (the
    layer's own function of the pre-activation). ``firing_by_class`` float
    ``[n_classes]``: the firing fraction among the images of each class.
    """

    counts: np.ndarray
    edges: np.ndarray
    firing_fraction: float
    mean: float
    std: float
    max: float
    firing_by_class: np.ndarray

    @property
    def n_images(self) -> int:
        return int(self.counts.sum())


def _edges_through_zero(values: np.ndarray, bins: int) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    width = (high - low) / bins if high > low else 1.0
    # Align the grid on zero so no bin mixes firing and silent images.
    first, last = np.floor(min(low, 0.0) / width), np.ceil(max(high, 0.0) / width)
    edges = np.arange(first, last + 1) * width
    if edges[-1] <= high:  # numpy's last bin is closed, but keep the maximum inside even after rounding
        edges = np.append(edges, edges[-1] + width)
    return edges.astype(np.float32)


def distribution_from_values(
    pre: np.ndarray, activation: np.ndarray, labels: np.ndarray, n_classes: int, bins: int = 60
) -> ActivationDistribution:
    """One unit's distribution from its pre-activations ``pre`` float ``[N]``, its activations ``activation``
    float ``[N]`` (``activation_values`` of them; a dictionary latent's are its values, given as both) and the
    images' ``labels`` int ``[N]``."""
    if bins < 1:
        raise UnitError(f"bins must be at least 1, got {bins}")
    pre = np.asarray(pre, dtype=np.float64)
    activation = np.asarray(activation, dtype=np.float64)
    if activation.shape != pre.shape:
        raise UnitError(f"activations {activation.shape} and pre-activations {pre.shape} differ in shape")
    edges = _edges_through_zero(pre, bins)
    counts, _ = np.histogram(pre, bins=edges.astype(np.float64))
    fires = pre > 0
    per_class = np.bincount(labels, minlength=n_classes)
    firing_by_class = np.bincount(labels, weights=fires, minlength=n_classes) / np.maximum(per_class, 1)
    return ActivationDistribution(
        counts=counts.astype(np.int64),
        edges=edges,
        firing_fraction=float(fires.mean()),
        mean=float(activation.mean()),
        std=float(activation.std()),
        max=float(activation.max()),
        firing_by_class=firing_by_class,
    )


def activation_distribution(
    model: MNISTNet, layer: str, unit: int, split: Split = "train", bins: int = 60
) -> ActivationDistribution:
    """How ``(layer, unit)`` behaves over every image of ``split`` (activations cached on disk)."""
    model.layout.check_hidden(layer)
    unit = int(check_units(model, layer, [unit])[0])
    acts = layer_activations(model, layer, split)
    return distribution_from_values(acts.pre[:, unit], acts.values[:, unit], load_mnist(split).labels,
                                    model.n_classes, bins)


# ----------------------------------------------------------------- top examples
@dataclass(frozen=True)
class TopExamples:
    """The images on which a unit's pre-activation is highest, highest first.

    ``indices`` int64 ``[K]`` into the split; ``pre`` and ``activations``
    float32 ``[K]``; ``labels`` int64 ``[K]``. Ranking by the pre-activation
    equals ranking by the activation (every activation here is monotone, or
    ranks the pre-activation anyway), and still orders images where the unit
    is silent (a dead unit's list shows how close it comes).
    """

    indices: np.ndarray
    pre: np.ndarray
    activations: np.ndarray
    labels: np.ndarray


def top_indices(pre: np.ndarray, k: int) -> np.ndarray:
    """Per column of ``pre`` float ``[N, U]``, the rows of its ``k`` largest values, largest first: int64 ``[U, k]``."""
    n = pre.shape[0]
    if not 1 <= k <= n:
        raise UnitError(f"top-k must be between 1 and {n}, got {k}")
    if k < n:
        candidates = np.argpartition(-pre, k - 1, axis=0)[:k]
    else:
        candidates = np.tile(np.arange(n)[:, None], (1, pre.shape[1]))
    values = np.take_along_axis(pre, candidates, axis=0)
    # Highest first; equal values by image index, so the order is reproducible.
    order = np.lexsort((candidates, -values), axis=0)
    return np.take_along_axis(candidates, order, axis=0).T.astype(np.int64)


def top_examples(model: MNISTNet, layer: str, unit: int, k: int = 500, split: Split = "train") -> TopExamples:
    """The ``k`` images of ``split`` that drive ``(layer, unit)`` hardest (a conv channel: at its maximum)."""
    model.layout.check_hidden(layer)
    unit = int(check_units(model, layer, [unit])[0])
    acts = layer_activations(model, layer, split)
    indices = top_indices(acts.pre[:, unit : unit + 1], k)[0]
    return TopExamples(indices, acts.pre[indices, unit], acts.values[indices, unit], load_mnist(split).labels[indices])


# ---------------------------------------------------------------- similar units
def similar_units(model: MNISTNet, layer: str, unit: int, count: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` other units of ``layer`` whose input weights point the most the same way.

    Returns ``(units int64 [count], cosine similarity float32 [count])``, most
    similar first. The layer's own weights are compared; for the first layer
    they equal the pixel-space weights up to one common factor (the input
    normalisation's std), which leaves every cosine unchanged. Any hidden
    layer: a conv channel's weights are all its kernels, flattened.
    """
    model.layout.check_hidden(layer)
    check_units(model, layer, [unit])
    module = model.layer(layer)
    weights = module.weight.detach().reshape(module.weight.shape[0], -1).numpy().astype(np.float64)
    norms = np.linalg.norm(weights, axis=1)
    similarity = weights @ weights[unit] / np.maximum(norms * norms[unit], 1e-300)
    similarity[unit] = -np.inf
    count = max(0, min(count, len(similarity) - 1))
    order = np.argsort(-similarity, kind="stable")[:count]
    return order.astype(np.int64), similarity[order].astype(np.float32)
