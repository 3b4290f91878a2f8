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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..cache import cached
from ..data import Split, load_mnist
from ..errors import MechMNISTicError
from ..hooks import run_with_cache, to_pixels
from ..labels import UnknownLabelsError
from ..models.architectures import MNISTNet
from .activations import layer_activations
from .patching import logits_from_activations, replace_units, run_replacing_units, unit_activations
from .predictions import model_labels, split_logits
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


def unit_statistics(model: MNISTNet, layer: str, reference: Split | np.ndarray = "train") -> dict[str, np.ndarray]:
    """Per-unit ``mean`` and ``min`` of ``layer``'s activations over ``reference`` (a split or images).

    Shapes: ``[U]`` for a fully connected layer, ``[C, H, W]`` (per position)
    for a conv layer, whose maps are streamed batch by batch. Results for a
    split are cached.
    """
    if isinstance(reference, str) and not model.layout[layer].is_conv:
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


Images = np.ndarray | Split
#: ``donor(start, stop)`` -> the chosen units' new activations for evaluated images ``start:stop``
#: (``[stop - start, K, ...]``, or ``[K, ...]`` for the same values on every image).
Donor = Callable[[int, int], torch.Tensor]


def _evaluation(model: MNISTNet, images: Images, labels: np.ndarray | None):
    """``(images, labels, split)``; a split name brings the model's own labels (``None`` when unknown)."""
    if not isinstance(images, str):
        return images, labels, None
    if labels is None:
        try:
            labels = model_labels(model, images)
        except UnknownLabelsError:  # an imported model whose labels we were not told: no accuracy
            labels = None
    return load_mnist(images).images, labels, images


def _intervene(
    model: MNISTNet, layer: str, chosen: torch.Tensor, donor: Donor, images: Images, labels: np.ndarray | None,
    description: str, batch_size: int,
) -> InterventionResult:
    images, labels, split = _evaluation(model, images, labels)
    if split is not None and not model.layout[layer].is_conv:
        # A whole split through a fully connected layer: its activations and logits are
        # cached, so only the later layers run (the same numbers as the hooks path; tested).
        values = torch.from_numpy(layer_activations(model, layer, split).values)
        clean = split_logits(model, split)
        patched = logits_from_activations(model, layer, replace_units(values, chosen, donor(0, len(values))))
    else:
        clean = run_with_cache(model, images, names=[], batch_size=batch_size)[0].numpy()
        patched = run_replacing_units(model, images, layer, lambda start, stop: [(chosen, donor(start, stop))],
                                      batch_size)
    return InterventionResult(description, np.asarray(clean), patched.numpy(),
                              None if labels is None else np.asarray(labels))


def ablate(
    model: MNISTNet,
    layer: str,
    units: UnitSpec,
    method: str = "zero",
    images: Images = "test",
    labels: np.ndarray | None = None,
    groups: Groups | None = None,
    reference: Split | np.ndarray = "train",
    seed: int = 0,
    batch_size: int = 2048,
) -> InterventionResult:
    """Ablate ``units`` of ``layer`` (a unit spec: indices, ranges, group names) with ``method``.

    Evaluated on ``images``: a split name (default the test set, with the
    model's own labels when they are known) or uint8 ``[N, 28, 28]`` images with optional
    ``labels``. ``groups`` adds named groups to the layer's standard ones
    (``all``, ``dead``, ``alive``). Mean, minimum and resampled activations come
    from ``reference``: a split (default the training set) or images.
    """
    if method not in ABLATION_METHODS:
        raise AblationError(f"unknown ablation {method!r}; choose one of {', '.join(ABLATION_METHODS)}")
    chosen = torch.as_tensor(resolve_units(model, layer, units, groups))
    if method == "zero":
        def donor(start: int, stop: int) -> torch.Tensor:
            return torch.zeros(())
    elif method in ("mean", "min"):
        constant = torch.as_tensor(unit_statistics(model, layer, reference)[method])[chosen]

        def donor(start: int, stop: int) -> torch.Tensor:
            return constant
    else:
        pool = load_mnist(reference).images if isinstance(reference, str) else np.asarray(reference)
        count = len(load_mnist(images).images) if isinstance(images, str) else len(to_pixels(images))
        sources = np.random.default_rng(seed).integers(0, len(pool), count)
        # A split's fully connected activations are cached; anything else is computed per batch.
        use_cache = isinstance(reference, str) and not model.layout[layer].is_conv
        reference_values = layer_activations(model, layer, reference).values if use_cache else None

        def donor(start: int, stop: int) -> torch.Tensor:
            if reference_values is not None:
                return torch.from_numpy(reference_values[np.ix_(sources[start:stop], chosen.numpy())])
            return unit_activations(model, layer, pool[sources[start:stop]])[:, chosen]

    text = f"{method}-ablate {layer} units {_short(chosen)}" + (f" (seed {seed})" if method == "resample" else "")
    return _intervene(model, layer, chosen, donor, images, labels, text, batch_size)


def patch_activations(
    model: MNISTNet,
    layer: str,
    units: UnitSpec,
    source_images: np.ndarray,
    images: Images = "test",
    labels: np.ndarray | None = None,
    groups: Groups | None = None,
    batch_size: int = 2048,
) -> InterventionResult:
    """Run ``images`` with ``units`` of ``layer`` taking their activations on ``source_images``.

    ``source_images``: one image (uint8 ``[28, 28]`` or ``[1, 28, 28]``, e.g. a
    drawn digit), used for every evaluated image, or one per evaluated image
    (``[N, 28, 28]``). ``images``: a split name (default the test set) or images.
    """
    chosen = torch.as_tensor(resolve_units(model, layer, units, groups))
    sources = to_pixels(source_images)
    count = len(load_mnist(images).images) if isinstance(images, str) else len(to_pixels(images))
    if len(sources) not in (1, count):
        raise AblationError(f"give one source image or one per image ({count}), got {len(sources)}")
    single = unit_activations(model, layer, sources)[0, chosen] if len(sources) == 1 else None

    def donor(start: int, stop: int) -> torch.Tensor:
        return single if single is not None else unit_activations(model, layer, sources[start:stop])[:, chosen]

    text = f"patch {layer} units {_short(chosen)} from {'one source image' if single is not None else 'source images'}"
    return _intervene(model, layer, chosen, donor, images, labels, text, batch_size)


def _short(units: torch.Tensor) -> str:
    text = compress_indices(units.numpy())
    return text if len(text) <= 60 else text[:57] + "..."
