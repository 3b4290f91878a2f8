"""One unit of a fully connected hidden layer: what it reads, what it writes, when it fires.

A *unit* is addressed as ``(layer, unit)``: ``layer`` is the model's own name
for a hidden Linear layer (``layers.0``, ``fc1``) and ``unit`` its output
index. Its pre-activation is the Linear output, its activation the layer's
activation function of it; it *fires* on an image when the activation is
positive.

Everything over the dataset reads ``analysis.activations.layer_activations``,
which is computed once per model and split and cached on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data import Split, load_mnist
from ..models.architectures import MNISTNet
from .activations import layer_activations
from .connections import incoming_weights, outgoing_weights
from .embeddings import first_layer_effective_weights
from .units import UnitError, check_units


def check_unit(model: MNISTNet, layer: str, unit: int | None = None) -> torch.nn.Linear:
    """The Linear module of ``layer``, after checking that ``(layer, unit)`` is a hidden FC unit."""
    hidden = [unit_layer.name for unit_layer in model.layout.hidden if not unit_layer.is_conv]
    if layer not in hidden:
        raise UnitError(f"{str(layer)[:60]!r} is not a hidden fully connected layer of this model; choose one of "
                        f"{hidden}")
    if unit is not None:
        check_units(model, layer, [unit])
    return model.layer(layer)


# --------------------------------------------------------------------- weights
@dataclass(frozen=True)
class InputWeights:
    """What a unit reads.

    ``weights``: float32 ``[28, 28]`` pixel-space weights for a first-layer unit
    (the model's input normalisation folded in, so ``(weights * pixels).sum() +
    bias`` is the pre-activation on pixels in [0, 1]); float32 ``[in_units]``
    for a deeper unit, one weight per unit of ``source``. ``bias``: the
    matching bias.
    """

    weights: np.ndarray
    bias: float
    source: str

    @property
    def in_pixel_space(self) -> bool:
        return self.weights.ndim == 2


@dataclass(frozen=True)
class OutputWeights:
    """What a unit writes: float32 ``[out_units]``, its weight into each unit of ``target``."""

    weights: np.ndarray
    target: str
    to_classes: bool


def input_weights(model: MNISTNet, layer: str, unit: int) -> InputWeights:
    """The weights into ``(layer, unit)``: pixel space for the first layer, else from the previous layer."""
    check_unit(model, layer, unit)
    if model.layout[layer].index == 0:
        w, b = first_layer_effective_weights(model, np.array([unit]))
        return InputWeights(w[0], float(b[0]), "pixels")
    incoming = incoming_weights(model, layer, int(unit))
    return InputWeights(incoming.weights, incoming.bias, incoming.sources.layer)


def output_weights(model: MNISTNet, layer: str, unit: int) -> OutputWeights:
    """The weights out of ``(layer, unit)`` into every unit of the next layer (the classes, after the last)."""
    check_unit(model, layer, unit)
    outgoing = outgoing_weights(model, layer, int(unit))
    return OutputWeights(outgoing.weights, outgoing.target_layer, model.layout[outgoing.target_layer].is_final)


def similar_neurons(model: MNISTNet, layer: str, unit: int, count: int = 5) -> tuple[np.ndarray, np.ndarray]:
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


# ------------------------------------------------------------ dataset behaviour
@dataclass(frozen=True)
class ActivationDistribution:
    """How a unit behaves over a whole split.

    ``counts`` int64 ``[B]`` and ``edges`` float32 ``[B + 1]``: a histogram of
    the *pre*-activation (so the part below zero, where the unit is silent, is
    visible too); zero is always an edge. ``firing_fraction``: share of images
    with activation > 0. ``mean``/``std``/``max``: of the activation (after
    ReLU). ``firing_by_class`` float ``[n_classes]``: the firing fraction among
    the images of each class.
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
    pre: np.ndarray, labels: np.ndarray, n_classes: int, bins: int = 60
) -> ActivationDistribution:
    """The distribution of one unit from its pre-activations ``pre`` float ``[N]`` and image ``labels`` int ``[N]``."""
    if bins < 1:
        raise UnitError(f"bins must be at least 1, got {bins}")
    pre = np.asarray(pre, dtype=np.float64)
    activation = np.maximum(pre, 0.0)
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
    check_unit(model, layer, unit)
    acts = layer_activations(model, layer, split)
    return distribution_from_values(acts.pre[:, unit], load_mnist(split).labels, model.n_classes, bins)


@dataclass(frozen=True)
class TopExamples:
    """The images on which a unit's pre-activation is highest, highest first.

    ``indices`` int64 ``[K]`` into the split; ``pre`` and ``activations``
    float32 ``[K]``; ``labels`` int64 ``[K]``. Ranking by the pre-activation
    equals ranking by the activation wherever the unit fires, and still orders
    images where it does not (a dead unit's list shows how close it comes).
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
    """The ``k`` images of ``split`` that drive ``(layer, unit)`` hardest."""
    check_unit(model, layer, unit)
    pre = layer_activations(model, layer, split).pre[:, unit]
    indices = top_indices(pre[:, None], k)[0]
    values = pre[indices]
    return TopExamples(indices, values, np.maximum(values, 0), load_mnist(split).labels[indices])
