"""Hidden-to-hidden connections of one unit: what it reads, what built it on an input, what it writes.

For a unit of layer ``k > 0`` the previous layer's output is what it reads.
Those *source* units are addressed the way pages link to them:

* an FC layer's output: neuron ``u`` (``positions`` is ``None``);
* a conv layer's output, i.e. its pooled map: channel ``c`` at cell
  ``(row, col)``. An FC layer reading it sees the map flattened channel-major,
  as the model's own ``flatten`` orders it: input ``c * H' * W' + row * W' + col``.

A conv unit of layer ``k > 0`` reads a ``k x k`` window of every input
channel: its sources are the kernel's cells, at absolute pooled-map positions
when the unit has a position (cells of the layer's zero padding, which read
nothing, are left out), or as offsets ``(dy, dx)`` from the window's corner
when it is a channel alone (``relative``).

On an input, ``upstream_contributions`` splits the unit's pre-activation into
``activation x weight`` per source, plus the bias, exactly: the parts sum to
the pre-activation of the forward pass (tests check it on every bundled
model). A conv unit is taken at a given position or, by default, at the
position of its maximum on that input, as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..hooks import run_with_cache, to_pixels
from ..models.architectures import MNISTNet
from ..models.layout import UnitLayer
from .units import UnitError, check_positions, check_units


@dataclass(frozen=True)
class Sources:
    """``K`` source units of ``layer``'s output: ``units`` int64 ``[K]`` (neuron or channel) and
    ``positions`` int64 ``[K, 2]`` (pooled-map cell, or kernel offset when ``relative``) or ``None``."""

    layer: str
    units: np.ndarray
    positions: np.ndarray | None = None
    relative: bool = False

    def labels(self) -> list[str]:
        """Readable names, e.g. ``layers.0 #12``, ``conv2 ch3 (1, 4)``, ``conv1 ch0 +(2, 0)``."""
        if self.positions is None:
            return [f"{self.layer} #{u}" for u in self.units]
        sign = "+" if self.relative else ""
        return [f"{self.layer} ch{u} {sign}({r}, {c})" for u, (r, c) in zip(self.units, self.positions, strict=True)]


@dataclass(frozen=True)
class Incoming:
    """A unit's weights from its sources: ``weights`` float32 ``[K]`` aligned with ``sources``."""

    layer: str
    unit: int
    sources: Sources
    weights: np.ndarray
    bias: float

    def order(self) -> np.ndarray:
        """Source indices from the most positive weight to the most negative."""
        return np.argsort(-self.weights, kind="stable")


@dataclass(frozen=True)
class Contributions:
    """What built a unit on one input: ``activations``, ``weights`` and ``contributions =
    activations * weights`` float32 ``[K]`` per source, with ``bias``; ``pre`` is the unit's
    pre-activation from the forward pass and equals ``contributions.sum() + bias``.
    ``position``: where a conv unit was taken, else ``None``."""

    layer: str
    unit: int
    sources: Sources
    activations: np.ndarray
    weights: np.ndarray
    contributions: np.ndarray
    bias: float
    pre: float
    position: tuple[int, int] | None = None

    def order(self) -> np.ndarray:
        """Source indices by how much they move the unit, largest magnitude first."""
        return np.argsort(-np.abs(self.contributions), kind="stable")

    def by_channel(self) -> tuple[np.ndarray, np.ndarray]:
        """For conv sources: ``(channels [C], summed contributions [C])``, still exact in sum."""
        if self.sources.positions is None:
            raise UnitError(f"{self.sources.layer} is fully connected: its sources are single neurons")
        channels = np.unique(self.sources.units)
        sums = np.zeros(len(channels), np.float64)
        np.add.at(sums, np.searchsorted(channels, self.sources.units), self.contributions)
        return channels, sums.astype(np.float32)


@dataclass(frozen=True)
class Outgoing:
    """A unit's weights into the next layer ``target_layer``.

    ``weights``: float32 ``[T]`` for an FC unit (one per next-layer unit);
    ``[T, H', W']`` for a conv channel read by an FC layer (its pooled cells);
    ``[T, k, k]`` for a conv channel read by a conv layer (its slice of each
    next channel's kernel). ``T`` units of ``target_layer``.
    """

    layer: str
    unit: int
    target_layer: str
    weights: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """``[T]``: each target's weights from this unit summed (what one unit of activation on
        every cell sends it)."""
        return self.weights.reshape(len(self.weights), -1).sum(axis=1)


def _previous(model: MNISTNet, layer: str) -> UnitLayer:
    source = model.layout.previous(layer)
    if source is None:
        raise UnitError(f"{layer} is the first layer: it reads pixels (see its input weights and grounding)")
    return source


def _flat_sources(source: UnitLayer) -> Sources:
    """Every unit of ``source``'s output in the order the next FC layer reads them."""
    if not source.is_conv:
        return Sources(source.name, np.arange(source.n_units, dtype=np.int64))
    channel, row, col = np.unravel_index(np.arange(int(np.prod(source.output_shape))), source.output_shape)
    return Sources(source.name, channel.astype(np.int64), np.stack([row, col], axis=1).astype(np.int64))


