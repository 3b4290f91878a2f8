"""The Classification Explorer's "In latents" tab: the logits with a dictionary spliced in, split exactly.

With a dictionary of the layer feeding the logits spliced in (its reconstruction
plus its error term, which together are the layer's activation exactly), every
logit is the sum of one effect per latent (``latent activation x W_dec[j] .
W_out[c]``), the error term's effect, the decoder bias's effect and the output
bias (``mechmnistic.analysis.splicing.latent_logit_effects``; a tested
identity). The tab shows them for the active latents, the important latents of
the explained class with links to each in the Neuron Explorer, and the sum.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from mechmnistic.analysis.latents import NEURONS
from mechmnistic.analysis.splicing import latent_logit_effects
from mechmnistic.cache import model_fingerprint
from mechmnistic.models.architectures import MNISTNet
from mechmnistic.threads import one_thread
from mechmnistic.viz import classification as viz

from . import neuron_data
from .downloads import csv_button
from .links import NEURON_PAGE, dictionaries_href, go_to, neuron_href

REST = ("error term", "decoder bias", "output bias")


def latents_panel(model_name: str, net: MNISTNet, image: np.ndarray, cls: int, share: float,
                  link_params: dict) -> None:
    """The tab for ``image`` (uint8 ``[28, 28]``), explaining class ``cls``; ``share``: the important-latent
    threshold (a fraction of the row's total |effect|); ``link_params``: what links to a latent carry."""
    feeds = net.layout.feeds_logits
    if feeds is None or feeds.is_conv:
        st.info("The logit layer reads no fully connected hidden layer here, so there is no dictionary to read its "
                "input in.")
        return
    bases = [b for b in neuron_data.bases(model_name, model_fingerprint(net), feeds.name) if b != NEURONS]
    if not bases:
        st.info(f"{feeds.name} has no dictionary yet: train one on the "
                f"[Dictionaries page]({dictionaries_href(model_name, feeds.name)}), then read the logits in its "
                "latents here.")
        return
    basis = st.selectbox("Dictionary", bases, key="classify_basis", format_func=lambda b: b.removeprefix("dictionary:"),
                         help=f"A sparse autoencoder trained on {feeds.name}'s activations, spliced in with its "
                              "error term (so the model computes exactly what it does without it).")
    dictionary = neuron_data.dictionary(model_name, model_fingerprint(net), feeds.name, basis)
    with one_thread():
        split = latent_logit_effects(net, dictionary, image[None])
    latents = split.latents[0]
    active = np.flatnonzero(latents)
    effects = split.effects[0][:, active]  # [C, K]
    rest = np.stack([split.error[0], split.decoder_bias[0], split.downstream[0]], axis=1)  # [C, 3]
    class_names = [str(c) for c in range(net.n_classes)]
    event = st.plotly_chart(viz.latent_effects_heatmap(effects, active, latents[active], rest, REST, class_names,
                                                       dictionary.id),
                            on_select="rerun", selection_mode="points", key="classify_latent_effects")
    total = split.total()[0]
    gap = float(np.abs(total - split.logits[0]).max())
    st.caption(f"{len(active)} of {dictionary.d_sae} latents are active on this input. Each row: the active "
               f"latents' effects + the error term ({split.error[0][cls]:+.4g} for class {cls}) + the decoder bias "
               f"({split.decoder_bias[0][cls]:+.4g}) + the output bias ({split.downstream[0][cls]:+.4g}) = the logit "
               f"(largest difference over the classes {gap:.1e}). Click a latent's cell to open it.")
    clicked = viz.clicked_cell(event, len(active))
    if clicked is not None and clicked[0] != viz.BIAS_UNIT:
        go_to(NEURON_PAGE, model=model_name, layer=feeds.name, unit=int(active[clicked[0]]), basis=basis,
              **link_params)
    row = split.effects[0][cls]
    magnitude = np.abs(row).sum() + np.abs(rest[cls]).sum()
    shares = np.abs(row) / magnitude if magnitude > 0 else np.zeros_like(row)
    chosen = np.flatnonzero(shares > share)
    chosen = chosen[np.argsort(-np.abs(row[chosen]), kind="stable")]
    st.markdown(f"#### Important latents for class {cls}")
    table = pd.DataFrame({
        "latent": chosen, "activation": latents[chosen], "effect": row[chosen], "share %": 100 * shares[chosen],
        "Neuron Explorer": [neuron_href(model_name, feeds.name, int(j), basis=basis, **link_params)
                            for j in chosen],
    })
    st.dataframe(table, hide_index=True, key="classify_latent_table",
                 column_config={"Neuron Explorer": st.column_config.LinkColumn(display_text="open latent"),
                                "share %": st.column_config.NumberColumn(format="%.1f")})
    if not len(chosen):
        st.caption("No latent passes the threshold: lower it to see more.")
    csv_button("Download the logits in latents (CSV)", lambda: pd.DataFrame(
        np.concatenate([split.effects[0], rest, split.logits[0][:, None]], axis=1),
        columns=[*(f"latent {j}" for j in range(dictionary.d_sae)), *REST, "logit"]).assign(class_=range(
            net.n_classes)), "logits_in_latents.csv", key="classify_dl_latents")
