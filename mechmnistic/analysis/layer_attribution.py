"""Attribution of each class logit to the units of an earlier layer: gradient x activation.

Take an input ``x`` and a hidden layer ``L`` with output ``h`` (what the next
layer reads: after ReLU, and after max-pooling for a conv layer). Downstream
of ``L`` the network is piecewise linear in ``h``; with the downstream pattern
frozen as it is on ``x`` (which ReLUs are on, which max-pool elements win)
each logit is exactly

    logit_k(x) = Σ_u g_ku · h_u + c_k

where ``g_k = ∂logit_k/∂h`` and ``c_k`` is what the biases of the layers
above ``L`` contribute through that pattern. The attribution of unit ``u`` to
class ``k`` is ``g_ku · h_u``; the identity above always holds (tests check it
for every hidden layer of every bundled model).

The all-off baseline. Switching every unit of ``L`` off (``h = 0``) and
running the real network gives ``baseline_logits``. The attributions add up to
the logit's change from that baseline, ``Σ_u g_ku h_u = logit_k(x) -
logit_k(off)``, exactly when the baseline lies on the same linear piece as
``x``: ``completeness_gap = (logits - baseline_logits) - Σ attributions``
measures how far from that they are, and is ``c_k - logit_k(off)``. It is zero
(to float rounding) whenever switching ``L`` off leaves the downstream
pattern unchanged (``same_piece``), which is always the case for the last
hidden layer (nothing non-linear lies between it and the logits; there the
attributions are the logit effects ``W_out[k, u] · h_u``). For earlier layers
switching everything off usually changes which downstream units are on, and
the gap says by how much the attributions miss the change.

In plain words, for a page: "Each bar is gradient x activation: how much the
unit pushes this class's logit, with the later layers' on/off pattern held as
it is on this input. Together with the later layers' biases they add up
exactly to the logit. They add up to the change from switching the whole
layer off exactly when switching it off changes no later unit's on/off state
(always for the last hidden layer); otherwise the gap is shown."
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..hooks import run_with_cache, to_pixels
from ..models.architectures import MNISTNet
from .frozen import FrozenPattern, carry_back, freeze, phase_kernels
from .units import UnitError

#: Images attributed at once (each brings one row per class).
IMAGES_PER_BLOCK = 512


@dataclass(frozen=True)
class LayerAttribution:
    """Gradient x activation of ``layer``'s units for every class logit, on ``N`` images.

    A unit's shape is ``()`` for an FC layer (so arrays are ``[N, K, U]``) and
    ``(C, H', W')`` cells of the pooled map for a conv layer (``[N, K, C, H',
    W']``); ``K`` classes.

    ``activations`` ``[N, *units]``: the layer's output ``h``. ``gradients`` and
    ``attributions`` ``[N, K, *units]``: ``∂logit_k/∂h`` (downstream pattern
    frozen as on the input) and ``gradients * activations``. ``logits``,
    ``downstream_bias``, ``baseline_logits`` ``[N, K]``: the logits; what the
    biases above the layer contribute through the frozen pattern (so
    ``attributions`` summed over units plus ``downstream_bias`` is ``logits``);
    the logits with every unit of the layer switched off. ``same_piece`` bool
    ``[N]``: switching the layer off changes no downstream on/off state or
    max-pool choice that carries gradient.
    """

    layer: str
    activations: np.ndarray
    gradients: np.ndarray
    attributions: np.ndarray
    logits: np.ndarray
    downstream_bias: np.ndarray
    baseline_logits: np.ndarray
    same_piece: np.ndarray

    @property
    def per_unit(self) -> np.ndarray:
        """``[N, K, U]``: one number per unit; a conv channel's cells summed (exact: it is a sum)."""
        n, k = self.attributions.shape[:2]
        return self.attributions.reshape(n, k, self.attributions.shape[2], -1).sum(axis=3)

    @property
    def reconstruction_error(self) -> np.ndarray:
        """``[N, K]``: ``Σ attributions + downstream_bias - logits``; zero up to float32 rounding, always."""
        n, k = self.attributions.shape[:2]
        total = self.attributions.reshape(n, k, -1).sum(axis=2, dtype=np.float64)
        return total + self.downstream_bias - self.logits

    @property
    def completeness_gap(self) -> np.ndarray:
        """``[N, K]``: ``(logits - baseline_logits) - Σ attributions``, how far the attributions are
        from adding up to the change from the all-off baseline. Zero (to rounding) where ``same_piece``."""
        n, k = self.attributions.shape[:2]
        total = self.attributions.reshape(n, k, -1).sum(axis=2, dtype=np.float64)
        return (self.logits.astype(np.float64) - self.baseline_logits) - total


def _same_piece(at_input: FrozenPattern, switched_off: FrozenPattern, layers: list[str]) -> torch.Tensor:
    """Per image, whether two patterns pass gradient the same way on ``layers``."""
    same = torch.ones(at_input.target_pre.shape[0], dtype=torch.bool)
    for name in layers:
        same &= at_input.layers[name].agrees_with(switched_off.layers[name])
    return same


def layer_attribution(model: MNISTNet, images: np.ndarray | torch.Tensor, layer: str) -> LayerAttribution:
    """Attribute every class logit to the units of hidden ``layer`` on ``images``.

    ``images``: uint8 ``[N, 28, 28]`` (or one ``[28, 28]``) or floats in [0, 1].
    ``layer``: any layer but the last (its units are the logits themselves).
    """
    layout = model.layout
    if layout.check(layer).is_final:
        raise UnitError(f"{layer} produces the logits; attribute them to an earlier layer")
    last = layout.final.name
    output = layout[layer].output_hook
    pixels = to_pixels(images)
    n, k = len(pixels), model.n_classes
    above = [unit_layer.name for unit_layer in layout.hidden[layout[layer].index + 1 :]]
    kernels = phase_kernels(model, last)
    parts: dict[str, list[torch.Tensor]] = {key: [] for key in ("h", "grad", "bias", "logits", "base", "same")}
    with torch.no_grad():
        for start in range(0, n, IMAGES_PER_BLOCK):
            block = pixels[start : start + IMAGES_PER_BLOCK]
            m = len(block)
            _, cache = run_with_cache(model, block, names=[output])
            frozen = freeze(model, last, block)
            off = freeze(model, last, block, switch_off=layer)
            carried = carry_back(
                model, last, frozen, kernels, torch.arange(m).repeat_interleave(k), torch.arange(k).repeat(m),
                down_to=layer,
            )
            parts["h"].append(cache[output])
            parts["grad"].append(carried.grad.reshape(m, k, *carried.grad.shape[1:]))
            parts["bias"].append(carried.bias_term.reshape(m, k))
            parts["logits"].append(carried.pre.reshape(m, k))
            parts["base"].append(off.target_pre)
            parts["same"].append(_same_piece(frozen, off, above))
    h, grad = torch.cat(parts["h"]), torch.cat(parts["grad"])
    return LayerAttribution(
        layer,
        h.numpy(),
        grad.numpy(),
        (grad * h.unsqueeze(1)).numpy(),
        torch.cat(parts["logits"]).numpy(),
        torch.cat(parts["bias"]).numpy(),
        torch.cat(parts["base"]).numpy(),
        torch.cat(parts["same"]).numpy(),
    )
