"""Classification Explorer: why the model gives one input its logits.

Pick an MNIST example (or draw one); see the logits and, one tab each (only
the open tab's figures are built and drawn; ``?panel=`` names it): the logit effects
(activation x output weight, clickable: a cell opens its neuron in the Neuron
Explorer); the important units for a class with their
input weights, the input's Hadamard embeddings, and the embeddings combined
into one pixel map; the last hidden layer's activations and the output
weights (the two factors of the effects); for deeper
models, attribution to earlier layers; and, with a dictionary of the last
hidden layer, the logits split over its latents. Every number comes from
``mechmnistic.analysis.logit_effects`` (and ``splicing`` for the latents).
"""

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from mechmnistic.analysis import logit_effects as le
from mechmnistic.models.architectures import MNISTNet
from mechmnistic.viz import classification as viz
from mechmnistic.viz.common import digit_figure
from ui import linearity, loaders, split_data
from ui.attribution_panels import panels as attribution_panels
from ui.downloads import csv_button, npz_button
from ui.example_picker import ChosenInput, pick_input
from ui.latent_panel import latents_panel
from ui.links import (
    ACTIVATIONS,
    CLASSIFY_PANEL_PARAM,
    CLASSIFY_TABS,
    EARLIER,
    EFFECTS,
    IMPORTANT,
    LATENTS,
    NEURON_PAGE,
    go_to,
    neuron_href,
    on_input_link,
)
from ui.tabs import url_tabs

CLASS_KEY = "classify_class"
SHARE_KEY = "classify_share_percent"
PREDICTION = -1  # the class selector's "follow the prediction" choice


def _effects_table(effects: le.LogitEffects) -> pd.DataFrame:
    """One row per class: its effect from each unit, the bias, and the logit they add up to."""
    table = pd.DataFrame(effects.effects, columns=[*map(str, range(effects.layer.n_units)), "bias"])
    table.insert(0, "class", range(effects.n_classes))
    table["logit"] = effects.logits
    return table


def _input_params(chosen: ChosenInput) -> dict[str, int]:
    """The example's URL parameter, so the Neuron Explorer shows a unit on this same input (a drawing has none)."""
    return {} if chosen.split is None else {f"{chosen.split}_index": chosen.index}


def _neuron_params(chosen: ChosenInput) -> dict:
    """The Neuron Explorer's parameters for a unit seen on ``chosen``: on that input when it has an index
    (a drawing has none, so the unit then shows its own top example)."""
    return on_input_link(_input_params(chosen))


def _open_neuron(model_name: str, final: le.FinalLayer, unit: int, chosen: ChosenInput) -> None:
    """Go to ``unit`` of the final layer's input layer in the Neuron Explorer (when it is a neuron)."""
    if not final.units_are_neurons:
        st.info("The final layer reads flattened feature maps (or pixels) directly; they are not neurons.")
        return
    try:
        go_to(NEURON_PAGE, model=model_name, layer=final.unit_layer, unit=unit, **_neuron_params(chosen))
    except StreamlitAPIException:  # an app assembled without the Neuron Explorer
        st.warning(f"The Neuron Explorer is not part of this app; unit {unit}'s link is "
                   f"`{neuron_href(model_name, final.unit_layer, unit, **_neuron_params(chosen))}`.")


def _effects_view(model_name: str, final: le.FinalLayer, effects: le.LogitEffects, class_names: list[str],
                  unit_layer: str, chosen: ChosenInput) -> None:
    """The clickable logit-effects heatmap (a cell opens its neuron)."""
    event = st.plotly_chart(viz.logit_effects_heatmap(effects.effects, effects.activations, class_names, unit_layer),
                            on_select="rerun", selection_mode="points", key="classify_effects")
    csv_button("Download logit effects (CSV: one row per class, bias column, and the logit)",
               _effects_table(effects), "logit_effects.csv", key="classify_dl_effects")
    clicked = viz.clicked_cell(event, final.n_units)
    if clicked is not None:
        if clicked[0] == viz.BIAS_UNIT:
            st.info("That is the bias column: it belongs to no neuron.")
        else:
            _open_neuron(model_name, final, clicked[0], chosen)


