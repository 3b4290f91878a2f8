"""Hadamard embeddings: they sum, with the effective bias, exactly to the pre-activation."""

import numpy as np
import pytest
import torch

from mechmnistic import run_with_cache
from mechmnistic.analysis.embeddings import (
    first_layer_effective_weights,
    hadamard_embeddings,
    hadamard_embeddings_pairs,
)
from mechmnistic.errors import MechMNISTicError
from mechmnistic.models import Normalization, build_model, mlp_config


def test_first_layer_identity_on_the_real_model(bundled, mnist_test):
    model = bundled("mlp-1x64")
    images = mnist_test.images[:200]
    emb = hadamard_embeddings(model, "layers.0", images)
    _, cache = run_with_cache(model, images, names=["layers.0.pre"])
    assert emb.maps.shape == (200, 64, 28, 28)
    np.testing.assert_allclose(emb.pre_activation, cache["layers.0.pre"].numpy(), atol=1e-4)
    no_ink = np.broadcast_to(images[:, None] == 0, emb.maps.shape)
    assert np.all(emb.maps[no_ink] == 0), "no ink, no contribution"


def test_normalisation_is_folded_into_pixel_space():
    torch.manual_seed(0)
    model = build_model(mlp_config(hidden_sizes=(5,), normalization=Normalization(0.1307, 0.3081)))
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    emb = hadamard_embeddings(model, "layers.0", images, units=np.array([4, 1]))
    _, cache = run_with_cache(model, images, names=["layers.0.pre"])
    np.testing.assert_allclose(emb.pre_activation, cache["layers.0.pre"].numpy()[:, [4, 1]], atol=1e-4)


def test_hand_set_weights_give_the_worked_out_embedding():
    model = build_model(mlp_config(hidden_sizes=(1,)))
    with torch.no_grad():
        model.get_submodule('layers.0').weight.zero_()
        model.get_submodule('layers.0').weight[0, 28 * 3 + 4] = 2.0
        model.get_submodule('layers.0').bias.fill_(-0.5)
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 3, 4] = 0.25
    emb = hadamard_embeddings(model, "layers.0", image)
    assert emb.maps[0, 0, 3, 4] == pytest.approx(0.5) and emb.maps.sum() == pytest.approx(0.5)
    assert emb.pre_activation[0, 0] == pytest.approx(0.0)
    w, b = first_layer_effective_weights(model)
    assert w.shape == (1, 28, 28) and b[0] == pytest.approx(-0.5)


@pytest.mark.parametrize(("name", "layer"), [("mlp-2x64", "layers.1"), ("mlp-2x64", "layers.2"),
                                           ("cnn-digits", "conv1"), ("cnn-digits", "conv2"),
                                           ("challenge-cnn", "fc1"), ("challenge-cnn", "fc2")])
def test_deeper_layers_and_cnn_units_sum_to_the_pre_activation(bundled, mnist_test, name, layer):
    model = bundled(name)
    images = mnist_test.images[:20]
    emb = hadamard_embeddings(model, layer, images)
    _, cache = run_with_cache(model, images, names=[f"{layer}.pre"])
    pre = cache[f"{layer}.pre"]
    if pre.dim() == 4:  # a conv channel is embedded at its maximum
        pre = pre.flatten(2).max(dim=2).values
        assert emb.positions.shape == (20, pre.shape[1], 2)
    np.testing.assert_allclose(emb.pre_activation, pre.numpy(), atol=1e-4)
    no_ink = np.broadcast_to(images[:, None] == 0, emb.maps.shape)
    assert np.all(emb.maps[no_ink] == 0), "no ink, no contribution"


def test_closed_form_first_layer_agrees_with_grounding(bundled, mnist_test):
    from mechmnistic.analysis.grounding import effective_weights

    model = bundled("mlp-2x64")
    images = mnist_test.images[:5]
    emb = hadamard_embeddings(model, "layers.0", images, units=np.array([3, 60]))
    grounded = effective_weights(model, "layers.0", images, units=[3, 60])
    np.testing.assert_allclose(emb.maps, grounded.embeddings(images), atol=1e-7)
    np.testing.assert_allclose(emb.bias, grounded.b_eff, atol=1e-6)


def test_fc_units_have_no_positions(bundled, mnist_test):
    with pytest.raises(MechMNISTicError, match="no positions"):
        hadamard_embeddings(bundled("mlp-1x64"), "layers.0", mnist_test.images[:2], units=[0],
                            positions=np.array([[1, 1]]))


@pytest.mark.parametrize(("name", "layer"), [("mlp-1x64", "layers.0"), ("mlp-2x64", "layers.1"),
                                           ("cnn-digits", "conv2"), ("challenge-cnn", "fc1")])
def test_pairs_are_the_matching_cells_of_the_full_grid(bundled, mnist_test, name, layer):
    model = bundled(name)
    images = mnist_test.images[:6]
    grid = hadamard_embeddings(model, layer, images, units=[0, 3, 5])
    image_index, unit_column = np.array([4, 0, 4, 2, 5]), np.array([0, 2, 1, 1, 0])
    units = np.array([0, 3, 5])[unit_column]
    pairs = hadamard_embeddings_pairs(model, layer, images, units, image_index)
    np.testing.assert_allclose(pairs.maps, grid.maps[image_index, unit_column], atol=1e-6)
    np.testing.assert_allclose(pairs.bias, grid.bias[image_index, unit_column], atol=1e-6)
    if grid.positions is None:
        assert pairs.positions is None
    else:
        np.testing.assert_array_equal(pairs.positions, grid.positions[image_index, unit_column])


def test_pairs_refuse_bad_indices(bundled, mnist_test):
    model = bundled("mlp-1x64")
    with pytest.raises(MechMNISTicError, match="one per unit"):
        hadamard_embeddings_pairs(model, "layers.0", mnist_test.images[:3], np.array([0, 1]), np.array([0, 3]))
    with pytest.raises(MechMNISTicError, match="one per unit"):
        hadamard_embeddings_pairs(model, "layers.0", mnist_test.images[:3], np.array([0, 1]), np.array([0]))
