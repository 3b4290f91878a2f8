"""Input-space grounding of any unit of any layer: ``pre(x) = w_eff(x) · x + b_eff(x)``.

On a given input ``x`` (pixels in [0, 1], *before* the model's own
normalisation) a network whose activations are piecewise linear (ReLU,
LeakyReLU; max or average pooling, padding, strides; batch normalisation
folded in) is an affine function of the pixels once its pattern is fixed
(which units are on and at what slope, which max-pool element won):

    pre(x) = w_eff(x) · x + b_eff(x)

exactly. ``w_eff(x)`` ``[28, 28]`` is the gradient of the pre-activation with
respect to the pixels: the product of the weight matrices with the slopes and
max-pool choices active on ``x`` (the normalisation's ``1/std`` folded in).
``b_eff(x)`` is what the biases contribute through the same pattern, plus the
normalisation's offset ``-mean/std`` pushed through it.

With a smooth activation (tanh, sigmoid, ELU, GELU, SiLU) the same
construction is the local linear approximation, gradient x input: ``w_eff``
is still the exact gradient, but ``w_eff · x + b_eff`` differs from the
pre-activation by a residual (``Grounding.residual``), which every view shows
beside it; ``Grounding.exact`` says which case holds.

How it is computed (``mechmnistic.analysis.frozen``). One forward pass of the
model (its own code, with hooks) per distinct image records the pattern;
then the gradient is carried backwards by hand through that frozen pattern,
for a whole chunk of (image, unit) rows at once. So an image shared by many
units is run forwards once, and no autograd graph is built per row. ``b_eff``
accumulates, layer by layer, the gradient at each pre-activation times that
layer's bias; it is computed independently of ``x``, so the identity above is
a real check (the tests compare it with the forward pass for every layer of
every bundled model and of networks with padding, strides, average pooling,
LeakyReLU and folded batch normalisation, and ``w_eff`` with autograd's
gradient).

Units. A fully connected unit is a neuron index. A conv unit is a channel
index ``c`` with a position ``(row, col)`` in the layer's pre-pooling map
(``conv1``: 26x26). Positions are optional: without them a channel is
grounded at the position of its maximum pre-activation on each image, so its
value is the channel's maximum pre-activation, whose argmax position
``mechmnistic.analysis.activations`` keeps too. The positions used are
returned as ``(row, col)``, like ``LayerActivations.argmax``.

Kinks and ties, where the gradient is not unique. The identity still holds
exactly there, because each frozen choice reproduces the forward value; the
choices are the ones autograd makes: a ReLU input of exactly 0 counts as off
(its output is 0 either way); a max-pool window with tied maxima passes the
gradient to the one ``max_pool2d`` returns as its index; a channel maximum
tied between positions is taken at the first in row-major order. At such
points ``w_eff`` is the gradient of one of the adjacent linear pieces: exact
for ``x`` itself, but an arbitrarily small change of the input may switch to
another piece with different weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..hooks import to_pixels
from ..models.architectures import MNISTNet
from .frozen import carry_back, freeze, images_per_block, phase_kernels, polyphase
from .units import UnitError, check_positions, check_units

#: Bound on the floats one chunk of rows holds in gradients and gathered masks (64 MiB). Larger
#: chunks are slower, not faster: their buffers no longer fit in cache and are re-faulted from the OS.
DEFAULT_MAX_FLOATS = 2**22
#: Distinct images whose pattern is held while their rows are grounded (fewer for wide layers:
#: ``frozen.images_per_block`` bounds the pattern's memory).
IMAGES_PER_FORWARD = 4096


@dataclass(frozen=True)
class Grounding:
    """Effective pixel-space weights and biases of units on inputs.

    From ``effective_weights`` (``N`` images x ``U`` units, every unit on every
    image) the arrays are ``w_eff`` float32 ``[N, U, 28, 28]``, ``b_eff`` and
    ``pre`` float32 ``[N, U]``, ``units`` int64 ``[U]``, ``positions`` int64
    ``[N, U, 2]``. From ``effective_weights_pairs`` (``P`` pairs) they are
    ``[P, 28, 28]``, ``[P]``, ``[P]``, ``units [P]``, ``[P, 2]`` and
    ``image_index [P]`` (which image each pair is on). ``pre`` is
    the unit's pre-activation from the model's forward pass; ``positions`` is
    ``(row, col)`` in a conv layer's pre-pooling map, ``None`` for a fully
    connected layer.
    """

    layer: str
    units: np.ndarray
    w_eff: np.ndarray
    b_eff: np.ndarray
    pre: np.ndarray
    positions: np.ndarray | None = None
    image_index: np.ndarray | None = None
    exact: bool = True

    def embeddings(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """Hadamard embeddings ``x ⊙ w_eff(x)``: pass the same ``images`` the grounding was computed on.

        Returns float32 shaped like ``w_eff``.
        """
        if self.image_index is not None:
            images = images[self.image_index]
        pixels = to_pixels(images).numpy()
        if self.w_eff.ndim == 4:
            pixels = pixels[:, None]
        return pixels * self.w_eff

    def reconstruct(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """``w_eff · x + b_eff`` (summed in float64): equals ``pre`` up to float32 rounding when ``exact``."""
        sums = self.embeddings(images).sum(axis=(-2, -1), dtype=np.float64)
        return (sums + self.b_eff).astype(np.float32)

    def residual(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """``pre - (w_eff · x + b_eff)``: zero up to rounding when ``exact``; with smooth activations, what the
        local linear approximation misses."""
        return self.pre - self.reconstruct(images)


def _floats_per_row(model: MNISTNet, layer: str) -> int:
    """Floats one row holds at the widest point of the backward pass (gradients, gathered
    slopes and phases, the patches), to size chunks generously."""
    widest = 28 * 28
    for unit_layer in (*model.layout.below(layer), model.layout[layer]):
        widest = max(widest, _prod(unit_layer.input_shape), _prod(unit_layer.pre_shape))
        if polyphase(unit_layer):
            span = (unit_layer.kernel_size + unit_layer.pool.kernel_size - 1) ** 2
            widest = max(widest, unit_layer.input_shape[0] * span * _prod(unit_layer.output_shape[1:]))
    return 4 * widest


def _prod(shape: tuple[int, ...]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def _ground(
    model: MNISTNet,
    layer: str,
    pixels: torch.Tensor,
    image_of_row: np.ndarray,
    units: np.ndarray,
    positions: np.ndarray | None,
    max_floats: int,
    destination: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Ground rows sorted by image: forward each block of images once, then its rows in chunks.

    Row ``r`` lands at ``destination[r]`` of the outputs (default: ``r``), so
    callers that sorted their rows by image get them back in their own order.
    """
    total = len(units)
    w_out = np.empty((total, 28, 28), np.float32)
    b_out = np.empty(total, np.float32)
    pre_out = np.empty(total, np.float32)
    pos_out = np.empty((total, 2), np.int64) if model.layout[layer].is_conv else None
    rows_per_chunk = max(1, max_floats // _floats_per_row(model, layer))
    kernels = phase_kernels(model, layer)
    block = min(IMAGES_PER_FORWARD, images_per_block(model, layer))
    with torch.no_grad():
        for first in range(0, len(pixels), block):
            # Rows are sorted by image, so each block of images owns one contiguous run of rows.
            lo, hi = np.searchsorted(image_of_row, [first, first + block])
            if lo == hi:
                continue
            frozen = freeze(model, layer, pixels[first : first + block])
            for start in range(lo, hi, rows_per_chunk):
                part = slice(start, min(start + rows_per_chunk, hi))
                rows = carry_back(
                    model,
                    layer,
                    frozen,
                    kernels,
                    torch.from_numpy(image_of_row[part] - first),
                    torch.from_numpy(units[part]),
                    None if positions is None else torch.from_numpy(positions[part]),
                )
                into = part if destination is None else destination[part]
                w_out[into], b_out[into], pre_out[into] = rows.grad.numpy(), rows.bias_term.numpy(), rows.pre.numpy()
                if pos_out is not None:
                    pos_out[into] = rows.positions.numpy()
    return w_out, b_out, pre_out, pos_out


def effective_weights(
    model: MNISTNet,
    layer: str,
    images: np.ndarray | torch.Tensor,
    units: np.ndarray | list[int] | int | None = None,
    positions: np.ndarray | None = None,
    max_floats: int = DEFAULT_MAX_FLOATS,
) -> Grounding:
    """Ground every listed unit of ``layer`` on every image.

    ``images``: uint8 ``[N, 28, 28]`` or floats in [0, 1]. ``units``: int
    ``[U]`` (default: every unit). ``positions`` (conv layers only): int
    ``[U, 2]`` ``(row, col)`` per unit, the same on every image, or ``None`` to
    take each channel at its maximum on each image. Returns a ``Grounding``
    with ``w_eff [N, U, 28, 28]`` and ``b_eff, pre [N, U]``.
    """
    units_array = check_units(model, layer, units)
    positions_array = check_positions(model, layer, positions, len(units_array))
    pixels = to_pixels(images)
    n, u = len(pixels), len(units_array)
    image_of_row = np.repeat(np.arange(n), u)
    w, b, pre, pos = _ground(
        model,
        layer,
        pixels,
        image_of_row,
        np.tile(units_array, n),
        None if positions_array is None else np.tile(positions_array, (n, 1)),
        max_floats,
    )
    return Grounding(
        layer,
        units_array,
        w.reshape(n, u, 28, 28),
        b.reshape(n, u),
        pre.reshape(n, u),
        None if pos is None else pos.reshape(n, u, 2),
        exact=model.layout.exact_below(layer),
    )


def effective_weights_pairs(
    model: MNISTNet,
    layer: str,
    images: np.ndarray | torch.Tensor,
    units: np.ndarray | list[int],
    image_index: np.ndarray | None = None,
    positions: np.ndarray | None = None,
    max_floats: int = DEFAULT_MAX_FLOATS,
) -> Grounding:
    """Ground ``P`` (image, unit) pairs: unit ``units[p]`` of ``layer`` on image ``image_index[p]``.

    ``images``: ``[N, 28, 28]``, uint8 or [0, 1] floats. ``units``: int ``[P]``.
    ``image_index``: int ``[P]`` into ``images``; without it ``images`` must be
    ``[P, 28, 28]``, one per pair. Each image is run forwards once however many
    pairs use it, so pass the whole set and an index (e.g. the training set and
    the top examples of every unit) rather than gathering copies. ``positions``
    (conv only): int ``[P, 2]``, or ``None`` for each channel at its maximum on
    its image. Returns a ``Grounding`` with ``w_eff [P, 28, 28]`` and
    ``b_eff, pre [P]``; no work is spent on pairs nobody asked for.
    """
    units_array = check_units(model, layer, units)
    if image_index is None:
        if len(images) != len(units_array):
            raise UnitError(f"one unit per image: got {len(images)} images and {len(units_array)} units")
        index = np.arange(len(images), dtype=np.int64)
    else:
        index = np.asarray(image_index)
        if index.shape != units_array.shape or not np.issubdtype(index.dtype, np.integer):
            raise UnitError(f"image_index must be {len(units_array)} integers, one per unit")
        if index.size and (index.min() < 0 or index.max() >= len(images)):
            raise UnitError(f"image_index must lie in 0..{len(images) - 1}")
        index = index.astype(np.int64)
    positions_array = check_positions(model, layer, positions, len(units_array))
    used, image_of_pair = np.unique(index, return_inverse=True)
    order = np.argsort(image_of_pair, kind="stable")
    w, b, pre, pos = _ground(
        model,
        layer,
        to_pixels(images[used]),
        image_of_pair[order],
        units_array[order],
        None if positions_array is None else positions_array[order],
        max_floats,
        destination=order,
    )
    return Grounding(layer, units_array, w, b, pre, pos, image_index=index, exact=model.layout.exact_below(layer))
