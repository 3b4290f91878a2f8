"""Neuron Explorer: one unit of any hidden layer — what it reads, what it writes, when it fires, and why.

Deep link: ``/neuron?model=M&layer=L&unit=U`` (``neuron=U`` in older links; a
conv layer's unit is a channel; with ``basis=dictionary:ID`` it is a latent of
that dictionary of the layer, shown with every view a neuron gets). Optional:
``pos=R,C`` for the channel at one cell of its map, ``test_index``/``train_index``
for the input of the on-one-input views, ``top_k``, ``clusters``, ``explained``,
``show``, ``cluster``, and ``view``: the open tab, the slug of one of
``ui.links.NEURON_VIEWS`` (only the open tab's figures are built and drawn).
Every control is bound to its parameter through ``ui.bound``. Every number
comes from ``mechmnistic.analysis`` (``unit_behaviour``, ``connections``, ``conv``,
``grounding``, ``atlas``); the sections are drawn by ``ui.neuron_views``.
"""

import numpy as np
import streamlit as st

from mechmnistic.analysis.atlas import DEFAULT_TOP_K, MAX_TOP_K, AtlasParameters
from mechmnistic.analysis.cluster_stats import MAX_CLUSTERS
from mechmnistic.analysis.latents import NEURONS
from mechmnistic.analysis.unit_behaviour import activation_values, distribution_from_values, similar_units
from mechmnistic.cache import model_fingerprint
from mechmnistic.data import N_DIGITS, SIZES
from mechmnistic.errors import MechMNISTicError
from mechmnistic.viz import neuron as viz
from ui import bound, latent_views, linearity, loaders, neuron_data, split_data
from ui import neuron_views as views
from ui.links import (
    CLUSTERS,
    NEURON_VIEW_PARAM,
    NEURON_VIEWS,
    OLD_UNIT_PARAM,
    ON_INPUT,
    READS,
    TOP_EXAMPLES,
    UNIT_PARAM,
)
from ui.params import Param, choice_param, int_param, position_param, rename_param, set_params
from ui.tabs import url_tabs
from ui.unit_address import ShownInput

AUTO = "auto"
DEFAULT_EXPLAINED_PCT, DEFAULT_SHOW = 30, 16
CLUSTER_CHOICES = [AUTO] + [str(k) for k in range(1, MAX_CLUSTERS + 1)]
AT_MAXIMUM, AT_POSITION = "its maximum", "one position"
TEST, TRAIN = "test", "train"

model_name = st.session_state["active_model"]
model = loaders.load_model(model_name)
st.title("Neuron Explorer")

layers = neuron_data.explorable_layers(model_name)
if not layers:
    st.info(f"`{model_name}` has no hidden layer: its only layer maps pixels to logits. Pick another model.")
    st.stop()

# -- state from the URL ------------------------------------------------------------------------
# Every control is bound to its URL parameter (ui.bound): seeded from the URL, written back on every run,
# and following the URL whenever a link or a click elsewhere on the page (ui.unit_address.open_unit) moved
# it, so the address bar always reproduces the page.
rename_param(OLD_UNIT_PARAM, UNIT_PARAM)  # links made before the parameter was named `unit`
switched_model = st.session_state.get("nx_model") not in (None, model_name)
st.session_state["nx_model"] = model_name
if switched_model and st.query_params.get("layer") not in layers:
    for stale in ("layer", "pos", "test_index", "train_index", "cluster"):  # the previous model's: start afresh
        st.query_params.pop(stale, None)


def _forget_cluster() -> None:
    """Another unit is shown: a chosen cluster no longer applies."""
    st.query_params.pop("cluster", None)


def _step(delta: int, last: int) -> None:
    st.session_state["nx_unit"] = min(max(st.session_state["nx_unit"] + delta, 0), last)
    _forget_cluster()


