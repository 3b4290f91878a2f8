"""Hypotheses: a scalar feature of the input plus a rule that turns it into labels.

The feature is the template similarity ``s(x) = sum(x * (t - c))`` (``x`` and
the template ``t`` in [0, 1], ``c`` a constant, default 0.5; see
``analysis.templates``). The rule is a threshold (one label below, another
above) or a band (one label inside ``(low, high)``, another outside), with its
thresholds typed in or fitted: ``BandFit`` / ``ThresholdFit`` find, by an exact
search over the sorted scores (not a grid), the thresholds that agree most
often with given labels, usually the model's own predictions.

Regions: a rule splits the score axis into named regions, ``below``/``above``
for a threshold and ``below``/``inside``/``above`` for a band (``s <= low`` is
below, ``low < s < high`` inside, ``s >= high`` above; ``s <= t`` is below a
threshold ``t``). Each region predicts one label; a label of ``None`` means
"any class but the rule's other label", so a binary rule can be checked
against a ten-class model.

Unit groups (``derive_unit_groups``): units that never fire on the training
set are ``dead``; every other unit is assigned to the *detector region* where
its mean activation is highest. For a band the detector regions are, by
default, the two outside the band (the EIS VII write-up's "1" and "anti-1"
detectors; the inside class is "everything else" and has no detectors).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..data import Split, load_mnist
from ..errors import MechMNISTicError
from ..labels import template_similarity
from ..models.architectures import MNISTNet
from .predictions import predicted_classes
from .templates import Template
from .units import dead_units

Label = int | None
SCORE_CHUNK = 8192


class HypothesisError(MechMNISTicError, ValueError):
    """A rule or hypothesis that cannot be used as given (e.g. a band whose low is above its high)."""


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise HypothesisError(f"{name} must be a finite number, got {value}")
    return value


def _check_labels(a: Label, b: Label) -> None:
    if a is None and b is None:
        raise HypothesisError("at most one side of a rule can be 'any other class'")
    for label in (a, b):
        if label is not None and (not isinstance(label, int | np.integer) or label < 0):
            raise HypothesisError(f"rule labels must be class numbers (or None for 'any other class'), got {label!r}")
    if a == b:
        raise HypothesisError(f"both sides of the rule predict class {a}; give two different labels")


def label_matches(predictions: np.ndarray, label: Label, other: Label) -> np.ndarray:
    """bool ``[N]``: whether each prediction is ``label`` (or, for ``None``, anything but ``other``)."""
    predictions = np.asarray(predictions)
    return predictions != other if label is None else predictions == label


class _Rule:
    """What every rule offers: regions of the score axis, one label per region."""

    kind: ClassVar[str]
    region_names: ClassVar[tuple[str, ...]]
    default_detector_regions: ClassVar[tuple[str, ...]]

    @property
    def region_labels(self) -> tuple[Label, ...]:
        raise NotImplementedError

    def regions(self, scores: np.ndarray) -> np.ndarray:
        """Region index per score, int8 ``[N]`` (into ``region_names``)."""
        raise NotImplementedError

    def agrees(self, scores: np.ndarray, predictions: np.ndarray) -> np.ndarray:
        """bool ``[N]``: where the rule's label matches ``predictions``."""
        regions = self.regions(scores)
        labels = self.region_labels
        explicit = [label for label in labels if label is not None]
        result = np.zeros(len(regions), dtype=bool)
        for index, label in enumerate(labels):
            here = regions == index
            other = explicit[0] if label is None else None
            result[here] = label_matches(np.asarray(predictions)[here], label, other)
        return result

    def region_index(self, name: str) -> int:
        if name not in self.region_names:
            raise HypothesisError(f"unknown region {name!r}; this rule's regions are {', '.join(self.region_names)}")
        return self.region_names.index(name)


def _label_text(label: Label) -> str:
    return "any other class" if label is None else f"class {label}"


@dataclass(frozen=True)
class BandRule(_Rule):
    """``inside_label`` where ``low < s < high``, else ``outside_label``."""

    low: float
    high: float
    inside_label: Label = 0
    outside_label: Label = 1
    kind: ClassVar[str] = "band"
    region_names: ClassVar[tuple[str, ...]] = ("below", "inside", "above")
    default_detector_regions: ClassVar[tuple[str, ...]] = ("below", "above")

    def __post_init__(self) -> None:
        low, high = _finite("band low", self.low), _finite("band high", self.high)
        if low > high:
            raise HypothesisError(f"band low ({low:g}) is above band high ({high:g}); swap them")
        _check_labels(self.inside_label, self.outside_label)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def region_labels(self) -> tuple[Label, ...]:
        return (self.outside_label, self.inside_label, self.outside_label)

    def regions(self, scores: np.ndarray) -> np.ndarray:
        s = np.asarray(scores)
        return np.where(s <= self.low, 0, np.where(s < self.high, 1, 2)).astype(np.int8)

    @property
    def thresholds(self) -> tuple[float, ...]:
        return (self.low, self.high)

    def describe(self) -> str:
        return (f"{_label_text(self.inside_label)} when {self.low:.4g} < s < {self.high:.4g}, "
                f"else {_label_text(self.outside_label)}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "low": self.low, "high": self.high,
                "inside_label": self.inside_label, "outside_label": self.outside_label}


