"""Grounding through every kind of layer the layer model holds, as identities.

For piecewise-linear networks (ReLU, LeakyReLU; max pooling, overlapping or
not, and average pooling; padding and strides; batch normalisation folded
in) a unit's effective weights reproduce it exactly: ``w_eff · x + b_eff ==
pre``, and ``w_eff`` is autograd's gradient. With smooth activations (tanh,
ELU, GELU) ``w_eff`` is still the gradient, but the sum is an approximation:
``exact`` is False and the residual is really there. Attribution to a layer
and the upstream parts of a unit add up the same way.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mechmnistic.analysis.connections import upstream_contributions
from mechmnistic.analysis.conv import pooled_cell_positions, receptive_field
from mechmnistic.analysis.grounding import effective_weights
from mechmnistic.analysis.layer_attribution import layer_attribution
from mechmnistic.hooks import forward_to, to_pixels
from mechmnistic.models import build_model
from mechmnistic.models.config import Activation, Conv2d, Flatten, Linear, NetConfig, Pool, mlp_config
from mechmnistic.models.importer import build_imported, plan_import

RELU = Activation("relu")

PIECEWISE = {
    "padded-strided-avgpool-leaky": NetConfig((
        Conv2d("c1", 1, 4, 3, 1, 1), RELU, Pool("max", 2, 2),
        Conv2d("c2", 4, 6, 5, 2, 2), Activation("leaky_relu", 0.1), Pool("avg", 3, 2, 1), Flatten(),
        Linear("f1", 96, 12), RELU, Linear("f2", 12, 10))),
    "overlapping-maxpool-unpooled-conv": NetConfig((
        Conv2d("c1", 1, 4, 5, 1, 2), RELU, Pool("max", 3, 2, 1), Conv2d("c2", 4, 6, 3), RELU, Flatten(),
        Linear("f1", 6 * 12 * 12, 10))),
    "wide-conv-general-route": NetConfig((
        Conv2d("c1", 1, 8, 3), RELU, Conv2d("c2", 8, 12, 3), RELU, Pool("max", 2, 2), Flatten(),
        Linear("f1", 12 * 12 * 12, 10))),
    "no-activation": NetConfig((
        Conv2d("c1", 1, 4, 3, 1, 1), Pool("max", 2, 2), Conv2d("c2", 4, 4, 3), Flatten(), Linear("f", 576, 10))),
    "leaky-mlp": mlp_config((20, 16), activation=Activation("leaky_relu", 0.2)),
}
SMOOTH = {
    "tanh-avgpool-cnn": NetConfig((
        Conv2d("c1", 1, 4, 3), Activation("tanh"), Pool("avg", 2, 2), Flatten(), Linear("f1", 4 * 13 * 13, 12),
        Activation("tanh"), Linear("f2", 12, 10))),
    "elu-gelu-cnn": NetConfig((
        Conv2d("c1", 1, 4, 3), Activation("elu"), Pool("max", 2, 2), Flatten(), Linear("f1", 4 * 13 * 13, 12),
        Activation("gelu"), Linear("f2", 12, 10))),
}


def _model(config: NetConfig):
    torch.manual_seed(0)
    model = build_model(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))  # biases away from zero: every unit is grounded
    return model


@pytest.fixture(scope="module")
def images(mnist_test):
    return mnist_test.images[:6]


def _autograd_gradient(model, layer: str, image: np.ndarray, unit: int, position) -> np.ndarray:
    pixels = to_pixels(image[None]).clone().requires_grad_(True)
    pre = forward_to(model, pixels, f"{layer}.pre")
    value = pre[0, unit, position[0], position[1]] if pre.dim() == 4 else pre[0, unit]
    value.backward()
    return pixels.grad[0].numpy()


def _check_gradients(model, layer: str, images: np.ndarray, grounding) -> None:
    for unit in (0, grounding.units[-1]):
        column = int(np.flatnonzero(grounding.units == unit)[0])
        position = None if grounding.positions is None else grounding.positions[1, column]
        np.testing.assert_allclose(grounding.w_eff[1, column], _autograd_gradient(model, layer, images[1], unit,
                                                                                  position), atol=1e-5)


@pytest.mark.parametrize("name", PIECEWISE)
def test_piecewise_linear_networks_are_grounded_exactly(name, images):
    model = _model(PIECEWISE[name])
    assert model.layout.piecewise_linear
    for layer in model.layer_names:
        grounding = effective_weights(model, layer, images)
        assert grounding.exact
        np.testing.assert_allclose(grounding.reconstruct(images), grounding.pre, atol=1e-4)
        _check_gradients(model, layer, images, grounding)
    for layer in model.layout.hidden_names:
        result = layer_attribution(model, images[:3], layer)
        assert np.abs(result.reconstruction_error).max() < 1e-4


@pytest.mark.parametrize("name", SMOOTH)
def test_smooth_networks_are_the_gradient_with_a_residual(name, images):
    model = _model(SMOOTH[name])
    assert not model.layout.piecewise_linear
    first, deeper = model.layer_names[0], model.layer_names[1:]
    assert effective_weights(model, first, images).exact  # nothing smooth below the first layer
    for layer in deeper:
        grounding = effective_weights(model, layer, images)
        assert not grounding.exact
        assert np.abs(grounding.residual(images)).max() > 1e-3, "an approximation, and it shows"
        _check_gradients(model, layer, images, grounding)


def test_a_padded_conv_units_weights_stay_in_its_receptive_field(images):
    model = _model(PIECEWISE["padded-strided-avgpool-leaky"])
    grounding = effective_weights(model, "c2", images, units=[2], positions=[[0, 0]])
    box = receptive_field(model, "c2", (0, 0))
    assert box[0] < 0 and box[1] < 0, "a corner cell's field reaches into the padding"
    inside = np.zeros((28, 28), bool)
    r0, c0, r1, c1 = np.clip(box, 0, 27)
    inside[r0 : r1 + 1, c0 : c1 + 1] = True
    weights = grounding.w_eff[:, 0]
    assert np.abs(weights[:, ~inside]).max() == 0 and np.abs(weights[:, inside]).max() > 0


def test_upstream_parts_of_padded_and_strided_conv_units_add_up(images):
    model = _model(PIECEWISE["padded-strided-avgpool-leaky"])
    for position in ((0, 0), (3, 5), None):
        parts = upstream_contributions(model, "c2", 4, images[2], position)
        assert parts.contributions.sum() + parts.bias == pytest.approx(parts.pre, abs=1e-4)
        if position == (0, 0):  # the padding's cells read nothing and are left out
            assert len(parts.contributions) < 4 * 5 * 5


def test_pooled_cells_point_into_the_map(images):
    model = _model(PIECEWISE["padded-strided-avgpool-leaky"])
    for layer in ("c1", "c2"):
        cells = pooled_cell_positions(model, layer, images[0])
        unit_layer = model.layout[layer]
        assert cells.shape == (unit_layer.n_units, unit_layer.pooled_side, unit_layer.pooled_side, 2)
        assert cells.min() >= 0 and cells.max() < unit_layer.map_side


def test_folded_batchnorm_is_grounded_exactly(images):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(4 * 14 * 14, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))
    with torch.no_grad():  # running statistics and affine parameters away from their defaults
        for bn in (module[1], module[6]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    module.eval()
    answers = {"activation": "relu", "pool": "max2", "padding": "1", "stride": "1"}
    model = build_imported(module.state_dict(), plan_import(module.state_dict(), "bn.pt"), "bn", normalization="none",
                           **answers)
    with torch.no_grad():  # the folded network is the network
        pixels = to_pixels(images)
        torch.testing.assert_close(model(pixels), module(pixels.unsqueeze(1)), atol=1e-5, rtol=0)
    for layer in model.layer_names:
        grounding = effective_weights(model, layer, images)
        np.testing.assert_allclose(grounding.reconstruct(images), grounding.pre, atol=1e-4)