def _go_to_unit(other: int) -> None:
    # A button, not st.page_link: a page link to the page already open runs it with the new
    # parameters but leaves the browser's address bar on the old ones.
    st.session_state["nx_unit"] = other
    _forget_cluster()


def _layer_changed() -> None:
    # A position belongs to the old layer's map, and dictionaries to the old layer: the new one shows its neurons.
    net = loaders.load_model(st.session_state["active_model"])
    st.session_state["nx_unit"] = min(st.session_state["nx_unit"], net.layout[st.session_state["nx_layer"]].n_units - 1)
    st.session_state["nx_basis"] = NEURONS
    st.session_state["nx_at"] = AT_MAXIMUM
    _forget_cluster()


def _basis_changed() -> None:
    st.session_state["nx_unit"] = 0
    st.session_state["nx_at"] = AT_MAXIMUM
    _forget_cluster()


def _basis_label(name: str) -> str:
    return "its neurons" if name == NEURONS else name.removeprefix("dictionary:") + " (latents)"


picker = st.columns([3, 3, 2, 1, 1], vertical_alignment="bottom")
layer = bound.select(picker[0], "Layer", layers, "nx_layer", "layer", layers[0], on_change=_layer_changed,
                     help="Every hidden layer, conv and fully connected, named as in the model's code.")
unit_layer = model.layout[layer]
conv = unit_layer.is_conv
fingerprint = model_fingerprint(model)
bases = neuron_data.bases(model_name, fingerprint, layer)
basis = bound.select(picker[1], "Basis", bases, "nx_basis", "basis", NEURONS, keep_default=False,
                     on_change=_basis_changed, format_func=_basis_label, disabled=len(bases) == 1,
                     help="The layer's own units, or the latents of one of its dictionaries (sparse autoencoders "
                          "trained on its activations: see the Dictionaries page).")
dictionary = None if basis == NEURONS else neuron_data.dictionary(model_name, fingerprint, layer, basis)
count = unit_layer.n_units if dictionary is None else dictionary.d_sae
kind = "Latent" if dictionary is not None else "Channel" if conv else "Neuron"
unit_index = bound.integer(picker[2], kind, 0, count - 1, "nx_unit", UNIT_PARAM, 0, on_change=_forget_cluster,
                           help=f"0 to {count - 1}")
picker[3].button("◀ Previous", key="nx_prev", on_click=_step, args=(-1, count - 1), disabled=unit_index <= 0,
                 width="stretch")
picker[4].button("Next ▶", key="nx_next", on_click=_step, args=(1, count - 1), disabled=unit_index >= count - 1,
                 width="stretch")

# A conv channel at its maximum on each image, or at one cell of its map: ``pos=R,C``, made of three controls.
channel_controls = conv and dictionary is None
position = None
if channel_controls:
    size = unit_layer.map_side
    pos_param = position_param("pos", size)
    bound.seed("nx_at", "pos", Param(AT_MAXIMUM if pos_param.value is None else AT_POSITION, pos_param.problem))
    if pos_param.value is not None:
        bound.seed("nx_row", "pos", Param(pos_param.value[0]))
        bound.seed("nx_col", "pos", Param(pos_param.value[1]))
    if st.session_state["nx_at"] == AT_POSITION:
        position = (int(st.session_state["nx_row"]), int(st.session_state["nx_col"]))
elif st.query_params.get("pos"):
    st.warning(f"`pos` applies to conv channels only; {layer}'s {'latents' if dictionary else 'units'} are not "
               "channels.")
    st.query_params.pop("pos")

test_param = int_param("test_index", 0, SIZES[TEST] - 1, None)
train_param = int_param("train_index", 0, SIZES[TRAIN] - 1, None)
for param in (test_param, train_param):
    if param.problem:
        st.warning(param.problem)
if test_param.value is not None and train_param.value is not None:
    st.warning("The link names both a test and a training image; showing the test image.")

