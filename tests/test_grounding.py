"""Exact input-space grounding: w_eff · x + b_eff is every unit's pre-activation, and w_eff is its gradient."""

import numpy as np
import pytest
import torch

from mechmnistic import hooks, run_with_cache, to_pixels
from mechmnistic.analysis.activations import compute_layer_activations
from mechmnistic.analysis.grounding import effective_weights, effective_weights_pairs
from mechmnistic.analysis.units import UnitError
from mechmnistic.errors import MechMNISTicError
from mechmnistic.models import Normalization, build_model, cnn_config, mlp_config
from tests.conftest import BUNDLED_MODELS


def unit_pre(model, layer, images):
    """The forward pass's pre-activation per unit: FC ``[N, U]``; conv channel maxima ``[N, C]``."""
    _, cache = run_with_cache(model, images, names=[f"{layer}.pre"])
    pre = cache[f"{layer}.pre"]
    return (pre.flatten(2).max(dim=2).values if pre.dim() == 4 else pre).numpy()


def autograd_w(model, layer, image, unit, position=None):
    """Reference: torch.autograd's gradient of one unit's pre-activation with respect to the pixels."""
    x = to_pixels(image).requires_grad_(True)
    seen = {}
    with hooks(model, {f"{layer}.pre": lambda out: seen.__setitem__("pre", out)}):
        model(x)
    value = seen["pre"][0, unit]
    if value.dim() == 2:
        value = value[tuple(position)]
    (grad,) = torch.autograd.grad(value, x)
    return grad[0].numpy()


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_identity_for_every_unit_of_every_layer(bundled, mnist_test, name):
    model = bundled(name)
    images = mnist_test.images[:12]
    for layer in model.layer_names:
        g = effective_weights(model, layer, images)
        n_units = g.units.size
        assert g.w_eff.shape == (12, n_units, 28, 28) and g.b_eff.shape == (12, n_units)
        np.testing.assert_allclose(g.pre, unit_pre(model, layer, images), atol=1e-5, err_msg=layer)
        np.testing.assert_allclose(g.reconstruct(images), g.pre, atol=1e-4, err_msg=layer)


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_effective_weights_are_the_gradient(bundled, mnist_test, name):
    model = bundled(name)
    rng = np.random.default_rng(1)
    for layer in model.layer_names:
        count = model.layer(layer).weight.shape[0]
        units = rng.choice(count, size=min(3, count), replace=False)
        g = effective_weights(model, layer, mnist_test.images[:2], units)
        for i in range(2):
            for j, unit in enumerate(units):
                position = None if g.positions is None else g.positions[i, j]
                expected = autograd_w(model, layer, mnist_test.images[i], unit, position)
                np.testing.assert_allclose(g.w_eff[i, j], expected, atol=1e-6, err_msg=f"{layer} unit {unit}")


@pytest.mark.parametrize(
    "config",
    [
        mlp_config(hidden_sizes=(16, 8), normalization=Normalization(0.1307, 0.3081)),
        cnn_config(conv_channels=(3, 4), fc_sizes=(12,), normalization=Normalization(0.5, 0.25)),
        # 5x5 kernels and 3x3 pooling: windows that floor away map edges, patches wider than the input.
        cnn_config(conv_channels=(3, 4), kernel_sizes=(5, 3), pool_size=3, fc_sizes=(6,),
                  normalization=Normalization(0.2, 0.5)),
    ],
    ids=["mlp", "cnn", "cnn-k5-pool3"],
)
def test_a_normalising_model_is_grounded_in_pixel_space(config, mnist_test):
    torch.manual_seed(0)
    model = build_model(config)
    images = mnist_test.images[:6]
    for layer in model.layer_names:
        g = effective_weights(model, layer, images)
        np.testing.assert_allclose(g.pre, unit_pre(model, layer, images), atol=1e-5)
        np.testing.assert_allclose(g.reconstruct(images), g.pre, atol=1e-4)
        position = None if g.positions is None else g.positions[0, 0]
        np.testing.assert_allclose(g.w_eff[0, 0], autograd_w(model, layer, images[0], 0, position), atol=1e-6)
    # Where the digit has no ink the pixels are 0, yet the normalised input is not: that offset is in b_eff.
    assert not np.allclose(g.b_eff, model.layer(layer).bias.detach().numpy()[None])


