"""Neuron Explorer: one unit of a hidden layer — what it reads, what it writes, when it fires, and why.

Deep link: ``/neuron?model=M&layer=L&neuron=U`` (optional: ``top_k``,
``clusters``, ``explained``, ``show``, ``cluster``). Every number comes from
``mechmnistic.analysis.neurons`` and ``mechmnistic.analysis.atlas``.
"""

import numpy as np
import pandas as pd
import streamlit as st

from mechmnistic.analysis import neurons
from mechmnistic.analysis.atlas import DEFAULT_TOP_K, MAX_TOP_K, AtlasParameters, unit_clusters
from mechmnistic.analysis.cluster_stats import MAX_CLUSTERS
from mechmnistic.errors import MechMNISTicError
from mechmnistic.viz import neuron as viz
from ui import loaders, neuron_data
from ui.downloads import csv_button, npz_button
from ui.params import choice_param, int_param, set_params

AUTO = "auto"
DEFAULT_EXPLAINED_PCT, DEFAULT_SHOW = 30, 16
CLUSTER_CHOICES = [AUTO] + [str(k) for k in range(1, MAX_CLUSTERS + 1)]

model_name = st.session_state["active_model"]
model = loaders.load_model(model_name)
st.title("Neuron Explorer")

layers = neuron_data.explorable_layers(model_name)
if not layers:
    st.info(
        f"`{model_name}` is a CNN: the Neuron Explorer covers the hidden units of MLPs for now "
        f"(CNN channels and fully connected units come in a later release). Pick an MLP in the sidebar."
    )
    st.stop()

# -- state from the URL ------------------------------------------------------------------------
# The URL is the source of truth: it is read into the widgets on every run, and every widget
# writes back to it, so the address bar always reproduces the page.
problems = []
switched_model = st.session_state.get("nx_model") not in (None, model_name)
st.session_state["nx_model"] = model_name
if switched_model and st.query_params.get("layer") not in layers:
    st.query_params.pop("layer", None)  # the previous model's layer: start afresh, nothing to report
layer_param = choice_param("layer", layers, layers[0])
layer = layer_param.value
n_units = model.layer(layer).out_features
neuron_param = int_param("neuron", 0, n_units - 1, 0)
top_k_param = int_param("top_k", 10, MAX_TOP_K, DEFAULT_TOP_K)
clusters_param = choice_param("clusters", CLUSTER_CHOICES, AUTO)
explained_param = int_param("explained", 5, 95, DEFAULT_EXPLAINED_PCT)
show_param = int_param("show", 4, 64, DEFAULT_SHOW)
for param in (layer_param, neuron_param, top_k_param, clusters_param, explained_param, show_param):
    if param.problem:
        problems.append(param.problem)
st.session_state["nx_layer"] = layer
st.session_state["nx_neuron"] = neuron_param.value
st.session_state["nx_top_k"] = top_k_param.value
st.session_state["nx_clusters"] = clusters_param.value
st.session_state["nx_explained"] = explained_param.value
st.session_state["nx_show"] = show_param.value


def _write_url(new_unit: bool = False) -> None:
    """Put the widgets' values into the URL (optional ones only when not the default).

    ``new_unit``: another unit is shown, so a chosen cluster no longer applies.
    """
    state = st.session_state
    set_params(
        layer=state["nx_layer"], neuron=state["nx_neuron"],
        top_k=None if state["nx_top_k"] == DEFAULT_TOP_K else state["nx_top_k"],
        clusters=None if state["nx_clusters"] == AUTO else state["nx_clusters"],
        explained=None if state["nx_explained"] == DEFAULT_EXPLAINED_PCT else state["nx_explained"],
        show=None if state["nx_show"] == DEFAULT_SHOW else state["nx_show"],
    )
    if new_unit:
        st.query_params.pop("cluster", None)


def _step(delta: int, last: int) -> None:
    st.session_state["nx_neuron"] = min(max(st.session_state["nx_neuron"] + delta, 0), last)
    _write_url(new_unit=True)


