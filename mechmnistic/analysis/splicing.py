"""Running a model with a layer's activation replaced by a dictionary's reconstruction, and the logits in latents.

Splicing (``run_spliced``): at the dictionary's hook (the layer's
``activation_hook``), each row ``x`` (an image's activation vector, or a
conv layer's channel vector at one position) becomes

* ``spliced`` (``error=False``): ``decode(f')``, the reconstruction alone;
* with the error term (``error=True``): ``decode(f') + (x - decode(f))``,
  computed as ``x + (f' - f) @ W_dec``, which is the same sum and, when the
  latents are not edited (``f' == f``), *exactly* ``x``: the model's own
  logits, bit for bit (a tested identity);

where ``f = encode(x)`` and ``f' = edit(f)`` (default: unchanged), so edits
of latents (ablating one, say) act on a model that is otherwise exact.

The logits in latents (``latent_logit_effects``): with ``h`` the layer's
activation and ``J`` the Jacobian of the logits with respect to it,

    logits = sum_j f_j (W_dec[j] . J)  +  err . J  +  b_dec . J  +  downstream

For the layer feeding the logit layer (Linear), ``J`` is the logit layer's
weight ``W_out`` and ``downstream`` its bias: each latent's effect is
``f_j * (W_dec[j] @ W_out^T)``, and the sum is exact. For a layer further
down (or a conv layer, whose rows are summed over positions), ``J`` is the
gradient through the rest of the network (``MNISTNet.run_from``) on each
input's pattern, and ``downstream = logits - J . h``: exact when every later
activation is piecewise linear (``exact``), gradient x input otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..dictionaries.dictionary import Dictionary
from ..hooks import eval_mode, forward_to, hooks, to_pixels
from ..models.architectures import MNISTNet

#: ``edit(latents)`` -> the latents to decode: float32 ``[R, d_sae]`` -> ``[R, d_sae]`` for the rows of a batch
#: (one per image, or for a conv layer one per (image, position), image-major).
Edit = Callable[[torch.Tensor], torch.Tensor]


def ablate_latents(latents: Sequence[int] | np.ndarray, value: float = 0.0) -> Edit:
    """An ``Edit`` that sets the given latents to ``value`` (default 0) in every row."""
    index = torch.as_tensor(np.asarray(latents, dtype=np.int64).reshape(-1))

    def edit(f: torch.Tensor) -> torch.Tensor:
        f = f.clone()
        f[:, index] = value
        return f

    return edit


def splice(dictionary: Dictionary, activation: torch.Tensor, error: bool = False,
           edit: Edit | None = None) -> torch.Tensor:
    """``activation`` (``[N, U]`` or ``[N, C, H, W]``) with each row replaced as the module docstring says."""
    rows = dictionary.rows_of(activation)
    latents = dictionary.encode(rows)
    edited = latents if edit is None else edit(latents)
    if error:
        new_rows = rows + (edited - latents) @ dictionary.W_dec
    else:
        new_rows = dictionary.decode(edited)
    return dictionary.layer_of(new_rows.to(activation.dtype), activation)


def run_spliced(model: MNISTNet, dictionary: Dictionary, images: np.ndarray | torch.Tensor, error: bool = False,
                edit: Edit | None = None, batch_size: int = 2048) -> torch.Tensor:
    """Logits ``[N, n_classes]`` with the dictionary's layer spliced (see the module docstring)."""
    dictionary.check_model(model)
    pixels = to_pixels(images)

    def replace(activation: torch.Tensor) -> torch.Tensor:
        return splice(dictionary, activation, error, edit)

    outputs = []
    batch_size = dictionary.images_per_batch(model, batch_size)
    with torch.inference_mode(), eval_mode(model), hooks(model, {dictionary.hook: replace}):
        for start in range(0, len(pixels), batch_size):
            outputs.append(model(pixels[start : start + batch_size]))
    return torch.cat(outputs) if outputs else torch.empty(0, model.n_classes)


