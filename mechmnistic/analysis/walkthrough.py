"""The guided walkthrough on ``challenge-cnn``: its settings, and the steps that are its own.

The walkthrough retraces the EIS VII write-up with the core's tools: PCA of
``fc1`` coloured by prediction (``analysis.geometry``), feature visualisation of
the units at the two ends of the first principal component and of the
logit-difference direction (``analysis.feature_viz``), the clue image as a
template and a band fitted to the model's predictions (``analysis.hypothesis``),
and a causal-scrubbing sweep of the unit groups that band implies
(``analysis.scrubbing``). The app's page, the tests and the benchmark all call
what is here, so they use the same settings and get the same numbers.

Two computations are the walkthrough's own: which units to visualise
(``arm_units``) and, once the user asks, how far the fitted band lies from the
hidden labelling function recorded in the model's card (``reveal``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cache import cached, is_cached
from ..errors import MechMNISTicError
from ..models.architectures import MNISTNet
from .feature_viz import FeatureVizConfig
from .geometry import LayerPCA, principal_direction, weighted_loadings
from .hypothesis import BandFit, BandRule, Hypothesis, HypothesisCheck, compare
from .predictions import predicted_classes
from .scrubbing import DEFAULT_TOLERANCES, ScrubResult, scrub
from .templates import Template, resolve_template

MODEL = "challenge-cnn"
LAYER = "fc1"
#: The challenge's clue image (a "1"), and the centre that makes s(x) "similarity to t minus similarity to 1 - t".
TEMPLATE = "train:6"
CENTER = 0.5
#: Class 1 minus class 0: positive where the model says "class 1".
LOGIT_DIRECTION = "logit:1-0"
TOLERANCES = DEFAULT_TOLERANCES
SEED = 0
#: Adam from a blank image, 100 steps, pixels clamped to [0, 1]: the Feature visualisation page's defaults.
FEATURE_CONFIG = FeatureVizConfig()


class WalkthroughError(MechMNISTicError, ValueError):
    """The model cannot be walked through (e.g. its card records no template-band labelling function)."""


def arm_units(fit: LayerPCA, per_arm: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The ``per_arm`` units with the highest and the lowest weighted loading on PC1, int64 ``[per_arm]`` each.

    PC1 runs along the V of the PCA plot, from one arm to the other, so the
    units that move a point furthest along it either way are the two arms'
    strongest detectors (loadings as ``geometry.weighted_loadings`` defines them).
    """
    order = weighted_loadings(fit, [principal_direction(fit, 0)]).order(0)
    return order[:per_arm].astype(np.int64), order[::-1][:per_arm].astype(np.int64)


@dataclass(frozen=True, eq=False)
class BandStep:
    """The clue as a template, and the band fitted to the model's training predictions.

    ``train`` / ``test``: the fitted rule checked against the model on each split
    (their ``scores`` are ``s(x)`` for every image, float64 ``[N]``).
    """

    template: Template
    fit: BandFit
    train: HypothesisCheck
    test: HypothesisCheck

    @property
    def rule(self) -> BandRule:
        return self.fit.rule_

    @property
    def hypothesis(self) -> Hypothesis:
        return Hypothesis(self.template, self.rule, CENTER)


def fit_band(model: MNISTNet, train_scores: np.ndarray, test_scores: np.ndarray) -> BandStep:
    """Fit a band (class 0 inside, 1 outside) to the model's training predictions and check it on both splits.

    ``train_scores`` / ``test_scores``: ``s(x)`` for ``TEMPLATE`` and ``CENTER``
    over each split (``hypothesis.image_scores``; passed in so that a caller
    that already holds them does not score 70,000 images twice).
    """
    train_predictions = predicted_classes(model, "train")
    fit = BandFit(inside_label=0, outside_label=1).fit(train_scores, train_predictions)
    return BandStep(resolve_template(TEMPLATE), fit, compare(fit.rule_, train_scores, train_predictions, "train"),
                    compare(fit.rule_, test_scores, predicted_classes(model, "test"), "test"))


def _scrub_params(band: BandStep) -> dict[str, Any]:
    return {"layer": LAYER, "template": TEMPLATE, "center": CENTER, "low": band.rule.low, "high": band.rule.high,
            "tolerances": list(TOLERANCES), "seed": SEED}


def scrub_band_is_cached(model: MNISTNet, band: BandStep) -> bool:
    """Whether ``scrub_band`` will read its result from disk (so a page can skip its progress bar)."""
    return is_cached(model, "walkthrough_scrub", _scrub_params(band))