def _go_to_unit(other: int) -> None:
    # A button, not st.page_link: a page link to the page already open runs it with the new
    # parameters but leaves the browser's address bar on the old ones.
    st.session_state["nx_neuron"] = other
    _write_url(new_unit=True)


def _layer_changed() -> None:
    units = loaders.load_model(st.session_state["active_model"]).layer(st.session_state["nx_layer"]).out_features
    st.session_state["nx_neuron"] = min(st.session_state["nx_neuron"], units - 1)
    _write_url(new_unit=True)


for problem in problems:
    st.warning(problem)

# -- navigation --------------------------------------------------------------------------------
picker = st.columns([3, 2, 1, 1], vertical_alignment="bottom")
picker[0].selectbox("Layer", layers, key="nx_layer", on_change=_layer_changed,
                    help="Hidden fully connected layers, named as in the model's code.")
picker[1].number_input("Neuron", min_value=0, max_value=n_units - 1, step=1, key="nx_neuron", on_change=_write_url,
                       args=(True,), help=f"0 to {n_units - 1}")
picker[2].button("◀ Previous", key="nx_prev", on_click=_step, args=(-1, n_units - 1),
                 disabled=st.session_state["nx_neuron"] <= 0, width="stretch")
picker[3].button("Next ▶", key="nx_next", on_click=_step, args=(1, n_units - 1),
                 disabled=st.session_state["nx_neuron"] >= n_units - 1, width="stretch")

with st.sidebar:
    st.subheader("Top examples and clusters")
    st.number_input("Top examples to cluster", min_value=10, max_value=MAX_TOP_K, step=50, key="nx_top_k",
                    on_change=_write_url, args=(True,), help="The training images with the highest pre-activation.")
    st.selectbox("Number of clusters", CLUSTER_CHOICES, key="nx_clusters", on_change=_write_url, args=(True,),
                 help=f"'auto' picks the fewest clusters (at most {MAX_CLUSTERS}) that explain the share below.")
    st.slider("Spread explained by the clusters (auto), %", 5, 95, step=5, key="nx_explained",
              on_change=_write_url, args=(True,), disabled=st.session_state["nx_clusters"] != AUTO,
              help="Between-cluster share of the embeddings' spread: higher gives more, tighter clusters.")
    st.slider("Examples shown", 4, 64, step=4, key="nx_show", on_change=_write_url)

_write_url()
unit = int(st.session_state["nx_neuron"])
clusters_choice = st.session_state["nx_clusters"]
params = AtlasParameters(
    top_k=int(st.session_state["nx_top_k"]),
    n_clusters=None if clusters_choice == AUTO else int(clusters_choice),
    explained=st.session_state["nx_explained"] / 100,
)
shown = int(st.session_state["nx_show"])
stem = f"{model_name}-{layer}-{unit}"

# -- the unit ------------------------------------------------------------------------------------
try:
    atlas = neuron_data.atlas(model_name, layer, params)
    acts = neuron_data.activations(model_name, layer)
    train = loaders.mnist("train")
    inputs = neurons.input_weights(model, layer, unit)
    outputs = neurons.output_weights(model, layer, unit)
    similar_units, similarity = neurons.similar_neurons(model, layer, unit, count=5)
    distribution = neurons.distribution_from_values(acts.pre[:, unit], train.labels, model.n_classes)
    top = atlas.top_examples(unit)
    clusters = unit_clusters(model, atlas, unit)
except MechMNISTicError as error:
    st.error(str(error))
    st.stop()

st.header(f"{layer} · neuron {unit}")
summary = st.columns(5)
summary[0].metric("Fires on", f"{distribution.firing_fraction:.1%}",
                  help="Share of training images with activation > 0")
