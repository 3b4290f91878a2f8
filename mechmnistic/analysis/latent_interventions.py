"""Ablating and patching a dictionary's latents, as ``analysis.ablation`` does a layer's units.

The model runs with the dictionary spliced in *with its error term*
(``splicing.run_spliced(error=True)``), which is exactly the model when no
latent is touched; the chosen latents are then changed in every row:

* ``zero``: set to 0;
* ``mean``: set to their mean over the training set's rows;
* ``resample``: each image's row takes the latents' values on a random
  training image (seeded), as ``ablation.ablate`` resamples units;
* patching (``patch_latents``): each image takes the latents' values on one
  source image.

Only the chosen latents move; the error term and every other latent stay, so
the change in the logits is the latents' doing. A conv layer's dictionary has
a row per position: zero and mean act on every row; resampling and patching
need one row per image and take fully connected layers only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..data import load_mnist
from ..dictionaries.dictionary import Dictionary
from ..errors import MechMNISTicError
from ..hooks import to_pixels
from ..models.architectures import MNISTNet
from .ablation import InterventionResult
from .latents import latent_activations
from .predictions import model_labels
from .splicing import run_spliced

LATENT_ABLATIONS = ("zero", "mean", "resample")


class LatentInterventionError(MechMNISTicError, ValueError):
    """An ablation or patch of latents that cannot be done as asked."""


def _latents(dictionary: Dictionary, latents: Sequence[int] | np.ndarray) -> torch.Tensor:
    chosen = np.unique(np.asarray(latents, dtype=np.int64).reshape(-1))
    if chosen.size == 0:
        raise LatentInterventionError("choose at least one latent")
    if chosen.min() < 0 or chosen.max() >= dictionary.d_sae:
        raise LatentInterventionError(f"{dictionary.id} has latents 0..{dictionary.d_sae - 1}")
    return torch.from_numpy(chosen)


def _labels(model: MNISTNet, split: str) -> np.ndarray | None:
    try:
        return model_labels(model, split)
    except MechMNISTicError:  # labels unknown for an imported model
        return None


def _per_image(dictionary: Dictionary, what: str) -> None:
    if dictionary.card.is_conv:
        raise LatentInterventionError(f"{what} takes one row per image: {dictionary.id} reads a conv layer, with a "
                                      "row per position (use zero or mean)")


def ablate_latents_on_split(
    model: MNISTNet, dictionary: Dictionary, latents: Sequence[int] | np.ndarray, method: str = "zero",
    split: str = "test", seed: int = 0,
) -> InterventionResult:
    """The logits of every image of ``split`` before and after ablating ``latents`` with ``method``
    (module docstring); ``clean_logits`` are the model's own (spliced with its error term: identical)."""
    if method not in LATENT_ABLATIONS:
        raise LatentInterventionError(f"unknown ablation {method!r}; choose one of {', '.join(LATENT_ABLATIONS)}")
    chosen = _latents(dictionary, latents)
    images = load_mnist(split).images
    clean = run_spliced(model, dictionary, images, error=True)
    if method in ("zero", "mean"):
        values = torch.zeros(len(chosen))
        if method == "mean":
            values = _training_means(model, dictionary)[chosen]

        def edit(f: torch.Tensor) -> torch.Tensor:
            f = f.clone()
            f[:, chosen] = values
            return f

        patched = run_spliced(model, dictionary, images, error=True, edit=edit)
    else:
        _per_image(dictionary, "resampling")
        train = latent_activations(model, dictionary, "train").values
        donors = np.random.default_rng(seed).integers(0, len(train), size=len(images))
        patched = _with_rows(model, dictionary, images, chosen, torch.from_numpy(train[donors][:, chosen.numpy()]))
    name = f"{method}-ablate latents {chosen.tolist()[:8]}{'…' if len(chosen) > 8 else ''} of {dictionary.id}"
    return InterventionResult(name, clean.numpy(), patched.numpy(), _labels(model, split))


def patch_latents(
    model: MNISTNet, dictionary: Dictionary, latents: Sequence[int] | np.ndarray, source: np.ndarray,
    images: np.ndarray, labels: np.ndarray | None = None,
) -> InterventionResult:
    """``images`` (uint8 ``[N, 28, 28]``) with ``latents`` taking their values on ``source`` (``[28, 28]``)."""
    _per_image(dictionary, "patching")
    chosen = _latents(dictionary, latents)
    from .latents import layer_batches

    _, activation = next(layer_batches(model, dictionary.layer, to_pixels(source)[None] if np.ndim(source) == 2
                                       else to_pixels(source)))
    donor = dictionary.encode(dictionary.rows_of(activation))[0, chosen]
    clean = run_spliced(model, dictionary, images, error=True)
    patched = _with_rows(model, dictionary, images, chosen, donor.expand(len(images), -1))
    return InterventionResult(f"latents {chosen.tolist()[:8]} of {dictionary.id} patched from the source",
                              clean.numpy(), patched.numpy(), labels)


def _with_rows(model: MNISTNet, dictionary: Dictionary, images: np.ndarray, chosen: torch.Tensor,
               values: torch.Tensor) -> torch.Tensor:
    """Logits with the chosen latents of image ``i``'s row set to ``values[i]`` (one row per image)."""
    done = [0]

    def edit(f: torch.Tensor) -> torch.Tensor:  # run_spliced calls it batch by batch, in order
        start = done[0]
        done[0] += len(f)
        f = f.clone()
        f[:, chosen] = values[start : start + len(f)].to(f.dtype)
        return f

    return run_spliced(model, dictionary, images, error=True, edit=edit)


def _training_means(model: MNISTNet, dictionary: Dictionary) -> torch.Tensor:
    """Each latent's mean over the training set's rows (for a conv layer, every position of every image)."""
    if not dictionary.card.is_conv:
        return torch.from_numpy(latent_activations(model, dictionary, "train").values.mean(axis=0, dtype=np.float64)
                                .astype(np.float32))
    from .latents import layer_batches

    total, count = torch.zeros(dictionary.d_sae, dtype=torch.float64), 0
    for _, activation in layer_batches(model, dictionary.layer, load_mnist("train").images):
        latents = dictionary.encode(dictionary.rows_of(activation))
        total += latents.double().sum(0)
        count += len(latents)
    return (total / max(count, 1)).float()
