"""A dictionary's latents as units: their activations over a split, their bases, their pixel grounding.

A layer has several *bases* for its activations: its own units (``"neurons"``:
neurons, or channels of a conv layer) and each of its dictionaries
(``"dictionary:<id>"``). A latent is a unit of a dictionary's basis, so the
views that take a layer's units can take a dictionary's latents the same way:

* ``latent_activations(model, dictionary, split)`` is ``layer_activations``
  for latents (a ``LayerActivations`` subclass, cached on disk the same way):
  ``values`` float32 ``[N, d_sae]``, each latent's activation on each image;
  for a conv layer's dictionary, at the position where it is largest
  (``argmax`` int32 ``[N, d_sae, 2]``), as channels are taken.
* ``basis_activations(model, layer, basis, split)`` is either, by basis name.
* ``latent_effective_weights(model, dictionary, images, latent)`` grounds a
  latent in pixels as ``analysis.grounding`` grounds a unit: the gradient of
  its encoder pre-activation with respect to the pixels, ``w_eff``, with
  ``w_eff . x + b_eff`` equal to the pre-activation (exactly when every
  activation up to and including the layer is piecewise linear).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..cache import cached, is_cached
from ..data import Split, load_mnist
from ..dictionaries.dictionary import Dictionary, DictionaryNotFoundError, list_dictionaries, load_dictionary
from ..hooks import eval_mode, forward_to, safe_batch_size, to_pixels
from ..models.architectures import MNISTNet
from .activations import LayerActivations, layer_activations

NEURONS = "neurons"
_DICTIONARY = "dictionary:"


def layer_batches(model: MNISTNet, layer: str, images: np.ndarray | torch.Tensor,
                  batch_size: int = 2048) -> Iterator[tuple[int, torch.Tensor]]:
    """``(start, activation)`` for each batch of ``images``: ``layer``'s activation at its ``activation_hook``
    (``[B, U]`` or ``[B, C, H, W]``), computed only as far as that hook, in eval mode without gradients."""
    hook = model.layout.check(layer).activation_hook
    batch_size = min(batch_size, safe_batch_size(model, batch_size))
    for start in range(0, len(images), batch_size):
        with torch.inference_mode(), eval_mode(model):
            yield start, forward_to(model, to_pixels(images[start : start + batch_size]), hook)


@dataclass(frozen=True)
class LatentActivations(LayerActivations):
    """``LayerActivations`` of a dictionary's latents (``dictionary`` its id; ``pre`` is ``None``: a TopK
    latent is not a function of one pre-activation, and ``Dictionary.pre_activations`` gives them for rows)."""

    dictionary: str = ""


def compute_latent_activations(model: MNISTNet, dictionary: Dictionary, images: np.ndarray,
                               batch_size: int = 1024) -> LatentActivations:
    """Every latent's activation on every image of ``images`` (uint8 ``[N, 28, 28]``), uncached.

    For a conv layer's dictionary: each latent's largest activation over the
    positions of the map, and where (the first in row-major order among ties).
    """
    dictionary.check_model(model)
    values = np.empty((len(images), dictionary.d_sae), np.float32)
    argmax = np.empty((len(images), dictionary.d_sae, 2), np.int32) if dictionary.card.is_conv else None
    batch_size = dictionary.images_per_batch(model, batch_size)
    for start, activation in layer_batches(model, dictionary.layer, images, batch_size):
        latents = dictionary.encode(dictionary.rows_of(activation))
        stop = start + len(activation)
        if argmax is None:
            values[start:stop] = latents.numpy()
        else:
            _, _, height, width = activation.shape
            maps = latents.reshape(len(activation), height * width, -1)  # [B, positions, d_sae]
            best, where = maps.max(dim=1)
            values[start:stop] = best.numpy()
            argmax[start:stop] = torch.stack([where // width, where % width], dim=2).to(torch.int32).numpy()
    return LatentActivations(dictionary.layer, values, None, argmax, dictionary.id)


def _key(dictionary: Dictionary, split: Split) -> dict:
    return {"dictionary": dictionary.fingerprint, "layer": dictionary.layer, "split": split}


def latent_activations_are_cached(model: MNISTNet, dictionary: Dictionary, split: Split = "train") -> bool:
    """Whether ``latent_activations`` will read from disk (so a page can announce a first-time pass)."""
    return is_cached(model, "latent_activations", _key(dictionary, split))


def latent_activations(model: MNISTNet, dictionary: Dictionary, split: Split = "train") -> LatentActivations:
    """Every latent's activation over the whole ``split``, cached on disk (keyed by the model's and the
    dictionary's weights). ``values`` float32 ``[N, d_sae]`` (60,000 x 512 is 123 MB)."""
    dictionary.check_model(model)

    def compute() -> dict[str, np.ndarray]:
        result = compute_latent_activations(model, dictionary, load_mnist(split).images)
        return {"values": result.values} | ({"argmax": result.argmax} if result.argmax is not None else {})

    arrays = cached(model, "latent_activations", _key(dictionary, split), compute)
    return LatentActivations(dictionary.layer, arrays["values"], None, arrays.get("argmax"), dictionary.id)