def _kernel_sources(
    unit_layer: UnitLayer, source: UnitLayer, position: np.ndarray | None
) -> tuple[Sources, np.ndarray]:
    """The cells a conv unit's kernel reads: channel-major, then row, then column (the weight order), with a
    mask ``[C_in * k * k]`` of those inside the source's map (all, without a position; at a position, the
    cells of the zero padding are not)."""
    spec = unit_layer.spec
    c_in, k = spec.in_channels, spec.kernel_size
    channel, dy, dx = np.unravel_index(np.arange(c_in * k * k), (c_in, k, k))
    offsets = np.stack([dy, dx], axis=1).astype(np.int64)
    if position is None:
        return Sources(source.name, channel.astype(np.int64), offsets, relative=True), np.ones(len(channel), bool)
    corner = np.asarray(position, dtype=np.int64) * spec.stride - spec.padding
    cells = offsets + corner
    side = source.output_shape[1]
    inside = np.all((cells >= 0) & (cells < side), axis=1)
    return Sources(source.name, channel[inside].astype(np.int64), cells[inside]), inside


def _one_unit(model: MNISTNet, layer: str, unit: int) -> int:
    return int(check_units(model, layer, [unit])[0])


def _one_position(model: MNISTNet, layer: str, position) -> np.ndarray | None:
    if position is None:
        return None
    return check_positions(model, layer, np.asarray(position).reshape(1, 2), 1)[0]


def incoming_weights(model: MNISTNet, layer: str, unit: int, position: tuple[int, int] | None = None) -> Incoming:
    """The weights of ``(layer, unit)`` from each unit of the previous layer's output.

    ``position``: for a conv unit, name its sources at absolute pooled-map
    cells; without it they are kernel offsets.
    """
    source = _previous(model, layer)
    unit = _one_unit(model, layer, unit)
    unit_layer = model.layout[layer]
    module = model.layer(layer)
    weights = module.weight.detach()[unit].reshape(-1).numpy().astype(np.float32)
    bias = float(module.bias.detach()[unit]) if module.bias is not None else 0.0
    if unit_layer.is_conv:
        sources, inside = _kernel_sources(unit_layer, source, _one_position(model, layer, position))
        weights = weights[inside]
    else:
        if position is not None:
            raise UnitError(f"{layer} is fully connected: its units have no positions")
        sources = _flat_sources(source)
    return Incoming(layer, unit, sources, weights, bias)


def upstream_contributions(
    model: MNISTNet, layer: str, unit: int, image: np.ndarray | torch.Tensor, position: tuple[int, int] | None = None
) -> Contributions:
    """Split ``(layer, unit)``'s pre-activation on ``image`` (``[28, 28]``) into its sources' parts.

    ``position``: for a conv unit, the ``(row, col)`` in its map; default: the
    position of the channel's maximum pre-activation on this image.
    """
    source = _previous(model, layer)
    unit = _one_unit(model, layer, unit)
    position_array = _one_position(model, layer, position)
    pixels = to_pixels(image)
    if len(pixels) != 1:
        raise UnitError(f"one image at a time, got {len(pixels)}")
    _, cache = run_with_cache(model, pixels, names=[source.output_hook, f"{layer}.pre"])
    h = cache[source.output_hook][0]  # the previous layer's output, as this layer reads it
    pre_map = cache[f"{layer}.pre"][0, unit]
    unit_layer = model.layout[layer]
    if unit_layer.is_conv:
        if position_array is None:
            where = int(pre_map.flatten().max(dim=0).indices)  # first maximum, as grounding
            position_array = np.array(divmod(where, pre_map.shape[1]), dtype=np.int64)
        r, c = (int(v) for v in position_array)
        spec = unit_layer.spec
        k, s, p = spec.kernel_size, spec.stride, spec.padding
        padded = torch.nn.functional.pad(h, (p, p, p, p)) if p else h
        _, inside = _kernel_sources(unit_layer, source, position_array)
        activations = padded[:, r * s : r * s + k, c * s : c * s + k].reshape(-1)[torch.from_numpy(inside)]
        pre = float(pre_map[r, c])
        found = (r, c)
    else:
        activations = h.reshape(-1)
        pre = float(pre_map)
        found = None
    incoming = incoming_weights(model, layer, unit, found)
    activations = activations.numpy().astype(np.float32)
    return Contributions(
        layer, unit, incoming.sources, activations, incoming.weights, activations * incoming.weights,
        incoming.bias, pre, found,
    )


def outgoing_weights(model: MNISTNet, layer: str, unit: int) -> Outgoing:
    """The weights from ``(layer, unit)`` into every unit of the next layer."""
    unit_layer = model.layout.check(layer)
    target = model.layout.next(layer)
    if target is None:
        raise UnitError(f"{layer} produces the logits: nothing reads it")
    unit = _one_unit(model, layer, unit)
    weight = model.layer(target.name).weight.detach()
    if not unit_layer.is_conv or target.is_conv:
        out = weight[:, unit]  # [T] or [T, k, k]
    else:
        out = weight.reshape(len(weight), *unit_layer.output_shape)[:, unit]  # [T, H', W']
    return Outgoing(layer, unit, target.name, out.numpy().astype(np.float32))
