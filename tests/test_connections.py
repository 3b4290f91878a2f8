"""Hidden-to-hidden connections: weights in and out, and the exact split of a unit into its sources."""

import numpy as np
import pytest
import torch

from mechmnistic import run_with_cache
from mechmnistic.analysis.connections import incoming_weights, outgoing_weights, upstream_contributions
from mechmnistic.analysis.units import UnitError
from mechmnistic.models import build_model, cnn_config, mlp_config
from tests.conftest import BUNDLED_MODELS


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_sources_times_weights_plus_bias_is_the_pre_activation(bundled, mnist_test, name):
    model = bundled(name)
    rng = np.random.default_rng(0)
    for layer in model.layer_names[1:]:
        count = model.layer(layer).weight.shape[0]
        for index in (0, 7, 123):
            image = mnist_test.images[index]
            _, cache = run_with_cache(model, image, names=[f"{layer}.pre"])
            for unit in rng.choice(count, size=min(count, 3), replace=False):
                parts = upstream_contributions(model, layer, unit, image)
                pre = cache[f"{layer}.pre"][0, unit]
                if pre.dim() == 2:  # a conv channel, taken at its maximum
                    assert parts.pre == pytest.approx(float(pre.max()), abs=1e-6)
                    assert float(pre[parts.position]) == parts.pre
                else:
                    assert parts.pre == pytest.approx(float(pre), abs=1e-6)
                total = parts.contributions.sum(dtype=np.float64) + parts.bias
                assert total == pytest.approx(parts.pre, abs=1e-4), (layer, unit)
                np.testing.assert_allclose(parts.contributions, parts.activations * parts.weights)


def test_fc_reading_a_conv_map_names_channel_and_cell(bundled, mnist_test):
    model = bundled("challenge-cnn")
    incoming = incoming_weights(model, "fc1", 17)
    assert incoming.weights.shape == (400,)
    # Input 16 * 25 - 1 is the last cell of the last channel, as flatten orders them.
    assert incoming.sources.units[-1] == 15 and incoming.sources.positions[-1].tolist() == [4, 4]
    assert incoming.sources.units[26] == 1 and incoming.sources.positions[26].tolist() == [0, 1]
    assert incoming.sources.labels()[26] == "conv2 ch1 (0, 1)"
    parts = upstream_contributions(model, "fc1", 17, mnist_test.images[0])
    channels, sums = parts.by_channel()
    assert channels.tolist() == list(range(16))
    assert sums.sum() + parts.bias == pytest.approx(parts.pre, abs=1e-4)
    order = parts.order()
    assert abs(parts.contributions[order[0]]) == np.abs(parts.contributions).max()


def test_conv_unit_at_a_position(bundled, mnist_test):
    model = bundled("cnn-digits")
    image = mnist_test.images[3]
    parts = upstream_contributions(model, "conv2", 5, image, position=(2, 7))
    _, cache = run_with_cache(model, image, names=["conv1.pool", "conv2.pre"])
    assert parts.pre == pytest.approx(float(cache["conv2.pre"][0, 5, 2, 7]), abs=1e-6)
    # Sources: the 3x3 window of every conv1 channel whose corner is the unit's position.
    assert parts.sources.positions.min(axis=0).tolist() == [2, 7]
    assert parts.sources.positions.max(axis=0).tolist() == [4, 9]
    np.testing.assert_array_equal(parts.activations[:9], cache["conv1.pool"][0, 0, 2:5, 7:10].reshape(-1).numpy())
    relative = incoming_weights(model, "conv2", 5)
    assert relative.sources.relative and relative.sources.labels()[0] == "conv1 ch0 +(0, 0)"
    np.testing.assert_array_equal(relative.weights, model.layer("conv2").weight.detach()[5].reshape(-1).numpy())


def hand_cnn():
    """conv1: 2 channels; fc1 reads channel 1, pooled cell (2, 3) with weight 5 and nothing else."""
    model = build_model(cnn_config(conv_channels=(2,), kernel_sizes=(3,), fc_sizes=(), n_classes=1))
    with torch.no_grad():
        conv, fc = model.layer("conv1"), model.layer("fc1")
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[1, 0, 1, 1] = 1.0  # channel 1 copies the pixel at its centre
        fc.weight.zero_()
        fc.weight[0, 1 * 169 + 2 * 13 + 3] = 5.0
        fc.bias.fill_(0.1)
    return model


def test_hand_built_cnn_connections():
    model = hand_cnn()
    image = np.zeros((28, 28), np.float32)
    image[2 * 2 + 1 + 1, 2 * 3 + 1] = 0.4  # conv1 position (5, 6) -> pooled cell (2, 3) of channel 1
    parts = upstream_contributions(model, "fc1", 0, image)
    top = parts.order()[0]
    assert parts.sources.labels()[top] == "conv1 ch1 (2, 3)"
    assert parts.activations[top] == pytest.approx(0.4) and parts.contributions[top] == pytest.approx(2.0)
    assert parts.pre == pytest.approx(2.1)
    out = outgoing_weights(model, "conv1", 1)
    assert out.target_layer == "fc1" and out.weights.shape == (1, 13, 13)
    assert out.weights[0, 2, 3] == 5.0 and out.total.tolist() == [5.0]
    assert outgoing_weights(model, "conv1", 0).total.tolist() == [0.0]


def test_hand_built_mlp_connections():
    model = build_model(mlp_config(hidden_sizes=(2,), n_classes=1))
    with torch.no_grad():
        first, last = model.layer("layers.0"), model.layer("layers.1")
        first.weight.zero_()
        first.bias.zero_()
        first.weight[0, 0] = first.weight[1, 1] = 1.0
        last.weight.copy_(torch.tensor([[1.0, -1.0]]))
        last.bias.fill_(0.5)
    image = np.zeros((28, 28), np.float32)
    image[0, 0], image[0, 1] = 0.8, 0.3
    parts = upstream_contributions(model, "layers.1", 0, image)
    np.testing.assert_allclose(parts.contributions, [0.8, -0.3], atol=1e-7)
    assert parts.sources.labels() == ["layers.0 #0", "layers.0 #1"] and parts.position is None
    assert parts.pre == pytest.approx(1.0)
    assert incoming_weights(model, "layers.1", 0).order().tolist() == [0, 1]
    np.testing.assert_array_equal(outgoing_weights(model, "layers.0", 1).weights, [-1.0])


def test_outgoing_shapes_and_bad_requests(bundled, mnist_test):
    model = bundled("cnn-digits")
    assert outgoing_weights(model, "conv1", 3).weights.shape == (16, 3, 3)
    assert outgoing_weights(model, "conv2", 3).weights.shape == (200, 5, 5)
    np.testing.assert_array_equal(outgoing_weights(model, "fc1", 9).weights,
                                  model.layer("fc2").weight.detach()[:, 9].numpy())
    with pytest.raises(UnitError, match="logits"):
        outgoing_weights(model, "fc2", 0)
    with pytest.raises(UnitError, match="reads pixels"):
        incoming_weights(model, "conv1", 0)
    with pytest.raises(UnitError, match="0..15"):
        upstream_contributions(model, "conv2", 16, mnist_test.images[0])
    with pytest.raises(UnitError, match="no positions"):
        upstream_contributions(model, "fc1", 0, mnist_test.images[0], position=(1, 1))
    with pytest.raises(UnitError, match="one image"):
        upstream_contributions(model, "fc1", 0, mnist_test.images[:2])