def test_conv_channels_agree_with_dataset_activations(bundled, mnist_test):
    model = bundled("cnn-digits")
    images = mnist_test.images[:30]
    for layer in ("conv1", "conv2"):
        g = effective_weights(model, layer, images)
        acts = compute_layer_activations(model, layer, images)
        np.testing.assert_allclose(g.pre, acts.pre, atol=1e-6)
        np.testing.assert_array_equal(acts.values, np.maximum(acts.pre, 0))
        np.testing.assert_array_equal(g.positions, acts.argmax)  # both take the first maximum


def test_pairs_match_the_full_grid(bundled, mnist_train):
    model = bundled("challenge-cnn")
    images = mnist_train.images[:40]
    rng = np.random.default_rng(0)
    for layer in model.layer_names:
        full = effective_weights(model, layer, images[:8])
        index = rng.integers(0, 8, 25)
        which = rng.integers(0, full.units.size, 25)
        pairs = effective_weights_pairs(model, layer, images, full.units[which], image_index=index)
        # Same numbers, computed in other chunks (so up to float32 rounding of other matrix shapes).
        np.testing.assert_allclose(pairs.w_eff, full.w_eff[index, which], atol=1e-6)
        np.testing.assert_allclose(pairs.b_eff, full.b_eff[index, which], atol=1e-5)
        np.testing.assert_array_equal(pairs.pre, full.pre[index, which])
        np.testing.assert_allclose(pairs.reconstruct(images), pairs.pre, atol=1e-4)
        expected = to_pixels(images[index]).numpy() * pairs.w_eff
        np.testing.assert_array_equal(pairs.embeddings(images), expected)
        # Without an index, images are one per pair.
        aligned = effective_weights_pairs(model, layer, images[index], full.units[which])
        np.testing.assert_allclose(aligned.w_eff, pairs.w_eff, atol=1e-6)


def test_conv_unit_at_a_given_position(bundled, mnist_test):
    model = bundled("challenge-cnn")
    images = mnist_test.images[:3]
    g = effective_weights(model, "conv2", images, units=[5, 9], positions=np.array([[4, 6], [0, 10]]))
    _, cache = run_with_cache(model, images, names=["conv2.pre"])
    pre = cache["conv2.pre"].numpy()
    np.testing.assert_allclose(g.pre, np.stack([pre[:, 5, 4, 6], pre[:, 9, 0, 10]], axis=1), atol=1e-6)
    np.testing.assert_allclose(g.reconstruct(images), g.pre, atol=1e-4)
    assert (g.positions == [[4, 6], [0, 10]]).all()
    np.testing.assert_allclose(g.w_eff[1, 0], autograd_w(model, "conv2", images[1], 5, (4, 6)), atol=1e-6)


# -- hand-built networks with answers worked out by hand ----------------------------------------


def tiny_mlp():
    """784 -> 2 -> 1: hidden unit 0 reads pixel (0, 0), unit 1 reads pixel (0, 1); out = h0 - h1 + 0.5."""
    model = build_model(mlp_config(hidden_sizes=(2,), n_classes=1))
    with torch.no_grad():
        first, last = model.layer("layers.0"), model.layer("layers.1")
        first.weight.zero_()
        first.bias.zero_()
        first.weight[0, 0] = 1.0
        first.weight[1, 1] = 1.0
        last.weight[:] = torch.tensor([[1.0, -1.0]])
        last.bias.fill_(0.5)
    return model