def scrub_band(model: MNISTNet, band: BandStep, progress: Callable[[int, int], None] | None = None) -> ScrubResult:
    """Causal scrubbing of ``LAYER`` under the fitted band, with the groups it derives, over the training set.

    Cached on disk (a sweep resamples 60,000 images six times).
    """

    def compute() -> dict[str, np.ndarray]:
        result = scrub(model, LAYER, band.hypothesis, tolerances=TOLERANCES, seed=SEED, split="train",
                       progress=progress)
        return {"preserved": result.preserved, "self_fraction": result.self_fraction,
                "random_baseline": np.array(result.random_baseline), "n_images": np.array(result.n_images),
                "group_names": np.array(list(result.groups)),
                **{f"group_{name}": units for name, units in result.groups.items()}}

    arrays = cached(model, "walkthrough_scrub", _scrub_params(band), compute)
    groups = {str(name): np.asarray(arrays[f"group_{name}"], np.int64) for name in arrays["group_names"]}
    return ScrubResult(LAYER, "train", SEED, int(arrays["n_images"]), groups, np.array(TOLERANCES, np.float64),
                       np.asarray(arrays["preserved"]), np.asarray(arrays["self_fraction"]),
                       float(arrays["random_baseline"]))


@dataclass(frozen=True)
class Edge:
    """One edge of the band: the hidden value and the fitted one."""

    name: str
    true: float
    fitted: float

    @property
    def difference(self) -> float:
        return self.fitted - self.true

    @property
    def relative(self) -> float:
        """``|fitted - true| / |true|``: the miss as a fraction of the edge's own value."""
        return abs(self.difference) / abs(self.true)


@dataclass(frozen=True, eq=False)
class Reveal:
    """The hidden labelling function beside the fitted band.

    ``label_function``: the card's dict (``labels.CHALLENGE_LABEL_FUNCTION`` for
    the bundled model); ``test``: the true rule checked against the model on the
    test set.
    """

    label_function: dict[str, Any]
    rule: BandRule
    edges: tuple[Edge, Edge]
    test: HypothesisCheck


def reveal(model: MNISTNet, band: BandStep) -> Reveal:
    """The model card's labelling function compared with ``band``, edge by edge; only call it when asked."""
    spec = dict(model.card.label_function)
    if spec.get("name") != "template-band":
        raise WalkthroughError(f"{model.card.name}'s card records no template-band labelling function to reveal")
    if spec["template"] != TEMPLATE or spec["center"] != CENTER:
        raise WalkthroughError(f"the card's template is {spec['template']} with centre {spec['center']}; "
                               f"the walkthrough scores with {TEMPLATE} and {CENTER}")
    true = BandRule(spec["low"], spec["high"], spec["inside_label"], spec["outside_label"])
    edges = (Edge("low", true.low, band.rule.low), Edge("high", true.high, band.rule.high))
    return Reveal(spec, true, edges, compare(true, band.test.scores, band.test.predictions, "test"))


# -- dictionary features: do latents separate the detectors more cleanly? -------------------------------------


#: The bundled dictionary of the challenge network's fc1 (512 TopK latents).
DICTIONARY = "fc1-topk512"


@dataclass(frozen=True)
class Separation:
    """How cleanly one basis of ``LAYER`` (its neurons, or a dictionary's latents) splits the band's two
    detector groups, on the training set: ``alive`` of ``units`` ever fire; ``below``/``above`` units in each
    detector group (``hypothesis.derive_unit_groups``); ``cross_talk``: of the firing the two groups put on
    the two regions, the share on the other group's region (0: perfectly separate detectors); ``pure``: live
    units with at least 95% of their firing in one region; ``units_for_90``: on the test set, the mean number
    of units whose direct effects make up 90% of ``|logit 1 - logit 0|`` per image."""

    basis: str
    units: int
    alive: int
    below: int
    above: int
    cross_talk: float
    pure: int
    units_for_90: float


def detector_separation(model: MNISTNet, band: BandStep) -> tuple[Separation, Separation]:
    """``(neurons, latents)``: the band's detectors in ``LAYER``'s neurons and in ``DICTIONARY``'s latents (the
    layer feeds the logits, so every direct effect is exact)."""
    from ..dictionaries.dictionary import load_dictionary
    from .activations import layer_activations
    from .hypothesis import derive_unit_groups
    from .latents import cross_talk, latent_activations, region_purity, units_needed
    from .splicing import latent_logit_weights

    dictionary = load_dictionary(model, DICTIONARY)
    rule = band.rule
    regions = rule.regions(band.train.scores)
    below, above = rule.region_index("below"), rule.region_index("above")
    weight = model.layer(model.layout.final.name).weight.detach().double().numpy()
    direction = weight[1] - weight[0]
    bases = {
        "neurons": (layer_activations(model, LAYER, "train").values,
                    layer_activations(model, LAYER, "test").values.astype(np.float64) * direction),
        "latents": (latent_activations(model, dictionary, "train").values,
                    latent_activations(model, dictionary, "test").values.astype(np.float64)
                    * (latent_logit_weights(model, dictionary) @ np.array([-1.0, 1.0]))),
    }
    found = []
    for name, (values, attribution) in bases.items():
        groups = derive_unit_groups(values, regions, rule)
        purity = region_purity(values, regions, len(rule.region_names))
        found.append(Separation(name, values.shape[1], int(purity.alive.sum()), len(groups["below"]),
                                len(groups["above"]), cross_talk(purity, groups, ("below", below), ("above", above)),
                                purity.count_pure(0.95), float(units_needed(attribution, 0.9).mean())))
    return found[0], found[1]
