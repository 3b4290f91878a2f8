"""A network with its ReLU masks and max-pool choices frozen on given images, carried backwards by hand.

On a given input our networks are linear maps once the pattern is frozen:
which ReLUs are on and which element of each max-pool window won. This module
records that pattern with one forward pass of the model's own code
(``freeze``) and then carries gradients backwards through it for whole chunks
of (image, unit) rows at once (``carry_back``): matrix products for fully
connected layers; for a conv layer, one matrix product that undoes pooling and
the convolution together. Along the way it adds up what each bias contributes,
so that for any unit ``pre = grad · h + bias_term`` exactly, where ``h`` is the
activation it stopped at (the pixels, or a hidden layer's output).

``grounding`` (down to the pixels) and ``layer_attribution`` (down to a hidden
layer) are built on it. The choices at kinks and ties are the ones autograd
makes: a ReLU input of exactly 0 is off; a max-pool tie goes to the element
``max_pool2d`` returns as its index; a channel maximum tied between positions
is taken at the first in row-major order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..hooks import hooks
from ..models.architectures import MNISTNet
from .activations import is_conv
from .units import conv_map_size, output_hook

#: Images run forwards at once while freezing (bigger batches are slower on small machines).
FORWARD_BATCH = 512


@dataclass(frozen=True)
class FrozenPattern:
    """What the forward pass fixed on a block of ``M`` images, for the layers below the target.

    ``on``: which units pass a gradient: FC layers the ReLU mask ``pre > 0``
    (bool ``[M, units]``); conv layers, per pooled cell, whether the window's
    maximum is on (bool ``[C, M, H', W']``: channel first, then image, the
    layout the backward pass works in). ``phase``: conv layers only, where in
    its pooling window the maximum sits (uint8 ``[C, M, H', W']``, ``row *
    pool + col`` within the window). ``target_pre``: the target layer's
    pre-activation ``[M, units]`` or ``[M, C, H, W]``.
    """

    on: dict[str, torch.Tensor]
    phase: dict[str, torch.Tensor]
    target_pre: torch.Tensor


def freeze(model: MNISTNet, layer: str, pixels: torch.Tensor, switch_off: str | None = None) -> FrozenPattern:
    """The pattern below ``layer`` (and its pre-activation) on ``pixels`` ``[M, 28, 28]`` in [0, 1].

    ``switch_off``: a layer whose output (after ReLU and pooling) is replaced
    by zeros during the forward pass: the pattern of the all-off baseline.
    Hooks on the model's own forward pass keep only the pattern (a byte or a
    bit per unit), never the float maps: memory traffic is what costs here.
    """
    below = model.layer_names[: model.layer_names.index(layer)]
    pool = getattr(model.config, "pool_size", 1)
    kept: dict[str, list[torch.Tensor]] = {name: [] for name in [*below, layer]}
    phases: dict[str, list[torch.Tensor]] = {name: [] for name in below if is_conv(model, name)}

    def relu_mask(name: str):
        return lambda pre: kept[name].append(pre > 0)

    def pool_choice(name: str):
        def record(post: torch.Tensor) -> None:
            # Pooling the model's own ReLU output again gives the choices its forward makes.
            pooled, index = F.max_pool2d(post, pool, return_indices=True)
            kept[name].append(pooled > 0)  # the window's maximum is on exactly when it is positive
            phases[name].append(_window_phase(index, post.shape[3], pool).to(torch.uint8))

        return record

    fns = {f"{layer}.pre": kept[layer].append}
    for name in below:
        if name in phases:
            fns[f"{name}.post"] = pool_choice(name)
        else:
            fns[f"{name}.pre"] = relu_mask(name)
    if switch_off is not None:
        fns[output_hook(model, switch_off)] = torch.zeros_like
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), hooks(model, fns):
            for start in range(0, len(pixels), FORWARD_BATCH):
                model(pixels[start : start + FORWARD_BATCH])
    finally:
        model.train(was_training)
    # Conv patterns channel first, the layout carry_back works in.
    on = {n: torch.cat(kept[n]).transpose(0, 1).contiguous() if n in phases else torch.cat(kept[n]) for n in below}
    phase = {n: torch.cat(parts).transpose(0, 1).contiguous() for n, parts in phases.items()}
    return FrozenPattern(on, phase, torch.cat(kept[layer]))


def _window_phase(index: torch.Tensor, width: int, pool: int) -> torch.Tensor:
    """Where in its pooling window each maximum sits, ``row * pool + col``, from ``max_pool2d``'s
    flat ``index`` ``[..., H', W']`` into a map ``width`` wide (comparisons: integer division is slow)."""
    height_p, width_p = index.shape[-2:]
    corner = (pool * torch.arange(height_p)[:, None]) * width + pool * torch.arange(width_p)[None, :]
    offset = index - corner  # row * width + col within the window
    row = sum((offset >= j * width).long() for j in range(1, pool))
    return row * pool + (offset - row * width)


def phase_kernel(weight: torch.Tensor, pool: int) -> torch.Tensor:
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
    ``kernel`` from ``phase_kernel`` for a ``kernel_size`` square convolution
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
    # Interleave the phases straight into the output. The patches reach at most pixel
    # pool*H' + k - 2 < in_size, so zero-padding or cropping the polyphase grid is exact.
    grid_h, grid_w = poly.shape[4], poly.shape[5]
    side_h, side_w = max(in_size, pool * grid_h), max(in_size, pool * grid_w)
    covered = (side_h, side_w) == (pool * grid_h, pool * grid_w)
    out = grad.new_empty(c_in, rows, side_h, side_w) if covered else grad.new_zeros(c_in, rows, side_h, side_w)
    interleaved = out[:, :, : pool * grid_h, : pool * grid_w].view(c_in, rows, grid_h, pool, grid_w, pool)
    interleaved.copy_(poly.permute(2, 3, 4, 0, 5, 1))
    return out[:, :, :in_size, :in_size]


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


@dataclass(frozen=True)
class Carried:
    """Rows carried back from a unit: ``pre [R]`` its pre-activation; ``grad`` the gradient at
    where the carrying stopped (pixels ``[R, 28, 28]``, with the normalisation's ``1/std``; or a
    hidden layer's output ``[R, units]`` / ``[R, C, H', W']``); ``bias_term [R]`` (float64)
    what the biases above that point contribute (and, at the pixels, the normalisation's
    offset); ``positions [R, 2]`` where conv units were taken, else ``None``."""

    pre: torch.Tensor
    grad: torch.Tensor
    bias_term: torch.Tensor
    positions: torch.Tensor | None


def carry_back(
    model: MNISTNet,
    layer: str,
    frozen: FrozenPattern,
    kernels: dict[str, torch.Tensor],
    image_of_row: torch.Tensor,
    units: torch.Tensor,
    positions: torch.Tensor | None = None,
    down_to: str | None = None,
) -> Carried:
    """Carry rows ``(image_of_row[r], units[r])`` of ``layer`` back through the frozen pattern.

    ``frozen``: from ``freeze(model, layer, ...)`` on the images ``image_of_row``
    points into. ``kernels``: ``phase_kernels(model, layer)``. ``positions``:
    int ``[R, 2]`` for conv units, or ``None`` for each channel at its maximum.
    ``down_to``: stop at this earlier layer's output (after its ReLU and
    pooling) instead of the pixels. Conv gradients are held channel first
    (``[C, R, H, W]``) so that every matrix product covers all rows at once.
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
    stop = -1 if down_to is None else names.index(down_to)
    for name in reversed(names[stop + 1 : names.index(layer)]):
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
    if down_to is not None:
        if is_conv(model, down_to):
            shape = frozen.on[down_to].shape  # [C, M, H', W']
            if grad.dim() == 2:  # flat input of an FC layer, channel-major like the model's flatten
                grad = grad.reshape(len(grad), shape[0], shape[2], shape[3])
            else:
                grad = grad.transpose(0, 1)
        return Carried(pre, grad, b, positions)
    norm = model.config.normalization
    w = grad.reshape(-1, 28, 28) / norm.std  # an MLP's [R, 784] or a CNN's [1, R, 28, 28]
    b -= norm.mean * w.flatten(1).sum(1).double()
    return Carried(pre, w, b, positions)


def phase_kernels(model: MNISTNet, layer: str) -> dict[str, torch.Tensor]:
    """``phase_kernel`` of every conv layer below ``layer`` (computed once per call of the driver)."""
    below = model.layer_names[: model.layer_names.index(layer)]
    return {
        name: phase_kernel(model.layer(name).weight.detach(), model.config.pool_size)
        for name in below
        if is_conv(model, name)
    }