# -- bases ------------------------------------------------------------------------------------------------


def layer_bases(model: MNISTNet, layer: str) -> list[str]:
    """The bases ``layer``'s units may be read in: ``"neurons"``, then ``"dictionary:<id>"`` for each saved
    dictionary of that layer that was trained on these weights, the first trained first (a bundled model's
    first is the one its docs discuss; pages offer it by default)."""
    from ..dictionaries.dictionary import dictionary_summaries
    from ..models.zoo import ModelNotFoundError

    model.layout.check_hidden(layer)
    if getattr(model, "card", None) is None:
        return [NEURONS]
    try:
        rows = dictionary_summaries(model, layer=layer)
    except ModelNotFoundError:  # a model held privately in a session: not in the zoo, so no dictionaries
        return [NEURONS]
    usable = sorted((row for row in rows if row.get("usable")), key=lambda row: (row.get("created") or "", row["id"]))
    return [NEURONS, *(f"{_DICTIONARY}{row['id']}" for row in usable)]


def resolve_basis(model: MNISTNet, layer: str, basis: str | Dictionary | None) -> Dictionary | None:
    """``None`` for the layer's own units (``"neurons"`` or ``None``); else the ``Dictionary`` the basis names
    (``"dictionary:<id>"`` or a bare id, or a ``Dictionary``), checked against the model and the layer."""
    model.layout.check_hidden(layer)
    if basis is None or basis == NEURONS:
        return None
    if isinstance(basis, Dictionary):
        dictionary = basis
        dictionary.check_model(model)
    else:
        dictionary_id = str(basis).removeprefix(_DICTIONARY)
        dictionary = load_dictionary(model, dictionary_id)
    if dictionary.layer != layer:
        known = ", ".join(list_dictionaries(model.card.name, layer=layer)) or "none"
        raise DictionaryNotFoundError(f"dictionary {dictionary.id} is of {dictionary.layer}, not {layer}; "
                                      f"{layer}'s: {known}")
    return dictionary


def basis_activations(model: MNISTNet, layer: str, basis: str | Dictionary | None = NEURONS,
                      split: Split = "train") -> LayerActivations:
    """``layer_activations`` for the neurons basis, ``latent_activations`` for a dictionary's."""
    dictionary = resolve_basis(model, layer, basis)
    if dictionary is None:
        return layer_activations(model, layer, split)
    return latent_activations(model, dictionary, split)


