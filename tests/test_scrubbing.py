"""Causal scrubbing: the sampler's guarantees, an exactly true hypothesis, and the challenge network."""

import numpy as np
import pytest
import torch

from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.hypothesis import BandRule, Hypothesis, ThresholdRule
from mechmnistic.analysis.scrubbing import (
    ScoreSampler,
    ScrubError,
    check_groups,
    derive_groups,
    resample_plan,
    scrub,
    scrub_images,
    scrubbed_logits,
)
from mechmnistic.analysis.templates import resolve_template
from mechmnistic.hooks import predict, run_with_cache
from mechmnistic.models import build_model, mlp_config

LOW, HIGH = 1.5, 3.5


def test_similar_sources_are_within_tolerance_and_never_the_input_when_another_exists():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(size=5000), [50.0]])  # one far outlier has no neighbour
    sampler = ScoreSampler(scores, np.zeros(len(scores), int))
    for tolerance in (1e-4, 1e-3, 1e-2):
        sources, alone = sampler.similar(np.random.default_rng(1), tolerance)
        width = tolerance * (scores.max() - scores.min())
        assert np.all(np.abs(scores[sources] - scores) <= width)
        assert np.all((sources == np.arange(len(scores))) == alone)
        assert alone[-1]
    _, alone = sampler.similar(np.random.default_rng(1), 0.9)
    assert not alone.any()


def test_similar_sources_are_uniform_over_the_window():
    scores = np.array([0.0, 0.0, 0.0, 0.0, 10.0])
    sampler = ScoreSampler(scores, np.zeros(5, int))
    draws = np.stack([sampler.similar(np.random.default_rng(seed), 0.01)[0] for seed in range(400)])
    counts = np.bincount(draws[:, 0], minlength=5)
    assert counts[0] == 0 and counts[4] == 0 and counts[1:4].min() > 100  # never itself, each other one often


def test_outside_sources_never_come_from_the_region():
    regions = np.array([0, 1, 2, 2, 1, 0, 2])
    sampler = ScoreSampler(np.arange(7.0), regions)
    sources = sampler.outside(np.random.default_rng(0), 2)
    assert len(sources) == 7 and not np.any(regions[sources] == 2)
    with pytest.raises(ScrubError, match="nothing outside"):
        ScoreSampler(np.arange(3.0), np.zeros(3, int)).outside(np.random.default_rng(0), 0)


def test_groups_must_be_dead_or_regions_disjoint_and_complete():
    rule = BandRule(0.0, 1.0)
    assert list(check_groups({"dead": [0], "above": [1, 2]}, rule, 3)) == ["dead", "above"]
    with pytest.raises(ScrubError, match="neither 'dead' nor a region"):
        check_groups({"detectors": [0, 1, 2]}, rule, 3)
    with pytest.raises(ScrubError, match="units 2 are in no group"):
        check_groups({"dead": [0], "above": [1]}, rule, 3)
    with pytest.raises(ScrubError, match="outside 0..2"):
        check_groups({"dead": [0, 1, 2, 3]}, rule, 3)
    with pytest.raises(Exception, match="in both"):
        check_groups({"dead": [0, 1], "above": [1, 2]}, rule, 3)


# -- an exactly true hypothesis ----------------------------------------------------------------


def band_net():
    """Template t = 1 on the first 10 pixels, 0.5 elsewhere; c = 0.5, so s(x) = 0.5 * sum(x[:10]).

    Hidden: u0 = ReLU(s - HIGH) ("above" detector), u1 = ReLU(LOW - s) ("below"), u2 dead.
    Output: logit1 - logit0 = 10 (u0 + u1) - 0.05, so class 1 exactly outside the band (given a margin).
    """
    template = np.full((28, 28), 0.5)
    template[0, :10] = 1.0
    direction = torch.tensor((template - 0.5).reshape(-1), dtype=torch.float32)
    model = build_model(mlp_config(hidden_sizes=(3,), n_classes=2))
    with torch.no_grad():
        first, out = model.get_submodule("layers.0"), model.get_submodule("layers.1")
        first.weight.zero_()
        first.weight[0], first.weight[1] = direction, -direction
        first.bias.copy_(torch.tensor([-HIGH, LOW, -1.0]))
        out.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [10.0, 10.0, 5.0]]))
        out.bias.copy_(torch.tensor([0.0, -0.05]))
    return model, resolve_template(template, source="planted")


