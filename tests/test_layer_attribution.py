"""Gradient x activation attribution of logits to earlier layers: exact identities and the all-off check."""

import numpy as np
import pytest
import torch

from mechmnistic import hooks, run_with_cache, to_pixels
from mechmnistic.analysis.layer_attribution import layer_attribution
from mechmnistic.analysis.units import UnitError
from mechmnistic.models import Normalization, build_model, cnn_config, mlp_config
from tests.conftest import BUNDLED_MODELS


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_attributions_plus_downstream_bias_are_the_logits(bundled, mnist_test, name):
    model = bundled(name)
    images = mnist_test.images[:16]
    logits, cache = run_with_cache(model, images)
    for layer in model.layer_names[:-1]:
        result = layer_attribution(model, images, layer)
        np.testing.assert_allclose(result.logits, logits.numpy(), atol=1e-5)
        np.testing.assert_allclose(result.activations, cache[model.layout[layer].output_hook].numpy())
        assert np.abs(result.reconstruction_error).max() < 1e-4, layer
        np.testing.assert_allclose(result.per_unit.sum(axis=2) + result.downstream_bias, logits.numpy(), atol=1e-4)


def autograd_gradient(model, image, layer, k):
    """Reference: torch.autograd's gradient of logit k with respect to the layer's output."""
    seen = {}

    def leaf(out):
        seen["h"] = out.detach().requires_grad_(True)
        return seen["h"]

    with torch.enable_grad(), hooks(model, {model.layout[layer].output_hook: leaf}):
        logit = model(to_pixels(image))[0, k]
        (grad,) = torch.autograd.grad(logit, seen["h"])
    return grad[0].numpy()


@pytest.mark.parametrize("name", ["mlp-2x64", "challenge-cnn"])
def test_gradients_are_autograds(bundled, mnist_test, name):
    model = bundled(name)
    result = layer_attribution(model, mnist_test.images[:2], model.layer_names[0])
    for i in range(2):
        for k in range(model.n_classes):
            expected = autograd_gradient(model, mnist_test.images[i], model.layer_names[0], k)
            np.testing.assert_allclose(result.gradients[i, k], expected, atol=1e-6)


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_last_hidden_layer_adds_up_to_the_change_from_all_off(bundled, mnist_test, name):
    model = bundled(name)
    layer, last = model.layer_names[-2], model.layer(model.layer_names[-1])
    result = layer_attribution(model, mnist_test.images[:20], layer)
    assert result.same_piece.all()
    assert np.abs(result.completeness_gap).max() < 1e-4
    # Nothing non-linear downstream: the attributions are the logit effects, and all-off leaves the bias.
    flat = result.activations.reshape(20, -1)
    effects = flat[:, None, :] * last.weight.detach().numpy()[None]
    np.testing.assert_allclose(result.attributions.reshape(20, model.n_classes, -1), effects, atol=1e-5)
    bias = np.broadcast_to(last.bias.detach().numpy(), (20, model.n_classes))
    np.testing.assert_allclose(result.baseline_logits, bias, atol=1e-6)


@pytest.mark.parametrize("name", ["mlp-2x64", "cnn-digits"])
def test_the_all_off_check_can_fail_and_says_so(bundled, mnist_test, name):
    model = bundled(name)
    result = layer_attribution(model, mnist_test.images[:20], model.layer_names[0])
    gap = np.abs(result.completeness_gap).max(axis=1)
    assert (~result.same_piece).any()
    assert gap[~result.same_piece].max() > 1e-2, "switching the first layer off changes the logits non-linearly"
    if result.same_piece.any():
        assert gap[result.same_piece].max() < 1e-4


def hand_mlp(bias_of_layer_1):
    """784 -> 2 -> 2 -> 1: h0 = relu(pixels (0,0) and (0,1)); layers.1 = identity + bias; logit = 2 a - b + 0.5."""
    model = build_model(mlp_config(hidden_sizes=(2, 2), n_classes=1))
    with torch.no_grad():
        l0, l1, l2 = (model.layer(f"layers.{i}") for i in range(3))
        l0.weight.zero_()
        l0.bias.zero_()
        l0.weight[0, 0] = l0.weight[1, 1] = 1.0
        l1.weight.copy_(torch.eye(2))
        l1.bias.copy_(torch.tensor(bias_of_layer_1))
        l2.weight.copy_(torch.tensor([[2.0, -1.0]]))
        l2.bias.fill_(0.5)
    return model


def image_with(a, b):
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 0, 0], image[0, 0, 1] = a, b
    return image


def test_hand_built_same_piece_is_exact():
    # layers.1 units have bias +1: on both at the input and with layers.0 switched off.
    result = layer_attribution(hand_mlp([1.0, 1.0]), image_with(0.8, 0.3), "layers.0")
    np.testing.assert_allclose(result.attributions[0, 0], [1.6, -0.3], atol=1e-6)
    assert result.downstream_bias[0, 0] == pytest.approx(1.5)  # 2*1 - 1*1 + 0.5
    assert result.logits[0, 0] == pytest.approx(2.8) and result.baseline_logits[0, 0] == pytest.approx(1.5)
    assert result.same_piece[0] and result.completeness_gap[0, 0] == pytest.approx(0.0, abs=1e-6)


def test_hand_built_pattern_change_shows_the_gap():
    # layers.1 unit 0 has bias -0.5: on at the input (0.8 - 0.5), off once layers.0 is switched off.
    result = layer_attribution(hand_mlp([-0.5, 1.0]), image_with(0.8, 0.3), "layers.0")
    np.testing.assert_allclose(result.attributions[0, 0], [1.6, -0.3], atol=1e-6)
    assert result.downstream_bias[0, 0] == pytest.approx(-1.5)  # 2*(-0.5) - 1 + 0.5
    assert result.logits[0, 0] == pytest.approx(-0.2)  # 2*0.3 - 1.3 + 0.5
    assert result.baseline_logits[0, 0] == pytest.approx(-0.5)  # unit 0 off: -1 + 0.5
    assert not result.same_piece[0]
    assert result.completeness_gap[0, 0] == pytest.approx(-1.0)  # = downstream bias - baseline


def test_normalising_cnn_and_bad_layers(mnist_test):
    torch.manual_seed(3)
    model = build_model(cnn_config(conv_channels=(2, 3), fc_sizes=(5,), normalization=Normalization(0.1307, 0.3081)))
    for layer in model.layer_names[:-1]:
        result = layer_attribution(model, mnist_test.images[:4], layer)
        assert np.abs(result.reconstruction_error).max() < 1e-4
    assert result.per_unit.shape == (4, 10, 5)
    conv = layer_attribution(model, mnist_test.images[:4], "conv2")
    assert conv.attributions.shape == (4, 10, 3, 5, 5) and conv.per_unit.shape == (4, 10, 3)
    with pytest.raises(UnitError, match="logits"):
        layer_attribution(model, mnist_test.images[:1], "fc2")
    with pytest.raises(UnitError, match="no layer"):
        layer_attribution(model, mnist_test.images[:1], "fc9")