def test_hand_built_mlp_and_a_relu_exactly_at_zero():
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 0, 0] = 0.8  # pixel (0, 1) stays 0, so hidden unit 1's input is exactly 0: a kink
    g = effective_weights(tiny_mlp(), "layers.1", image)
    expected = np.zeros((28, 28), np.float32)
    expected[0, 0] = 1.0  # unit 1 counts as off: its -1 never reaches the pixels
    np.testing.assert_array_equal(g.w_eff[0, 0], expected)
    assert g.b_eff[0, 0] == pytest.approx(0.5) and g.pre[0, 0] == pytest.approx(1.3)


def tiny_cnn():
    """One conv channel copying the pixel below-right of each position, 2x2 max-pool, a logit
    reading pooled cell (0, 0): logit = max(relu(x[1,1]), relu(x[1,2]), relu(x[2,1]), relu(x[2,2]))."""
    model = build_model(cnn_config(conv_channels=(1,), kernel_sizes=(3,), fc_sizes=(), n_classes=1))
    with torch.no_grad():
        conv, fc = model.layer("conv1"), model.layer("fc1")
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
        conv.bias.zero_()
        fc.weight.zero_()
        fc.weight[0, 0] = 1.0
        fc.bias.fill_(-0.25)
    return model


def one_hot(*pixels):
    out = np.zeros((28, 28), np.float32)
    for r, c in pixels:
        out[r, c] = 1.0
    return out


def test_hand_built_cnn_follows_the_max_pool():
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 2, 2], image[0, 1, 1] = 0.7, 0.3
    g = effective_weights(tiny_cnn(), "fc1", image)
    np.testing.assert_array_equal(g.w_eff[0, 0], one_hot((2, 2)))
    assert g.b_eff[0, 0] == pytest.approx(-0.25) and g.pre[0, 0] == pytest.approx(0.45)


def test_max_pool_tie_takes_one_side_and_stays_exact():
    image = np.zeros((1, 28, 28), np.float32)
    image[0, 1, 1] = image[0, 2, 2] = 0.5
    model = tiny_cnn()
    g = effective_weights(model, "fc1", image)
    # max_pool2d keeps the first maximum of the window: conv position (0, 0), i.e. pixel (1, 1).
    np.testing.assert_array_equal(g.w_eff[0, 0], one_hot((1, 1)))
    np.testing.assert_array_equal(g.w_eff[0, 0], autograd_w(model, "fc1", image[0], 0))
    assert g.reconstruct(image)[0, 0] == pytest.approx(0.25)


def test_conv_channel_on_a_blank_image_takes_the_first_position():
    model = tiny_cnn()
    blank = np.zeros((1, 28, 28), np.uint8)
    g = effective_weights(model, "conv1", blank)
    assert g.positions[0, 0].tolist() == [0, 0]
    np.testing.assert_array_equal(g.w_eff[0, 0], one_hot((1, 1)))
    placed = effective_weights(model, "conv1", blank, units=[0], positions=np.array([[5, 7]]))
    np.testing.assert_array_equal(placed.w_eff[0, 0], one_hot((6, 8)))


# -- bad input ----------------------------------------------------------------------------------


def test_bad_units_layers_and_positions_are_clear_errors(bundled, mnist_test):
    model = bundled("cnn-digits")
    images = mnist_test.images[:2]
    with pytest.raises(MechMNISTicError, match="no layer"):
        effective_weights(model, "layers.0", images)
    with pytest.raises(UnitError, match="0..199"):
        effective_weights(model, "fc1", images, units=[200])
    with pytest.raises(UnitError, match="no positions"):
        effective_weights(model, "fc1", images, units=[0], positions=np.array([[0, 0]]))
    with pytest.raises(UnitError, match="26x26"):
        effective_weights(model, "conv1", images, units=[0], positions=np.array([[26, 0]]))
    with pytest.raises(UnitError, match="one unit per image"):
        effective_weights_pairs(model, "fc1", images, units=[0, 1, 2])
    with pytest.raises(UnitError, match="0..1"):
        effective_weights_pairs(model, "fc1", images, units=[0], image_index=[2])