def band_images(count: int, margin: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(0)
    images = np.zeros((count * 2, 28, 28), np.uint8)
    level = rng.random((count * 2, 1))  # s spreads evenly over [0, 5]: all three regions are well filled
    images[:, 0, :10] = np.clip(255 * (level + rng.normal(0, 0.05, (count * 2, 10))), 0, 255).astype(np.uint8)
    images[:, 5:9, 5:20] = rng.integers(0, 256, (count * 2, 4, 15))  # ink that the score ignores
    s = 0.5 * (images[:, 0, :10].astype(np.float64) / 255).sum(1)
    keep = (np.abs(s - LOW) > margin) & (np.abs(s - HIGH) > margin)
    return images[keep][:count]


def test_an_exactly_true_hypothesis_preserves_every_prediction():
    model, template = band_net()
    images = band_images(3000)
    hypothesis = Hypothesis(template, BandRule(LOW, HIGH))
    scores = hypothesis.scores(images)
    predictions = predict(model, images)
    assert hypothesis.rule.agrees(scores, predictions).all()  # the model is the rule
    groups = {"dead": [2], "below": [1], "above": [0]}
    # Tolerances below the margin (0.2 of a range of about 5) keep every source in the right region.
    result = scrub_images(model, "layers.0", scores, hypothesis.rule, groups, predictions,
                          tolerances=(1e-4, 1e-3, 1e-2, 3e-2), images=images)
    np.testing.assert_array_equal(result.preserved, 1.0)
    assert result.random_baseline < 0.75
    # The fast path (activations given) and the hooks path agree.
    values = layer_activations_of(model, images)
    fast = scrub_images(model, "layers.0", scores, hypothesis.rule, groups, predictions,
                        tolerances=(1e-2, 0.3), values=values)
    slow = scrub_images(model, "layers.0", scores, hypothesis.rule, groups, predictions,
                        tolerances=(1e-2, 0.3), images=images)
    np.testing.assert_array_equal(fast.preserved, slow.preserved)
    assert fast.preserved[1] < 1.0  # a tolerance wider than the margin does mix regions


def layer_activations_of(model, images):
    return run_with_cache(model, images, names=["layers.0.post"])[1]["layers.0.post"].numpy()


def test_a_wrong_grouping_is_caught():
    """Calling the "above" detector a "below" detector breaks the predictions scrubbing preserves."""
    model, template = band_net()
    images = band_images(2000)
    rule = BandRule(LOW, HIGH)
    scores = Hypothesis(template, rule).scores(images)
    result = scrub_images(model, "layers.0", scores, rule, {"dead": [2], "below": [0, 1]}, predict(model, images),
                          tolerances=(1e-3,), images=images)
    assert result.preserved[0] < 0.9


def test_sweeps_are_seeded_and_each_tolerance_stands_alone():
    model, template = band_net()
    images = band_images(1500)
    rule = ThresholdRule(2.5)
    scores = Hypothesis(template, rule).scores(images)
    values, predictions = layer_activations_of(model, images), predict(model, images)
    groups = {"dead": [2], "below": [1], "above": [0]}
    sweep = scrub_images(model, "layers.0", scores, rule, groups, predictions, (1e-3, 0.2, 0.5), seed=5, values=values)
    alone = scrub_images(model, "layers.0", scores, rule, groups, predictions, (0.5,), seed=5, values=values)
    again = scrub_images(model, "layers.0", scores, rule, groups, predictions, (1e-3, 0.2, 0.5), seed=5, values=values)
    assert sweep.preserved[2] == alone.preserved[0]
    np.testing.assert_array_equal(sweep.preserved, again.preserved)
    assert sweep.to_dict()["sweep"][0]["tolerance"] == 1e-3
    with pytest.raises(ScrubError, match="between 0 and 1"):
        scrub_images(model, "layers.0", scores, rule, groups, predictions, (2.0,), values=values)
    with pytest.raises(ScrubError, match="at least one tolerance"):
        scrub_images(model, "layers.0", scores, rule, groups, predictions, (), values=values)


def test_a_plan_resamples_every_group_from_its_own_sources():
    rule = BandRule(0.0, 1.0)
    scores = np.linspace(-2, 3, 200)
    sampler = ScoreSampler(scores, rule.regions(scores))
    groups = {"dead": np.array([0]), "below": np.array([1]), "above": np.array([2, 3])}
    plan, _ = resample_plan(sampler, groups, rule, 1e-2, np.random.default_rng(0))
    (dead_units, _), (below_units, below_src), (above_units, above_src) = plan
    regions = rule.regions(scores)
    assert above_units.tolist() == [2, 3]
    # On inputs outside "above", the above group's sources are outside it; inside, they are close in score.
    assert not np.any(regions[above_src[regions != 2]] == 2)
    assert np.all(np.abs(scores[above_src[regions == 2]] - scores[regions == 2]) <= 0.05 + 1e-12)
    assert not np.any(regions[below_src[regions != 0]] == 0)


def test_conv_layers_scrub_through_the_model(bundled, mnist_test):
    """A conv layer's channels take their whole maps from source images (no cached fast path)."""
    model = bundled("cnn-digits")
    images = mnist_test.images[:200]
    template = resolve_template("train:6")
    rule = ThresholdRule(-20.0, below_label=None, above_label=1)
    scores = Hypothesis(template, rule).scores(images)
    groups = {"dead": np.array([], np.int64), "below": np.arange(8), "above": np.arange(8, 16)}
    result = scrub_images(model, "conv2", scores, rule, groups, predict(model, images), (0.05,), images=images)
    assert 0.0 <= result.random_baseline <= result.preserved[0] <= 1.0
    # With an infinite-looking tolerance the hooks path still runs on every image.
    plan, _ = resample_plan(ScoreSampler(scores, rule.regions(scores)), groups, rule, 1.0, np.random.default_rng(0))
    assert scrubbed_logits(model, "conv2", plan, images=images).shape == (200, 10)


# -- the EIS VII challenge network -----------------------------------------------------------


def test_scrubbing_the_derived_groups_preserves_the_challenge_networks_predictions(bundled):
    model = bundled("challenge-cnn")
    hypothesis = Hypothesis(resolve_template("train:6"), BandRule(-33.93, -15.22))
    result = scrub(model, "fc1", hypothesis, tolerances=(1e-4, 1e-3, 1e-2, 1e-1), seed=0)
    assert result.n_images == 60_000 and sum(len(g) for g in result.groups.values()) == 200
    assert result.preserved[1] >= 0.90
    assert result.random_baseline < 0.6 and result.random_baseline < result.preserved[1] - 0.3
    assert result.preserved[-1] < result.preserved[1]  # 10% of the range mixes different images
    values = layer_activations(model, "fc1", "train").values
    assert values[:, result.groups["dead"]].max() <= 0  # dead: silent on every training image
    # What a caller holds is handed along: the same groups and sweep from its scores, and wrong ones refused.
    from mechmnistic.data import load_mnist

    scores = hypothesis.scores(load_mnist("train").images)
    groups = derive_groups(model, "fc1", hypothesis, scores)
    assert {k: v.tolist() for k, v in groups.items()} == {k: v.tolist() for k, v in result.groups.items()}
    again = scrub(model, "fc1", hypothesis, groups, tolerances=(1e-3,), seed=0, scores=scores)
    assert again.preserved[0] == result.preserved[1] and again.random_baseline == result.random_baseline
    with pytest.raises(ScrubError, match="scores has 10 values for the 60000 images of the train set"):
        scrub(model, "fc1", hypothesis, groups, tolerances=(1e-3,), scores=scores[:10])