@dataclass(frozen=True)
class ThresholdRule(_Rule):
    """``below_label`` where ``s <= threshold``, else ``above_label``."""

    threshold: float
    below_label: Label = 0
    above_label: Label = 1
    kind: ClassVar[str] = "threshold"
    region_names: ClassVar[tuple[str, ...]] = ("below", "above")
    default_detector_regions: ClassVar[tuple[str, ...]] = ("below", "above")

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", _finite("threshold", self.threshold))
        _check_labels(self.below_label, self.above_label)

    @property
    def region_labels(self) -> tuple[Label, ...]:
        return (self.below_label, self.above_label)

    def regions(self, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores) > self.threshold).astype(np.int8)

    @property
    def thresholds(self) -> tuple[float, ...]:
        return (self.threshold,)

    def describe(self) -> str:
        return (f"{_label_text(self.below_label)} when s <= {self.threshold:.4g}, "
                f"else {_label_text(self.above_label)}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "threshold": self.threshold,
                "below_label": self.below_label, "above_label": self.above_label}


Rule = BandRule | ThresholdRule


# -- fitting thresholds (exact) ------------------------------------------------------


def _sorted_gains(scores: np.ndarray, good_a: np.ndarray, good_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct sorted scores ``[K]`` and, per distinct score, (#agreeing if labelled a) - (# if b)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or len(scores) == 0:
        raise HypothesisError("fitting needs a non-empty 1-D array of scores")
    if not np.isfinite(scores).all():
        raise HypothesisError("scores must be finite")
    values, inverse = np.unique(scores, return_inverse=True)
    gains = np.bincount(inverse, weights=good_a.astype(np.float64) - good_b, minlength=len(values))
    return values, gains


def _midpoint(values: np.ndarray, k: int) -> float:
    return float(values[k - 1] + (values[k] - values[k - 1]) / 2)


def _cut_at_or_above(values: np.ndarray, k: int) -> float:
    """A threshold ``t`` with ``values[k-1] <= t < values[k]``: ``s <= t`` keeps the first ``k`` distinct scores.

    Midway between the two where floats allow; beyond the data at the ends.
    """
    if k <= 0:
        return float(np.nextafter(values[0], -np.inf))
    if k >= len(values):
        return float(values[-1])
    middle = _midpoint(values, k)
    return middle if middle < values[k] else float(values[k - 1])


def _cut_below(values: np.ndarray, k: int) -> float:
    """A threshold ``t`` with ``values[k-1] < t <= values[k]``: ``s < t`` keeps the first ``k`` distinct scores."""
    if k >= len(values):
        return float(np.nextafter(values[-1], np.inf))
    if k <= 0:
        return float(values[0])
    middle = _midpoint(values, k)
    return middle if middle > values[k - 1] else float(values[k])


def _check_pairs(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != np.shape(scores):
        raise HypothesisError(f"{np.shape(scores)} scores but {labels.shape} labels")
    return labels


class BandFit:
    """Fit a band's thresholds to agree as often as possible with ``labels`` (scikit-learn style).

    Exact: with the scores sorted, the band is a contiguous run; its agreement
    is the count of ``outside_label`` agreements plus the run's sum of per-score
    gains, maximised by a maximum-subarray search in O(N log N). Thresholds are
    placed midway between neighbouring distinct scores.

    Learned: ``low_``, ``high_``, ``agreement_`` (on the fitting data), ``rule_``.
    """

    def __init__(self, inside_label: Label = 0, outside_label: Label = 1) -> None:
        self.inside_label = inside_label
        self.outside_label = outside_label

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> BandFit:
        _check_labels(self.inside_label, self.outside_label)
        labels = _check_pairs(scores, labels)
        good_in = label_matches(labels, self.inside_label, self.outside_label)
        good_out = label_matches(labels, self.outside_label, self.inside_label)
        values, gains = _sorted_gains(scores, good_in, good_out)
        prefix = np.concatenate([[0.0], np.cumsum(gains)])
        best_end = int(np.argmax(prefix - np.minimum.accumulate(prefix)))
        best_start = int(np.argmin(prefix[: best_end + 1]))
        if best_start == best_end:  # no run helps: an empty band below every score
            self.low_ = self.high_ = _cut_at_or_above(values, 0)
        else:
            # Below is s <= low, inside is low < s < high.
            self.low_ = _cut_at_or_above(values, best_start)
            self.high_ = _cut_below(values, best_end)
        self.rule_ = BandRule(self.low_, self.high_, self.inside_label, self.outside_label)
        self.agreement_ = float(self.rule_.agrees(scores, labels).mean())
        return self

    def predict_agreement(self, scores: np.ndarray, labels: np.ndarray) -> float:
        return float(self.rule_.agrees(scores, labels).mean())


class ThresholdFit:
    """Fit a threshold to agree as often as possible with ``labels`` (exact, scikit-learn style).

    Learned: ``threshold_``, ``agreement_`` (on the fitting data), ``rule_``.
    """

    def __init__(self, below_label: Label = 0, above_label: Label = 1) -> None:
        self.below_label = below_label
        self.above_label = above_label

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> ThresholdFit:
        _check_labels(self.below_label, self.above_label)
        labels = _check_pairs(scores, labels)
        good_below = label_matches(labels, self.below_label, self.above_label)
        good_above = label_matches(labels, self.above_label, self.below_label)
        values, gains = _sorted_gains(scores, good_below, good_above)
        # Agreement with the first k distinct scores below the cut, up to a constant.
        best_cut = int(np.argmax(np.concatenate([[0.0], np.cumsum(gains)])))
        self.threshold_ = _cut_at_or_above(values, best_cut)
        self.rule_ = ThresholdRule(self.threshold_, self.below_label, self.above_label)
        self.agreement_ = float(self.rule_.agrees(scores, labels).mean())
        return self


def fit_rule(kind: str, scores: np.ndarray, labels: np.ndarray, rule_labels: tuple[Label, Label] = (0, 1)) -> Rule:
    """A ``"band"`` or ``"threshold"`` rule fitted to ``labels``.

    ``rule_labels``: (inside, outside) for a band, (below, above) for a threshold.
    """
    if kind == "band":
        return BandFit(*rule_labels).fit(scores, labels).rule_
    if kind == "threshold":
        return ThresholdFit(*rule_labels).fit(scores, labels).rule_
    raise HypothesisError(f"unknown rule kind {kind!r}; choose 'band' or 'threshold'")


# -- a hypothesis and what it says about a dataset ---------------------------------------


def image_scores(images: np.ndarray, template: np.ndarray, center: float = 0.5) -> np.ndarray:
    """``s(x)`` for uint8 ``[N, 28, 28]`` images (or floats in [0, 1]): float64 ``[N]``, in chunks.

    Pixels are converted exactly as ``labels.apply_label_function`` converts
    them, so a hypothesis that equals a model's labelling function reproduces
    its labels.
    """
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    out = np.empty(len(images), dtype=np.float64)
    for start in range(0, len(images), SCORE_CHUNK):
        chunk = images[start : start + SCORE_CHUNK]
        pixels = chunk.astype(np.float32) / 255.0 if chunk.dtype == np.uint8 else chunk
        out[start : start + len(chunk)] = template_similarity(pixels, template, center)
    return out


@dataclass(frozen=True, eq=False)
class Hypothesis:
    """A template-similarity feature and a rule: everything needed to label an image."""

    template: Template
    rule: Rule
    center: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _finite("center", self.center))

    def scores(self, images: np.ndarray) -> np.ndarray:
        """``s(x)`` per image, float64 ``[N]``."""
        return image_scores(images, self.template.image, self.center)

    def describe(self) -> str:
        return f"s(x) = sum(x * (t - {self.center:g})), t = {self.template.label}; {self.rule.describe()}"

    def to_dict(self) -> dict[str, Any]:
        return {"template": self.template.source, "inverted": self.template.inverted,
                "center": self.center, "rule": self.rule.to_dict()}


@dataclass(frozen=True, eq=False)
class HypothesisCheck:
    """A hypothesis against a model on one split.

    ``scores`` float64 ``[N]``; ``predictions`` int64 ``[N]`` (the model's);
    ``regions`` int8 ``[N]`` (into ``region_names``); ``agrees`` bool ``[N]``.
    """

    split: str
    scores: np.ndarray
    predictions: np.ndarray
    regions: np.ndarray
    agrees: np.ndarray
    region_names: tuple[str, ...]

    @property
    def agreement(self) -> float:
        """Fraction of images where the rule's label is the model's prediction."""
        return float(self.agrees.mean())

    def region_counts(self) -> dict[str, int]:
        counts = np.bincount(self.regions, minlength=len(self.region_names))
        return {name: int(n) for name, n in zip(self.region_names, counts, strict=True)}

    def region_agreement(self) -> dict[str, float | None]:
        """Agreement within each region (``None`` for an empty region)."""
        result: dict[str, float | None] = {}
        for index, name in enumerate(self.region_names):
            here = self.regions == index
            result[name] = float(self.agrees[here].mean()) if here.any() else None
        return result


def compare(rule: Rule, scores: np.ndarray, predictions: np.ndarray, split: str = "images") -> HypothesisCheck:
    """A ``HypothesisCheck`` from scores and predictions already at hand."""
    scores, predictions = np.asarray(scores, dtype=np.float64), np.asarray(predictions)
    return HypothesisCheck(split, scores, predictions, rule.regions(scores), rule.agrees(scores, predictions),
                           rule.region_names)


def check_hypothesis(model: MNISTNet, hypothesis: Hypothesis, split: Split) -> HypothesisCheck:
    """Score every image of ``split`` and compare the rule's labels with the model's predictions."""
    scores = hypothesis.scores(load_mnist(split).images)
    return compare(hypothesis.rule, scores, predicted_classes(model, split), split)


def hypothesis_report(
    model_name: str, layer: str, hypothesis: Hypothesis, checks: Sequence[HypothesisCheck], fitted: bool,
    groups: dict[str, np.ndarray] | None,
) -> dict[str, Any]:
    """The numbers of a hypothesis as one JSON-ready dict (what ``mechmnistic hypothesis --json`` prints)."""
    report: dict[str, Any] = {"model": model_name, "layer": layer, **hypothesis.to_dict()}
    report["rule"]["fitted"] = fitted
    report["agreement"] = {check.split: check.agreement for check in checks}
    report["region_counts"] = {check.split: check.region_counts() for check in checks}
    report["region_agreement"] = {check.split: check.region_agreement() for check in checks}
    report["groups"] = None if groups is None else {name: idx.tolist() for name, idx in groups.items()}
    return report


@dataclass(frozen=True)
class ScoreHistogram:
    """Counts of scores per bin and per predicted class: ``edges`` ``[B+1]``, ``counts`` int64 ``[C, B]``."""

    edges: np.ndarray
    counts: np.ndarray

    @property
    def centers(self) -> np.ndarray:
        return (self.edges[:-1] + self.edges[1:]) / 2


def score_histogram(
    scores: np.ndarray, predictions: np.ndarray, n_classes: int, bins: int = 100,
    value_range: tuple[float, float] | None = None,
) -> ScoreHistogram:
    """Histogram of ``scores`` split by ``predictions`` (every class gets a row, empty or not)."""
    scores = np.asarray(scores, dtype=np.float64)
    lo, hi = value_range if value_range is not None else (float(scores.min()), float(scores.max()))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    counts = np.stack([np.histogram(scores[predictions == c], bins=edges)[0] for c in range(n_classes)])
    return ScoreHistogram(edges, counts.astype(np.int64))


# -- unit groups --------------------------------------------------------------------------


def region_means(values: np.ndarray, regions: np.ndarray, n_regions: int) -> np.ndarray:
    """Mean activation of each unit in each region: float64 ``[R, U]`` (NaN for an empty region)."""
    values = np.asarray(values)
    counts = np.bincount(regions, minlength=n_regions).astype(np.float64)
    sums = np.zeros((n_regions, values.shape[1]))
    for index in range(n_regions):  # one pass per region keeps memory at one mask
        here = regions == index
        if here.any():
            sums[index] = values[here].sum(axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def derive_unit_groups(
    values: np.ndarray, regions: np.ndarray, rule: Rule, detector_regions: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Unit groups for a hypothesis, from activations ``values`` float ``[N, U]`` over the training set.

    ``dead``: never fires (activation <= 0 everywhere). Every other unit goes to
    the detector region (default ``rule.default_detector_regions``) where its
    mean activation is highest (a region without training images gets no
    units). Returns ``{"dead": idx, region: idx, ...}``,
    int64 index arrays that partition the layer's units.
    """
    detectors = tuple(detector_regions or rule.default_detector_regions)
    if not detectors:
        raise HypothesisError("at least one detector region is needed")
    indices = [rule.region_index(name) for name in detectors]
    means = region_means(values, regions, len(rule.region_names))[indices]  # [D, U]
    if np.isnan(means).all():  # an empty region gets no units; all empty leaves nowhere to put them
        raise HypothesisError(f"no training image falls in the detector region(s) {', '.join(detectors)}: "
                              "move the thresholds or choose other regions")
    dead = dead_units(values)
    best = np.argmax(np.nan_to_num(means, nan=-np.inf), axis=0)
    alive = np.ones(values.shape[1], dtype=bool)
    alive[dead] = False
    groups = {"dead": dead}
    for position, name in enumerate(detectors):
        groups[name] = np.flatnonzero(alive & (best == position)).astype(np.int64)
    return groups
