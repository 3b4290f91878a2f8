"""Per-unit activations over a whole MNIST split, cached on disk.

A *unit* of a fully connected layer is one neuron; its activation is the
post-ReLU value (for the last layer, the logit). A unit of a conv layer is a
channel, and its activation on an image is the channel's maximum over
positions after ReLU (``argmax`` positions are kept too, so views can show
where a channel fired). Every analysis that needs "how much does unit u fire on
image i" over the dataset reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..cache import cached
from ..data import Split, load_mnist
from ..hooks import run_with_cache
from ..models.architectures import MNISTNet


@dataclass(frozen=True)
class LayerActivations:
    """Activations of one layer's units over a split.

    ``values``: float32 ``[N, units]`` (post-ReLU; logits for the last layer;
    channel maximum for conv layers). ``pre``: float32 ``[N, units]`` the
    pre-activation of FC units (``None`` for conv layers). ``argmax``: int32
    ``[N, units, 2]`` (row, col) of each conv channel's maximum, else ``None``.
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
    values, argmax = [], []
    for start in range(0, len(images), batch_size):
        _, cache = run_with_cache(model, images[start : start + batch_size], names=[hook], batch_size=batch_size)
        maps = cache[hook]  # [B, C, H, W]
        flat = maps.flatten(2)
        best, where = flat.max(dim=2)
        width = maps.shape[3]
        values.append(best.numpy())
        argmax.append(torch.stack([where // width, where % width], dim=2).to(torch.int32).numpy())
    return LayerActivations(layer, np.concatenate(values), None, np.concatenate(argmax))


def layer_activations(model: MNISTNet, layer: str, split: Split = "train") -> LayerActivations:
    """Activations of ``layer``'s units over the whole ``split``, cached on disk."""
    images = load_mnist(split).images

    def compute() -> dict[str, np.ndarray]:
        result = compute_layer_activations(model, layer, images)
        arrays = {"values": result.values}
        if result.pre is not None:
            arrays["pre"] = result.pre
        if result.argmax is not None:
            arrays["argmax"] = result.argmax
        return arrays

    arrays = cached(model, "layer_activations", {"layer": layer, "split": split}, compute)
    return LayerActivations(layer, arrays["values"], arrays.get("pre"), arrays.get("argmax"))
