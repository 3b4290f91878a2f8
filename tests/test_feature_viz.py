"""Feature visualisation: objectives rise, the batch equals each objective alone, regularisers do their job."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mechmnistic import run_with_cache
from mechmnistic.analysis import feature_viz as fv
from mechmnistic.analysis import geometry as g
from mechmnistic.errors import MechMNISTicError
from mechmnistic.models import Normalization, build_model, mlp_config

UNITS = [3, 17, 42, 120, 199]


def test_every_objective_rises(bundled):
    model = bundled("challenge-cnn")
    result = fv.optimize_inputs(model, fv.unit_objectives(model, "fc1", UNITS), fv.FeatureVizConfig(steps=40))
    assert result.images.shape == (5, 28, 28) and result.history.shape == (40, 5)
    assert np.all(result.final > result.initial)
    assert result.clamped and result.images.min() >= 0 and result.images.max() <= 1
    assert result.names[0] == "fc1 unit 3" and result.units == tuple(UNITS)
    # fc1 is folded into the objective (it is not run at each step); the values are still fc1's own.
    _, cache = run_with_cache(model, result.images, names=["fc1.pre"])
    np.testing.assert_allclose(result.final, cache["fc1.pre"].numpy()[np.arange(5), UNITS], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "config",
    [
        fv.FeatureVizConfig(steps=25, init="noise", jitter=2, blur=0.6, l2=0.01, seed=7),
        fv.FeatureVizConfig(steps=25, init="train:6", clamp=False, lr=0.1),
    ],
)
def test_the_batch_gives_exactly_what_each_objective_gives_alone(bundled, config):
    """In float64 (where the convolutions round the same way at every batch size) the images are identical."""
    model = copy.deepcopy(bundled("challenge-cnn")).double()
    objectives = fv.unit_objectives(model, "fc1", UNITS)
    batched = fv.optimize_inputs(model, objectives, config)
    for k in range(len(UNITS)):
        alone = fv.optimize_inputs(model, objectives.subset([k]), config)
        np.testing.assert_array_equal(batched.images[k], alone.images[0])
        np.testing.assert_array_equal(batched.history[:, k], alone.history[:, 0])
    # Another seed draws other noise and shifts: the comparison above is not vacuous.
    other = fv.optimize_inputs(model, objectives.subset([0]), fv.FeatureVizConfig(
        **{**config.to_dict(), "seed": config.seed + 1}))
    assert config.init != "noise" or not np.allclose(other.images[0], batched.images[0], atol=1e-3)


def test_in_float32_the_batch_agrees_to_rounding(bundled):
    model = bundled("challenge-cnn")
    objectives = fv.unit_objectives(model, "fc1", UNITS)
    config = fv.FeatureVizConfig(steps=25, init="noise", jitter=1, seed=3)
    batched = fv.optimize_inputs(model, objectives, config)
    for k in range(len(UNITS)):
        alone = fv.optimize_inputs(model, objectives.subset([k]), config)
        np.testing.assert_allclose(batched.final[k], alone.final[0], rtol=1e-3)


def test_golden_linear_unit_lights_exactly_its_positive_weights():
    """One linear unit: with clamping, the maximising image is 1 where the weight is positive, else 0."""
    model = build_model(mlp_config(hidden_sizes=(1,), n_classes=2))
    weight = torch.from_numpy(np.random.default_rng(0).normal(size=784).astype(np.float32))
    with torch.no_grad():
        model.get_submodule("layers.0").weight.copy_(weight[None])
        model.get_submodule("layers.0").bias.fill_(0.3)
    result = fv.optimize_inputs(model, fv.unit_objectives(model, "layers.0"), fv.FeatureVizConfig(steps=60, lr=0.1))
    expected = (weight > 0).float().view(28, 28).numpy()
    np.testing.assert_array_equal(result.images[0], expected)
    assert result.final[0] == pytest.approx(float(weight.clamp(min=0).sum()) + 0.3, rel=1e-5)
    assert result.initial[0] == pytest.approx(0.3)


def test_the_models_own_normalisation_is_respected():
    """The reported objective is the unit's real pre-activation on the returned pixels, normalised by the model."""
    torch.manual_seed(0)
    model = build_model(mlp_config(hidden_sizes=(8,), normalization=Normalization(0.1307, 0.3081)))
    result = fv.optimize_inputs(model, fv.unit_objectives(model, "layers.0", [2, 5]),
                                fv.FeatureVizConfig(steps=30, init="noise"))
    _, cache = run_with_cache(model, result.images, names=["layers.0.pre"])
    np.testing.assert_allclose(result.final, cache["layers.0.pre"].numpy()[[0, 1], [2, 5]], rtol=1e-5, atol=1e-5)


def test_conv_channels_maximise_their_mean_map(bundled):
    model = bundled("cnn-digits")
    result = fv.optimize_inputs(model, fv.unit_objectives(model, "conv2", [0, 9]), fv.FeatureVizConfig(steps=20))
    _, cache = run_with_cache(model, result.images, names=["conv2.pre"])
    maps = cache["conv2.pre"].numpy()
    np.testing.assert_allclose(result.final, [maps[0, 0].mean(), maps[1, 9].mean()], rtol=1e-4, atol=1e-5)
    assert np.all(result.final > result.initial)