summary[1].metric("Mean activation", f"{distribution.mean:.3g}", help=f"std {distribution.std:.3g}")
summary[2].metric("Max activation", f"{distribution.max:.3g}")
summary[3].metric("Input bias", f"{inputs.bias:.3g}")
summary[4].metric("Feature clusters", len(clusters.stats.sizes))
if distribution.firing_fraction == 0:
    st.info("This neuron never fires on the training set (a dead unit). Its top examples are the images "
            "on which its pre-activation comes closest to zero from below.")

weights_row = st.columns(3)
with weights_row[0]:
    st.plotly_chart(viz.input_weights_figure(inputs.weights, inputs.source), key="nx_fig_in")
with weights_row[1]:
    st.plotly_chart(viz.output_weights_figure(outputs.weights, outputs.target, outputs.to_classes), key="nx_fig_out")
with weights_row[2]:
    st.plotly_chart(viz.activation_histogram(distribution.counts, distribution.edges, distribution.firing_fraction),
                    key="nx_fig_hist")


def _weights_table() -> pd.DataFrame:
    if inputs.in_pixel_space:
        rows, cols = np.indices(inputs.weights.shape)
        table = pd.DataFrame({"row": rows.ravel(), "col": cols.ravel(), "input_weight": inputs.weights.ravel()})
    else:
        table = pd.DataFrame({f"{inputs.source}_unit": np.arange(len(inputs.weights)), "input_weight": inputs.weights})
    return table


downloads = st.columns(3)
with downloads[0]:
    csv_button("Input weights (CSV)", _weights_table, f"{stem}-input-weights.csv", key="nx_dl_in")
with downloads[1]:
    target = "class" if outputs.to_classes else f"{outputs.target}_unit"
    csv_button("Output weights (CSV)", lambda: pd.DataFrame({target: np.arange(len(outputs.weights)),
                                                             "output_weight": outputs.weights}),
               f"{stem}-output-weights.csv", key="nx_dl_out")
with downloads[2]:
    csv_button("Activation histogram (CSV)", lambda: pd.DataFrame({
        "pre_activation_from": distribution.edges[:-1], "pre_activation_to": distribution.edges[1:],
        "images": distribution.counts}), f"{stem}-activation-histogram.csv", key="nx_dl_hist")

behaviour = st.columns([2, 1])
with behaviour[0]:
    st.plotly_chart(viz.firing_by_class_figure(distribution.firing_by_class), key="nx_fig_classes")
with behaviour[1]:
    st.markdown("**Similar neurons** (cosine of input weights)")
    for rank, (other, cosine) in enumerate(zip(similar_units, similarity, strict=True)):
        st.button(f"neuron {other} · {cosine:+.2f}", key=f"nx_similar_{rank}", on_click=_go_to_unit,
                  args=(int(other),), help=f"cosine similarity of input weights {cosine:.4f}")
    st.caption("The address bar always links to exactly this view.")

# -- top examples --------------------------------------------------------------------------------
st.subheader("Top examples")
identity_gap = float(np.abs(clusters.embeddings.sum(axis=(1, 2)) + clusters.biases - top.pre).max())
st.caption(f"The {shown} training images (of the {params.top_k} analysed) with the highest pre-activation, "
           "each above its Hadamard embedding: every pixel times its (effective) input weight. Red pixels push the "
           "neuron up, blue ones down; an embedding's sum plus the bias is the pre-activation "
           f"(largest difference over the {params.top_k} examples: {identity_gap:.1e}).")
first = slice(0, shown)
st.plotly_chart(viz.examples_figure(train.images[top.indices[first]], top.indices[first], top.labels[first],
                                    top.activations[first], clusters.embeddings[first]), key="nx_fig_top")
dl = st.columns(2)
with dl[0]:
    csv_button(f"Top {params.top_k} examples (CSV)", lambda: pd.DataFrame({
        "rank": np.arange(len(top.indices)), "train_index": top.indices, "label": top.labels,
        "pre_activation": top.pre, "activation": top.activations, "cluster": clusters.labels}),
        f"{stem}-top-examples.csv", key="nx_dl_top")
