"""A network with its pattern frozen on given images, carried backwards by hand.

On a given input a network is a linear map once its *pattern* is frozen:
the slope of every activation at the value it took (for ReLU, which units
are on) and which element of each max-pooling window won (average pooling
and the affine layers are linear anyway). This module records that pattern
with one forward pass of the model's own code (``freeze``) and then carries
gradients backwards through it for whole chunks of (image, unit) rows at
once (``carry_back``): matrix products for fully connected layers; for a conv
layer, either one matrix product that undoes pooling and the convolution
together (stride 1 with non-overlapping max-pooling, the common case: see
``phase_kernel``) or the general route (unpool by the recorded winners or
spread an average back, multiply by the slopes, transposed convolution with
the layer's stride and padding). Along the way it adds up what each bias
contributes, so that ``grad · h + bias_term`` is the linearised unit, where
``h`` is the activation it stopped at (the pixels, or a hidden layer's output).

For piecewise-linear networks (ReLU, LeakyReLU; max or average pooling;
padding; batch normalisation folded into the layer before it) the slopes are
the activations' own ratios, so ``grad · h + bias_term == pre`` exactly. With a
smooth activation (tanh, sigmoid, ELU, GELU, SiLU) the slope is the
derivative, ``grad`` is the true gradient and the sum is the local linear
approximation (gradient x input): it differs from ``pre`` by a residual that
callers show, never hide.

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
from ..models.architectures import MNISTNet, activate
from ..models.config import Activation
from ..models.layout import UnitLayer

#: Images run forwards at once while freezing (bigger batches are slower on small machines).
FORWARD_BATCH = 512
#: Bound on the bytes a frozen pattern (and the target's pre-activations) may hold for one block of images.
PATTERN_BYTES = 64 * 2**20


#: The fused route pays only for convolutions that read few channels. Measured per call (2 threads): a conv
#: reading the 1-channel image, 8 -> 1: 25 ms fused against 130 ms general (scatter, then PyTorch's transposed
#: convolution, whose kernel is slow for one output channel); 16 <- 8: 23 ms against 10 ms; 64 <- 32 (the
#: PyTorch example's conv2): 16 ms against 6 ms.
POLYPHASE_BELOW = 8


def polyphase(layer: UnitLayer) -> bool:
    """Whether ``layer``'s backward pass takes the fused unpool-and-convolve route: a stride-1 convolution
    reading fewer than ``POLYPHASE_BELOW`` channels, followed by max-pooling in non-overlapping windows
    (stride == kernel, no padding)."""
    pool = layer.pool
    return (layer.is_conv and layer.spec.stride == 1 and layer.spec.in_channels < POLYPHASE_BELOW
            and pool is not None and pool.kind == "max" and pool.stride == pool.kernel_size and pool.padding == 0)


def derivative(spec: Activation | None, pre: torch.Tensor) -> torch.Tensor:
    """The slope of activation ``spec`` at ``pre`` (elementwise): bool for ReLU (which units are on), float
    otherwise; all ones (bool) without an activation. Autograd's choice at kinks (ReLU at 0: off)."""
    if spec is None:
        return torch.ones_like(pre, dtype=torch.bool)
    if spec.function == "relu":
        return pre > 0
    with torch.enable_grad():
        z = pre.detach().requires_grad_(True)
        (slope,) = torch.autograd.grad(activate(spec, z).sum(), z)
    return slope


@dataclass(frozen=True)
class LayerPattern:
    """What the forward pass fixed in one unit layer below the target, on ``M`` images.

    ``slope``: the activation's slope, bool (ReLU: on) or float. Fully
    connected: ``[M, U]``. Conv, fused route: per pooled cell at its window's
    winner, ``[C, M, H', W']``, with ``phase`` (uint8, same shape): where in
    its window the winner sits (``row * pool + col``). Conv, general route:
    ``[C, M, H, W]`` over the whole map, with ``index`` (int32 ``[C, M, H',
    W']``, flat into ``H x W``) the winner of each max-pooling window, or
    ``None``. Conv patterns are channel first: the layout the backward pass
    works in.
    """

    slope: torch.Tensor
    phase: torch.Tensor | None = None
    index: torch.Tensor | None = None

    def agrees_with(self, other: LayerPattern) -> torch.Tensor:
        """Per image (bool ``[M]``), whether both patterns pass gradient the same way: the same slopes and,
        where a window's winner passes any, the same winner."""
        same = self.slope == other.slope
        if self.phase is not None:
            same &= (self.slope == 0) | (self.phase == other.phase)
        if self.index is not None:
            same_index = self.index == other.index
            return _per_image(same, channel_first=True) & _per_image(same_index, channel_first=True)
        return _per_image(same, channel_first=self.slope.dim() == 4)


