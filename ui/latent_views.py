"""The Neuron Explorer's views that only a dictionary's latent has: the neurons it reads and writes, its
direct effect on the logits, which neurons built it on an input, and its similar latents.

Everything else a latent shares with a neuron (its activation distribution, on-one-input grounding, top
examples and feature clusters) is drawn by ``ui.neuron_views`` from the same kind of data. A latent reads
the layer's activation ``h`` through its encoder column (``(h - b_dec) @ W_enc[:, j] + b_enc[j]``, its
pre-activation) and writes its decoder row ``W_dec[j]`` back into the layer's space; every bar opens the
neuron (or channel) it belongs to.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from mechmnistic.analysis.latents import layer_batches
from mechmnistic.analysis.splicing import latent_logit_weights
from mechmnistic.threads import one_thread
from mechmnistic.viz.common import clicked_id
from mechmnistic.viz.connections import ranked_bar, ranked_bar_pair

from .downloads import csv_button
from .links import neuron_href
from .neuron_views import OnInput, Unit, bars_controls
from .unit_address import open_unit


def _unit_labels(unit: Unit) -> list[str]:
    kind = "ch" if unit.conv else "#"
    return [f"{unit.layer} {kind}{u}" for u in range(unit.dictionary.d_in)]


def reads_writes_section(unit: Unit, shown_input) -> None:
    """The latent's encoder column and decoder row over the layer's units, as clickable bars (one figure)."""
    dictionary = unit.dictionary
    encoder = dictionary.W_enc[:, unit.index].numpy().astype(np.float64)
    decoder = dictionary.W_dec[unit.index].numpy().astype(np.float64)
    labels = _unit_labels(unit)
    order, count = bars_controls()
    fig = ranked_bar_pair((encoder, decoder), labels, (f"What it reads: encoder weights on {unit.layer}",
                                                       f"What it writes: decoder weights on {unit.layer}"),
                          "weight", top=count, order=order)
    event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=f"nx_latent_rw_{unit.key}")
    clicked = clicked_id(event)
    if clicked is not None:
        open_unit(unit.layer, clicked, None, shown_input, basis=None)
    st.caption(f"Left, what it reads: its pre-activation is (h − b_dec) · these weights "
               f"{float(dictionary.b_enc[unit.index]):+.4g} (encoder bias), h the activation of {unit.layer}; "
               f"{dictionary.kind} then keeps it "
               + (f"only among the {dictionary.k} largest of a row." if dictionary.kind == "topk" else
                  "where positive.")
               + f" Right, what it writes: one unit of the latent adds these to the reconstruction of {unit.layer} "
               f"(norm {np.linalg.norm(decoder):.3g}). Click a bar to open that unit.")
    csv_button("Encoder and decoder weights (CSV)", lambda: pd.DataFrame(
        {"unit": labels, "encoder_weight": encoder, "decoder_weight": decoder}),
        f"{unit.stem}-weights.csv", key="nx_dl_latent_weights")


def logit_effect_section(unit: Unit) -> None:
    """The latent's decoder's direct effect on each logit (a dictionary of the layer feeding the logits)."""
    feeds = unit.model.layout.feeds_logits
    if feeds is None or feeds.name != unit.layer or feeds.is_conv or feeds.pool is not None:
        st.caption(f"{unit.layer} does not feed the logit layer directly: the latent's decoder reaches the logits "
                   "through the layers after it (the Classification Explorer splits the logits over latents).")
        return
    effect = latent_logit_weights(unit.model, unit.dictionary)[unit.index]
    classes = [f"class {c}" for c in range(len(effect))]
    st.plotly_chart(ranked_bar(effect, classes, "Its direct effect on each logit", "logit per unit of latent",
                               top=None, order="index"), key=f"nx_latent_logits_{unit.key}")
    st.caption("W_dec[j] · W_out[c]: how much one unit of this latent's activation moves each class's logit.")
    csv_button("Effect on the logits (CSV)", lambda: pd.DataFrame({"class": np.arange(len(effect)),
                                                                   "logit_per_unit": effect}),
               f"{unit.stem}-logit-effects.csv", key="nx_dl_latent_logits")


def built_from_section(unit: Unit, on_input: OnInput) -> None:
    """Which of the layer's units built the latent's pre-activation on the input: (h_u − b_dec_u) · W_enc[u, j]
    per unit, plus the encoder bias, exactly."""
    dictionary = unit.dictionary
    with torch.no_grad(), one_thread():
        _, activation = next(layer_batches(unit.model, unit.layer, on_input.image[None]))
    h = activation[0]
    if unit.conv:  # the latent reads the channel vector at the cell where it was taken
        h = h[:, on_input.position[0], on_input.position[1]]
    h = h.numpy().astype(np.float64)
    weights = dictionary.W_enc[:, unit.index].numpy().astype(np.float64)
    parts = (h - dictionary.b_dec.numpy().astype(np.float64)) * weights
    bias = float(dictionary.b_enc[unit.index])
    total = float(parts.sum())
    _, count = bars_controls()
    order = np.argsort(-np.abs(parts), kind="stable")[:count]
    labels = _unit_labels(unit)
    table = pd.DataFrame({
        "unit": [labels[u] for u in order], "activation": h[order], "encoder weight": weights[order],
        "part": parts[order],
        "open": [neuron_href(unit.model_name, unit.layer, int(u), **on_input.shown.params()) for u in order],
    })
    st.dataframe(table, hide_index=True, column_config={"open": st.column_config.LinkColumn(display_text="open")},
                 key=f"nx_latent_parts_{unit.key}")
    st.caption(f"The parts sum to {total:+.4g}; with the encoder bias {bias:+.4g} that is {total + bias:+.4g}, the "
               f"latent's pre-activation on this input ({on_input.pre:+.4g}, difference "
               f"{abs(total + bias - on_input.pre):.1e}).")
    csv_button("All parts (CSV)", lambda: pd.DataFrame({"unit": labels, "activation": h, "encoder_weight": weights,
                                                        "part": parts}),
               f"{unit.stem}-built-from.csv", key="nx_dl_latent_parts")


def similar_latents(unit: Unit, count: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` other latents whose decoder rows point the most the same way: ``(latents, cosine)``."""
    decoder = unit.dictionary.W_dec.numpy().astype(np.float64)
    norms = np.linalg.norm(decoder, axis=1)
    cosine = decoder @ decoder[unit.index] / np.maximum(norms * norms[unit.index], 1e-300)
    cosine[unit.index] = -np.inf
    order = np.argsort(-cosine, kind="stable")[:count]
    return order, cosine[order]


