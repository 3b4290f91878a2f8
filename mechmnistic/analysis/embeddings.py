"""Hadamard feature embeddings: which pixels of an input drive a unit, and by how much.

For a unit whose pre-activation on input ``x`` (pixels in [0, 1]) is
``w_eff(x) · x + b_eff(x)``, its embedding is the map ``x ⊙ w_eff(x)``: it is
zero where the digit has no ink, and it sums, together with ``b_eff(x)``,
exactly to the unit's pre-activation. For an MLP's first-layer unit ``w_eff``
is just its input weights (with the model's input normalisation folded in:
``(x - m) / s`` gives ``w / s`` and ``b - m * sum(w) / s``), as in the
MechMNISTic write-up, computed here in closed form. For every other unit
(deeper layers, conv channels, CNN FC units) ``w_eff(x)`` depends on the input
through the activations' slopes and the max-pool choices, and comes from
``mechmnistic.analysis.grounding`` (exact for piecewise-linear networks; with
smooth activations the local linear approximation, whose residual ``exact``
and ``residual`` report).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import MechMNISTicError
from ..hooks import to_pixels
from ..models.architectures import MNISTNet
from .grounding import effective_weights, effective_weights_pairs
from .units import UnitError, check_positions, check_units


@dataclass(frozen=True)
class Embeddings:
    """Embeddings of ``U`` units on ``N`` inputs.

    ``maps``: float32 ``[N, U, 28, 28]`` = ``x ⊙ w_eff(x)``; ``bias``: float32
    ``[N, U]`` = ``b_eff(x)``; so ``maps.sum((2, 3)) + bias`` is the
    pre-activation ``[N, U]``. ``positions``: for conv channels, int64 ``[N, U,
    2]``, the ``(row, col)`` in the layer's map where each unit was grounded
    (see ``grounding``); ``None`` for FC units.
    """

    maps: np.ndarray
    bias: np.ndarray
    positions: np.ndarray | None = None
    exact: bool = True

    @property
    def pre_activation(self) -> np.ndarray:
        """``maps`` summed plus ``bias``: the pre-activation when ``exact``, else its local linear approximation."""
        return self.maps.sum(axis=(-2, -1)) + self.bias


def first_layer_effective_weights(model: MNISTNet, units: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-space weights and bias of the first layer's units (normalisation folded in).

    Returns ``w`` float32 ``[U, 28, 28]`` and ``b`` float32 ``[U]``. Only for an
    MLP's first (Linear) layer, whose effective weights do not depend on the input.
    """
    first = model.layer(model.layout.first.name)
    if not isinstance(first, torch.nn.Linear):
        raise MechMNISTicError("input-independent weights exist only for an MLP's first layer")
    weight = first.weight.detach().double()
    bias = first.bias.detach().double()
    norm = model.config.normalization
    w = weight / norm.std
    b = bias - norm.mean * weight.sum(dim=1) / norm.std
    if units is not None:
        index = torch.as_tensor(np.asarray(units, dtype=np.int64))
        w, b = w[index], b[index]
    return w.reshape(-1, 28, 28).float().numpy(), b.float().numpy()


def hadamard_embeddings(
    model: MNISTNet,
    layer: str,
    images: np.ndarray,
    units: np.ndarray | None = None,
    positions: np.ndarray | None = None,
) -> Embeddings:
    """Embeddings of ``layer``'s ``units`` (default all) on ``images`` (uint8 ``[N,28,28]`` or [0,1] floats).

    Any layer of any model. ``positions`` (conv layers only): int ``[U, 2]``
    ``(row, col)`` per channel; by default a channel is embedded at its maximum
    on each image. For (image, unit) pairs rather than a full grid (the top
    examples of many units), use ``hadamard_embeddings_pairs``.
    """
    if _closed_form(model, layer):
        units = check_units(model, layer, units)
        check_positions(model, layer, positions, len(units))  # FC units have none: say so
        w, b = first_layer_effective_weights(model, units)
        pixels = to_pixels(images).numpy()  # [N, 28, 28]
        maps = pixels[:, None, :, :] * w[None]  # [N, U, 28, 28]
        return Embeddings(maps.astype(np.float32), np.broadcast_to(b, (len(pixels), len(b))).astype(np.float32))
    grounding = effective_weights(model, layer, images, units, positions)
    return Embeddings(grounding.embeddings(images), grounding.b_eff, grounding.positions, grounding.exact)


def hadamard_embeddings_pairs(
    model: MNISTNet,
    layer: str,
    images: np.ndarray,
    units: np.ndarray,
    image_index: np.ndarray,
    positions: np.ndarray | None = None,
) -> Embeddings:
    """Embeddings of ``P`` (image, unit) pairs: unit ``units[p]`` on image ``images[image_index[p]]``.

    ``images``: uint8 ``[N, 28, 28]`` or [0, 1] floats (pass the whole set and
    an index: each image runs forwards once however many pairs use it);
    ``units``, ``image_index``: int ``[P]``; ``positions`` (conv layers only):
    int ``[P, 2]``, or ``None`` for each channel at its maximum on its image.
    Returns ``Embeddings`` with ``maps [P, 28, 28]``, ``bias [P]`` and
    ``positions [P, 2]`` (conv) or ``None``. An MLP's first layer takes the
    closed form, every other layer ``grounding.effective_weights_pairs``.
    """
    if _closed_form(model, layer):
        units = check_units(model, layer, units)
        index = np.asarray(image_index, dtype=np.int64)
        if index.shape != units.shape or (index.size and (index.min() < 0 or index.max() >= len(images))):
            raise UnitError(f"image_index must be {len(units)} indices into the {len(images)} images, one per unit")
        check_positions(model, layer, positions, len(units))  # FC units have none: say so
        w, b = first_layer_effective_weights(model)
        maps = to_pixels(images[index]).numpy() * w[units]
        return Embeddings(maps, b[units])
    grounding = effective_weights_pairs(model, layer, images, units, image_index, positions)
    return Embeddings(grounding.embeddings(images), grounding.b_eff, grounding.positions, grounding.exact)


def _closed_form(model: MNISTNet, layer: str) -> bool:
    """Whether ``layer`` is an MLP's first layer, whose effective weights do not depend on the input."""
    unit_layer = model.layout.check(layer)
    return unit_layer.index == 0 and not unit_layer.is_conv
