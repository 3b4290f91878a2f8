"""Ablations and patching: worked-out answers on hand-built nets for every kind, then the real models."""

import numpy as np
import pytest

from mechmnistic.analysis.ablation import (
    AblationError,
    InterventionResult,
    ablate,
    patch_activations,
    unit_statistics,
)
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.hypothesis import BandRule, derive_unit_groups, image_scores
from mechmnistic.analysis.predictions import model_labels
from mechmnistic.analysis.templates import resolve_template
from mechmnistic.analysis.units import UnitError

from .tiny_nets import expected_logits, images_with, pixel_mlp, scaling_cnn

IMAGES = [[0.2, 0.4, 0.6], [0.8, 0.1, 0.0]]
REFERENCE = [[0.1, 0.3, 0.5], [0.5, 0.7, 0.9]]


def run(units, method, reference=REFERENCE, **kwargs):
    return ablate(pixel_mlp(), "layers.0", units, method, images=images_with(IMAGES),
                  reference=images_with(reference), **kwargs)


@pytest.mark.parametrize(
    "units, method, hidden_after",
    [
        ("1", "zero", [[0.2, 0.0, 0.6], [0.8, 0.0, 0.0]]),
        ("1", "mean", [[0.2, 0.5, 0.6], [0.8, 0.5, 0.0]]),
        ("1-2", "min", [[0.2, 0.3, 0.5], [0.8, 0.3, 0.5]]),
        ("all", "mean", [[0.3, 0.5, 0.7], [0.3, 0.5, 0.7]]),
    ],
)
def test_golden_constant_ablations(units, method, hidden_after):
    result = run(units, method)
    np.testing.assert_allclose(result.clean_logits, expected_logits(IMAGES), atol=1e-6)
    np.testing.assert_allclose(result.patched_logits, expected_logits(hidden_after), atol=1e-6)


def test_golden_resample_from_one_reference_value():
    result = run([1], "resample", reference=[[0.9, 0.25, 0.9]] * 3)
    np.testing.assert_allclose(result.patched_logits, expected_logits([[0.2, 0.25, 0.6], [0.8, 0.25, 0.0]]),
                               atol=1e-6)


def test_resample_draws_seeded_reference_images():
    targets = images_with(np.tile([0.2, 0.4, 0.6], (200, 1)))
    reference = images_with([[0.0, 0.3, 0.0], [0.0, 0.7, 0.0]])

    def resampled_h1(seed):
        result = ablate(pixel_mlp(), "layers.0", [1], "resample", images=targets, reference=reference, seed=seed)
        return result.patched_logits[:, 1] - (-0.2 + 0.5)  # logit1 = -h0 + h1 + 0.5

    h1 = resampled_h1(0)
    assert np.all(np.isclose(h1, 0.3, atol=1e-6) | np.isclose(h1, 0.7, atol=1e-6))
    assert 60 < np.isclose(h1, 0.3, atol=1e-6).sum() < 140
    np.testing.assert_array_equal(h1, resampled_h1(0))
    assert not np.array_equal(h1, resampled_h1(1))


def test_golden_patch_from_one_source_and_from_paired_sources():
    model, targets = pixel_mlp(), images_with(IMAGES)
    single = patch_activations(model, "layers.0", "0,2", images_with([[0.9, 0.9, 0.1]]), images=targets)
    np.testing.assert_allclose(single.patched_logits, expected_logits([[0.9, 0.4, 0.1], [0.9, 0.1, 0.1]]), atol=1e-6)
    paired = patch_activations(model, "layers.0", [1], images_with(REFERENCE), images=targets)
    np.testing.assert_allclose(paired.patched_logits, expected_logits([[0.2, 0.3, 0.6], [0.8, 0.7, 0.0]]), atol=1e-6)
    with pytest.raises(AblationError, match="one source image or one per image"):
        patch_activations(model, "layers.0", [1], images_with([[0.0]] * 3), images=targets)