@st.cache_data(show_spinner="Ablating over the test set…", max_entries=16)
def _ablation(model_name: str, fingerprint: str, layer: str, basis: str, latent: int, method: str,
              seed: int) -> pd.DataFrame:
    from mechmnistic.analysis.latent_interventions import ablate_latents_on_split

    from . import loaders, neuron_data

    net = loaders.load_model(model_name)
    result = ablate_latents_on_split(net, neuron_data.dictionary(model_name, fingerprint, layer, basis), [latent],
                                     method, "test", seed)
    return pd.DataFrame([row.to_dict() for row in result.by_class()])


def intervention_section(unit: Unit) -> None:
    """Feature visualisation of the latent (a link), and its ablation over the test set, on demand."""
    from mechmnistic.cache import model_fingerprint

    from .links import features_href

    spec = f"latent:{unit.dictionary.id}:{unit.index}"
    if not unit.conv:
        st.markdown(f"[Feature visualisation of this latent]"
                    f"({features_href(unit.model_name, layer=unit.layer, target='directions', dirs=spec)}): the "
                    "input that maximises its encoder pre-activation.")
    with st.expander("Ablate this latent over the test set"):
        methods = ("zero", "mean") if unit.conv else ("zero", "mean", "resample")
        columns = st.columns([2, 1, 1], vertical_alignment="bottom")
        method = columns[0].radio("Replace it with", methods, horizontal=True, key="nx_latent_ablation",
                                  help="With the dictionary spliced in with its error term (exactly the model), "
                                       "the latent is set to 0, its training mean, or (resample) its value on a "
                                       "random training image; nothing else moves.")
        seed = int(columns[1].number_input("Seed", 0, 10_000, 0, key="nx_latent_seed",
                                           disabled=method != "resample"))
        if columns[2].button("Ablate", key="nx_latent_ablate") or st.session_state.get("nx_latent_shown") == (
                unit.key, method, seed):
            st.session_state["nx_latent_shown"] = (unit.key, method, seed)
            table = _ablation(unit.model_name, model_fingerprint(unit.model), unit.layer, unit.basis, unit.index,
                              method, seed)
            shown = table.drop(columns=["mean_logit_change"])
            st.dataframe(shown, hide_index=True, key=f"nx_latent_ablation_table_{unit.key}",
                         column_config={c: st.column_config.NumberColumn(format="percent")
                                        for c in ("fraction_changed", "accuracy_before", "accuracy_after")})
            csv_button("Ablation by class (CSV)", table, f"{unit.stem}-{method}-ablation.csv",
                       key="nx_dl_latent_ablation")