# The input of the on-one-input views: the URL's, or the unit's top test example.
if test_param.value is not None or train_param.value is not None:
    split = TEST if test_param.value is not None else TRAIN
    shown_input = ShownInput(split, int(test_param.value if split == TEST else train_param.value), pinned=True)
else:
    if dictionary is not None:
        test_pre = neuron_data.latent_values(model_name, layer, basis, TEST).values[:, unit_index]
    elif position is not None:
        test_pre = neuron_data.position_values(model_name, layer, unit_index, position, TEST)
    else:
        test_pre = split_data.activations(model_name, layer, TEST).pre[:, unit_index]
    shown_input = ShownInput(TEST, int(np.argmax(test_pre)), pinned=False)
# Set on every run: without an input in the URL they follow the unit.
st.session_state["nx_split"] = shown_input.split
st.session_state["nx_index"] = shown_input.index

if channel_controls:
    if position is None:  # the row and column start where the channel peaks on the shown input
        peak = split_data.activations(model_name, layer, shown_input.split).argmax[shown_input.index, unit_index]
        st.session_state["nx_row"], st.session_state["nx_col"] = (int(v) for v in peak)
    where = st.columns([3, 1, 1, 2], vertical_alignment="bottom")
    where[0].radio("Take the channel at", (AT_MAXIMUM, AT_POSITION), key="nx_at", horizontal=True,
                   on_change=_forget_cluster,
                   help="A channel is a map of units, one per position. At its maximum: on each image, the "
                        "position where it is highest (as in the dataset activations). At one position: that cell.")
    for column, label, key in ((where[1], "Row", "nx_row"), (where[2], "Column", "nx_col")):
        column.number_input(label, min_value=0, max_value=size - 1, step=1, key=key, on_change=_forget_cluster,
                            disabled=position is None)
    where[3].caption(f"{layer}'s map is {size}x{size}.")
    bound.write("pos", None if position is None else f"{position[0]},{position[1]}")

with st.sidebar:
    st.subheader("Top examples and clusters")
    top_k = bound.integer(st, "Top examples to cluster", 10, MAX_TOP_K, "nx_top_k", "top_k", DEFAULT_TOP_K,
                          keep_default=False, on_change=_forget_cluster,
                          help="The training images with the highest pre-activation.")
    clusters_choice = bound.select(
        st, "Number of clusters", CLUSTER_CHOICES, "nx_clusters", "clusters", AUTO, keep_default=False,
        on_change=_forget_cluster,
        help=f"'auto' picks the fewest clusters (at most {MAX_CLUSTERS}) that explain the share below.")
    explained = bound.slider(
        st, "Spread explained by the clusters (auto), %", 5, 95, "nx_explained", "explained", DEFAULT_EXPLAINED_PCT,
        step=5, keep_default=False, on_change=_forget_cluster, disabled=clusters_choice != AUTO,
        help="Between-cluster share of the embeddings' spread: higher gives more, tighter clusters.")
    shown = bound.slider(st, "Examples shown", 4, 64, "nx_show", "show", DEFAULT_SHOW, step=4, keep_default=False)
    st.subheader("Connections")
    st.radio("Order of weight bars", list(views.ORDERS), key="nx_order")
    st.slider("Bars and rows shown", 5, 60, value=20, step=5, key="nx_bars")


def _input_changed() -> None:
    state = st.session_state
    set_params(test_index=state["nx_index"] if state["nx_split"] == TEST else None,
               train_index=state["nx_index"] if state["nx_split"] == TRAIN else None)


def _follow_unit() -> None:
    set_params(test_index=None, train_index=None)


params = AtlasParameters(top_k=top_k, n_clusters=None if clusters_choice == AUTO else int(clusters_choice),
                         explained=explained / 100)
unit = views.Unit(model_name, model, layer, unit_index, position, dictionary)

# -- the unit ------------------------------------------------------------------------------------


