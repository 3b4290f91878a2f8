"""Ablations and activation patching: replace some units' activations and see what changes.

``ablate(model, layer, units, method)`` replaces the chosen units' activations
(see ``analysis.patching`` for what a unit's activation is) on every evaluated
image by

* ``zero``: 0;
* ``mean``: the unit's mean activation over the reference split (training set);
* ``min``: the unit's minimum over the reference split (the "no detection"
  baseline of the EIS VII write-up; for a ReLU unit that is ever silent it is
  0, the same as ``zero``);
* ``resample``: its activation on a random reference image, one random image
  per evaluated image (seeded).

For conv layers a unit is a channel, and the mean and minimum are taken per
position of its map. ``patch_activations`` instead takes the units'
activations from a second input (a drawn digit, another test image) or one
source image per evaluated image.

Both return an ``InterventionResult``: logits before and after; its summaries
give the change in logits, the fraction of predictions changed and the
accuracy, over everything or broken down by class or by hypothesis region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..cache import cached
from ..data import Split, load_mnist
from ..errors import MechMNISTicError
from ..hooks import run_with_cache, to_pixels
from ..labels import apply_label_function
from ..models.architectures import MNISTNet
from .activations import is_conv, layer_activations
from .patching import run_patched, unit_activations
from .units import Groups, UnitSpec, compress_indices, resolve_units

ABLATION_METHODS = ("zero", "mean", "min", "resample")


class AblationError(MechMNISTicError, ValueError):
    """An ablation that cannot be run as asked."""


@dataclass(frozen=True)
class InterventionSummary:
    """What an intervention did on a set of ``count`` images.

    ``mean_logit_change``: float64 ``[n_classes]``, mean of (after - before).
    Accuracies are ``None`` when no labels were given.
    """

    name: str
    count: int
    fraction_changed: float
    accuracy_before: float | None
    accuracy_after: float | None
    mean_logit_change: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.name, "count": self.count, "fraction_changed": self.fraction_changed,
                "accuracy_before": self.accuracy_before, "accuracy_after": self.accuracy_after,
                "mean_logit_change": [float(v) for v in self.mean_logit_change]}


@dataclass(frozen=True, eq=False)
class InterventionResult:
    """Logits before and after an intervention on ``N`` images.

    ``clean_logits``, ``patched_logits``: float32 ``[N, n_classes]``;
    ``labels``: int64 ``[N]`` (the model's training labels) or ``None``.
    """

    description: str
    clean_logits: np.ndarray
    patched_logits: np.ndarray
    labels: np.ndarray | None = None

    @property
    def clean_predictions(self) -> np.ndarray:
        return self.clean_logits.argmax(axis=1)

    @property
    def patched_predictions(self) -> np.ndarray:
        return self.patched_logits.argmax(axis=1)

    @property
    def changed(self) -> np.ndarray:
        """bool ``[N]``: where the prediction changed."""
        return self.clean_predictions != self.patched_predictions

    def summary(self, mask: np.ndarray | None = None, name: str = "all") -> InterventionSummary:
        """Totals over the images where ``mask`` (bool ``[N]``, default all) holds."""
        keep = np.ones(len(self.clean_logits), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        count = int(keep.sum())
        if count == 0:
            empty = np.full(self.clean_logits.shape[1], np.nan)
            return InterventionSummary(name, 0, float("nan"), None, None, empty)
        change = (self.patched_logits[keep].astype(np.float64) - self.clean_logits[keep]).mean(axis=0)
        before = after = None
        if self.labels is not None:
            before = float((self.clean_predictions[keep] == self.labels[keep]).mean())
            after = float((self.patched_predictions[keep] == self.labels[keep]).mean())
        return InterventionSummary(name, count, float(self.changed[keep].mean()), before, after, change)

    def breakdown(self, keys: np.ndarray, names: Sequence[str]) -> list[InterventionSummary]:
        """One summary per key value ``k`` (``keys`` int ``[N]``), named ``names[k]``; then the total."""
        keys = np.asarray(keys)
        if keys.shape != (len(self.clean_logits),):
            raise AblationError(f"breakdown keys must be one per image ({len(self.clean_logits)}), got {keys.shape}")
        rows = [self.summary(keys == k, str(name)) for k, name in enumerate(names)]
        return rows + [self.summary(None, "all")]

    def by_class(self) -> list[InterventionSummary]:
        """Broken down by true class (by the clean prediction when there are no labels)."""
        keys = self.labels if self.labels is not None else self.clean_predictions
        return self.breakdown(keys, [f"class {c}" for c in range(self.clean_logits.shape[1])])


def model_labels(model: MNISTNet, split: Split) -> np.ndarray:
    """The labels ``model`` was trained on, for every image of ``split`` (its card's label function)."""
    data = load_mnist(split)
    card = getattr(model, "card", None)
    spec = card.label_function if card is not None else {"name": "digits"}
    return apply_label_function(spec, data.images, data.labels)


def unit_statistics(model: MNISTNet, layer: str, reference: Split | np.ndarray = "train") -> dict[str, np.ndarray]:
    """Per-unit ``mean`` and ``min`` of ``layer``'s activations over ``reference`` (a split or images).

    Shapes: ``[U]`` for a fully connected layer, ``[C, H, W]`` (per position)
    for a conv layer, whose maps are streamed batch by batch. Results for a
    split are cached.
    """
    if isinstance(reference, str) and not is_conv(model, layer):
        values = layer_activations(model, layer, reference).values
        return {"mean": values.mean(axis=0, dtype=np.float64).astype(np.float32), "min": values.min(axis=0)}
    images = load_mnist(reference).images if isinstance(reference, str) else reference

    def compute() -> dict[str, np.ndarray]:
        total, minimum = None, None
        for start in range(0, len(images), 2048):
            values = unit_activations(model, layer, images[start : start + 2048]).double()
            batch_sum, batch_min = values.sum(0), values.amin(0)
            total = batch_sum if total is None else total + batch_sum
            minimum = batch_min if minimum is None else torch.minimum(minimum, batch_min)
        if total is None:
            raise AblationError("the reference set has no images")
        return {"mean": (total / len(images)).float().numpy(), "min": minimum.float().numpy()}

    if isinstance(reference, str):
        return cached(model, "unit_statistics", {"layer": layer, "split": reference}, compute)
    return compute()


def _default_evaluation(model: MNISTNet, images: np.ndarray | None, labels: np.ndarray | None):
    if images is None:
        return load_mnist("test").images, model_labels(model, "test") if labels is None else labels
    return images, labels


def _replace_units(activation: torch.Tensor, units: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    patched = activation.clone()
    patched[:, units] = values.to(activation.dtype)
    return patched


def ablate(
    model: MNISTNet,
    layer: str,
    units: UnitSpec,
    method: str = "zero",
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    groups: Groups | None = None,
    reference: Split | np.ndarray = "train",
    seed: int = 0,
    batch_size: int = 2048,
) -> InterventionResult:
    """Ablate ``units`` of ``layer`` (a unit spec: indices, ranges, group names) with ``method``.

    Evaluated on ``images`` (uint8 ``[N, 28, 28]``; default the test set, with
    the model's own test labels). ``groups`` adds named groups to the layer's
    standard ones (``all``, ``dead``, ``alive``). Mean, minimum and resampled
    activations come from ``reference``: a split (default the training set) or
    images (uint8 ``[M, 28, 28]``).
    """
    if method not in ABLATION_METHODS:
        raise AblationError(f"unknown ablation {method!r}; choose one of {', '.join(ABLATION_METHODS)}")
    chosen = torch.as_tensor(resolve_units(model, layer, units, groups))
    images, labels = _default_evaluation(model, images, labels)
    clean = run_with_cache(model, images, names=[], batch_size=batch_size)[0]
    if method in ("zero", "mean", "min"):
        if method == "zero":
            constant = None
        else:
            constant = torch.as_tensor(unit_statistics(model, layer, reference)[method])[chosen]

        def patch(start: int, stop: int, activation: torch.Tensor) -> torch.Tensor:
            values = torch.zeros_like(activation[:, chosen]) if constant is None else constant.expand_as(
                activation[:, chosen])
            return _replace_units(activation, chosen, values)
    else:
        pool = load_mnist(reference).images if isinstance(reference, str) else np.asarray(reference)
        sources = np.random.default_rng(seed).integers(0, len(pool), len(to_pixels(images)))
        # A split's fully connected activations are cached; anything else is recomputed per batch.
        use_cache = isinstance(reference, str) and not is_conv(model, layer)
        cached_values = layer_activations(model, layer, reference).values if use_cache else None

        def patch(start: int, stop: int, activation: torch.Tensor) -> torch.Tensor:
            donors = sources[start:stop]
            if cached_values is not None:
                donor = torch.from_numpy(cached_values[donors][:, chosen.numpy()])
            else:
                donor = unit_activations(model, layer, pool[donors])[:, chosen]
            return _replace_units(activation, chosen, donor)

    patched = run_patched(model, images, layer, patch, batch_size)
    text = f"{method}-ablate {layer} units {_short(chosen)}" + (f" (seed {seed})" if method == "resample" else "")
    return InterventionResult(text, clean.numpy(), patched.numpy(), None if labels is None else np.asarray(labels))


def patch_activations(
    model: MNISTNet,
    layer: str,
    units: UnitSpec,
    source_images: np.ndarray,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    groups: Groups | None = None,
    batch_size: int = 2048,
) -> InterventionResult:
    """Run ``images`` with ``units`` of ``layer`` taking their activations on ``source_images``.

    ``source_images``: one image (uint8 ``[28, 28]`` or ``[1, 28, 28]``, e.g. a
    drawn digit), used for every evaluated image, or one per evaluated image
    (``[N, 28, 28]``). ``images`` default to the test set.
    """
    chosen = torch.as_tensor(resolve_units(model, layer, units, groups))
    images, labels = _default_evaluation(model, images, labels)
    targets = to_pixels(images)
    sources = to_pixels(source_images)
    if len(sources) not in (1, len(targets)):
        raise AblationError(f"give one source image or one per image ({len(targets)}), got {len(sources)}")
    single = unit_activations(model, layer, sources)[:, chosen] if len(sources) == 1 else None

    def patch(start: int, stop: int, activation: torch.Tensor) -> torch.Tensor:
        donor = single.expand_as(activation[:, chosen]) if single is not None else unit_activations(
            model, layer, sources[start:stop])[:, chosen]
        return _replace_units(activation, chosen, donor)

    clean = run_with_cache(model, targets, names=[], batch_size=batch_size)[0]
    patched = run_patched(model, targets, layer, patch, batch_size)
    text = f"patch {layer} units {_short(chosen)} from {'one source image' if single is not None else 'source images'}"
    return InterventionResult(text, clean.numpy(), patched.numpy(), None if labels is None else np.asarray(labels))


def _short(units: torch.Tensor) -> str:
    text = compress_indices(units.numpy())
    return text if len(text) <= 60 else text[:57] + "..."
