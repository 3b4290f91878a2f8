"""The guided walkthrough on challenge-cnn: the numbers a user reaches by following it.

(The true labelling function's agreement with the model, and the band fitted with
``BandFit`` directly, are pinned in test_hypothesis.py; scrubbing the groups the
*true* band implies in test_scrubbing.py. Here: what the walkthrough itself
computes, from the fitted band on.)
"""

import numpy as np
import pytest

from mechmnistic.analysis import walkthrough as w
from mechmnistic.analysis.geometry import layer_pca
from mechmnistic.analysis.hypothesis import image_scores
from mechmnistic.analysis.predictions import predicted_classes
from mechmnistic.analysis.scrubbing import scrub
from mechmnistic.analysis.templates import resolve_template
from mechmnistic.labels import CHALLENGE_LABEL_FUNCTION


@pytest.fixture(scope="module")
def challenge(bundled):
    return bundled(w.MODEL)


@pytest.fixture(scope="module")
def band(challenge, mnist_train, mnist_test):
    template = resolve_template(w.TEMPLATE).image
    return w.fit_band(challenge, image_scores(mnist_train.images, template, w.CENTER),
                      image_scores(mnist_test.images, template, w.CENTER))


@pytest.fixture(scope="module")
def scrubbed(challenge, band):
    return w.scrub_band(challenge, band)


def test_edge_miss_is_relative_to_the_edges_own_value():
    edge = w.Edge("low", -20.0, -20.3)
    assert edge.difference == pytest.approx(-0.3) and edge.relative == pytest.approx(0.015)
    assert w.Edge("high", 4.0, 5.0).relative == pytest.approx(0.25)


def test_the_fitted_band_is_checked_on_both_splits(challenge, band):
    assert band.rule.inside_label == 0 and band.rule.outside_label == 1
    assert band.train.agreement == band.fit.agreement_ >= 0.96
    assert band.test.agreement >= 0.955
    assert len(band.train.scores) == 60_000 and len(band.test.scores) == 10_000
    np.testing.assert_array_equal(band.test.predictions, predicted_classes(challenge, "test"))


def test_revealed_answer_lies_within_two_percent_of_each_fitted_edge(challenge, band):
    answer = w.reveal(challenge, band)
    assert answer.label_function == CHALLENGE_LABEL_FUNCTION
    assert [(e.name, e.true) for e in answer.edges] == [("low", -33.93), ("high", -15.22)]
    assert [e.fitted for e in answer.edges] == [band.rule.low, band.rule.high]
    for edge in answer.edges:
        assert edge.relative < 0.02, edge
    # The hidden function labels the test set as the model does at least 94.5% of the time.
    assert answer.test.agreement >= 0.945
    assert answer.test.agreement == pytest.approx(challenge.card.metrics["test_accuracy"], abs=1e-12)


def test_scrubbing_the_fitted_bands_groups_keeps_the_predictions_random_resampling_does_not(scrubbed):
    result = scrubbed
    assert result.tolerances.tolist() == list(w.TOLERANCES) and result.n_images == 60_000
    assert sum(len(g) for g in result.groups.values()) == 200
    at_1e3 = result.preserved[list(w.TOLERANCES).index(1e-3)]
    assert at_1e3 >= 0.90
    # Resampling every unit from random images is close to a coin flip on two classes: a margin of 30 points.
    assert result.random_baseline < 0.6 and result.random_baseline <= at_1e3 - 0.30


def test_the_two_arms_units_are_the_two_detector_groups(challenge, scrubbed):
    """The units at either end of PC1 are the "1" and "anti-1" detectors the band implies."""
    high, low = w.arm_units(layer_pca(challenge, w.LAYER))
    assert len(high) == len(low) == 3 and not set(high) & set(low)
    groups = scrubbed.groups
    sides = [{name for name, units in groups.items() if u in units} for u in (*high, *low)]
    assert sides[:3] == [sides[0]] * 3 and sides[3:] == [sides[3]] * 3
    assert {*sides[0], *sides[3]} == {"below", "above"}


def test_reveal_needs_a_template_band_card(bundled, band):
    with pytest.raises(w.WalkthroughError, match="no template-band labelling function"):
        w.reveal(bundled("mlp-1x64"), band)


def test_the_sweep_read_back_from_disk_is_the_sweep_computed(challenge, band, scrubbed):
    fresh = scrub(challenge, w.LAYER, band.hypothesis, tolerances=w.TOLERANCES, seed=w.SEED)
    assert w.scrub_band_is_cached(challenge, band)
    np.testing.assert_array_equal(scrubbed.preserved, fresh.preserved)
    np.testing.assert_array_equal(scrubbed.self_fraction, fresh.self_fraction)
    assert scrubbed.random_baseline == fresh.random_baseline and scrubbed.n_images == fresh.n_images
    assert list(scrubbed.groups) == list(fresh.groups)
    for name, units in fresh.groups.items():
        np.testing.assert_array_equal(scrubbed.groups[name], units)