def unit_examples():
    """The unit's top examples and feature clusters: grounding its top examples in pixels and clustering them,
    so only the tabs that show them, or a header without a stored count, ask."""
    if dictionary is not None:
        return neuron_data.latent_view(model_name, layer, basis, unit_index, params)
    return neuron_data.unit_view(model_name, layer, unit_index, position, params)


try:
    if dictionary is not None:  # a latent: the same views, from its activations and its grounding
        train_pre = train_values = neuron_data.latent_values(model_name, layer, basis).values[:, unit_index]
        similar, similarity = latent_views.similar_latents(unit)
        on_input = views.ground_latent_on_input(unit, shown_input)
    else:
        train_pre = (split_data.activations(model_name, layer).pre[:, unit_index] if position is None
                     else neuron_data.position_values(model_name, layer, unit_index, position))
        train_values = activation_values(unit_layer.activation, train_pre)
        similar, similarity = similar_units(model, layer, unit_index, count=5)
        on_input = views.ground_on_input(unit, shown_input)
    distribution = distribution_from_values(train_pre, train_values, loaders.mnist("train").labels, N_DIGITS)
    n_clusters = neuron_data.stored_cluster_count(model_name, layer, basis, unit_index, position, params)
    if n_clusters is None:
        n_clusters = len(unit_examples()[1].stats.sizes)
except MechMNISTicError as error:
    st.error(str(error))
    st.stop()
cluster_names = views.cluster_names(n_clusters)
cluster_param = choice_param("cluster", cluster_names, cluster_names[0])
if cluster_param.problem:  # checked whichever tab is open, and dropped so it is said once
    st.warning(cluster_param.problem)
    st.query_params.pop("cluster", None)

st.header(unit.name)
bias = float(model.layer(layer).bias.detach()[unit_index] if dictionary is None else dictionary.b_enc[unit_index])
summary = st.columns(5)
what = "its maximum over the map" if conv and position is None else "its activation"
summary[0].metric("Fires on", f"{distribution.firing_fraction:.1%}",
                  help=f"Share of training images on which {what} is > 0")
summary[1].metric("Mean activation", f"{distribution.mean:.3g}", help=f"std {distribution.std:.3g}")
summary[2].metric("Max activation", f"{distribution.max:.3g}")
summary[3].metric("Bias" if dictionary is None else "Encoder bias", f"{bias:.3g}")
summary[4].metric("Feature clusters", n_clusters)
if dictionary is not None:
    st.caption(f"A latent of {dictionary.id}: a {dictionary.kind} sparse autoencoder with {dictionary.d_sae} latents "
               f"trained on {layer}'s activations" + (" at every position of its map, taken here where it is largest "
                                                       "on each image" if conv else "") + ". Its views are a neuron's.")
elif conv:
    st.caption(
        f"A conv channel is a {size}x{size} map of units sharing one kernel. "
        + ("Taken at its maximum, it is the map's largest pre-activation on an image (its activation there is the "
           "activation function of it), at the position where it is highest on that image (each example shows "
           "where)." if position is None else
           f"Here it is the single unit at ({position[0]}, {position[1]}): its top examples, distribution and "
           "clusters are that cell's.")
    )
if not views.clusters_exact(unit):
    st.info(linearity.approximation_note(model))
if distribution.firing_fraction == 0 and dictionary is not None:
    st.info("This latent never fires on the training set (a dead latent): its top examples are images on which "
            "it is zero like on every other, so they say nothing about it.")
elif distribution.firing_fraction == 0:
    st.info("This unit never fires on the training set (a dead unit). Its top examples are the images "
            "on which its pre-activation comes closest to zero from below.")