def _per_image(agree: torch.Tensor, channel_first: bool) -> torch.Tensor:
    if channel_first:
        agree = agree.transpose(0, 1)
    return agree.flatten(1).all(dim=1)


@dataclass(frozen=True)
class FrozenPattern:
    """The pattern below the target layer on a block of ``M`` images (``layers``: one ``LayerPattern``
    per unit layer below it) and the target layer's pre-activation ``[M, units]`` or ``[M, C, H, W]``."""

    layers: dict[str, LayerPattern]
    target_pre: torch.Tensor


def images_per_block(model: MNISTNet, layer: str) -> int:
    """How many images one frozen pattern may cover (``PATTERN_BYTES``), at least one."""
    per_image = 4 * _numel(model.layout[layer].pre_shape)
    for below in model.layout.below(layer):
        per_image += 4 * _numel(below.pre_shape if not polyphase(below) else below.output_shape)
        if below.pool is not None:
            per_image += 4 * _numel(below.output_shape)
    return max(1, PATTERN_BYTES // per_image)


def _numel(shape: tuple[int, ...]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def freeze(model: MNISTNet, layer: str, pixels: torch.Tensor, switch_off: str | None = None) -> FrozenPattern:
    """The pattern below ``layer`` (and its pre-activation) on ``pixels`` ``[M, 28, 28]`` in [0, 1].

    ``switch_off``: a layer whose output (after its activation and pooling)
    is replaced by zeros during the forward pass: the pattern of the all-off
    baseline. Hooks on the model's own forward pass keep only the pattern (a
    byte or a bit per unit for ReLU), never the float maps they do not need:
    memory traffic is what costs here.
    """
    layout = model.layout
    below = layout.below(layer)
    parts: dict[str, dict[str, list[torch.Tensor]]] = {b.name: {"slope": [], "phase": [], "index": []} for b in below}
    target: list[torch.Tensor] = []
    stash: dict[str, torch.Tensor] = {}

    def keep_and_stop(pre: torch.Tensor) -> None:
        target.append(pre)
        raise _Reached  # nothing after the target layer matters: do not run it

    fns = {layout[layer].pre_hook: keep_and_stop}
    for unit_layer in below:
        fns.update(_recorders(unit_layer, parts[unit_layer.name], stash))
    if switch_off is not None:
        fns[layout[switch_off].output_hook] = torch.zeros_like
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), hooks(model, fns):
            for start in range(0, len(pixels), FORWARD_BATCH):
                try:
                    model(pixels[start : start + FORWARD_BATCH])
                except _Reached:
                    pass
    finally:
        model.train(was_training)
    patterns = {}
    for unit_layer in below:
        kept = parts[unit_layer.name]
        joined = {key: _join(values, unit_layer.is_conv) for key, values in kept.items()}
        patterns[unit_layer.name] = LayerPattern(joined["slope"], joined["phase"], joined["index"])
    return FrozenPattern(patterns, torch.cat(target))


class _Reached(Exception):
    """Raised at the target layer's hook: the forward pass has given all it needs."""


def _join(values: list[torch.Tensor], conv: bool) -> torch.Tensor | None:
    if not values:
        return None
    joined = torch.cat(values)
    return joined.transpose(0, 1).contiguous() if conv else joined  # conv patterns channel first


def _recorders(layer: UnitLayer, kept: dict[str, list[torch.Tensor]], stash: dict[str, torch.Tensor]) -> dict:
    """Hook functions that record ``layer``'s pattern into ``kept`` (see ``LayerPattern``)."""
    pre_hook, pooled_input = layer.pre_hook, layer.post_hook or layer.pre_hook
    activation = layer.activation
    if not layer.is_conv:
        return {pre_hook: lambda pre: kept["slope"].append(derivative(activation, pre))}
    if polyphase(layer):
        k = layer.pool.kernel_size

        def winners(x: torch.Tensor) -> None:
            # Pooling the model's own map again gives the choices its forward makes.
            pooled, index = F.max_pool2d(x, k, return_indices=True)
            if activation is None:
                slope = torch.ones_like(pooled, dtype=torch.bool)
            elif activation.function == "relu":
                slope = pooled > 0  # the window's winner is on exactly when it is positive
            else:
                pre = stash.pop(pre_hook).flatten(2).gather(2, index.flatten(2)).view_as(pooled)
                slope = derivative(activation, pre)
            kept["slope"].append(slope)
            kept["phase"].append(_window_phase(index, x.shape[3], k).to(torch.uint8))

        fns = {pooled_input: winners}
        if activation is not None and activation.function != "relu":
            fns[pre_hook] = lambda pre: stash.__setitem__(pre_hook, pre)
        return fns
    fns = {pre_hook: lambda pre: kept["slope"].append(derivative(activation, pre))}
    pool = layer.pool
    if pool is not None and pool.kind == "max":
        def record_index(x: torch.Tensor) -> None:
            _, index = F.max_pool2d(x, pool.kernel_size, pool.stride, pool.padding, return_indices=True)
            kept["index"].append(index.to(torch.int32))

        if pooled_input == pre_hook:
            def both(pre: torch.Tensor) -> None:
                kept["slope"].append(derivative(activation, pre))
                record_index(pre)

            fns[pre_hook] = both
        else:
            fns[pooled_input] = record_index
    return fns


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
    """Gradient at a stride-1 conv layer's (padded) input from the gradient at its max-pooled output.

    ``grad`` and ``phase`` ``[C, R, H', W']`` (``grad`` already multiplied by
    the slopes), ``kernel`` from ``phase_kernel`` for a ``kernel_size`` square
    convolution whose (padded) input is ``in_size`` square; returns ``[C_in,
    R, in_size, in_size]``. Each cell's gradient goes to its phase's slot; one
    matrix product over all rows and cells turns the slots into the patch each
    cell sends back; the patches, ``pool`` apart, are added up in polyphase
    form. This is the transposed convolution of the unpooled map without
    building that map, as one large matrix product instead of one per image:
    several times faster here than scattering and ``conv_transpose2d`` or
    ``fold``, whose kernels are slow for the few channels of these networks.
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


def _unpool(grad: torch.Tensor, layer: UnitLayer, index: torch.Tensor | None) -> torch.Tensor:
    """Gradient before ``layer``'s pooling from the gradient after it: ``[C, R, H', W']`` -> ``[C, R, H, W]``.

    Max-pooling sends each window's gradient to its recorded winner (adding up
    where overlapping windows share one); average pooling spreads it evenly
    over the window (the padding counted, as ``nn.AvgPool2d`` does).
    """
    channels, rows, height_p, width_p = grad.shape
    side = layer.map_side
    pool = layer.pool
    if pool.kind == "max":
        out = grad.new_zeros(channels, rows, side * side)
        out.scatter_add_(2, index.flatten(2).long(), grad.flatten(2))
        return out.view(channels, rows, side, side)
    k, s, p = pool.kernel_size, pool.stride, pool.padding
    extra = side + 2 * p - ((height_p - 1) * s + k)  # the rows the pooling's floor left out: fewer than s
    box = grad.new_full((1, 1, k, k), 1.0 / (k * k))
    spread = F.conv_transpose2d(grad.reshape(channels * rows, 1, height_p, width_p), box, stride=s, padding=p,
                                output_padding=extra)
    return spread.reshape(channels, rows, side, side)


def _conv_input_grad(grad: torch.Tensor, layer: UnitLayer, weight: torch.Tensor) -> torch.Tensor:
    """Gradient at a conv layer's input from the gradient at its output: ``[C, R, H, W]`` -> ``[C_in, R, H_in,
    W_in]`` (its stride and padding; the transposed convolution)."""
    rows = grad.shape[1]
    c_in, h_in, w_in = layer.input_shape
    spec = layer.spec
    out = torch.nn.grad.conv2d_input((rows, c_in, h_in, w_in), weight, grad.transpose(0, 1), spec.stride,
                                     spec.padding)
    return out.transpose(0, 1)


def _place_kernels(
    layer: UnitLayer, weight: torch.Tensor, units: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor:
    """Gradient at a conv layer's input for its units (channel ``units[r]`` at ``positions[r]``): each unit's
    kernel placed where its window reads, ``[C_in, R, H_in, W_in]`` (padding cut off)."""
    rows = torch.arange(len(units))
    spec = layer.spec
    c_in, h_in, _ = layer.input_shape
    padded = h_in + 2 * spec.padding
    kernels = weight[units].transpose(0, 1)  # [C_in, R, k, k]
    out = weight.new_zeros(c_in, len(units), padded, padded)
    top, left = positions[:, 0] * spec.stride, positions[:, 1] * spec.stride
    for dy in range(spec.kernel_size):
        for dx in range(spec.kernel_size):
            out[:, rows, top + dy, left + dx] = kernels[:, :, dy, dx]
    p = spec.padding
    return out[:, :, p : p + h_in, p : p + h_in]


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
    ``down_to``: stop at this earlier layer's output (after its activation and
    pooling) instead of the pixels. Conv gradients are held channel first
    (``[C, R, H, W]``) so that every matrix product covers all rows at once.
    """
    layout = model.layout
    target_layer = layout[layer]
    module = model.layer(layer)
    target = frozen.target_pre
    weight = module.weight.detach()
    if target_layer.is_conv:
        maps = target[image_of_row, units]  # [R, H, W]
        side = maps.shape[2]
        if positions is None:
            where = maps.flatten(1).max(dim=1).indices  # first maximum, as activations.py
            positions = torch.stack([where // side, where % side], dim=1)
        pre = maps[torch.arange(len(units)), positions[:, 0], positions[:, 1]]
        grad = _place_kernels(target_layer, weight, units, positions)
    else:
        pre = target[image_of_row, units]
        grad = weight[units]  # the gradient at the input of an FC unit: its weight row
    b = (module.bias.detach()[units] if module.bias is not None else torch.zeros(len(units))).double()

    below = layout.below(layer)
    stop = -1 if down_to is None else layout[down_to].index
    for unit_layer in reversed(below[stop + 1 :]):
        grad, b = _back_through(model, unit_layer, frozen.layers[unit_layer.name], kernels, image_of_row, grad, b)
    if down_to is not None:
        source = layout[down_to]
        if source.is_conv:
            if grad.dim() == 2:  # flat input of an FC layer, channel-major like the model's flatten
                grad = grad.reshape(len(grad), *source.output_shape)
            else:
                grad = grad.transpose(0, 1)
        return Carried(pre, grad, b, positions)
    norm = model.config.normalization
    w = grad.reshape(-1, 28, 28) / norm.std  # an MLP's [R, 784] or a CNN's [1, R, 28, 28]
    b -= norm.mean * w.flatten(1).sum(1).double()
    return Carried(pre, w, b, positions)


def _back_through(
    model: MNISTNet,
    layer: UnitLayer,
    pattern: LayerPattern,
    kernels: dict[str, torch.Tensor],
    image_of_row: torch.Tensor,
    grad: torch.Tensor,
    b: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """From the gradient at ``layer``'s output to the gradient at its input, adding its bias's part to ``b``."""
    module = model.layer(layer.name)
    bias = module.bias.detach() if module.bias is not None else None
    if not layer.is_conv:
        grad = grad * pattern.slope[image_of_row]
        if bias is not None:
            b += (grad @ bias).double()
        return grad @ module.weight.detach(), b
    if grad.dim() == 2:  # a flat FC input is the (pooled) map: channel first again
        grad = grad.reshape(len(grad), *layer.output_shape).transpose(0, 1)
    if polyphase(layer):
        grad = grad * pattern.slope[:, image_of_row]
        if bias is not None:
            b += (bias @ grad.sum(dim=(2, 3))).double()  # one bias per channel
        spec = layer.spec
        padded = layer.input_shape[1] + 2 * spec.padding
        grad = _unpool_conv_input_grad(grad, pattern.phase[:, image_of_row], kernels[layer.name], spec.kernel_size,
                                       layer.pool.kernel_size, padded)
        p = spec.padding
        return (grad[:, :, p : padded - p, p : padded - p] if p else grad), b
    if layer.pool is not None:
        grad = _unpool(grad, layer, None if pattern.index is None else pattern.index[:, image_of_row])
    grad = grad * pattern.slope[:, image_of_row]
    if bias is not None:
        b += (bias @ grad.sum(dim=(2, 3))).double()
    return _conv_input_grad(grad, layer, module.weight.detach()), b


def phase_kernels(model: MNISTNet, layer: str) -> dict[str, torch.Tensor]:
    """``phase_kernel`` of every conv layer below ``layer`` that takes the fused route (computed once per
    call of the driver)."""
    return {
        below.name: phase_kernel(model.layer(below.name).weight.detach(), below.pool.kernel_size)
        for below in model.layout.below(layer)
        if polyphase(below)
    }
