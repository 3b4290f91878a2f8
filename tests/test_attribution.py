"""Direct logit attribution: worked-out answers on a hand-built net, and exact sums on the real models."""

import numpy as np
import pytest
import torch

from mechmnistic import run_with_cache
from mechmnistic.analysis.ablation import ablate
from mechmnistic.analysis.attribution import (
    OTHER_GROUP,
    AttributionError,
    direct_logit_attribution,
)
from mechmnistic.analysis.units import UnitError
from mechmnistic.models import build_model, cnn_config

from .tiny_nets import expected_logits, images_with, pixel_mlp, scaling_cnn


def test_golden_contributions_on_the_pixel_net():
    """w = W[1] - W[0] = (-2, -1, -3), bias 1 - 0 = 0.5; h = (0.2, 0.4, 0.6)."""
    attribution = direct_logit_attribution(pixel_mlp(), images_with([[0.2, 0.4, 0.6]]))
    assert attribution.layer == "layers.0" and attribution.target == (1, 0)
    assert attribution.target_name == "logit 1 - logit 0"
    np.testing.assert_allclose(attribution.contributions[0], [-0.4, -0.4, -1.8], atol=1e-7)
    assert attribution.bias == pytest.approx(0.5)
    logits = expected_logits([[0.2, 0.4, 0.6]])[0]
    assert attribution.total[0] == pytest.approx(logits[1] - logits[0], abs=1e-6)


def test_golden_groups_single_logit_and_the_remainder():
    attribution = direct_logit_attribution(pixel_mlp(), images_with([[0.2, 0.4, 0.6]]),
                                           groups={"first": np.array([0])}, target=0)
    assert attribution.group_names == ("first", OTHER_GROUP)
    np.testing.assert_allclose(attribution.contributions[0], [0.2, 0.8 + 1.8], atol=1e-7)
    assert attribution.total[0] == pytest.approx(2.8, abs=1e-6)


def test_golden_conv_channels_feeding_the_output():
    model = scaling_cnn()
    assert model.layout.feeds_logits.name == "conv1" and model.layout.feeds_logits.output_hook == "conv1.pool"
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 0, 0] = 0.5  # one pooled cell: channel 0 sees 0.5, channel 1 sees 1.0
    attribution = direct_logit_attribution(model, image, target=1)
    np.testing.assert_allclose(attribution.contributions[0], [0.0, 1.0], atol=1e-7)
    assert attribution.total[0] == pytest.approx(0.75)


@pytest.mark.parametrize("name, target", [("challenge-cnn", None), ("cnn-digits", (3, 8)), ("mlp-2x64", 7),
                                          ("mlp-1x64", (0, 9))])
def test_contributions_plus_bias_are_exactly_the_logit_difference(bundled, mnist_test, name, target):
    model = bundled(name)
    images = mnist_test.images[:500]
    attribution = direct_logit_attribution(model, images, groups={"some": np.arange(0, 40, 3)}, target=target)
    logits = run_with_cache(model, images, names=[])[0].double().numpy()
    a, b = attribution.target
    expected = logits[:, a] - (logits[:, b] if b is not None else 0)
    np.testing.assert_allclose(attribution.total, expected, atol=1e-4)


def test_sum_is_exact_for_a_cnn_without_hidden_fully_connected_layers(mnist_test):
    torch.manual_seed(0)
    model = build_model(cnn_config(conv_channels=(4,), kernel_sizes=(3,), fc_sizes=()))
    images = mnist_test.images[:100]
    attribution = direct_logit_attribution(model, images, target=(2, 5))
    assert attribution.contributions.shape == (100, 4)
    logits = run_with_cache(model, images, names=[])[0].double().numpy()
    np.testing.assert_allclose(attribution.total, logits[:, 2] - logits[:, 5], atol=1e-4)


def test_a_groups_contribution_is_its_zero_ablation_effect(bundled, mnist_test):
    model = bundled("challenge-cnn")
    images = mnist_test.images[:300]
    group = np.arange(100, 140)
    attribution = direct_logit_attribution(model, images, groups={"g": group})
    result = ablate(model, "fc1", group, "zero", images=images)
    effect = np.diff(result.clean_logits, axis=1)[:, 0] - np.diff(result.patched_logits, axis=1)[:, 0]
    np.testing.assert_allclose(attribution.contributions[:, 0], effect, atol=1e-4)


def test_sorted_sample_is_seeded_and_sorted(bundled, mnist_test):
    attribution = direct_logit_attribution(bundled("challenge-cnn"), mnist_test.images[:400])
    picked = attribution.sorted_sample(50, seed=3)
    assert len(set(picked.tolist())) == 50
    assert np.all(np.diff(attribution.total[picked]) >= 0)
    assert np.array_equal(picked, attribution.sorted_sample(50, seed=3))
    by_key = attribution.sorted_sample(50, seed=3, key=-attribution.total)
    assert np.all(np.diff(attribution.total[by_key]) <= 0)
    assert len(attribution.sorted_sample(10_000, seed=0)) == 400


def test_bad_targets_and_groups(bundled, mnist_test):
    model, images = bundled("mlp-1x64"), mnist_test.images[:3]
    with pytest.raises(AttributionError, match="choose a target class"):
        direct_logit_attribution(model, images)
    with pytest.raises(AttributionError, match=r"class 10 is out of range \(0..9\)"):
        direct_logit_attribution(model, images, target=(10, 0))
    with pytest.raises(AttributionError, match="two different classes"):
        direct_logit_attribution(model, images, target=(3, 3))
    with pytest.raises(UnitError, match="in both"):
        direct_logit_attribution(model, images, groups={"a": [1, 2], "b": [2]}, target=1)
