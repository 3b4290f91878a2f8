"""Per-unit activations over a whole MNIST split, cached on disk.

A *unit* of a fully connected layer is one neuron; its activation is the
value after the layer's activation function (for the last layer, the logit:
those are the split's predictions, ``analysis.predictions``, stored once).
A unit of a conv layer is a channel, taken on each image at the position of
its maximum pre-activation (the number grounding explains); its activation
there is the activation function of that maximum (for ReLU and any other
non-decreasing function, the maximum of the activated map), and the position
is kept too, so views can show where a channel fired. Every analysis that needs "how much does unit u fire on
image i" over the dataset reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..cache import cached, is_cached
from ..data import Split, load_mnist
from ..hooks import eval_mode, forward_to, run_with_cache, safe_batch_size, to_pixels
from ..models.architectures import MNISTNet, activate
from .predictions import predictions_are_cached, split_logits


@dataclass(frozen=True)
class LayerActivations:
    """Activations of one layer's units over a split.

    ``values``: float32 ``[N, units]`` (after the activation; logits for the
    last layer; for conv layers at each channel's maximum). ``pre``: float32
    ``[N, units]`` the pre-activation (for conv layers each channel's maximum
    pre-activation, so ``values == f(pre)`` everywhere, ``f`` the layer's
    activation). ``argmax``: int32 ``[N, units, 2]``
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


def compute_layer_activations(
    model: MNISTNet, layer: str, images: np.ndarray, batch_size: int = 2048
) -> LayerActivations:
    """Activations of ``layer``'s units on ``images`` (uint8 ``[N, 28, 28]``), uncached."""
    unit_layer = model.layout[layer]
    hook = unit_layer.activation_hook
    if not unit_layer.is_conv:
        _, cache = run_with_cache(model, images, names=[f"{layer}.pre", hook], batch_size=batch_size)
        return LayerActivations(layer, cache[hook].numpy(), cache[f"{layer}.pre"].numpy())
    pre, argmax = [], []
    batch_size = safe_batch_size(model, batch_size)
    for start in range(0, len(images), batch_size):
        # Only as far as this layer: a conv layer's maps are all that is kept, and the layers after it
        # (the PyTorch example's conv2 behind conv1) would cost most of the pass.
        with torch.inference_mode(), eval_mode(model):
            maps = forward_to(model, to_pixels(images[start : start + batch_size]), unit_layer.pre_hook)
        best, where = maps.flatten(2).max(dim=2)  # first maximum among ties
        width = maps.shape[3]
        pre.append(best.numpy())
        argmax.append(torch.stack([where // width, where % width], dim=2).to(torch.int32).numpy())
    pre = np.concatenate(pre)
    values = pre if unit_layer.activation is None else activate(unit_layer.activation, torch.from_numpy(pre)).numpy()
    return LayerActivations(layer, values, pre, np.concatenate(argmax))


def _cache_key(model: MNISTNet, layer: str, split: Split) -> dict:
    # Conv entries hold the channels' maximum pre-activations since this key's "conv" field
    # was added: older entries (post-ReLU maxima only) are simply never read again.
    key = {"layer": layer, "split": split}
    return {**key, "conv": "max-pre"} if model.layout[layer].is_conv else key


def activations_are_cached(model: MNISTNet, layer: str, split: Split = "train") -> bool:
    """Whether ``layer_activations`` will read from disk (so a page can announce a first-time pass)."""
    if model.layout[layer].is_final:
        return predictions_are_cached(model, split)
    return is_cached(model, "layer_activations", _cache_key(model, layer, split))


def layer_activations(model: MNISTNet, layer: str, split: Split = "train") -> LayerActivations:
    """Activations of ``layer``'s units over the whole ``split``, cached on disk."""
    if model.layout[layer].is_final:  # the logits (a Linear layer, no activation): one copy on disk, not two
        logits = split_logits(model, split)
        return LayerActivations(layer, logits, logits)
    images = load_mnist(split).images

    def compute() -> dict[str, np.ndarray]:
        result = compute_layer_activations(model, layer, images)
        arrays = {"values": result.values, "pre": result.pre}
        if result.argmax is not None:
            arrays["argmax"] = result.argmax
        return arrays

    arrays = cached(model, "layer_activations", _cache_key(model, layer, split), compute)
    return LayerActivations(layer, arrays["values"], arrays.get("pre"), arrays.get("argmax"))
