"""Which unit and which input the Neuron Explorer shows, read from and written to the URL.

A unit is ``(layer, index)``: a neuron of a fully connected layer, or a
channel of a conv layer, optionally at one cell of its map (``pos=R,C``;
without it the channel is taken at its maximum on each image); or, with
``basis=dictionary:ID``, a latent of one of the layer's dictionaries. The input of
the on-one-input views is ``test_index=I`` or ``train_index=I``; without one
the page follows the unit, showing its top test example.

Every control is bound to the URL (``ui.bound``). Opening another unit (a bar,
a table row, a heatmap cell) writes the URL and re-runs the page, and the
controls follow the URL they did not write, so the address bar always
reproduces the view.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from .links import UNIT_PARAM
from .params import set_params


@dataclass(frozen=True)
class ShownInput:
    """An MNIST image: ``split`` (``test`` or ``train``) and ``index``; ``pinned`` when the URL names
    it, else it is the unit's top test example and follows the unit."""

    split: str
    index: int
    pinned: bool

    def params(self) -> dict[str, int | None]:
        return {"test_index": self.index if self.split == "test" else None,
                "train_index": self.index if self.split == "train" else None}


def open_unit(layer: str, unit: int, position: tuple[int, int] | None = None,
              shown_input: ShownInput | None = None, basis: str | None = None) -> None:
    """Show another unit now: write its address into the URL and re-run.

    ``shown_input``: keep this input (views built on one input link onwards on the same input);
    ``None`` keeps whatever the URL says. ``basis``: ``dictionary:ID`` for a latent; ``None``, a neuron.
    """
    values: dict[str, object] = {"layer": layer, UNIT_PARAM: unit,
                                 "pos": None if position is None else f"{position[0]},{position[1]}",
                                 "cluster": None, "basis": basis}
    if shown_input is not None:
        values.update(shown_input.params())
    set_params(**values)
    st.rerun()
