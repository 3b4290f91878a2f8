"""Exact input-space grounding of any unit of any layer: ``pre(x) = w_eff(x) · x + b_eff(x)``.

Our networks (ReLU MLPs, ReLU/max-pool CNNs, an affine input normalisation)
are piecewise linear in the pixels. On a given input ``x`` (pixels in [0, 1],
*before* the model's own normalisation) the ReLU masks and the max-pool
choices are fixed, and every unit's pre-activation is an affine function of
the pixels:

    pre(x) = w_eff(x) · x + b_eff(x)

``w_eff(x)`` ``[28, 28]`` is the gradient of the pre-activation with respect to
the pixels: the product of the weight matrices with the ReLU masks and
max-pool choices active on ``x`` (the normalisation's ``1/std`` folded in).
``b_eff(x)`` is what the biases contribute through the same masks, plus the
normalisation's offset ``-mean/std`` pushed through them.

How it is computed. One forward pass of the model (its own code, through
``run_with_cache``) per distinct image records the masks and pool choices;
then the gradient is carried backwards by hand through those frozen masks,
for a whole chunk of (image, unit) rows at once: matrix products for fully
connected layers, a scatter through the recorded argmax for max-pooling, a
transposed convolution for conv layers. So an image shared by many units is
run forwards once, and no autograd graph is built per row. ``b_eff``
accumulates, layer by layer, the gradient at each pre-activation times that
layer's bias; it is computed independently of ``x``, so the identity above is
a real check (the tests compare it with the forward pass for every layer of
every bundled model, and ``w_eff`` with autograd's gradient).

Units. A fully connected unit is a neuron index. A conv unit is a channel
index ``c`` with a position ``(row, col)`` in the layer's pre-pooling map
(``conv1``: 26x26). Positions are optional: without them a channel is
grounded at the position of its maximum pre-activation on each image, so its
value is the channel's maximum pre-activation; ``relu`` of it is the channel
activation of ``mechmnistic.analysis.activations``, whose argmax position it
equals whenever the channel fires. The positions used are returned as
``(row, col)``, like ``LayerActivations.argmax``.

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
import torch.nn.functional as F

from ..hooks import run_with_cache, to_pixels
from ..models.architectures import MNISTNet
from .activations import is_conv
from .units import UnitError, check_layer, check_positions, check_units, conv_map_size

#: Bound on the floats one chunk of rows holds in gradients and gathered masks (64 MiB). Larger
#: chunks are slower, not faster: their buffers no longer fit in cache and are re-faulted from the OS.
DEFAULT_MAX_FLOATS = 2**24
#: Distinct images whose masks are held while their rows are grounded, and the forward batch.
IMAGES_PER_FORWARD = 4096
FORWARD_BATCH = 512


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
        """``w_eff · x + b_eff`` (summed in float64): equals ``pre`` up to float32 rounding."""
        sums = self.embeddings(images).sum(axis=(-2, -1), dtype=np.float64)
        return (sums + self.b_eff).astype(np.float32)


@dataclass(frozen=True)
class _Frozen:
    """What the forward pass fixed on a block of ``M`` images, for the layers below the target.

    ``on``: which units pass a gradient: FC layers the ReLU mask ``pre > 0``
    (bool ``[M, units]``); conv layers, per pooled cell, whether the window's
    maximum is on (bool ``[C, M, H', W']``: channel first, then image, the
    layout the backward pass works in). ``phase``: conv layers only, where in
    its pooling window the maximum sits (int64 ``[C, M, H', W']``, ``row *
    pool + col`` within the window). ``target_pre``: the target layer's
    pre-activation ``[M, units]`` or ``[M, C, H, W]``.
    """

    on: dict[str, torch.Tensor]
    phase: dict[str, torch.Tensor]
    target_pre: torch.Tensor


def _freeze(model: MNISTNet, layer: str, pixels: torch.Tensor) -> _Frozen:
    below = model.layer_names[: model.layer_names.index(layer)]
    conv_below = [name for name in below if is_conv(model, name)]
    names = [f"{layer}.pre", *(f"{n}.pre" for n in below if n not in conv_below), *(f"{n}.post" for n in conv_below)]
    _, cache = run_with_cache(model, pixels, names=names, batch_size=FORWARD_BATCH)
    on = {name: cache[f"{name}.pre"] > 0 for name in below if name not in conv_below}
    phase = {}
    for name in conv_below:
        post = cache[f"{name}.post"]
        pool = model.config.pool_size
        # Pooling the model's own ReLU output again gives the choices its forward made.
        pooled, index = F.max_pool2d(post, pool, return_indices=True)
        on[name] = (pooled > 0).transpose(0, 1).contiguous()  # the maximum's ReLU is on iff it is positive
        # One byte per cell: these are gathered per row, and memory traffic dominates here.
        phase[name] = _window_phase(index, post.shape[3], pool).to(torch.uint8).transpose(0, 1).contiguous()
    return _Frozen(on, phase, cache[f"{layer}.pre"])


def _window_phase(index: torch.Tensor, width: int, pool: int) -> torch.Tensor:
    """Where in its pooling window each maximum sits, ``row * pool + col``, from ``max_pool2d``'s
    flat ``index`` ``[..., H', W']`` into a map ``width`` wide (comparisons: integer division is slow)."""
    height_p, width_p = index.shape[-2:]
    corner = (pool * torch.arange(height_p)[:, None]) * width + pool * torch.arange(width_p)[None, :]
    offset = index - corner  # row * width + col within the window
    row = sum((offset >= j * width).long() for j in range(1, pool))
    return row * pool + (offset - row * width)


def _phase_kernel(weight: torch.Tensor, pool: int) -> torch.Tensor:
    """The kernel that undoes max-pooling and a convolution in one transposed convolution.

    A pooled cell whose maximum sits at ``(a, b)`` in its window reaches the
    convolution's input through the kernel shifted by ``(a, b)``: a patch of
    side ``span = k + pool - 1``, padded to ``steps * pool`` and indexed as
    ``(step, phase)`` per axis so that patches add up in polyphase form (see
    ``_unpool_conv_input_grad``). ``weight`` ``[C_out, C_in, k, k]`` ->
    ``[steps² * pool² * C_in, C_out * pool²]``.
    """
    c_out, c_in, k, _ = weight.shape
    steps = -(-(k + pool - 1) // pool)
    side = steps * pool
    kernel = weight.new_zeros(side, side, c_in, c_out, pool, pool)
    for a in range(pool):
        for b in range(pool):
            kernel[a : a + k, b : b + k, :, :, a, b] = weight.permute(2, 3, 1, 0)
    kernel = kernel.reshape(steps, pool, steps, pool, c_in, c_out, pool, pool).permute(0, 2, 1, 3, 4, 5, 6, 7)
    return kernel.reshape(steps * steps * pool * pool * c_in, c_out * pool * pool)


def _unpool_conv_input_grad(
    grad: torch.Tensor, phase: torch.Tensor, kernel: torch.Tensor, kernel_size: int, pool: int, in_size: int
) -> torch.Tensor:
    """Gradient at a conv layer's input from the gradient at its pooled output.

    ``grad`` and ``phase`` ``[C, R, H', W']`` (``grad`` already masked),
    ``kernel`` from ``_phase_kernel`` for a ``kernel_size`` square convolution
    whose input is ``in_size`` square; returns ``[C_in, R, in_size, in_size]``.
    Each cell's gradient goes to its phase's slot; one matrix product over all
    rows and cells turns the slots into the patch each cell sends back; the
    patches, ``pool`` apart, are added up in polyphase form. This is the
    transposed convolution of the unpooled map without building that map, as
    one large matrix product instead of one per image: several times faster
    here than scattering and ``conv_transpose2d`` or ``fold``, whose kernels
    are slow for the few channels of these networks.
    """
    channels, rows, height, width = grad.shape
    steps = -(-(kernel_size + pool - 1) // pool)
    split = grad.new_zeros(channels, pool * pool, rows, height, width)
    split.scatter_(1, phase.long().unsqueeze(1), grad.unsqueeze(1))
    patches = (kernel @ split.reshape(channels * pool * pool, -1)).reshape(
        steps, steps, pool, pool, -1, rows, height, width
    )
    # Polyphase overlap-add: input pixel (pool*i + a, pool*j + b) collects, from the cell
    # (i - s, j - t), the patch entry at offset (pool*s + a, pool*t + b). Adding whole
    # shifted blocks per (s, t) keeps the inner loops contiguous.
    c_in = patches.shape[4]
    poly = grad.new_zeros(pool, pool, c_in, rows, height + steps - 1, width + steps - 1)
    for s in range(steps):
        for t in range(steps):
            poly[:, :, :, :, s : s + height, t : t + width] += patches[s, t]
    full = poly.permute(2, 3, 4, 0, 5, 1).reshape(c_in, rows, pool * poly.shape[4], pool * poly.shape[5])
    # The patches reach at most pixel pool*H' + k - 2 < in_size: cropping or zero-padding is exact.
    out = grad.new_zeros(c_in, rows, in_size, in_size)
    fit_h, fit_w = min(in_size, full.shape[2]), min(in_size, full.shape[3])
    out[:, :, :fit_h, :fit_w] = full[:, :, :fit_h, :fit_w]
    return out


def _place_kernels(weight: torch.Tensor, units: torch.Tensor, positions: torch.Tensor, in_size: int) -> torch.Tensor:
    """Gradient at a conv layer's input for conv units (channel ``units[r]`` at ``positions[r]``):
    each unit's kernel placed at its position, ``[C_in, R, in_size, in_size]``."""
    rows = torch.arange(len(units))
    kernels = weight[units].transpose(0, 1)  # [C_in, R, k, k]
    out = weight.new_zeros(weight.shape[1], len(units), in_size, in_size)
    for dy in range(weight.shape[2]):
        for dx in range(weight.shape[3]):
            out[:, rows, positions[:, 0] + dy, positions[:, 1] + dx] = kernels[:, :, dy, dx]
    return out