with dl[1]:
    npz_button("Their embeddings (NPZ)", lambda: {"train_index": top.indices, "embeddings": clusters.embeddings,
                                                  "bias": clusters.biases, "pre_activation": top.pre},
               f"{stem}-embeddings.npz", key="nx_dl_emb")

# -- feature clusters ----------------------------------------------------------------------------
st.subheader("Feature clusters")
stats = clusters.stats
st.caption(
    f"The {params.top_k} top examples grouped by the direction of their embeddings (Ward clustering on cosine "
    f"geometry): each cluster is one way the neuron is driven. {len(stats.sizes)} clusters explain "
    f"{atlas.explained[unit]:.0%} of the spread; "
    f"{clusters.share_in_clusters_of_three_or_more:.0%} of the examples are in clusters of 3 or more."
)
quality = st.columns(2)
quality[0].metric("Mean cosine similarity within clusters", f"{stats.mean_intra:.3f}")
quality[1].metric("Mean cosine similarity between clusters", f"{stats.mean_inter:.3f}",
                  delta=f"{stats.mean_inter - stats.mean_intra:+.3f} vs within", delta_color="off")
main_classes = clusters.class_counts.argmax(axis=1)
central_rows = stats.central
cluster_table = pd.DataFrame({
    "cluster": [f"C{c}" for c in range(len(stats.sizes))],
    "size": stats.sizes,
    "main class": main_classes,
    "classes": [", ".join(f"{k}: {n}" for k, n in sorted(enumerate(row), key=lambda kv: -kv[1]) if n)
                for row in clusters.class_counts],
    "similarity within": stats.intra,
    "similarity to others": stats.inter,
    "central train_index": top.indices[central_rows],
})
st.dataframe(cluster_table, hide_index=True, width="stretch", column_config={
    "similarity within": st.column_config.NumberColumn(format="%.3f"),
    "similarity to others": st.column_config.NumberColumn(format="%.3f"),
}, key="nx_cluster_table")
st.plotly_chart(viz.clusters_figure(train.images[top.indices[central_rows]], clusters.embeddings[central_rows],
                                    clusters.mean_embeddings, stats.sizes, main_classes, top.indices[central_rows]),
                key="nx_fig_clusters")
st.plotly_chart(viz.cluster_classes_figure(clusters.class_counts), key="nx_fig_cluster_classes")
dl = st.columns(2)
with dl[0]:
    csv_button("Clusters (CSV)", lambda: cluster_table, f"{stem}-clusters.csv", key="nx_dl_clusters")
with dl[1]:
    npz_button("Cluster embeddings (NPZ)", lambda: {
        "cluster_of_example": clusters.labels, "train_index": top.indices, "sizes": stats.sizes,
        "central_train_index": top.indices[central_rows], "central_embeddings": clusters.embeddings[central_rows],
        "mean_embeddings": clusters.mean_embeddings, "class_counts": clusters.class_counts,
        "intra_similarity": stats.intra, "inter_similarity": stats.inter},
        f"{stem}-clusters.npz", key="nx_dl_cluster_npz")

cluster_names = [f"C{c}" for c in range(len(stats.sizes))]
cluster_param = choice_param("cluster", cluster_names, cluster_names[0])
if cluster_param.problem:
    st.warning(cluster_param.problem)
st.session_state["nx_cluster"] = cluster_param.value
chosen = st.selectbox("Members of cluster", cluster_names, key="nx_cluster",
                      on_change=lambda: set_params(cluster=st.session_state["nx_cluster"]))
members = np.flatnonzero(clusters.labels == cluster_names.index(chosen))[:shown]
st.plotly_chart(viz.examples_figure(train.images[top.indices[members]], top.indices[members], top.labels[members],
                                    top.activations[members], clusters.embeddings[members],
                                    title=f"Members of {chosen} with the highest activation, and their embeddings"),
                key="nx_fig_members")
