"""Figure builders for conv, connection and attribution views carry exactly the numbers they are given."""

import numpy as np

from mechmnistic.analysis.connections import upstream_contributions
from mechmnistic.analysis.conv import feature_maps, filters, top_channel_examples
from mechmnistic.analysis.layer_attribution import layer_attribution
from mechmnistic.viz.attribution import attribution_heatmap
from mechmnistic.viz.connections import NEGATIVE, POSITIVE, ranked_bar
from mechmnistic.viz.conv import examples_with_boxes, feature_maps_grid, filters_grid, tile, tile_origin


def test_tiles_keep_every_value_and_name_each_cell():
    maps = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    z, which, inside = tile(maps, columns=2)
    assert z.shape == (3 * 3 - 1, 2 * 4 - 1)
    top, left = tile_origin(3, 2, 2, 3)
    np.testing.assert_array_equal(z[top : top + 2, left : left + 3], maps[3])
    assert which[top + 1, left + 2] == 3 and inside[top + 1, left + 2].tolist() == [1, 2]
    assert np.isnan(z[2]).all() and (which[2] == -1).all()  # the gap row between tile rows
    assert np.count_nonzero(~np.isnan(z)) == maps.size


def test_filters_grid_of_a_real_layer(bundled):
    f = filters(bundled("cnn-digits"), "conv2")
    fig = filters_grid(f.weights, "conv2", "conv1")
    trace = fig.data[0]
    z = np.asarray(trace.z, dtype=float)
    top, left = tile_origin(5 * 8 + 3, 8, 3, 3)  # output channel 5, input channel 3
    np.testing.assert_allclose(z[top : top + 3, left : left + 3], f.weights[5, 3])
    assert trace.zmid == 0 and trace.zmax == -trace.zmin == np.abs(f.weights).max()
    assert trace.customdata[top][left][0] == "conv2 ch5 ← conv1 ch3"
    texts = [a.text for a in fig.layout.annotations]
    assert texts == [f"ch{o}" for o in range(16)] + [f"ch{i}" for i in range(8)]  # rows, then columns


def test_feature_maps_and_examples_with_boxes(bundled, mnist_test):
    model = bundled("challenge-cnn")
    maps = feature_maps(model, "conv1", mnist_test.images[0])
    fig = feature_maps_grid(maps, "conv1")
    z = np.asarray(fig.data[0].z, dtype=float)
    top, left = tile_origin(6, 8, 26, 26)
    np.testing.assert_allclose(z[top : top + 26, left : left + 26], maps[6])
    assert [a.text for a in fig.layout.annotations] == [f"ch{c}" for c in range(8)]
    best = top_channel_examples(model, "conv2", 3, k=6, split="test")
    fig = examples_with_boxes(mnist_test.images[best.indices], best.boxes, [f"#{i}" for i in best.indices], columns=3)
    assert len(fig.layout.shapes) == 6
    shape, (r0, c0, r1, c1) = fig.layout.shapes[4], best.boxes[4]
    top, left = tile_origin(4, 3, 28, 28)
    expected = (left + c0 - 0.5, left + c1 + 0.5, top + r0 - 0.5, top + r1 + 0.5)
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == expected
    assert np.nanmax(np.asarray(fig.data[0].z, dtype=float)) <= 1.0


def test_ranked_bar_orders_and_colours_by_sign(bundled, mnist_test):
    parts = upstream_contributions(bundled("mlp-2x64"), "layers.1", 12, mnist_test.images[0])
    labels = parts.sources.labels()
    fig = ranked_bar(parts.contributions, labels, "what built it", "activation x weight", top=10,
                     customdata=parts.sources.units)
    bar = fig.data[0]
    expected = parts.order()[:10]
    assert list(bar.y) == [labels[i] for i in expected]
    np.testing.assert_allclose(bar.x, parts.contributions[expected])
    assert list(bar.customdata) == parts.sources.units[expected].tolist()
    assert list(bar.marker.color) == [POSITIVE if v >= 0 else NEGATIVE for v in parts.contributions[expected]]
    by_value = ranked_bar(np.array([1.0, -3.0, 2.0]), ["a", "b", "c"], "t", "w", top=None, order="value")
    assert list(by_value.data[0].y) == ["c", "a", "b"]


def test_attribution_heatmap_carries_classes_by_units(bundled, mnist_test):
    model = bundled("mlp-2x64")
    result = layer_attribution(model, mnist_test.images[:1], "layers.1")
    labels = [f"#{u}" for u in range(64)]
    fig = attribution_heatmap(result.per_unit[0], labels, title="layers.1")
    trace = fig.data[0]
    np.testing.assert_allclose(np.asarray(trace.z), result.per_unit[0])
    assert list(trace.y) == [str(k) for k in range(10)] and list(trace.x) == labels and trace.zmid == 0
