"""The Classification Explorer's attribution of each class logit to the units of an earlier hidden layer.

One panel per layer before the last hidden one (whose attribution is the
logit-effects panel): gradient x activation from
``mechmnistic.analysis.layer_attribution``, said in plain words, with its
checks shown as numbers (the logits rebuilt exactly; how far the
attributions are from the change when the whole layer is switched off, and
whether that is a case where they must match). A conv layer is shown per
channel (summed over its cells, exactly) and, for the class explained, per
cell. Clicking a unit opens it in the Neuron Explorer on the same input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from mechmnistic.analysis.conv import pooled_cell_positions
from mechmnistic.analysis.layer_attribution import LayerAttribution, layer_attribution
from mechmnistic.models.architectures import MNISTNet
from mechmnistic.threads import one_thread
from mechmnistic.viz import conv as conv_viz
from mechmnistic.viz.attribution import attribution_heatmap
from mechmnistic.viz.common import clicked_xy

from .downloads import csv_button
from .links import NEURON_PAGE, go_to, neuron_href

CELLS_LISTED = 12


def earlier_layers(model: MNISTNet) -> list[str]:
    """The hidden layers before the one feeding the final layer (that one has the logit-effects panel)."""
    return list(model.layout.hidden_names[:-1])


def _open(model_name: str, layer: str, unit: int, position: tuple[int, int] | None, link_params: dict) -> None:
    try:
        go_to(NEURON_PAGE, model=model_name, layer=layer, unit=unit,
              pos=None if position is None else f"{position[0]},{position[1]}", **link_params)
    except StreamlitAPIException:  # an app assembled without the Neuron Explorer
        st.warning(f"The Neuron Explorer is not part of this app; the unit's link is "
                   f"`{neuron_href(model_name, layer, unit, position, **link_params)}`.")


def _checks(result: LayerAttribution, layer: str, cls: int, exact: bool = True) -> None:
    """The identities behind the panel, as numbers."""
    rebuilt = float(np.abs(result.reconstruction_error[0]).max())
    gap = result.completeness_gap[0]
    same = bool(result.same_piece[0])
    change = result.logits[0] - result.baseline_logits[0]
    if same:
        verdict = (f"Switching all of {layer} off changes no later unit's on/off state on this input, so the "
                   "attributions add up to each logit's change from that baseline exactly (largest gap "
                   f"{float(np.abs(gap).max()):.1e}).")
    else:
        verdict = (f"Switching all of {layer} off changes which later units are on, so the attributions need not "
                   f"add up to each logit's change from that baseline: for class {cls} they miss it by "
                   f"{float(gap[cls]):+.4g} (of a change of {float(change[cls]):+.4g}); the largest gap over the "
                   f"classes is {float(np.abs(gap).max()):.4g}.")
    if exact:
        st.caption(f"Check: each class's attributions plus what the later layers' biases contribute give its logit "
                   f"exactly (largest difference {rebuilt:.1e}). {verdict}")
    else:
        st.caption(f"Approximate: with smooth activations after {layer}, gradient × activation is the local linear "
                   "approximation of each logit; with the later layers' biases it misses the logit by up to "
                   f"{rebuilt:.3g} on this input (the residual). {verdict}")
    table = pd.DataFrame({
        "class": np.arange(len(change)), "logit": result.logits[0],
        f"logit with {layer} off": result.baseline_logits[0], "change": change,
        "Σ attributions": result.per_unit[0].sum(axis=1, dtype=np.float64), "gap": gap,
    })
    with st.expander(f"Per class: the logit, the logit with {layer} switched off, and the gap"):
        st.dataframe(table, hide_index=True, key=f"classify_attr_checks_{layer}")


def layer_panel(model_name: str, net: MNISTNet, image: np.ndarray, layer: str, cls: int,
                link_params: dict) -> None:
    """One earlier layer's attribution of every class logit, on ``image`` (uint8 ``[28, 28]``).

    ``link_params``: what the Neuron Explorer's links carry besides the unit (``ui.links.on_input_link``:
    the input's index and the tab that shows the unit on it; empty for a drawing).
    """
    with one_thread():
        result = layer_attribution(net, image, layer)
    conv = net.layout[layer].is_conv
    per_unit = result.per_unit[0]  # [K, U]: a channel's cells summed
    kind = "channel" if conv else "neuron"
    labels = [f"{kind} {u}" for u in range(per_unit.shape[1])]
    title = f"{layer}: gradient × activation" + (" per channel (its cells summed)" if conv else "")
    event = st.plotly_chart(attribution_heatmap(per_unit, labels, title=title), on_select="rerun",
                            selection_mode="points", key=f"classify_attr_{layer}")
    clicked = clicked_xy(event)
    if clicked is not None and 0 <= clicked[0] < per_unit.shape[1]:
        _open(model_name, layer, clicked[0], None, link_params)
    _checks(result, layer, cls, net.layout.exact_above(layer))
    if conv:
        _cells(model_name, net, image, layer, result, cls, link_params)
    csv_button(f"{layer} attributions (CSV: one row per class and {kind})", lambda: pd.DataFrame({
        "class": np.repeat(np.arange(per_unit.shape[0]), per_unit.shape[1]),
        kind: np.tile(np.arange(per_unit.shape[1]), per_unit.shape[0]),
        "attribution": per_unit.ravel()}), f"{model_name}-{layer}-attribution.csv", key=f"classify_dl_attr_{layer}")


def _cells(model_name: str, net: MNISTNet, image: np.ndarray, layer: str, result: LayerAttribution, cls: int,
           link_params: dict) -> None:
    """A conv layer's attribution to class ``cls`` cell by cell (the pooled map the next layer reads)."""
    cells = result.attributions[0, cls]  # [C, H', W']
    with st.expander(f"{layer} per position, for class {cls}"):
        fig = conv_viz.tiled_heatmap(cells, [f"{layer} ch{c}" for c in range(len(cells))], columns=8,
                                     title=f"{layer}: attribution to class {cls}, cell by cell",
                                     hover_label="attribution", cell_px=max(4, 110 // cells.shape[1]),
                                     tile_titles=[f"ch{c}" for c in range(len(cells))])
        st.plotly_chart(fig, key=f"classify_attr_cells_{layer}")
        flat = np.argsort(-np.abs(cells.ravel()), kind="stable")[:CELLS_LISTED]
        channel, row, col = np.unravel_index(flat, cells.shape)
        with one_thread():
            where = pooled_cell_positions(net, layer, image)[channel, row, col]  # [n, 2] in the layer's map
        table = pd.DataFrame({
            "channel": channel, "pooled cell": [f"({r}, {c})" for r, c in zip(row, col, strict=True)],
            "activation": result.activations[0][channel, row, col], "attribution": cells[channel, row, col],
            "open": [neuron_href(model_name, layer, int(ch), (int(r), int(c)), **link_params)
                     for ch, (r, c) in zip(channel, where, strict=True)],
        })
        st.caption(f"Each tile is a channel's pooled map (what the next layer reads); the {CELLS_LISTED} cells that "
                   f"move class {cls} most are listed, each opening the channel at the position in its map where "
                   "that cell took its maximum on this input.")
        st.dataframe(table, hide_index=True, key=f"classify_attr_cell_table_{layer}",
                     column_config={"open": st.column_config.LinkColumn(display_text="open in the Neuron Explorer")})


def panels(model_name: str, net: MNISTNet, image: np.ndarray, cls: int, link_params: dict) -> None:
    """Every earlier layer's panel, with the words that say what they measure."""
    layers = earlier_layers(net)
    if not layers:
        st.info(f"{net.layer_names[0]} is the only hidden layer before the final one: its attribution is the "
                "logit effects (first tab)." if len(net.layer_names) == 2 else
                "This model has no hidden layer: the final layer reads the pixels.")
        return
    st.subheader("Attribution to earlier layers")
    st.caption(
        "Each cell is gradient × activation: how much a unit pushes a class's logit on this input, with the later "
        "layers' on/off pattern (which ReLUs are on, which max-pool element wins) held as it is on this input. "
        "Together with what the later layers' biases contribute they add up exactly to the logit. They add up to "
        "the logit's change from switching the whole layer off exactly when switching it off changes no later "
        "unit's on/off state (always for the last hidden layer, whose attribution is the logit effects above); "
        "otherwise the gap is shown. Red pushes the logit up, blue down; click a cell to open the unit in the "
        "Neuron Explorer on this input."
    )
    for layer in layers:
        layer_panel(model_name, net, image, layer, cls, link_params)