def test_directions_maximise_their_dot_product(bundled):
    """The logit-difference direction's objective plus the bias difference is the real logit difference."""
    model = bundled("challenge-cnn")
    fit = g.layer_pca(model, "fc1")
    directions = g.build_directions(model, fit, ["logit:1-0", "pc1", "pc2"])
    objectives = fv.direction_objectives(fit.space, directions)
    result = fv.optimize_inputs(model, objectives, fv.FeatureVizConfig(steps=30, init="noise"))
    logits, _ = run_with_cache(model, result.images, names=[])
    logit_diff = (logits[:, 1] - logits[:, 0]).numpy()
    assert result.final[0] + directions[0].offset == pytest.approx(logit_diff[0], abs=1e-3)
    assert np.all(result.final > result.initial) and result.units == (-1, -1, -1)


def test_regularisers_do_their_job(bundled):
    model = bundled("challenge-cnn")
    objectives = fv.unit_objectives(model, "fc1", UNITS)
    base = fv.FeatureVizConfig(steps=40, init="noise")
    plain = fv.optimize_inputs(model, objectives, base)
    with_l2 = fv.optimize_inputs(model, objectives, fv.FeatureVizConfig(**{**base.to_dict(), "l2": 0.5}))
    blurred = fv.optimize_inputs(model, objectives, fv.FeatureVizConfig(**{**base.to_dict(), "blur": 1.0}))
    loose = fv.optimize_inputs(model, objectives, fv.FeatureVizConfig(**{**base.to_dict(), "clamp": False}))

    def norm(images):
        return np.linalg.norm(images.reshape(len(images), -1), axis=1)

    def roughness(images):
        return np.abs(np.diff(images, axis=1)).sum((1, 2)) + np.abs(np.diff(images, axis=2)).sum((1, 2))

    assert np.all(norm(with_l2.images) < norm(plain.images))
    assert np.all(roughness(blurred.images) < 0.7 * roughness(plain.images))
    assert not loose.clamped and (loose.images.min() < 0 or loose.images.max() > 1)
    assert np.all(loose.final >= plain.final - 1e-3)  # a larger feasible set reaches at least as high


def test_jitter_is_seeded():
    torch.manual_seed(0)
    model = build_model(mlp_config(hidden_sizes=(4,)))
    objectives = fv.unit_objectives(model, "layers.0")
    runs = [fv.optimize_inputs(model, objectives, fv.FeatureVizConfig(steps=10, jitter=3, seed=s)) for s in (1, 1, 2)]
    np.testing.assert_array_equal(runs[0].images, runs[1].images)
    assert not np.array_equal(runs[0].images, runs[2].images)


def test_nearest_examples_use_cosine_similarity(mnist_train):
    queries = np.stack([mnist_train.images[6] / 255.0, 0.3 * mnist_train.images[100] / 255.0, np.zeros((28, 28))])
    nearest = fv.nearest_training_examples(queries, k=4)
    assert nearest.indices.shape == (3, 4)
    assert nearest.indices[0, 0] == 6 and nearest.similarity[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert nearest.indices[1, 0] == 100  # scale does not matter
    assert np.all(np.diff(nearest.similarity, axis=1) <= 0)
    assert np.all(nearest.similarity[2] == 0)  # a blank image resembles nothing
    flat = mnist_train.images.reshape(60_000, -1).astype(np.float64) / 255
    brute = flat @ queries[1].ravel() / (np.linalg.norm(flat, axis=1) * np.linalg.norm(queries[1]))
    np.testing.assert_allclose(nearest.similarity[1], np.sort(brute)[::-1][:4], atol=1e-5)


def test_cached_visualisation_is_the_same(bundled, tmp_path, monkeypatch):
    monkeypatch.setenv("MECHMNISTIC_CACHE", str(tmp_path))
    model = bundled("challenge-cnn")
    objectives = fv.unit_objectives(model, "fc1", [5, 6])
    config = fv.FeatureVizConfig(steps=5)
    first = fv.visualize(model, objectives, config)
    assert list(tmp_path.rglob("*.npz"))
    second = fv.visualize(model, objectives, config)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.images, fv.optimize_inputs(model, objectives, config).images)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"steps": 0}, "steps"),
        ({"lr": -1.0}, "lr"),
        ({"init": "ones"}, "init"),
        ({"l2": float("nan")}, "l2"),
        ({"blur": 9.0}, "blur"),
        ({"jitter": 20}, "jitter"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(fv.FeatureVizError, match=message):
        fv.FeatureVizConfig(**settings)


def test_bad_targets_are_refused(bundled):
    model = bundled("challenge-cnn")
    with pytest.raises(MechMNISTicError, match="units 0..199"):
        fv.unit_objectives(model, "fc1", [200])
    with pytest.raises(MechMNISTicError, match="no layer"):
        fv.unit_objectives(model, "fc7")
    with pytest.raises(fv.FeatureVizError, match="out of range"):
        fv.optimize_inputs(model, fv.unit_objectives(model, "fc1", [0]), fv.FeatureVizConfig(init="train:99999"))


def test_nearest_examples_of_no_images_is_empty():
    nearest = fv.nearest_training_examples(np.zeros((0, 28, 28), np.float32), k=3)
    assert nearest.indices.shape == nearest.similarity.shape == (0, 3)
