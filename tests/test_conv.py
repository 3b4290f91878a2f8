"""Conv views: filters, feature maps, receptive fields and each channel's top examples."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mechmnistic import run_with_cache
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.conv import (
    feature_maps,
    filters,
    pooled_cell_positions,
    position_activations,
    receptive_field,
    receptive_field_crops,
    top_channel_examples,
)
from mechmnistic.analysis.grounding import effective_weights
from mechmnistic.analysis.units import UnitError
from mechmnistic.models import build_model, cnn_config


def shift_cnn():
    """conv1 channel 0 copies the pixel at its kernel's centre; channel 1 sums the 3x3 window minus 1."""
    model = build_model(cnn_config(conv_channels=(2,), kernel_sizes=(3,), fc_sizes=(), n_classes=1))
    with torch.no_grad():
        conv = model.layer("conv1")
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
        conv.weight[1].fill_(1.0)
        conv.bias.copy_(torch.tensor([0.0, -1.0]))
    return model


def test_hand_built_filters_and_feature_maps():
    model = shift_cnn()
    image = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    f = filters(model, "conv1")
    assert f.weights.shape == (2, 1, 3, 3) and f.bias.tolist() == [0.0, -1.0]
    assert f.weights[0, 0].tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    pre = feature_maps(model, "conv1", image, stage="pre")
    np.testing.assert_allclose(pre[0], image[1:27, 1:27], atol=1e-6)
    window_sums = np.lib.stride_tricks.sliding_window_view(image, (3, 3)).sum(axis=(2, 3))
    np.testing.assert_allclose(pre[1], window_sums - 1.0, atol=1e-5)
    post = feature_maps(model, "conv1", image, stage="post")
    np.testing.assert_allclose(post, np.maximum(pre, 0))
    pool = feature_maps(model, "conv1", image, stage="pool")
    np.testing.assert_allclose(pool, F.max_pool2d(torch.from_numpy(post), 2).numpy())
    assert pool.shape == (2, 13, 13)


def test_feature_maps_of_a_real_model(bundled, mnist_test):
    model = bundled("challenge-cnn")
    _, cache = run_with_cache(model, mnist_test.images[5], names=["conv2.post"])
    np.testing.assert_array_equal(feature_maps(model, "conv2", mnist_test.images[5]), cache["conv2.post"][0].numpy())


def test_receptive_fields_by_hand_and_against_grounding(bundled, mnist_test):
    model = bundled("cnn-digits")
    assert receptive_field(model, "conv1", (0, 0)).tolist() == [0, 0, 2, 2]
    assert receptive_field(model, "conv1", (25, 3)).tolist() == [25, 3, 27, 5]
    assert receptive_field(model, "conv2", (0, 0)).tolist() == [0, 0, 7, 7]
    assert receptive_field(model, "conv2", (10, 4)).tolist() == [20, 8, 27, 15]
    # A unit's effective pixel weights live inside its receptive field.
    positions = np.array([[3, 6], [10, 0]])
    g = effective_weights(model, "conv2", mnist_test.images[:5], units=[2, 11], positions=positions)
    for j, box in enumerate(receptive_field(model, "conv2", positions)):
        outside = np.ones((28, 28), bool)
        outside[box[0] : box[2] + 1, box[1] : box[3] + 1] = False
        assert np.all(g.w_eff[:, j][:, outside] == 0)
        assert np.any(g.w_eff[:, j] != 0)


def test_top_channel_examples_say_where_the_channel_fired(bundled, mnist_test):
    model = bundled("cnn-digits")
    top = top_channel_examples(model, "conv2", 4, k=30, split="test")
    acts = layer_activations(model, "conv2", "test")
    assert np.all(np.diff(top.values) <= 0)
    np.testing.assert_array_equal(top.values, np.sort(acts.values[:, 4])[::-1][:30])
    for i in range(3):
        post = feature_maps(model, "conv2", mnist_test.images[top.indices[i]])[4]
        r, c = top.positions[i]
        assert post[r, c] == pytest.approx(top.values[i]) and post.max() == pytest.approx(top.values[i])
    np.testing.assert_array_equal(top.boxes, receptive_field(model, "conv2", top.positions.astype(np.int64)))


def test_conv_only_functions_refuse_other_layers(bundled, mnist_test):
    model = bundled("cnn-digits")
    with pytest.raises(UnitError, match="not a conv layer"):
        filters(model, "fc1")
    with pytest.raises(UnitError, match="stage"):
        feature_maps(model, "conv1", mnist_test.images[0], stage="relu")
    with pytest.raises(UnitError, match="11x11"):
        receptive_field(model, "conv2", (11, 0))
    with pytest.raises(UnitError, match="0..7"):
        top_channel_examples(model, "conv1", 8)


def test_a_channel_at_a_position_over_a_split(bundled, mnist_test, tmp_path, monkeypatch):
    monkeypatch.setenv("MECHMNISTIC_CACHE", str(tmp_path))
    model = bundled("challenge-cnn")
    values = position_activations(model, "conv2", 7, (3, 8), split="test")
    _, cache = run_with_cache(model, mnist_test.images, names=["conv2.pre"])
    np.testing.assert_array_equal(values, cache["conv2.pre"][:, 7, 3, 8].numpy())
    assert values.dtype == np.float32 and len(list(tmp_path.rglob("*.npz"))) == 1, "cached on disk"
    np.testing.assert_array_equal(position_activations(model, "conv2", 7, (3, 8), split="test"), values)
    with pytest.raises(UnitError, match="11x11"):
        position_activations(model, "conv2", 7, (3, 11))


def test_pooled_cells_say_where_their_maximum_was(bundled, mnist_test):
    model = bundled("cnn-digits")
    image = mnist_test.images[3]
    post, pool = feature_maps(model, "conv1", image), feature_maps(model, "conv1", image, stage="pool")
    where = pooled_cell_positions(model, "conv1", image)
    assert where.shape == (8, 13, 13, 2)
    channel, row, col = np.indices((8, 13, 13))
    np.testing.assert_array_equal(post[channel, where[..., 0], where[..., 1]], pool)
    assert np.all(where // 2 == np.stack([row, col], axis=3)), "each maximum lies inside its own window"


def test_receptive_field_crops_align_the_boxes():
    maps = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 28, 28)
    crops = receptive_field_crops(maps, np.array([[0, 0, 2, 2], [20, 8, 22, 10]]))
    np.testing.assert_array_equal(crops[0], maps[0, :3, :3])
    np.testing.assert_array_equal(crops[1], maps[1, 20:23, 8:11])
    with pytest.raises(UnitError, match="one size"):
        receptive_field_crops(maps, np.array([[0, 0, 2, 2], [0, 0, 3, 3]]))