def _important_view(model_name: str, net: MNISTNet, final: le.FinalLayer, effects: le.LogitEffects,
                    explanation: le.ClassExplanation, cls: int, share_percent: float, chosen: ChosenInput) -> None:
    """The important units for ``cls`` (a row opens its neuron), their embeddings, and the combined embedding."""
    important = [u.unit for u in explanation.units]
    st.markdown(f"#### Important units for class {cls}")
    st.caption(f"Units whose |effect| on class {cls} is more than {share_percent:g}% of the row's total |effect| "
               "(bias included), largest first.")
    if not explanation.units:
        st.info("No unit passes the threshold: lower it to see more.")
    else:
        table = pd.DataFrame({
            "unit": important,
            "activation": [u.activation for u in explanation.units],
            "output weight": [u.output_weight for u in explanation.units],
            "effect": [u.effect for u in explanation.units],
            "share %": [100 * u.share for u in explanation.units],
        })
        if final.units_are_neurons:
            table["Neuron Explorer"] = [neuron_href(model_name, final.unit_layer, u, **_neuron_params(chosen))
                                        for u in important]
        selection = st.dataframe(
            table, hide_index=True, key="classify_important_table", height=36 * (len(table) + 1) + 3,
            on_select="rerun", selection_mode="single-row",
            column_config={"Neuron Explorer": st.column_config.LinkColumn(display_text="open in a new tab"),
                           "share %": st.column_config.NumberColumn(format="%.1f")},
        )
        st.caption("Select a row to open that neuron in the Neuron Explorer.")
        rows = selection["selection"]["rows"]
        if rows:
            _open_neuron(model_name, final, important[rows[0]], chosen)
        csv_button("Download important units (CSV)", table, "important_units.csv", key="classify_dl_important")

    view = explanation.pixels
    if view is None:
        st.info(f"Input weights, Hadamard embeddings and combined embeddings do not apply here: "
                f"{explanation.pixels_note}.")
        return
    if explanation.units:
        titles = [f"unit {u.unit}: effect {u.effect:+.3g}" for u in explanation.units]
        st.plotly_chart(viz.important_units_figure(view.weights, view.maps, titles), key="classify_important_figure")
        first_layer = net.layout[final.unit_layer].index == 0
        st.caption(
            ("Upper tile: the unit's input weights in pixel space. " if first_layer else
             "Upper tile: the unit's effective pixel weights on this input (its gradient with respect to "
             "the pixels, given which units before it are on). ")
            + ("Lower tile: the input's Hadamard embedding (pixel × weight); it sums, with the unit's effective "
               "bias, to its pre-activation." if view.exact else
               "Lower tile: the input's Hadamard embedding (pixel × weight). " + linearity.approximation_note(net))
        )
        npz_button("Download input weights and embeddings (NPZ)",
                   {"units": view.units, "input_weights": view.weights, "embeddings": view.maps,
                    "embedding_bias": view.bias, "image": chosen.image},
                   "important_unit_embeddings.npz", key="classify_dl_embeddings")

    st.markdown(f"#### Combined embedding for class {cls}")
    st.caption("Each active unit's embedding times its output weight to this class, summed: the class's logit "
               "spread over the pixels that produced it (red pushes the logit up, blue down).")
    top, every = explanation.combined, explanation.combined_all
    active = int((effects.activations > 0).sum())
    st.plotly_chart(viz.combined_embeddings_figure(
        np.stack([top.map, every.map]),
        [f"the {len(top.units)} important units", f"all {len(every.units)} units ({active} active)"]),
        key="classify_combined")
    top_sum, every_sum = top.map.sum(), every.map.sum()
    if every.exact:
        st.caption(
            f"Important units: pixel sum {top_sum:+.4g} + bias term {top.bias:+.4g} = "
            f"{top_sum + top.bias:+.4g}, their total effect. All units: pixel sum {every_sum:+.4g} + bias "
            f"term {every.bias:+.4g} + output bias {effects.bias[cls]:+.4g} = "
            f"{every_sum + every.bias + effects.bias[cls]:+.4g}, the logit of class {cls}."
        )
    else:
        st.caption(
            f"Approximate (gradient × input): important units' pixel sum {top_sum:+.4g} + bias term "
            f"{top.bias:+.4g} against their total effect {top.total_effect:+.4g} (residual {top.residual:+.4g}). "
            f"All units: pixel sum {every_sum:+.4g} + bias term {every.bias:+.4g} + output bias "
            f"{effects.bias[cls]:+.4g} = {every_sum + every.bias + effects.bias[cls]:+.4g}, against the logit "
            f"{effects.logits[cls]:+.4g} of class {cls} (residual {every.residual:+.4g}). "
            + linearity.approximation_note(net)
        )
    npz_button("Download combined embeddings (NPZ)",
               {"important_map": top.map, "important_bias": top.bias, "important_units": top.units,
                "all_map": every.map, "all_bias": every.bias, "output_bias": effects.bias[cls],
                "logit": effects.logits[cls]},
               "combined_embedding.npz", key="classify_dl_combined")