def test_golden_conv_channel_ablations():
    """scaling_cnn: logit c = sum of channel c's pooled map + bias (0.25, -0.25); channel 1 is 2x."""
    model = scaling_cnn()
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 0, 0], image[0, 27, 27] = 0.5, 0.25
    zero = ablate(model, "conv1", [1], "zero", images=image)
    np.testing.assert_allclose(zero.clean_logits, [[0.75 + 0.25, 1.5 - 0.25]], atol=1e-6)
    np.testing.assert_allclose(zero.patched_logits, [[1.0, -0.25]], atol=1e-6)
    other = np.zeros((1, 28, 28), np.float32)
    other[0, 10, 10] = 1.0
    reference = np.concatenate([other, other])
    mean = ablate(model, "conv1", [0], "mean", images=image, reference=reference)
    np.testing.assert_allclose(mean.patched_logits, [[1.0 + 0.25, 1.25]], atol=1e-6)  # channel 0 as on `other`
    minimum = ablate(model, "conv1", "0-1", "min", images=image, reference=np.concatenate([other, image]))
    np.testing.assert_allclose(minimum.patched_logits, [[0.25, -0.25]], atol=1e-6)  # per-position min is 0
    resample = ablate(model, "conv1", [1], "resample", images=image, reference=other)
    np.testing.assert_allclose(resample.patched_logits, [[1.0, 2.0 - 0.25]], atol=1e-6)
    stats = unit_statistics(model, "conv1", reference)
    assert stats["mean"].shape == (2, 28, 28) and stats["mean"][1, 10, 10] == pytest.approx(2.0)


def test_summaries_golden():
    result = InterventionResult("x", np.array([[1.0, 0], [0, 1], [2, 0]], np.float32),
                                np.array([[0.0, 1], [0, 1], [3, 0]], np.float32), np.array([0, 1, 1]))
    total = result.summary()
    assert total.count == 3 and total.fraction_changed == pytest.approx(1 / 3)
    assert total.accuracy_before == pytest.approx(2 / 3) and total.accuracy_after == pytest.approx(1 / 3)
    np.testing.assert_allclose(total.mean_logit_change, [0.0, 1 / 3])
    rows = result.breakdown(np.array([0, 0, 1]), ["a", "b"])
    assert [r.name for r in rows] == ["a", "b", "all"] and [r.count for r in rows] == [2, 1, 3]
    assert rows[0].fraction_changed == 0.5 and rows[1].fraction_changed == 0.0
    assert [r.name for r in result.by_class()] == ["class 0", "class 1", "all"]
    assert result.by_class()[1].count == 2
    assert rows[0].to_dict()["mean_logit_change"] == [-0.5, 0.5]
    with pytest.raises(AblationError, match="one per image"):
        result.breakdown(np.array([0]), ["a"])


def test_bad_ablations_are_refused():
    with pytest.raises(AblationError, match="unknown ablation 'max'"):
        run("1", "max")
    with pytest.raises(UnitError, match="out of range"):
        run("3", "zero")
    with pytest.raises(UnitError, match="unknown unit group 'detectors'"):
        run("detectors", "zero", groups={"mine": np.array([0])})


# -- real models -----------------------------------------------------------------------


def test_fast_path_on_a_split_equals_the_hooks_path(bundled, mnist_test):
    model = bundled("challenge-cnn")
    for method in ("mean", "resample"):  # a constant and a donor per image (the golden tests cover the rest)
        fast = ablate(model, "fc1", "10-60", method, images="test", seed=4)
        slow = ablate(model, "fc1", "10-60", method, images=mnist_test.images, seed=4)
        np.testing.assert_allclose(fast.patched_logits, slow.patched_logits, atol=1e-4)
        assert fast.summary().fraction_changed == pytest.approx(slow.summary().fraction_changed, abs=2e-4)
    drawn = mnist_test.images[7]
    fast = patch_activations(model, "fc1", "0-99", drawn, images="test")
    slow = patch_activations(model, "fc1", "0-99", drawn, images=mnist_test.images)
    np.testing.assert_allclose(fast.patched_logits, slow.patched_logits, atol=1e-4)


def test_zero_ablating_units_dead_on_the_training_set_changes_nothing_there(bundled, mnist_train):
    model = bundled("challenge-cnn")
    result = ablate(model, "fc1", "dead", "zero", images="train")
    np.testing.assert_allclose(result.patched_logits, result.clean_logits, atol=1e-4)
    assert result.summary().fraction_changed == 0.0
    assert result.summary().accuracy_before == pytest.approx(
        (result.clean_predictions == model_labels(model, "train")).mean())


def test_min_ablating_each_detector_group_breaks_only_its_own_region(bundled, mnist_train, mnist_test):
    """The write-up's minimum-ablation result, on the bundled challenge network."""
    model = bundled("challenge-cnn")
    rule, template = BandRule(-33.93, -15.22), resolve_template("train:6")
    train_regions = rule.regions(image_scores(mnist_train.images, template.image))
    groups = derive_unit_groups(layer_activations(model, "fc1", "train").values, train_regions, rule)
    test_regions = rule.regions(image_scores(mnist_test.images, template.image))
    for group, other in (("below", "above"), ("above", "below")):
        rows = {r.name: r for r in ablate(model, "fc1", group, "min", groups=groups).breakdown(
            test_regions, rule.region_names)}
        assert rows[group].fraction_changed > 0.8, group
        assert rows[other].fraction_changed < 0.05, group
