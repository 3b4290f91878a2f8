"""Layers and units of a model: checked names, sizes and map shapes shared by the analyses.

A *unit* of a fully connected layer is one neuron (index into the layer's
outputs). A unit of a conv layer is a channel; where a single number per image
is needed it is the channel at one position of its map (``(row, col)``), and
"the channel" alone means the channel at the position of its maximum on that
image, as in ``mechmnistic.analysis.activations``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import MechMNISTicError
from ..models.architectures import MNISTNet
from ..models.config import CNNConfig
from .activations import is_conv


class UnitError(MechMNISTicError, ValueError):
    """A layer name, unit index or position that the model does not have."""


def check_layer(model: MNISTNet, layer: str) -> str:
    if layer not in model.layer_names:
        raise UnitError(f"no layer {layer!r} in this model; its layers are {', '.join(model.layer_names)}")
    return layer


def output_hook(model: MNISTNet, layer: str) -> str:
    """The hook holding what the next layer reads: after ReLU and, for conv layers, pooling
    (the logits for the last layer)."""
    check_layer(model, layer)
    for stage in ("pool", "post", "pre"):
        if f"{layer}.{stage}" in model.hook_names:
            return f"{layer}.{stage}"
    raise UnitError(f"no hook for {layer!r}")  # every layer has .pre; kept for type checkers


def n_units(model: MNISTNet, layer: str) -> int:
    """Neurons of a fully connected layer, channels of a conv layer."""
    module = model.layer(check_layer(model, layer))
    return module.out_channels if isinstance(module, torch.nn.Conv2d) else module.out_features


def conv_map_size(model: MNISTNet, layer: str) -> int:
    """Side of a conv layer's (square) output map before pooling, e.g. 26 for ``conv1``."""
    config = model.config
    if not isinstance(config, CNNConfig) or layer not in config.conv_names:
        raise UnitError(f"{layer!r} is not a conv layer")
    i = config.conv_names.index(layer)
    return config.feature_map_sizes()[i] - config.kernel_sizes[i] + 1


def pooled_map_size(model: MNISTNet, layer: str) -> int:
    """Side of a conv layer's map after max-pooling, e.g. 13 for ``conv1``."""
    return conv_map_size(model, layer) // model.config.pool_size


def check_units(model: MNISTNet, layer: str, units: np.ndarray | list[int] | int | None) -> np.ndarray:
    """``units`` as int64 ``[U]`` (``None``: every unit of the layer), checked against the layer's size."""
    count = n_units(model, layer)
    if units is None:
        return np.arange(count, dtype=np.int64)
    array = np.atleast_1d(np.asarray(units))
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise UnitError(f"units must be a list of integer indices, got {units!r}")
    array = array.astype(np.int64)
    bad = array[(array < 0) | (array >= count)]
    if bad.size:
        raise UnitError(f"{layer} has units 0..{count - 1}; got {bad[:5].tolist()}")
    return array


def check_positions(model: MNISTNet, layer: str, positions: np.ndarray | None, count: int) -> np.ndarray | None:
    """``positions`` (``(row, col)`` per unit) as int64 ``[count, 2]``, checked against the conv map."""
    if positions is None:
        return None
    if not is_conv(model, check_layer(model, layer)):
        raise UnitError(f"{layer} is fully connected: its units have no positions")
    array = np.asarray(positions)
    if array.shape == (2,):
        array = np.broadcast_to(array, (count, 2))
    if array.shape != (count, 2) or not np.issubdtype(array.dtype, np.integer):
        raise UnitError(f"positions must be integer (row, col) pairs, one per unit ({count}), got shape {array.shape}")
    size = conv_map_size(model, layer)
    if np.any((array < 0) | (array >= size)):
        raise UnitError(f"{layer}'s map is {size}x{size}: rows and columns run 0..{size - 1}")
    return array.astype(np.int64)
