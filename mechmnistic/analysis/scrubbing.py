"""Causal scrubbing: resample every unit of a layer at once, as far as a hypothesis allows.

A hypothesis (``analysis.hypothesis``) claims that the layer's units fall into
groups: ``dead`` units do nothing, and the units of a detector region ``R``
respond only to inputs in ``R``, and there only through the score. So, for
every input ``i``, each group takes its activations from one source image
(all units of a group share it, as one node of the hypothesis):

* ``dead``: any random image;
* a region-``R`` group, on an input in ``R``: a random image whose score is
  within ``tolerance x (score range)`` of the input's score (another image
  whenever one is that close; else the input itself, counted in
  ``self_fraction``);
* a region-``R`` group, on an input outside ``R``: a random image outside ``R``.

The score is the fraction of the model's predictions that survive. The
baseline resamples every group from random images. Each tolerance uses the
same seed (common random numbers), so a tolerance's result does not depend on
the others in the sweep, and Python, the CLI and the app agree.

Sampling is vectorised over sorted scores (``searchsorted``), so a sweep over
60,000 images has no per-image Python loop. For a fully connected layer the
layer's cached activations are resampled and only the later layers are run;
a conv layer's channels are resampled by running the model on the source
images batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data import Split, load_mnist
from ..errors import MechMNISTicError
from ..models.architectures import MNISTNet
from .activations import layer_activations
from .hypothesis import Hypothesis, Rule, derive_unit_groups
from .patching import logits_from_activations, run_replacing_units, unit_activations
from .predictions import predicted_classes
from .units import check_disjoint, compress_indices

DEFAULT_TOLERANCES = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1)
DEAD = "dead"
Plan = list[tuple[np.ndarray, np.ndarray]]  # (units int64 [K], source image per input int64 [N])
Progress = Callable[[int, int], None]


class ScrubError(MechMNISTicError, ValueError):
    """Groups or settings that causal scrubbing cannot use."""


def check_groups(groups: Mapping[str, np.ndarray], rule: Rule, count: int) -> dict[str, np.ndarray]:
    """Groups must be ``dead`` or regions of ``rule``, must not overlap, and must cover all ``count`` units."""
    allowed = (DEAD, *rule.region_names)
    resolved = {}
    for name, indices in groups.items():
        if name not in allowed:
            raise ScrubError(f"group {name!r} is neither 'dead' nor a region of the rule ({', '.join(allowed)})")
        resolved[name] = np.unique(np.asarray(indices, dtype=np.int64))
        if resolved[name].size and (resolved[name].min() < 0 or resolved[name].max() >= count):
            raise ScrubError(f"group {name!r} names units outside 0..{count - 1}")
    check_disjoint(resolved)
    missing = np.setdiff1d(np.arange(count), np.concatenate([np.zeros(0, np.int64), *resolved.values()]))
    if missing.size:
        raise ScrubError(f"units {compress_indices(missing)} are in no group: every unit must be 'dead' "
                         "or belong to a region")
    return resolved


class ScoreSampler:
    """Draws source images by score and region, vectorised over all inputs.

    ``scores`` float64 ``[N]``; ``regions`` int ``[N]``.
    """

    def __init__(self, scores: np.ndarray, regions: np.ndarray) -> None:
        self.scores = np.asarray(scores, dtype=np.float64)
        self.regions = np.asarray(regions)
        self.order = np.argsort(self.scores, kind="stable")
        self.sorted_scores = self.scores[self.order]
        self.rank = np.empty(len(self.scores), dtype=np.int64)
        self.rank[self.order] = np.arange(len(self.scores))
        self.score_range = float(self.sorted_scores[-1] - self.sorted_scores[0]) if len(self.scores) else 0.0
        self._outside: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.scores)

    def random(self, rng: np.random.Generator) -> np.ndarray:
        """Any image, for every input: int64 ``[N]``."""
        return rng.integers(0, len(self), len(self))

    def similar(self, rng: np.random.Generator, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
        """For every input, an image (not itself when possible) whose score is within ``tolerance`` x range.

        Returns ``(sources int64 [N], alone bool [N])``; ``alone`` marks inputs
        with no other image that close (their source is themselves).
        """
        width = tolerance * self.score_range
        first = np.searchsorted(self.sorted_scores, self.scores - width, side="left")
        stop = np.searchsorted(self.sorted_scores, self.scores + width, side="right")
        others = stop - first - 1  # the window always holds the input itself
        pick = first + np.floor(rng.random(len(self)) * np.maximum(others, 1)).astype(np.int64)
        pick += pick >= self.rank  # skip the input's own position
        alone = others == 0
        return np.where(alone, np.arange(len(self)), self.order[np.minimum(pick, len(self) - 1)]), alone

    def outside(self, rng: np.random.Generator, region: int) -> np.ndarray:
        """For every input, a random image outside ``region``: int64 ``[N]``."""
        if region not in self._outside:
            self._outside[region] = np.flatnonzero(self.regions != region)
        pool = self._outside[region]
        if pool.size == 0:
            raise ScrubError("every image is in one region: there is nothing outside it to resample from")
        return pool[rng.integers(0, len(pool), len(self))]


def resample_plan(
    sampler: ScoreSampler, groups: Mapping[str, np.ndarray], rule: Rule, tolerance: float | None,
    rng: np.random.Generator,
) -> tuple[Plan, float]:
    """Which image each group takes its activations from, for every input.

    ``tolerance=None`` gives the baseline: every group from random images.
    Returns the plan and the fraction of within-tolerance draws that had to
    use the input itself.
    """
    plan: Plan = []
    alone_count, draws = 0, 0
    for name, units in groups.items():
        if name == DEAD or tolerance is None:
            sources = sampler.random(rng)
        else:
            region = rule.region_index(name)
            inside = sampler.regions == region
            similar, alone = sampler.similar(rng, tolerance)
            sources = np.where(inside, similar, sampler.outside(rng, region))
            alone_count += int((alone & inside).sum())
            draws += int(inside.sum())
        plan.append((np.asarray(units, dtype=np.int64), sources))
    return plan, (alone_count / draws if draws else 0.0)


def scrubbed_logits(
    model: MNISTNet, layer: str, plan: Plan, images: np.ndarray | None = None, values: np.ndarray | None = None,
    batch_size: int = 2048,
) -> torch.Tensor:
    """Logits ``[N, n_classes]`` with every planned unit taking its activation on its source image.

    With ``values`` (the layer's activations on the images, float ``[N, U]``; a
    fully connected layer) the activations are gathered and only later layers
    run; otherwise the model runs on ``images`` with each group's activations
    computed on its source images.
    """
    if values is not None:
        values = np.asarray(values)
        patched = np.empty_like(values)
        for units, sources in plan:
            patched[:, units] = values[np.ix_(sources, units)]
        return logits_from_activations(model, layer, patched)
    if images is None:
        raise ScrubError("scrubbing needs the images or the layer's activations")

    def replacements(start: int, stop: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.as_tensor(units), unit_activations(model, layer, images[sources[start:stop]])[:, units])
                for units, sources in plan]

    return run_replacing_units(model, images, layer, replacements, batch_size)


@dataclass(frozen=True, eq=False)
class ScrubResult:
    """A causal-scrubbing sweep.

    ``preserved`` float64 ``[T]``: fraction of predictions unchanged at each of
    ``tolerances`` ``[T]``; ``random_baseline``: the same with every group
    resampled from random images; ``self_fraction`` ``[T]``: share of
    within-tolerance draws with no other image that close.
    """

    layer: str
    split: str
    seed: int
    n_images: int
    groups: dict[str, np.ndarray]
    tolerances: np.ndarray
    preserved: np.ndarray
    self_fraction: np.ndarray
    random_baseline: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer, "split": self.split, "seed": self.seed, "n_images": self.n_images,
            "groups": {name: idx.tolist() for name, idx in self.groups.items()},
            "sweep": [{"tolerance": float(t), "preserved": float(p), "self_fraction": float(f)}
                      for t, p, f in zip(self.tolerances, self.preserved, self.self_fraction, strict=True)],
            "random_baseline": self.random_baseline,
        }


def check_tolerances(tolerances: Sequence[float]) -> np.ndarray:
    """The tolerances as float64 ``[T]``; each must be a fraction of the score range in [0, 1]."""
    values = np.asarray(list(tolerances), dtype=np.float64)
    if values.size == 0:
        raise ScrubError("give at least one tolerance")
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise ScrubError("tolerances are fractions of the score range, between 0 and 1")
    return values


def check_seed(seed: int) -> int:
    """A random seed as NumPy takes it: a whole number in ``[0, 2**63)``."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63:
        raise ScrubError(f"the seed must be a whole number in 0..2**63-1, got {str(seed)[:24]}")
    return int(seed)


