"""Running a model with some of a layer's unit activations replaced.

The machinery behind ablations, activation patching and causal scrubbing. A
unit's activation is what ``analysis.activations`` calls it: the value at the
layer's activation hook (``<layer>.post``, after ReLU; ``<layer>.pre`` for the
output layer). For a fully connected layer a unit is a neuron (``[N, U]``);
for a conv layer it is a channel, and replacing it replaces the channel's
whole map (``[N, C, H, W]``).

Two ways to get the logits after a replacement, which agree exactly (tested):

* ``run_patched`` / ``run_replacing_units``: the full forward pass with a
  replacement hook (``mechmnistic.hooks.hooks``, removed on exit, always);
  works for every layer;
* ``logits_from_activations``: only the layers after a fully connected layer,
  starting from its activations (``[N, U]``), through the model's own hook
  points. Much faster when the activations are cached already (causal
  scrubbing resamples 60,000 rows many times).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..errors import MechMNISTicError
from ..hooks import hooks, run_with_cache, to_pixels
from ..models.architectures import MNISTNet

#: ``patch(start, stop, activation)`` -> the activation to use for inputs ``start:stop``.
Patch = Callable[[int, int, torch.Tensor], torch.Tensor]


def unit_activations(model: MNISTNet, layer: str, images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The layer's full activation tensor on ``images``: ``[N, U]`` or ``[N, C, H, W]`` for conv layers."""
    hook = model.layout[layer].activation_hook
    return run_with_cache(model, images, names=[hook])[1][hook]


def run_patched(
    model: MNISTNet, images: np.ndarray | torch.Tensor, layer: str, patch: Patch, batch_size: int = 2048
) -> torch.Tensor:
    """Logits ``[N, n_classes]`` with ``layer``'s activation replaced by ``patch`` batch by batch.

    ``patch`` runs inside the hook, so it must not run the model (that would
    re-enter the hook); use ``run_replacing_units`` for donors computed by the model.
    """
    hook = model.layout[layer].activation_hook
    pixels = to_pixels(images)
    window = [0, 0]

    def replace(activation: torch.Tensor) -> torch.Tensor:
        return patch(window[0], window[1], activation)

    outputs = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), hooks(model, {hook: replace}):
            for start in range(0, len(pixels), batch_size):
                batch = pixels[start : start + batch_size]
                window[:] = [start, start + len(batch)]
                outputs.append(model(batch))
    finally:
        model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, model.n_classes)


def replace_units(activation: torch.Tensor, units: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """A copy of ``activation`` (``[B, U, ...]``) whose ``units`` hold ``values`` (broadcast to ``[B, K, ...]``)."""
    patched = activation.clone()
    patched[:, units] = values.to(activation.dtype).expand_as(patched[:, units])
    return patched


#: ``replacements(start, stop)`` -> ``[(units, values), ...]`` for inputs ``start:stop``.
Replacements = Callable[[int, int], Sequence[tuple[torch.Tensor, torch.Tensor]]]


def run_replacing_units(
    model: MNISTNet, images: np.ndarray | torch.Tensor, layer: str, replacements: Replacements,
    batch_size: int = 2048,
) -> torch.Tensor:
    """Logits ``[N, n_classes]`` with groups of units taking the values ``replacements`` gives per batch.

    ``replacements`` is called before each batch's forward pass, outside any
    hook, so it may run the model itself (e.g. on source images).
    """
    pixels = to_pixels(images)
    outputs = []
    for start in range(0, len(pixels), batch_size):
        stop = min(start + batch_size, len(pixels))
        pairs = replacements(start, stop)

        def patch(_start: int, _stop: int, activation: torch.Tensor, pairs=pairs) -> torch.Tensor:
            for units, values in pairs:
                activation = replace_units(activation, units, values)
            return activation

        outputs.append(run_patched(model, pixels[start:stop], layer, patch, batch_size))
    return torch.cat(outputs) if outputs else torch.empty(0, model.n_classes)


def logits_from_activations(
    model: MNISTNet, layer: str, activations: np.ndarray | torch.Tensor, batch_size: int = 16384
) -> torch.Tensor:
    """Logits ``[N, n_classes]`` computed from a fully connected layer's activations ``[N, U]``.

    Runs only the layers after ``layer`` (``MNISTNet.run_from``), through their
    hook points, so hooks attached there still apply.
    """
    unit_layer = model.layout[layer]
    if unit_layer.is_conv:
        raise MechMNISTicError(f"{layer} is a conv layer: use run_patched, which runs the whole model")
    values = torch.as_tensor(np.asarray(activations) if not isinstance(activations, torch.Tensor) else activations)
    if unit_layer.is_final:  # the output layer itself: its activations are the logits
        return values.to(torch.float32)
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(values), batch_size):
            outputs.append(model.run_from(unit_layer.activation_hook, values[start : start + batch_size].float()))
    return torch.cat(outputs) if outputs else torch.empty(0, model.n_classes)
