"""Shared figure builders: signed data is centred at zero, digits are greys."""

import numpy as np

from mechmnistic.viz.common import class_bar, image_grid, signed_heatmap


def test_signed_heatmap_is_symmetric_around_zero():
    z = np.array([[-1.0, 3.0], [0.5, 0.0]])
    trace = signed_heatmap(z).data[0]
    assert trace.zmid == 0 and trace.zmin == -3.0 and trace.zmax == 3.0


def test_image_grid_shares_one_signed_scale():
    fig = image_grid([np.full((2, 2), -2.0), np.full((2, 2), 1.0)], ["a", "b"], signed=True)
    assert {(t.zmin, t.zmax) for t in fig.data} == {(-2.0, 2.0)}


def test_class_bar_highlights_a_class():
    fig = class_bar(np.array([1.0, -1.0, 2.0]), "t", "y", highlight=2)
    assert fig.data[0].marker.color[2] == "#f4a300"