st.title("Classification Explorer")
st.caption(
    "Why does the model give this input its logits? The final layer adds up *activation × output weight* "
    "over the last hidden layer's units, plus a bias: those products are the **logit effects**. "
    "Click a cell of the logit-effects heatmap to open that neuron in the Neuron Explorer."
)

model_name = st.session_state["active_model"]
net = loaders.load_model(model_name)
card = loaders.load_card(model_name)
final = le.FinalLayer.of(net)
unit_layer = final.unit_layer or "input"
class_names = [str(c) for c in range(net.n_classes)]

picker, summary = st.columns([1, 2], gap="large")
with picker:
    chosen = pick_input(lambda: split_data.predictions(model_name, "test"),
                        labels_hidden=bool(card.label_function.get("hidden")))
if chosen.image is None:  # a blank canvas, which says so
    st.stop()

effects = le.logit_effects(net, chosen.image)
predicted = effects.prediction

with summary:
    image_column, text_column = st.columns([1, 2])
    image_column.plotly_chart(digit_figure(chosen.image, title="Model input", height=250),
                              key="classify_input_figure")
    with image_column:
        npz_button("Input (NPZ)", {"image": chosen.image}, "input.npz", key="classify_dl_input")
    with text_column:
        st.markdown(f"#### Predicted class {predicted}")
        st.write(f"probability {effects.probabilities[predicted]:.3f}, logit {effects.logits[predicted]:.3f}")
        if chosen.digit is not None:
            verdict = ""
            if card.label_function.get("name", "digits") == "digits":
                verdict = " ✓ correct" if chosen.digit == predicted else " ✗ misclassified"
            st.write(f"{chosen.description}: MNIST digit **{chosen.digit}**{verdict}")
        else:
            st.write("Your drawing, after MNIST-style preprocessing.")
        if st.session_state.get(CLASS_KEY) not in [PREDICTION, *range(net.n_classes)]:
            st.session_state.pop(CLASS_KEY, None)  # from a model with more classes
        cls_choice = st.selectbox(
            "Explain class", [PREDICTION, *range(net.n_classes)], key=CLASS_KEY,
            format_func=lambda c: f"the prediction ({predicted})" if c == PREDICTION else f"class {c}",
        )
        share_percent = st.slider("Important when |effect| exceeds this share of the class's total |effect| (%)",
                                  0.5, 50.0, 2.5, 0.5, key=SHARE_KEY)
    cls = predicted if cls_choice == PREDICTION else int(cls_choice)
    bars = st.columns(2)
    bars[0].plotly_chart(viz.logits_figure(effects.logits, class_names, predicted), key="classify_logits")
    bars[1].plotly_chart(viz.probabilities_figure(effects.probabilities, class_names, predicted),
                         key="classify_probabilities")
    csv_button("Download logits and probabilities (CSV)",
               pd.DataFrame({"class": class_names, "logit": effects.logits, "probability": effects.probabilities}),
               "logits.csv", key="classify_dl_logits")

explanation = le.explain_class(net, chosen.image, effects, cls, share_percent / 100)
important = [u.unit for u in explanation.units]

# -- the views: one tab each, only the open one built and drawn (ui.tabs) --------------------------------
tabs = url_tabs(list(CLASSIFY_TABS), CLASSIFY_PANEL_PARAM)
if tabs[EFFECTS].open:
    with tabs[EFFECTS]:
        _effects_view(model_name, final, effects, class_names, unit_layer, chosen)
if tabs[IMPORTANT].open:
    with tabs[IMPORTANT]:
        _important_view(model_name, net, final, effects, explanation, cls, share_percent, chosen)
if tabs[ACTIVATIONS].open:
    with tabs[ACTIVATIONS]:
        st.markdown(f"#### Activations of {unit_layer}, the final layer's input")
        st.plotly_chart(viz.activations_figure(effects.activations, unit_layer, important), key="classify_activations")
        st.caption(f"Highlighted: the important units for class {cls}.")
        csv_button("Download activations (CSV)",
                   pd.DataFrame({"unit": np.arange(final.n_units), "activation": effects.activations}),
                   "activations.csv", key="classify_dl_activations")
        st.markdown("#### Output weights: the other factor of each logit effect")
        st.plotly_chart(viz.output_weights_heatmap(effects.weight, class_names, unit_layer), key="classify_weights")
        npz_button("Download output weights (NPZ)", {"weight": effects.weight, "bias": effects.bias},
                   "output_weights.npz", key="classify_dl_weights")
if tabs[EARLIER].open:
    with tabs[EARLIER]:
        attribution_panels(model_name, net, chosen.image, cls, _neuron_params(chosen))
if tabs[LATENTS].open:
    with tabs[LATENTS]:
        latents_panel(model_name, net, chosen.image, cls, share_percent / 100, _neuron_params(chosen))