def _ground_rows(
    model: MNISTNet,
    layer: str,
    frozen: _Frozen,
    kernels: dict[str, torch.Tensor],
    image_of_row: torch.Tensor,
    units: torch.Tensor,
    positions: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Ground rows ``(image_of_row[r], units[r])`` on the frozen images.

    ``kernels``: ``_phase_kernel`` of each conv layer below the target. Conv
    gradients are held channel first (``[C, R, H, W]``) so that every matrix
    product covers all rows at once. Returns ``w [R, 28, 28]``, ``b [R]``
    (float64), ``pre [R]``, ``positions [R, 2]`` (conv) or ``None``.
    """
    module = model.layer(layer)
    target = frozen.target_pre
    weight = module.weight.detach()
    if target.dim() == 4:
        maps = target[image_of_row, units]  # [R, H, W]
        side = maps.shape[2]
        if positions is None:
            where = maps.flatten(1).max(dim=1).indices  # first maximum, as activations.py
            positions = torch.stack([where // side, where % side], dim=1)
        pre = maps[torch.arange(len(units)), positions[:, 0], positions[:, 1]]
        grad = _place_kernels(weight, units, positions, side + weight.shape[2] - 1)
    else:
        pre = target[image_of_row, units]
        grad = weight[units]  # the gradient at the input of an FC unit: its weight row
    b = (module.bias.detach()[units] if module.bias is not None else torch.zeros(len(units))).double()

    names = model.layer_names
    for name in reversed(names[: names.index(layer)]):
        module = model.layer(name)
        if name in frozen.phase:
            on = frozen.on[name][:, image_of_row]
            if grad.dim() == 2:  # a flat FC input is the pooled map: channel first again
                grad = grad.reshape(len(grad), on.shape[0], on.shape[2], on.shape[3]).transpose(0, 1)
            grad = grad * on
            if module.bias is not None:
                b += (module.bias.detach() @ grad.sum(dim=(2, 3))).double()  # one bias per channel
            k = module.kernel_size[0]
            grad = _unpool_conv_input_grad(
                grad, frozen.phase[name][:, image_of_row], kernels[name], k, model.config.pool_size,
                conv_map_size(model, name) + k - 1,
            )
        else:
            grad = grad * frozen.on[name][image_of_row]
            if module.bias is not None:
                b += (grad @ module.bias.detach()).double()
            grad = grad @ module.weight.detach()
    norm = model.config.normalization
    w = grad.reshape(-1, 28, 28) / norm.std  # an MLP's [R, 784] or a CNN's [1, R, 28, 28]
    b -= norm.mean * w.flatten(1).sum(1).double()
    return w, b, pre, positions


def _floats_per_row(model: MNISTNet, layer: str) -> int:
    """Floats one row holds at the widest point of the backward pass (gradients, gathered
    masks and phases, the patches), to size chunks generously."""
    widest = 28 * 28
    for name in model.layer_names[: model.layer_names.index(layer) + 1]:
        module = model.layer(name)
        if isinstance(module, torch.nn.Conv2d):
            side = conv_map_size(model, name)
            span = (module.kernel_size[0] + model.config.pool_size - 1) ** 2
            widest = max(widest, module.out_channels * side * side, module.in_channels * span * side * side)
        else:
            widest = max(widest, module.in_features, module.out_features)
    return 4 * widest


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
    pos_out = np.empty((total, 2), np.int64) if is_conv(model, layer) else None
    rows_per_chunk = max(1, max_floats // _floats_per_row(model, layer))
    below = model.layer_names[: model.layer_names.index(layer)]
    kernels = {
        name: _phase_kernel(model.layer(name).weight.detach(), model.config.pool_size)
        for name in below
        if is_conv(model, name)
    }
    with torch.no_grad():
        for first in range(0, len(pixels), IMAGES_PER_FORWARD):
            # Rows are sorted by image, so each block of images owns one contiguous run of rows.
            lo, hi = np.searchsorted(image_of_row, [first, first + IMAGES_PER_FORWARD])
            if lo == hi:
                continue
            frozen = _freeze(model, layer, pixels[first : first + IMAGES_PER_FORWARD])
            for start in range(lo, hi, rows_per_chunk):
                part = slice(start, min(start + rows_per_chunk, hi))
                w, b, pre, pos = _ground_rows(
                    model,
                    layer,
                    frozen,
                    kernels,
                    torch.from_numpy(image_of_row[part] - first),
                    torch.from_numpy(units[part]),
                    None if positions is None else torch.from_numpy(positions[part]),
                )
                into = part if destination is None else destination[part]
                w_out[into], b_out[into], pre_out[into] = w.numpy(), b.numpy(), pre.numpy()
                if pos_out is not None:
                    pos_out[into] = pos.numpy()
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
    check_layer(model, layer)
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
    check_layer(model, layer)
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
    return Grounding(layer, units_array, w, b, pre, pos, image_index=index)
