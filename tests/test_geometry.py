"""Activation geometry: PCA checked against scikit-learn on the real data, and every direction identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from mechmnistic import run_with_cache
from mechmnistic.analysis import geometry as g
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.errors import MechMNISTicError
from mechmnistic.hooks import forward_to
from mechmnistic.models import build_model, cnn_config, mlp_config


@pytest.fixture(scope="module")
def challenge_fc1(bundled):
    return g.layer_pca(bundled("challenge-cnn"), "fc1")


# ------------------------------------------------------------------------------ PCA
def test_pca_of_all_60000_points_matches_sklearn(bundled, challenge_fc1):
    values = layer_activations(bundled("challenge-cnn"), "fc1").values.astype(np.float64)
    reference = PCA(n_components=10, svd_solver="full").fit(values)
    fit = challenge_fc1
    assert fit.scores.shape == (60_000, 10) and fit.pca.n_samples_ == 60_000
    np.testing.assert_allclose(fit.pca.components_, reference.components_, atol=1e-7)  # same signs too
    np.testing.assert_allclose(fit.pca.explained_variance_, reference.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(fit.pca.explained_variance_ratio_, reference.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_allclose(fit.pca.mean_, reference.mean_, atol=1e-9)
    np.testing.assert_allclose(fit.scores, reference.transform(values), atol=2e-4)
    np.testing.assert_allclose(fit.pca.feature_std_, values.std(axis=0, ddof=1), rtol=1e-9, atol=1e-12)


def test_the_challenge_network_is_two_dimensional_at_fc1(challenge_fc1):
    """The write-up's observation: two components explain about 90% of fc1's variance."""
    assert challenge_fc1.pca.explained_variance_ratio_[:2].sum() > 0.85
    assert challenge_fc1.axis_title(0).startswith("PC1 (")


def test_batched_fit_equals_one_array_and_sklearn():
    data = np.random.default_rng(0).normal(size=(1000, 12)) @ np.diag(np.arange(1, 13)) + 5.0
    whole = g.ActivationPCA(4).fit(data)
    streamed = g.ActivationPCA(4).fit_batches(np.array_split(data, 7))
    reference = PCA(4, svd_solver="full").fit(data)
    for fitted in (whole, streamed):
        np.testing.assert_allclose(fitted.components_, reference.components_, atol=1e-10)
        np.testing.assert_allclose(fitted.explained_variance_, reference.explained_variance_, rtol=1e-10)
        np.testing.assert_allclose(fitted.transform(data), reference.transform(data), atol=1e-9)
    restored = g.ActivationPCA.from_state(streamed.state())
    np.testing.assert_array_equal(restored.transform(data), streamed.transform(data))
    assert g.ActivationPCA(4).fit(data) is not None and g.ActivationPCA(None).fit(data).n_components_ == 12


@pytest.mark.parametrize("k", [0, 13, -1])
def test_impossible_component_counts_are_refused(k):
    with pytest.raises(g.GeometryError, match="n_components"):
        g.ActivationPCA(k).fit(np.random.default_rng(0).normal(size=(50, 12)))


def test_conv_space_is_the_pooled_maps_flattened(bundled, mnist_train):
    model = bundled("cnn-digits")
    space = g.activation_space(model, "conv2")
    assert space.shape == (16, 5, 5) and space.dim == 400 and space.hook == "conv2.pool"
    _, cache = run_with_cache(model, mnist_train.images[:50], names=["conv2.pool", "fc1.pre"])
    acts = g.space_activations(model, space, mnist_train.images[:50])
    np.testing.assert_array_equal(acts, cache["conv2.pool"].flatten(1).numpy())
    # It is exactly what fc1 reads.
    fc1 = model.layer("fc1")
    np.testing.assert_allclose(acts @ fc1.weight.detach().numpy().T + fc1.bias.detach().numpy(),
                               cache["fc1.pre"].numpy(), atol=1e-4)
    assert space.units()[[0, 24, 25, 399]].tolist() == [0, 0, 1, 15]
    assert space.coordinate_names()[26] == "c1 (0,1)"


def test_streamed_conv_pca_describes_all_its_points(bundled, mnist_train):
    model = bundled("cnn-digits")
    fit = g.layer_pca(model, "conv2", n_components=5)
    some = g.space_activations(model, fit.space, mnist_train.images[:300])
    np.testing.assert_allclose(fit.scores[:300], fit.pca.transform(some), atol=2e-4)
    # Over all 60,000 points the scores are centred with the fitted variances.
    np.testing.assert_allclose(fit.scores.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(fit.scores.astype(np.float64).var(axis=0, ddof=1), fit.pca.explained_variance_,
                               rtol=1e-4)


def test_too_large_spaces_and_unknown_layers_are_refused():
    model = build_model(cnn_config(conv_channels=(32,), kernel_sizes=(3,), fc_sizes=(10,)))
    with pytest.raises(g.GeometryError, match="too many"):
        g.activation_space(model, "conv1")  # 32 x 13 x 13 = 5408 coordinates
    with pytest.raises(MechMNISTicError, match="no layer 'fc9'"):
        g.activation_space(model, "fc9")


def test_forward_to_stops_at_the_hook_and_matches_the_full_run(bundled, mnist_train):
    model = bundled("challenge-cnn")
    pixels = torch.from_numpy(mnist_train.images[:20].astype(np.float32) / 255)
    _, cache = run_with_cache(model, pixels, names=["conv1.pool", "fc1.post"])
    with torch.no_grad():
        for name in ("conv1.pool", "fc1.post"):
            torch.testing.assert_close(forward_to(model, pixels, name), cache[name])


# ----------------------------------------------------------------------- directions
def test_logit_difference_is_exact_at_the_last_hidden_layer(bundled, mnist_test, challenge_fc1):
    model = bundled("challenge-cnn")
    direction = g.build_direction(model, challenge_fc1, "logit:1-0")
    assert direction.exact and direction.kind == "logit"
    logits, cache = run_with_cache(model, mnist_test.images[:500], names=["fc1.post"])
    predicted = cache["fc1.post"].double().numpy() @ direction.vector + direction.offset
    np.testing.assert_allclose(predicted, (logits[:, 1] - logits[:, 0]).double().numpy(), atol=1e-4)
    fc2 = model.layer("fc2")
    np.testing.assert_allclose(direction.vector, (fc2.weight[1] - fc2.weight[0]).detach().double().numpy())


def test_any_pair_of_ten_classes(bundled, mnist_test):
    model = bundled("mlp-2x64")
    direction = g.logit_difference_direction(model, "layers.1", 3, 8)
    logits, cache = run_with_cache(model, mnist_test.images[:300], names=["layers.1.post"])
    np.testing.assert_allclose(cache["layers.1.post"].double().numpy() @ direction.vector + direction.offset,
                               (logits[:, 3] - logits[:, 8]).double().numpy(), atol=1e-4)
    at_output = g.logit_difference_direction(model, "layers.2", 3, 8)
    assert at_output.vector.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, -1, 0] and at_output.offset == 0
    with pytest.raises(g.GeometryError, match="two different classes"):
        g.logit_difference_direction(model, "layers.1", 4, 4)
    with pytest.raises(g.GeometryError, match="class 10 does not exist"):
        g.logit_difference_direction(model, "layers.1", 10, 0)


def test_far_from_the_output_it_is_the_mean_gradient_golden():
    """Two ReLU layers that are always active make the network linear: the mean gradient is W3[a]-W3[b] @ W2."""
    torch.manual_seed(0)
    model = build_model(mlp_config(hidden_sizes=(4, 3), n_classes=3))
    with torch.no_grad():
        for name in model.layer_names:
            layer = model.get_submodule(name)
            layer.weight.copy_(torch.rand_like(layer.weight) * 0.1)
            layer.bias.fill_(1.0)  # inputs are >= 0, so every pre-activation is positive
    direction = g.logit_difference_direction(model, "layers.0", 2, 0)
    w2, w3 = model.get_submodule("layers.1").weight.double(), model.get_submodule("layers.2").weight.double()
    expected = ((w3[2] - w3[0]) @ w2).detach().numpy()
    assert not direction.exact
    np.testing.assert_allclose(direction.vector, expected, atol=1e-6)


def test_fitted_direction_identities(bundled, challenge_fc1):
    """Along the fitted component it moves exactly 1; in the plane it is the 2-D least-squares line."""
    fit = challenge_fc1
    direction = g.build_direction(bundled("challenge-cnn"), fit, "fit:pc1=-30..-3,pc2=2..40@pc2")
    group = (fit.scores[:, 0] >= -30) & (fit.scores[:, 0] <= -3) & (fit.scores[:, 1] >= 2) & (fit.scores[:, 1] <= 40)
    assert direction.group_size == group.sum() > 1000
    along, other = g.project_vector(fit, direction.vector, (1, 0))
    assert along == pytest.approx(1.0, abs=1e-6)
    slope = np.polyfit(fit.scores[group, 1].astype(np.float64), fit.scores[group, 0].astype(np.float64), 1)[0]
    assert other == pytest.approx(slope, abs=1e-4)
    arrow = g.plane_arrow(fit, direction, (0, 1), scale=1.0)
    assert arrow.start[1] == pytest.approx(fit.scores[group, 1].min(), abs=1e-3)
    assert arrow.end[1] == pytest.approx(fit.scores[group, 1].max(), abs=1e-3)


def test_fit_regression_recovers_a_known_line():
    t = np.linspace(-2, 3, 40)
    acts = 1.5 + t[:, None] * np.array([2.0, -1.0, 0.0])
    slope, intercept = g.fit_regression(acts, t)
    np.testing.assert_allclose(slope, [2, -1, 0], atol=1e-12)
    np.testing.assert_allclose(intercept, [1.5, 1.5, 1.5], atol=1e-12)
    with pytest.raises(g.GeometryError, match="same score"):
        g.fit_regression(acts, np.ones(40))


def test_template_arrow_ends_at_the_template_point(bundled, challenge_fc1):
    """Training image 6 (the challenge's clue) lands where its own scatter point is."""
    fit = challenge_fc1
    model = bundled("challenge-cnn")
    arrow = g.plane_arrow(fit, g.build_direction(model, fit, "template:train:6"), (0, 1), scale=1.0)
    assert arrow.start == (0.0, 0.0)
    np.testing.assert_allclose(arrow.end, fit.scores[6, :2], atol=1e-3)
    assert fit.scores[6, 0] == pytest.approx(fit.scores[:, 0].max())  # the furthest-out point of its arm
    inverse = g.build_direction(model, fit, "template:1-train:6")
    assert inverse.name == "1 - train:6" and inverse.spec == "template:1-train:6"


def test_unit_arrows_and_projections(challenge_fc1, bundled, mnist_train):
    fit = challenge_fc1
    pc2 = g.build_direction(bundled("challenge-cnn"), fit, "pc2")
    arrow = g.plane_arrow(fit, pc2, (0, 1), scale=3.0)
    assert arrow.end == pytest.approx((0.0, 3.0), abs=1e-9) and arrow.in_plane == pytest.approx(1.0)
    assert g.plane_arrow(fit, pc2, (0, 2), scale=3.0).end == pytest.approx((0.0, 0.0), abs=1e-9)
    points = layer_activations(bundled("challenge-cnn"), "fc1").values[:5]
    for i in range(5):
        np.testing.assert_allclose(g.project_point(fit, points[i], (0, 1)), fit.scores[i, :2], atol=1e-3)


def test_loadings_are_std_weighted_unit_directions(bundled, challenge_fc1):
    fit = challenge_fc1
    directions = g.build_directions(bundled("challenge-cnn"), fit, ["pc1", "logit:1-0"])
    loadings = g.weighted_loadings(fit, directions)
    assert loadings.values.shape == (200, 2) and loadings.directions == ("PC1", "logit 1 − logit 0")
    logit = directions[1]
    np.testing.assert_allclose(loadings.values[:, 1] * logit.norm, fit.pca.feature_std_ * logit.vector)
    order = loadings.order(0)
    assert loadings.values[order[0], 0] == loadings.values[:, 0].max()
    by_size = loadings.order(1, absolute=True)
    assert abs(loadings.values[by_size[0], 1]) == np.abs(loadings.values[:, 1]).max()
    dead = fit.pca.feature_std_ == 0
    assert dead.sum() > 50 and np.all(loadings.values[dead] == 0)  # dead units load on nothing


@pytest.mark.parametrize(
    "spec, message",
    [
        ("pc0", "only PC1..PC10"),
        ("pc11", "only PC1..PC10"),
        ("logit:1-1", "two different classes"),
        ("logit:2-0", "class 2 does not exist"),
        ("template:train:60000", "out of range"),
        ("template:nope", "use train:N, test:N or unit:LAYER:N"),
        ("template:unit:fc1:200", "out of range"),
        ("template:/etc/passwd.png", "use train:N"),
        ("fit:pc1=0..1", "unknown direction"),
        ("fit:pc1=5..1@pc2", "empty"),
        ("fit:pc1=a..b@pc2", "bad interval"),
        ("fit:pc1=1000..2000@pc2", "only 0 point"),
        ("fit:pc1=-5..5@pcx", "must name a component"),
        ("<script>", "unknown direction"),
    ],
)
def test_bad_specs_give_clear_errors(bundled, challenge_fc1, spec, message):
    with pytest.raises(g.GeometryError, match=message):
        g.build_direction(bundled("challenge-cnn"), challenge_fc1, spec)


def test_box_parsing_round_trips():
    box = g.parse_box("pc1=-5..0.5,pc3=1e-3..2")
    assert box.limits == {0: (-5.0, 0.5), 2: (0.001, 2.0)}
    assert g.parse_box(box.text()).limits == box.limits