# -- the views: one tab each, only the open one built and drawn (ui.tabs) --------------------------------
tabs = url_tabs(NEURON_VIEWS, NEURON_VIEW_PARAM)
if tabs[READS].open and dictionary is not None:
    with tabs[READS]:
        latent_views.reads_writes_section(unit, shown_input if shown_input.pinned else None)
        weights_row = st.columns(3)
        with weights_row[0]:
            latent_views.logit_effect_section(unit)
        with weights_row[1]:
            st.plotly_chart(viz.activation_histogram(distribution.counts, distribution.edges,
                                                     distribution.firing_fraction), key="nx_fig_hist")
        with weights_row[2]:
            st.markdown("**Similar latents** (cosine of decoder rows)")
            for rank, (other, cosine) in enumerate(zip(similar, similarity, strict=True)):
                st.button(f"latent {other} · {cosine:+.2f}", key=f"nx_similar_{rank}", on_click=_go_to_unit,
                          args=(int(other),), help=f"cosine similarity of decoder rows {cosine:.4f}")
        st.plotly_chart(viz.firing_by_class_figure(distribution.firing_by_class), key="nx_fig_classes")
        latent_views.intervention_section(unit)
elif tabs[READS].open:
    with tabs[READS]:
        if conv:
            views.filters_section(unit)
        weights_row = st.columns(3)
        with weights_row[0]:
            if unit.source is not None:
                views.incoming_section(unit, on_input)
            elif not conv:
                views.pixel_weights_section(unit)
            else:
                st.markdown("**Reads pixels** through the kernel above: its effective pixel weights on any image "
                            "are that kernel, placed at the cell.")
        with weights_row[1]:
            views.outgoing_section(unit)
        with weights_row[2]:
            st.plotly_chart(viz.activation_histogram(distribution.counts, distribution.edges,
                                                     distribution.firing_fraction), key="nx_fig_hist")
            if conv and position is None:
                st.caption("Of the channel's maximum pre-activation over the map.")
        behaviour = st.columns([2, 1])
        with behaviour[0]:
            st.plotly_chart(viz.firing_by_class_figure(distribution.firing_by_class), key="nx_fig_classes")
        with behaviour[1]:
            similar_by = "kernels" if conv else "input weights"
            st.markdown(f"**Similar {kind.lower()}s** (cosine of {similar_by})")
            for rank, (other, cosine) in enumerate(zip(similar, similarity, strict=True)):
                st.button(f"{kind.lower()} {other} · {cosine:+.2f}", key=f"nx_similar_{rank}", on_click=_go_to_unit,
                          args=(int(other),), help=f"cosine similarity of {similar_by} {cosine:.4f}")
            st.caption("The address bar always links to exactly this view.")

if tabs[ON_INPUT].open:
    with tabs[ON_INPUT]:
        controls = st.columns([2, 2, 3], vertical_alignment="bottom")
        controls[0].radio("Image from", (TEST, TRAIN), key="nx_split", horizontal=True, on_change=_input_changed,
                          format_func=lambda s: f"{s} set")
        controls[1].number_input("Index", min_value=0, max_value=SIZES[shown_input.split] - 1,
                                 step=1, key="nx_index", on_change=_input_changed)
        controls[2].button("Use this unit's top test example", key="nx_follow", on_click=_follow_unit,
                           disabled=not shown_input.pinned,
                           help="Without a chosen input, each unit shows its own top test example.")
        views.on_input_section(unit, on_input)
        if dictionary is not None:
            st.markdown(f"**Which {layer} units built this** (activation minus decoder bias × encoder weight)")
            latent_views.built_from_section(unit, on_input)
        elif unit.source is not None:
            st.markdown(f"**Which {unit.source} units built this** (activation × weight on this input)")
            views.upstream_section(unit, on_input)

if tabs[TOP_EXAMPLES].open:
    with tabs[TOP_EXAMPLES]:
        top, clusters = unit_examples()
        views.top_examples_section(unit, top, clusters, params, shown)

if tabs[CLUSTERS].open:
    with tabs[CLUSTERS]:
        top, clusters = unit_examples()
        views.clusters_section(unit, top, clusters, params)
        chosen = bound.select(st, "Members of cluster", cluster_names, "nx_cluster", "cluster", cluster_names[0],
                              keep_default=False)
        views.members_figure(top, clusters, params, chosen, shown)
