"""One unit over a split (``analysis.unit_behaviour``): its distribution, top examples and similar units; and what
it reads and writes (``connections``, ``embeddings``) for the hand-built network below."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mechmnistic import run_with_cache
from mechmnistic.analysis.connections import incoming_weights, outgoing_weights
from mechmnistic.analysis.embeddings import first_layer_effective_weights
from mechmnistic.analysis.unit_behaviour import (
    activation_distribution,
    activation_values,
    distribution_from_values,
    similar_units,
    top_examples,
    top_indices,
)
from mechmnistic.analysis.units import UnitError
from mechmnistic.models import Normalization, build_model, cnn_config, mlp_config
from mechmnistic.models.config import Activation


@pytest.fixture
def tiny():
    """784 -> 3 -> 2 -> 4 with hand-set weights."""
    model = build_model(mlp_config(hidden_sizes=(3, 2), n_classes=4))
    with torch.no_grad():
        first, second, last = (model.get_submodule(f"layers.{i}") for i in range(3))
        first.weight.zero_()
        first.weight[0, 0] = 1.0  # pixel (0, 0)
        first.weight[1, 0] = 2.0  # the same direction as unit 0, twice as strong
        first.weight[2, 27] = -1.0  # pixel (0, 27)
        first.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
        second.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]]))
        second.bias.copy_(torch.tensor([0.5, -0.5]))
        last.weight.copy_(torch.arange(8.0).reshape(4, 2))
    return model


def test_first_layer_input_weights_are_the_pixel_map(tiny):
    weights, bias = first_layer_effective_weights(tiny, np.array([2]))
    assert weights.shape == (1, 28, 28)
    assert weights[0, 0, 27] == -1.0 and np.count_nonzero(weights) == 1
    assert bias[0] == pytest.approx(0.3)


def test_normalisation_is_folded_into_first_layer_weights():
    torch.manual_seed(0)
    model = build_model(mlp_config(hidden_sizes=(4,), normalization=Normalization(0.5, 0.25)))
    pixels = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    _, cache = run_with_cache(model, pixels, names=["layers.0.pre"])
    weights, bias = first_layer_effective_weights(model, np.array([1]))
    np.testing.assert_allclose((pixels * weights[0]).sum((1, 2)) + bias[0], cache["layers.0.pre"][:, 1], atol=1e-4)


def test_deeper_input_weights_and_output_weights(tiny):
    deeper = incoming_weights(tiny, "layers.1", 0)
    assert deeper.sources.layer == "layers.0"
    np.testing.assert_array_equal(deeper.weights, [1.0, 2.0, 3.0])
    assert deeper.bias == 0.5
    out = outgoing_weights(tiny, "layers.0", 2)
    assert out.target_layer == "layers.1" and not tiny.layout[out.target_layer].is_final
    np.testing.assert_array_equal(out.weights, [3.0, 0.5])
    to_classes = outgoing_weights(tiny, "layers.1", 1)
    assert to_classes.target_layer == "layers.2" and tiny.layout[to_classes.target_layer].is_final
    np.testing.assert_array_equal(to_classes.weights, [1.0, 3.0, 5.0, 7.0])


def test_similar_units_rank_by_cosine_of_input_weights(tiny):
    units, similarity = similar_units(tiny, "layers.0", 0, count=5)
    assert units.tolist() == [1, 2], "count is capped at the other units, self excluded"
    np.testing.assert_allclose(similarity, [1.0, 0.0], atol=1e-6)


def test_similar_units_on_the_real_model_match_a_direct_computation(bundled):
    model = bundled("mlp-1x64")
    w = model.get_submodule("layers.0").weight.detach().numpy().astype(np.float64)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    expected = np.delete(np.argsort(-(w @ w[7])), 0)[:5]  # the first is unit 7 itself
    units, similarity = similar_units(model, "layers.0", 7)
    assert units.tolist() == expected.tolist()
    np.testing.assert_allclose(similarity, (w @ w[7])[expected], rtol=1e-5)
    assert np.all(np.diff(similarity) <= 0)


def test_similar_conv_channels_compare_all_their_kernels(bundled):
    model = bundled("cnn-digits")
    w = model.get_submodule("conv2").weight.detach().numpy().reshape(16, -1).astype(np.float64)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    expected = np.delete(np.argsort(-(w @ w[3])), 0)[:4]
    units, similarity = similar_units(model, "conv2", 3, count=4)
    assert units.tolist() == expected.tolist()
    np.testing.assert_allclose(similarity, (w @ w[3])[expected], rtol=1e-5)
    with pytest.raises(UnitError):
        similar_units(model, "fc2", 0)  # the logits are not hidden units


@pytest.mark.parametrize(
    ("layer", "unit"),
    [("layers.0", 3), ("layers.0", -1), ("layers.0", 1.0), ("layers.0", "0"), ("layers.0", True), ("layers.2", 0),
     ("nope", 0), ("", 0)],
)
def test_bad_units_are_refused_with_a_clear_error(tiny, layer, unit):
    for view in (activation_distribution, top_examples, similar_units):
        with pytest.raises(UnitError):
            view(tiny, layer, unit)


def test_unit_views_take_any_hidden_layer_and_refuse_the_logits(tiny):
    assert tiny.layout.hidden_names == ("layers.0", "layers.1")
    cnn = build_model(cnn_config())
    assert similar_units(cnn, "conv1", 0)[0].size > 0, "a conv channel is a unit like any other"
    with pytest.raises(UnitError, match="hidden"):
        similar_units(cnn, "fc2", 0)


def test_distribution_on_hand_values():
    pre = np.array([-1.0, 0.0, 0.5, 2.0, 3.0, -0.25])
    labels = np.array([0, 0, 1, 1, 1, 2])
    dist = distribution_from_values(pre, np.maximum(pre, 0), labels, n_classes=3, bins=4)
    assert dist.firing_fraction == pytest.approx(3 / 6)
    assert dist.mean == pytest.approx(5.5 / 6) and dist.max == 3.0
    assert dist.std == pytest.approx(np.maximum(pre, 0).std())
    np.testing.assert_allclose(dist.firing_by_class, [0.0, 1.0, 0.0])
    assert dist.n_images == 6 and 0.0 in dist.edges
    # Zero is an edge, so the silent images (pre <= 0) and the firing ones never share a bin;
    # numpy puts 0.0 itself in the bin to its right, which starts at 0.
    silent = dist.counts[dist.edges[:-1] < 0].sum()
    assert silent == 2 and dist.counts[dist.edges[:-1] >= 0].sum() == 4
    assert dist.edges[0] <= pre.min() and dist.edges[-1] > pre.max()


def test_distribution_of_a_constant_unit():
    dist = distribution_from_values(np.zeros(5), np.zeros(5), np.zeros(5, dtype=int), n_classes=2)
    assert dist.firing_fraction == 0 and dist.n_images == 5 and dist.max == 0


def test_activation_distribution_matches_a_fresh_forward_pass(bundled, mnist_train):
    model = bundled("mlp-1x64")
    _, cache = run_with_cache(model, mnist_train.images, names=["layers.0.post"])
    post = cache["layers.0.post"][:, 5].numpy()
    dist = activation_distribution(model, "layers.0", 5)
    assert dist.n_images == 60_000
    assert dist.firing_fraction == pytest.approx((post > 0).mean())
    assert dist.mean == pytest.approx(post.mean(), rel=1e-4) and dist.max == pytest.approx(post.max(), rel=1e-5)
    fives = mnist_train.labels == 5
    assert dist.firing_by_class[5] == pytest.approx((post[fives] > 0).mean())


def test_top_indices_are_the_largest_highest_first_ties_by_index():
    pre = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 0.0], [3.0, 5.0]])
    np.testing.assert_array_equal(top_indices(pre, 3), [[1, 3, 2], [0, 1, 3]])
    np.testing.assert_array_equal(top_indices(pre, 4)[0], [1, 3, 2, 0])
    for k in (0, 5):
        with pytest.raises(UnitError):
            top_indices(pre, k)


def test_top_indices_agree_with_a_full_sort():
    pre = np.random.default_rng(0).normal(size=(1000, 7)).astype(np.float32)
    expected = np.argsort(-pre, axis=0, kind="stable")[:50].T
    np.testing.assert_array_equal(top_indices(pre, 50), expected)


def test_top_examples_on_the_real_model(bundled, mnist_train):
    model = bundled("mlp-1x64")
    top = top_examples(model, "layers.0", 9, k=20)
    _, cache = run_with_cache(model, mnist_train.images[top.indices], names=["layers.0.pre", "layers.0.post"])
    np.testing.assert_allclose(top.pre, cache["layers.0.pre"][:, 9], atol=1e-5)
    np.testing.assert_allclose(top.activations, cache["layers.0.post"][:, 9], atol=1e-5)
    np.testing.assert_array_equal(top.labels, mnist_train.labels[top.indices])
    assert np.all(np.diff(top.pre) <= 0)
    rest = np.ones(60_000, bool)
    rest[top.indices] = False
    _, everything = run_with_cache(model, mnist_train.images[rest], names=["layers.0.pre"])
    assert everything["layers.0.pre"][:, 9].max() <= top.pre[-1] + 1e-6


def test_a_tanh_unit_is_described_by_tanh_not_by_relu(tmp_path, monkeypatch, mnist_train):
    """Numbers "of the activation" use the layer's own function: a tanh unit never reports a maximum above 1."""
    monkeypatch.setenv("MECHMNISTIC_CACHE", str(tmp_path))  # a throwaway model's activations stay out of the cache
    torch.manual_seed(0)
    model = build_model(mlp_config(hidden_sizes=(8,), activation=Activation("tanh")))
    _, cache = run_with_cache(model, mnist_train.images, names=["layers.0.pre", "layers.0.post"])
    pre, post = cache["layers.0.pre"][:, 3].numpy(), cache["layers.0.post"][:, 3].numpy()
    np.testing.assert_allclose(post, np.tanh(pre), atol=1e-6)
    dist = activation_distribution(model, "layers.0", 3)
    assert dist.max == pytest.approx(post.max(), rel=1e-5) and dist.max <= 1.0
    assert dist.mean == pytest.approx(post.mean(), rel=1e-4, abs=1e-6)
    assert dist.firing_fraction == pytest.approx((pre > 0).mean())
    top = top_examples(model, "layers.0", 3, k=10)
    np.testing.assert_allclose(top.activations, np.tanh(top.pre), atol=1e-6)
    np.testing.assert_allclose(activation_values(model.layout["layers.0"].activation, pre), post, atol=1e-6)


def test_a_conv_channel_is_described_at_its_maximum(bundled, mnist_train):
    model = bundled("cnn-digits")
    _, cache = run_with_cache(model, mnist_train.images[:2000], names=["conv2.pre"])
    peak = cache["conv2.pre"][:, 5].amax(dim=(1, 2)).numpy()
    top = top_examples(model, "conv2", 5, k=5)
    assert top.pre[0] >= peak.max() - 1e-4, "the top example over all 60,000 beats the first 2,000's best"
    np.testing.assert_allclose(top.activations, np.maximum(top.pre, 0), atol=1e-6)
    dist = activation_distribution(model, "conv2", 5)
    assert dist.n_images == 60_000 and dist.max == pytest.approx(top.activations[0], rel=1e-5)
