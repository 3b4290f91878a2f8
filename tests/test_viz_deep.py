"""Figure builders for conv, connection and attribution views carry exactly the numbers they are given."""

import numpy as np

from mechmnistic.analysis.connections import upstream_contributions
from mechmnistic.analysis.conv import feature_maps, filters, top_channel_examples
from mechmnistic.analysis.layer_attribution import layer_attribution
from mechmnistic.viz.attribution import attribution_heatmap
from mechmnistic.viz.common import clicked_id, clicked_xy
from mechmnistic.viz.connections import NEGATIVE, POSITIVE, ranked_bar, ranked_bar_pair
from mechmnistic.viz.conv import (
    channel_filters,
    channel_map,
    examples_with_boxes,
    feature_maps_grid,
    filters_grid,
    tile,
    tile_origin,
)
from mechmnistic.viz.neuron import examples_figure


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
    trace, markers = fig.data
    np.testing.assert_allclose(np.asarray(trace.z), result.per_unit[0], rtol=1e-6)
    assert list(fig.layout.yaxis.ticktext) == [str(k) for k in range(10)] and trace.zmid == 0
    assert list(fig.layout.xaxis.ticktext) == labels[::2], "every other unit named (64 columns, at most 32 ticks)"
    # One invisible marker per cell: a click on (unit 40, class 7) reads back as that cell.
    cell = 7 * 64 + 40
    assert (markers.x[cell], markers.y[cell]) == (40, 7) and "#40" in markers.hovertext[cell]
    assert clicked_xy({"selection": {"points": [{"x": 40, "y": 7}]}}) == (40, 7)


def test_bars_carry_ids_and_sort_three_ways():
    values = np.array([1.0, -3.0, 2.0])
    for order, expected in (("magnitude", ["b", "c", "a"]), ("value", ["c", "a", "b"]), ("index", ["a", "b", "c"])):
        fig = ranked_bar(values, ["a", "b", "c"], "t", "w", top=None, order=order, customdata=np.arange(3))
        assert list(fig.data[0].y) == expected
    assert clicked_id({"selection": {"points": [{"customdata": 2, "x": 1.0, "y": "c"}]}}) == 2
    assert clicked_id({"selection": {"points": [{"customdata": [5]}]}}) == 5
    assert clicked_id({"selection": {"points": []}}) is None and clicked_id(None) is None


def test_a_channel_map_is_clickable_with_its_cell_outlined():
    values = np.arange(12.0).reshape(3, 4) - 5
    fig = channel_map(values, "map", "pre", marked=(2, 1))
    heatmap, markers = fig.data
    np.testing.assert_array_equal(np.asarray(heatmap.z), values)
    assert heatmap.zmid == 0 and len(markers.x) == 12
    assert (markers.x[9], markers.y[9]) == (1, 2) and "row 2, col 1" in markers.hovertext[9]
    (box,) = fig.layout.shapes
    assert (box.x0, box.x1, box.y0, box.y1) == (0.5, 1.5, 1.5, 2.5)


def test_channel_filters_and_mosaic_boxes(bundled):
    weights = filters(bundled("cnn-digits"), "conv2").weights[4]  # [8, 3, 3]
    fig = channel_filters(weights, "conv2", 4, "conv1")
    z = np.asarray(fig.data[0].z, dtype=float)
    top, left = tile_origin(5, 8, 3, 3)
    np.testing.assert_allclose(z[top : top + 3, left : left + 3], weights[5])
    assert [a.text for a in fig.layout.annotations] == [f"conv1 ch{i}" for i in range(8)]
    images = np.zeros((3, 28, 28), np.uint8)
    boxes = np.array([[0, 0, 7, 7], [20, 8, 27, 15], [3, 3, 10, 10]])
    fig = examples_figure(images, np.arange(3), np.arange(3), np.ones(3), np.zeros((3, 28, 28)), boxes=boxes)
    assert len(fig.layout.shapes) == 6, "a box on each digit and on each embedding"
    digit_box = fig.layout.shapes[1]
    assert digit_box.x1 - digit_box.x0 == 8 and digit_box.y1 - digit_box.y0 == 8


def test_a_ranked_pair_is_two_ranked_bars_in_one_figure():
    reads, writes = np.array([0.5, -2.0, 1.0]), np.array([3.0, 0.1, -0.2])
    fig = ranked_bar_pair((reads, writes), ["a", "b", "c"], ("reads", "writes"), "w", top=2)
    left, right = fig.data
    assert list(left.y) == ["b", "c"] and list(left.customdata) == [1, 2]
    assert list(right.y) == ["a", "c"] and list(right.customdata) == [0, 2]
    assert list(right.marker.color) == [POSITIVE, NEGATIVE]
    assert [a.text for a in fig.layout.annotations] == ["reads", "writes"]
    for side, single in zip(fig.data, (ranked_bar(reads, ["a", "b", "c"], "t", "w", top=2),
                                       ranked_bar(writes, ["a", "b", "c"], "t", "w", top=2)), strict=True):
        assert list(side.x) == list(single.data[0].x)