def scrub_images(
    model: MNISTNet, layer: str, scores: np.ndarray, rule: Rule, groups: Mapping[str, np.ndarray],
    predictions: np.ndarray, tolerances: Sequence[float] = DEFAULT_TOLERANCES, seed: int = 0,
    images: np.ndarray | None = None, values: np.ndarray | None = None, split: str = "images",
    progress: Progress | None = None,
) -> ScrubResult:
    """Causal scrubbing on a given set of images (``scores`` float64 ``[N]``, ``predictions`` int ``[N]``).

    Pass ``values`` (the layer's activations ``[N, U]``, fully connected
    layers) for the fast path, or ``images`` (uint8 ``[N, 28, 28]``).
    """
    sweep = check_tolerances(tolerances)
    seed = check_seed(seed)
    groups = check_groups(groups, rule, model.layout[layer].n_units)
    sampler = ScoreSampler(scores, rule.regions(scores))
    predictions = np.asarray(predictions)
    preserved, alone = [], []
    steps = len(sweep) + 1
    for step, tolerance in enumerate([*sweep.tolist(), None]):
        plan, alone_fraction = resample_plan(sampler, groups, rule, tolerance, np.random.default_rng(seed))
        logits = scrubbed_logits(model, layer, plan, images, values)
        kept = float((logits.argmax(1).numpy() == predictions).mean())
        if tolerance is None:
            baseline = kept
        else:
            preserved.append(kept)
            alone.append(alone_fraction)
        if progress is not None:
            progress(step + 1, steps)
    return ScrubResult(layer, split, seed, len(sampler), groups, sweep, np.array(preserved), np.array(alone),
                       baseline)


