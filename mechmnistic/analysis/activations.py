"""Per-unit activations over a whole MNIST split, cached on disk.

A *unit* of a fully connected layer is one neuron; its activation is the
post-ReLU value (for the last layer, the logit). A unit of a conv layer is a
channel, and its activation on an image is the channel's maximum over
positions after ReLU; its pre-activation is the maximum before ReLU (the
number grounding explains), and the position of that maximum is kept too, so
views can show where a channel fired. Every analysis that needs "how much does unit u fire on
image i" over the dataset reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..cache import cached, is_cached
from ..data import Split, load_mnist
from ..hooks import run_with_cache
from ..models.architectures import MNISTNet


@dataclass(frozen=True)
class LayerActivations:
    """Activations of one layer's units over a split.

    ``values``: float32 ``[N, units]`` (post-ReLU; logits for the last layer;
    channel maximum for conv layers). ``pre``: float32 ``[N, units]`` the
    pre-activation (for conv layers each channel's maximum pre-activation, so
    ``values == relu(pre)`` everywhere). ``argmax``: int32 ``[N, units, 2]``
    (row, col) of each conv channel's maximum pre-activation (the first in
    row-major order among ties, as grounding takes it), else ``None``.
    """

    layer: str
    values: np.ndarray
    pre: np.ndarray | None = None
    argmax: np.ndarray | None = None

    @property
    def n_units(self) -> int:
        return self.values.shape[1]


def is_conv(model: MNISTNet, layer: str) -> bool:
    return isinstance(model.layer(layer), torch.nn.Conv2d)


def activation_hook(model: MNISTNet, layer: str) -> str:
    """The hook holding a layer's unit activations (post-ReLU, or the logits)."""
    return f"{layer}.post" if f"{layer}.post" in model.hook_names else f"{layer}.pre"


def compute_layer_activations(
    model: MNISTNet, layer: str, images: np.ndarray, batch_size: int = 2048
) -> LayerActivations:
    """Activations of ``layer``'s units on ``images`` (uint8 ``[N, 28, 28]``), uncached."""
    hook = activation_hook(model, layer)
    if not is_conv(model, layer):
        _, cache = run_with_cache(model, images, names=[f"{layer}.pre", hook], batch_size=batch_size)
        return LayerActivations(layer, cache[hook].numpy(), cache[f"{layer}.pre"].numpy())
    name, pre, argmax = f"{layer}.pre", [], []
    for start in range(0, len(images), batch_size):
        _, cache = run_with_cache(model, images[start : start + batch_size], names=[name], batch_size=batch_size)
        maps = cache[name]  # [B, C, H, W]
        best, where = maps.flatten(2).max(dim=2)  # first maximum among ties
        width = maps.shape[3]
        pre.append(best.numpy())
        argmax.append(torch.stack([where // width, where % width], dim=2).to(torch.int32).numpy())
    pre = np.concatenate(pre)
    return LayerActivations(layer, np.maximum(pre, 0), pre, np.concatenate(argmax))


def _cache_key(model: MNISTNet, layer: str, split: Split) -> dict:
    # Conv entries hold the channels' maximum pre-activations since this key's "conv" field
    # was added: older entries (post-ReLU maxima only) are simply never read again.
    key = {"layer": layer, "split": split}
    return {**key, "conv": "max-pre"} if is_conv(model, layer) else key


def activations_are_cached(model: MNISTNet, layer: str, split: Split = "train") -> bool:
    """Whether ``layer_activations`` will read from disk (so a page can announce a first-time pass)."""
    return is_cached(model, "layer_activations", _cache_key(model, layer, split))


def layer_activations(model: MNISTNet, layer: str, split: Split = "train") -> LayerActivations:
    """Activations of ``layer``'s units over the whole ``split``, cached on disk."""
    images = load_mnist(split).images

    def compute() -> dict[str, np.ndarray]:
        result = compute_layer_activations(model, layer, images)
        arrays = {"values": result.values, "pre": result.pre}
        if result.argmax is not None:
            arrays["argmax"] = result.argmax
        return arrays

    arrays = cached(model, "layer_activations", _cache_key(model, layer, split), compute)
    return LayerActivations(layer, arrays["values"], arrays.get("pre"), arrays.get("argmax"))