# -- grounding in pixels ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatentGrounding:
    """A latent's encoder pre-activation on each image as an affine function of the pixels.

    ``w_eff`` float32 ``[N, 28, 28]``, ``b_eff`` ``[N]``, ``pre`` ``[N]`` (its
    pre-activation ``(h - b_dec) @ W_enc[:, j] + b_enc[j]``, ``h`` the layer's
    activation; at ``positions`` ``[N, 2]`` for a conv layer, else ``None``);
    ``w_eff . x + b_eff == pre`` (``exact``: every activation up to the layer
    is piecewise linear; otherwise it is gradient x input, with a residual).
    """

    latent: int
    w_eff: np.ndarray
    b_eff: np.ndarray
    pre: np.ndarray
    positions: np.ndarray | None
    exact: bool

    def embeddings(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """Hadamard embeddings ``x * w_eff`` ``[N, 28, 28]``: they sum to ``pre - b_eff``."""
        return to_pixels(images).numpy() * self.w_eff

    def reconstruct(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        return self.embeddings(images).reshape(len(self.pre), -1).sum(1) + self.b_eff


def latent_effective_weights(model: MNISTNet, dictionary: Dictionary, images: np.ndarray | torch.Tensor,
                             latent: int, positions: np.ndarray | None = None) -> LatentGrounding:
    """Ground latent ``latent`` in pixels on each of ``images`` (see ``LatentGrounding``).

    For a conv layer's dictionary the latent is taken at ``positions``
    ``[N, 2]`` (row, col), by default where its pre-activation is largest on
    each image.
    """
    dictionary.check_model(model)
    if not 0 <= int(latent) < dictionary.d_sae:
        from ..models.layout import UnitError

        raise UnitError(f"latent {latent} is out of range: {dictionary.id} has latents 0..{dictionary.d_sae - 1}")
    unit_layer = model.layout[dictionary.layer]
    pixels = to_pixels(images).clone().requires_grad_(True)
    w_enc, b_enc = dictionary.W_enc[:, int(latent)], dictionary.b_enc[int(latent)]
    with eval_mode(model), torch.enable_grad():
        activation = forward_to(model, pixels, unit_layer.activation_hook)
        if unit_layer.is_conv:
            pre_map = torch.einsum("nchw,c->nhw", activation - dictionary.b_dec[None, :, None, None], w_enc) + b_enc
            width = pre_map.shape[2]
            if positions is None:
                where = pre_map.detach().flatten(1).argmax(1)
                positions = torch.stack([where // width, where % width], 1).numpy()
            positions = np.asarray(positions, dtype=np.int64).reshape(len(pixels), 2)
            index = torch.from_numpy(positions)
            pre = pre_map[torch.arange(len(pixels)), index[:, 0], index[:, 1]]
        else:
            positions = None
            pre = (activation - dictionary.b_dec) @ w_enc + b_enc
        (grad,) = torch.autograd.grad(pre.sum(), pixels)
    w_eff = grad.detach().numpy()
    pre_np = pre.detach().numpy()
    b_eff = pre_np - (w_eff * pixels.detach().numpy()).reshape(len(pre_np), -1).sum(1)
    own = unit_layer.activation is None or unit_layer.activation.piecewise_linear
    exact = bool(model.layout.exact_below(dictionary.layer) and own)
    return LatentGrounding(int(latent), w_eff, b_eff.astype(np.float32), pre_np, positions, exact)


# -- how cleanly units separate regions ------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionPurity:
    """How much of each unit's firing falls in one region of a rule.

    ``mass`` float64 ``[R, U]``: each unit's summed activation over the
    images of each region; ``purity`` ``[U]``: the largest region's share
    of the unit's total (NaN for a unit that never fires); ``region`` int
    ``[U]``: that region.
    """

    mass: np.ndarray
    purity: np.ndarray
    region: np.ndarray

    @property
    def alive(self) -> np.ndarray:
        return self.mass.sum(0) > 0

    def weighted_purity(self) -> float:
        """The share of all firing (over all live units) that falls in each unit's own region."""
        total = self.mass.sum()
        return float(self.mass.max(0).sum() / total) if total > 0 else float("nan")

    def count_pure(self, threshold: float = 0.95) -> int:
        return int(np.sum(self.purity[self.alive] >= threshold))


def region_purity(values: np.ndarray, regions: np.ndarray, n_regions: int) -> RegionPurity:
    """``RegionPurity`` of activations ``values`` ``[N, U]`` (non-negative: ReLU units or latents) over images
    labelled with ``regions`` int ``[N]`` in ``0..n_regions-1``."""
    values = np.asarray(values)
    mass = np.zeros((n_regions, values.shape[1]))
    for index in range(n_regions):
        here = regions == index
        if here.any():
            mass[index] = np.clip(values[here], 0, None).sum(0, dtype=np.float64)
    total = mass.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        purity = np.where(total > 0, mass.max(0) / total, np.nan)
    return RegionPurity(mass, purity, mass.argmax(0))


def cross_talk(purity: RegionPurity, groups: dict[str, np.ndarray], first: tuple[str, int],
               second: tuple[str, int]) -> float:
    """How much two detector groups fire on each other's region: of the firing mass that the units of
    ``groups[first[0]]`` and ``groups[second[0]]`` put on regions ``first[1]`` and ``second[1]`` together, the
    share that lands on the *other* group's region (0: perfectly separated detectors)."""
    a, b = np.asarray(groups[first[0]]), np.asarray(groups[second[0]])
    mass = purity.mass
    both = mass[first[1], a].sum() + mass[second[1], a].sum() + mass[first[1], b].sum() + mass[second[1], b].sum()
    crossed = mass[second[1], a].sum() + mass[first[1], b].sum()
    return float(crossed / both) if both > 0 else float("nan")


def units_needed(attributions: np.ndarray, share: float = 0.9) -> np.ndarray:
    """For each row of ``attributions`` ``[N, U]`` (one unit's or latent's contribution to a logit, per image), the
    fewest units whose absolute contributions make up ``share`` of the row's total: int64 ``[N]``."""
    ordered = np.sort(np.abs(np.asarray(attributions, dtype=np.float64)), axis=1)[:, ::-1]
    running = np.cumsum(ordered, axis=1)
    return ((running < share * running[:, -1:]).sum(axis=1) + 1).astype(np.int64)