# -- the logits in latents ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatentLogitEffects:
    """The logits of ``N`` images split over a dictionary's latents, its error term and biases (float64).

    ``logits`` ``[N, C]`` (the model's); ``latents`` ``[N, d_sae]`` (for a
    conv layer, summed over positions); ``effects`` ``[N, C, d_sae]``;
    ``error``, ``decoder_bias``, ``downstream`` ``[N, C]``. ``total()`` is
    their sum, equal to ``logits`` (exactly, up to float32 rounding in the
    model, when ``exact``).
    """

    logits: np.ndarray
    latents: np.ndarray
    effects: np.ndarray
    error: np.ndarray
    decoder_bias: np.ndarray
    downstream: np.ndarray
    exact: bool

    def total(self) -> np.ndarray:
        return self.effects.sum(2) + self.error + self.decoder_bias + self.downstream

    def difference(self, plus: int, minus: int) -> np.ndarray:
        """Each latent's effect on ``logit[plus] - logit[minus]``: ``[N, d_sae]``."""
        return self.effects[:, plus] - self.effects[:, minus]


def latent_logit_weights(model: MNISTNet, dictionary: Dictionary) -> np.ndarray:
    """``W_dec @ W_out^T``: float64 ``[d_sae, C]``, how a unit of each latent moves each logit, for a dictionary
    of the (Linear) layer feeding the logit layer. Raises for any other layer."""
    dictionary.check_model(model)
    feeds = model.layout.feeds_logits
    if feeds is None or feeds.name != dictionary.layer or feeds.is_conv or feeds.pool is not None:
        from ..dictionaries.dictionary import DictionaryError

        raise DictionaryError(f"{dictionary.layer} does not feed the logit layer directly; use "
                              "latent_logit_effects, which goes through the rest of the network")
    weight = model.layer(model.layout.final.name).weight.detach().double()
    return (dictionary.W_dec.double() @ weight.T).numpy()


def latent_logit_effects(model: MNISTNet, dictionary: Dictionary,
                         images: np.ndarray | torch.Tensor) -> LatentLogitEffects:
    """The logits of ``images`` split over latents (see ``LatentLogitEffects``); ``N x C x d_sae`` float64s,
    so pass tens or hundreds of images, not a whole split."""
    dictionary.check_model(model)
    pixels = to_pixels(images)
    unit_layer = model.layout[dictionary.layer]
    final = model.layer(model.layout.final.name)
    feeds = model.layout.feeds_logits
    direct = feeds is not None and feeds.name == dictionary.layer and not feeds.is_conv and feeds.pool is None
    with eval_mode(model), torch.enable_grad():
        with torch.no_grad():
            activation = forward_to(model, pixels, unit_layer.activation_hook)
            rows = dictionary.rows_of(activation)
            latents = dictionary.encode(rows)
            # In float64 throughout, so that latents, error and decoder bias add up to the rows to float64 rounding.
            error_rows = rows.double() - (latents.double() @ dictionary.W_dec.double() + dictionary.b_dec.double())
        n, n_classes = len(pixels), model.n_classes
        positions = len(rows) // max(n, 1)
        if direct:
            with torch.no_grad():
                logits = model.run_from(unit_layer.activation_hook, activation).double()
            weight = final.weight.detach().double()  # [C, U]
            bias = final.bias.detach().double() if final.bias is not None else torch.zeros(n_classes)
            grads = weight[None, :, None, :].expand(n, n_classes, 1, -1)  # [N, C, P=1, U]
            downstream = bias[None].expand(n, -1).clone()
        else:
            h = activation.detach().clone().requires_grad_(True)
            out = model.run_from(unit_layer.activation_hook, h)
            per_class = []
            for c in range(n_classes):
                (g,) = torch.autograd.grad(out[:, c].sum(), h, retain_graph=c + 1 < n_classes)
                per_class.append(dictionary.rows_of(g).reshape(n, positions, -1).double())
            grads = torch.stack(per_class, 1)  # [N, C, P, U]
            logits = out.detach().double()
            h_rows = rows.double().reshape(n, positions, -1)
            downstream = logits - torch.einsum("ncpu,npu->nc", grads, h_rows)
    f = latents.double().reshape(n, positions, -1)  # [N, P, d_sae]
    w_dec = dictionary.W_dec.double()
    # Class by class: [N, P, d_sae] at a time, not [N, C, P, d_sae].
    effects = torch.stack([(f * (grads[:, c] @ w_dec.T)).sum(1) for c in range(n_classes)], 1)
    error = torch.einsum("ncpu,npu->nc", grads, error_rows.reshape(n, positions, -1))
    decoder_bias = torch.einsum("ncpu,u->nc", grads, dictionary.b_dec.double())
    exact = bool(direct or model.layout.exact_above(dictionary.layer))
    return LatentLogitEffects(logits.numpy(), f.sum(1).numpy(), effects.numpy(), error.numpy(),
                              decoder_bias.numpy(), downstream.detach().numpy(), exact)