def derive_groups(model: MNISTNet, layer: str, hypothesis: Hypothesis, train_scores: np.ndarray | None = None,
                  detector_regions: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """``derive_unit_groups`` for ``hypothesis`` on the training set: the layer's activations there and the
    regions of the images' scores (``train_scores``, float ``[60000]``, when the caller already has them)."""
    if train_scores is None:
        train_scores = hypothesis.scores(load_mnist("train").images)
    return derive_unit_groups(layer_activations(model, layer, "train").values,
                              hypothesis.rule.regions(train_scores), hypothesis.rule, detector_regions)


def scrub(
    model: MNISTNet, layer: str, hypothesis: Hypothesis, groups: Mapping[str, np.ndarray] | None = None,
    tolerances: Sequence[float] = DEFAULT_TOLERANCES, seed: int = 0, split: Split = "train",
    detector_regions: Sequence[str] | None = None, progress: Progress | None = None,
    scores: np.ndarray | None = None,
) -> ScrubResult:
    """Causal scrubbing of ``layer`` under ``hypothesis`` on a whole MNIST split.

    ``groups`` default to ``derive_groups`` (with ``detector_regions``); the
    model's own predictions are what must survive. ``scores``: the
    hypothesis's scores of the split's images, float ``[N]``, when the caller
    holds them (computed here otherwise).
    """
    images = load_mnist(split).images
    if scores is None:
        scores = hypothesis.scores(images)
    elif len(scores) != len(images):
        raise ScrubError(f"scores has {len(scores)} values for the {len(images)} images of the {split} set")
    if groups is None:
        groups = derive_groups(model, layer, hypothesis, scores if split == "train" else None, detector_regions)
    values = None if model.layout[layer].is_conv else layer_activations(model, layer, split).values
    return scrub_images(model, layer, scores, hypothesis.rule, groups, predicted_classes(model, split),
                        tolerances, seed, images=images, values=values, split=split, progress=progress)
