"""The Neuron Explorer's sections for one unit: what it reads and writes, one input, top examples, clusters.

Each function draws one section from arrays the core computed (``analysis.unit_behaviour``,
``connections``, ``conv``, ``grounding``, ``atlas``) with figures from
``mechmnistic.viz``. A ``Unit`` says what is shown; links to other units go
through ``ui.unit_address.open_unit`` (a click) or ``ui.links.neuron_href``
(a link to open in a new tab).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from mechmnistic.analysis.atlas import AtlasParameters, UnitClusters
from mechmnistic.analysis.connections import Contributions, incoming_weights, outgoing_weights, upstream_contributions
from mechmnistic.analysis.conv import (
    feature_maps,
    filters,
    pooled_cell_positions,
    receptive_field,
    receptive_field_crops,
)
from mechmnistic.analysis.embeddings import first_layer_effective_weights
from mechmnistic.analysis.grounding import effective_weights
from mechmnistic.analysis.latents import latent_effective_weights
from mechmnistic.analysis.unit_behaviour import TopExamples
from mechmnistic.dictionaries.dictionary import Dictionary
from mechmnistic.models.architectures import MNISTNet
from mechmnistic.threads import one_thread
from mechmnistic.viz import conv as conv_viz
from mechmnistic.viz import neuron as viz
from mechmnistic.viz.common import clicked_id, clicked_xy, digit_figure, signed_heatmap
from mechmnistic.viz.connections import ranked_bar

from . import linearity, loaders
from .downloads import csv_button, npz_button
from .links import neuron_href, on_input_link
from .unit_address import ShownInput, open_unit

ORDERS = {"largest |weight| first": "magnitude", "most positive first": "value", "by index": "index"}


@dataclass(frozen=True)
class Unit:
    """The unit on the page: ``index`` of ``layer`` (a neuron, or a conv channel, at ``position``
    ``(row, col)`` of its map or, when ``None``, at its maximum on each image); or, with ``dictionary``, a
    latent of that dictionary of the layer (the layer's other basis)."""

    model_name: str
    model: MNISTNet
    layer: str
    index: int
    position: tuple[int, int] | None = None
    dictionary: Dictionary | None = None

    @property
    def is_latent(self) -> bool:
        return self.dictionary is not None

    @property
    def basis(self) -> str | None:
        """The URL's ``basis``: ``dictionary:ID`` for a latent, ``None`` for a neuron or channel."""
        return None if self.dictionary is None else self.dictionary.basis

    @property
    def conv(self) -> bool:
        return self.model.layout[self.layer].is_conv

    @property
    def depth(self) -> int:
        return self.model.layout[self.layer].index

    @property
    def source(self) -> str | None:
        """The layer this unit reads (``None``: it reads pixels)."""
        previous = self.model.layout.previous(self.layer)
        return previous.name if previous is not None else None

    @property
    def name(self) -> str:
        if self.is_latent:
            return f"{self.layer} · latent {self.index} of {self.dictionary.id}"
        if not self.conv:
            return f"{self.layer} · neuron {self.index}"
        where = "" if self.position is None else f" at ({self.position[0]}, {self.position[1]})"
        return f"{self.layer} · channel {self.index}{where}"

    @property
    def key(self) -> str:
        """A widget-key suffix naming this unit, so a chart's click state never outlives its unit; only
        letters, digits, ``_`` and ``-``, so the element's CSS class (``st-key-...``) is the key itself."""
        where = "" if self.position is None else f"_at_{self.position[0]}_{self.position[1]}"
        basis = "" if self.dictionary is None else f"{self.dictionary.id}_"
        return re.sub(r"[^A-Za-z0-9_]", "-", f"{basis}{self.layer}_{self.index}") + where

    @property
    def stem(self) -> str:
        """A download file name stem."""
        where = "" if self.position is None else f"-at-{self.position[0]}-{self.position[1]}"
        basis = "" if self.dictionary is None else f"-{self.dictionary.id}-latent"
        return f"{self.model_name}-{self.layer}{basis}-{self.index}{where}"


@dataclass(frozen=True)
class OnInput:
    """The unit on one input: the image (uint8 ``[28, 28]``), where a conv unit was taken, its
    receptive field, its effective pixel weights and bias there, and its pre-activation (forward pass)."""

    shown: ShownInput
    image: np.ndarray
    digit: int
    position: tuple[int, int] | None
    box: np.ndarray | None
    w_eff: np.ndarray
    b_eff: float
    pre: float
    exact: bool = True

    @property
    def embedding(self) -> np.ndarray:
        return self.w_eff * (self.image.astype(np.float32) / 255.0)


def ground_on_input(unit: Unit, shown: ShownInput) -> OnInput:
    """Ground ``unit`` on the shown image (``grounding.effective_weights``)."""
    data = loaders.mnist(shown.split)
    image = data.images[shown.index]
    with one_thread():  # one image: thread pools cost more than they give (see mechmnistic.threads)
        found = effective_weights(unit.model, unit.layer, image, units=[unit.index],
                                  positions=None if unit.position is None else np.array([unit.position]))
    position = None if found.positions is None else tuple(int(v) for v in found.positions[0, 0])
    box = None if position is None else receptive_field(unit.model, unit.layer, position)
    return OnInput(shown, image, int(data.labels[shown.index]), position, box, found.w_eff[0, 0],
                   float(found.b_eff[0, 0]), float(found.pre[0, 0]), found.exact)


def ground_latent_on_input(unit: Unit, shown: ShownInput) -> OnInput:
    """Ground a latent on the shown image (``latents.latent_effective_weights``): its encoder pre-activation."""
    data = loaders.mnist(shown.split)
    image = data.images[shown.index]
    with one_thread():
        found = latent_effective_weights(unit.model, unit.dictionary, image[None], unit.index)
    position = None if found.positions is None else tuple(int(v) for v in found.positions[0])
    box = None if position is None else receptive_field(unit.model, unit.layer, position)
    return OnInput(shown, image, int(data.labels[shown.index]), position, box, found.w_eff[0], float(found.b_eff[0]),
                   float(found.pre[0]), found.exact)


# -- connections ---------------------------------------------------------------------------------


def bars_controls() -> tuple[str, int]:
    return ORDERS[st.session_state.get("nx_order", next(iter(ORDERS)))], int(st.session_state.get("nx_bars", 20))


def _open_source(unit: Unit, on_input: OnInput, layer: str, index: int, cell: tuple[int, int] | None) -> None:
    """Open a unit of the previous layer, on the same input. ``cell``: a pooled cell of a conv layer's
    output, opened as that channel at the position in its map where the cell took its maximum."""
    position = None
    if cell is not None:
        with one_thread():
            where = pooled_cell_positions(unit.model, layer, on_input.image)[index, cell[0], cell[1]]
        position = (int(where[0]), int(where[1]))
    open_unit(layer, index, position, on_input.shown)


def incoming_section(unit: Unit, on_input: OnInput) -> None:
    """The unit's weights from every unit of the previous layer, as clickable bars."""
    incoming = incoming_weights(unit.model, unit.layer, unit.index, on_input.position)
    sources = incoming.sources
    order, count = bars_controls()
    fig = ranked_bar(incoming.weights, sources.labels(), f"Input weights from {sources.layer}", "weight", top=count,
                     order=order, customdata=np.arange(len(incoming.weights)))
    event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=f"nx_in_bars_{unit.key}")
    where = "" if sources.positions is None else " (cells of its pooled map; on this input)"
    st.caption(f"{min(count, len(incoming.weights))} of {len(incoming.weights)} weights from {sources.layer}{where}, "
               f"bias {incoming.bias:+.4g}. Click a bar to open that unit on this input.")
    clicked = clicked_id(event)
    if clicked is not None:
        cell = None if sources.positions is None else tuple(int(v) for v in sources.positions[clicked])
        _open_source(unit, on_input, sources.layer, int(sources.units[clicked]), cell)
    csv_button("Input weights (CSV)", lambda: pd.DataFrame({"source": sources.labels(), "weight": incoming.weights}),
               f"{unit.stem}-input-weights.csv", key="nx_dl_in")


def pixel_weights_section(unit: Unit) -> None:
    """A first-layer neuron's input weights: a pixel-space map (input normalisation folded in)."""
    weights = first_layer_effective_weights(unit.model, np.array([unit.index]))[0][0]  # [28, 28]
    st.plotly_chart(viz.input_weights_figure(weights, "pixels"), key="nx_fig_in")

    def table() -> pd.DataFrame:
        rows, cols = np.indices(weights.shape)
        return pd.DataFrame({"row": rows.ravel(), "col": cols.ravel(), "input_weight": weights.ravel()})

    csv_button("Input weights (CSV)", table, f"{unit.stem}-input-weights.csv", key="nx_dl_in")


def outgoing_section(unit: Unit) -> None:
    """The unit's weights into the next layer: class bars after the last hidden layer, else clickable bars."""
    outgoing = outgoing_weights(unit.model, unit.layer, unit.index)
    target = outgoing.target_layer
    totals = outgoing.total
    if unit.model.layout[target].is_final and outgoing.weights.ndim == 1:
        st.plotly_chart(viz.output_weights_figure(totals, target, True), key="nx_fig_out")
    else:
        order, count = bars_controls()
        kind = unit.model.layout[target].what
        summed = outgoing.weights.ndim > 1
        title = f"Output weights to {target}" + (" (summed over cells)" if summed else "")
        fig = ranked_bar(totals, [f"{target} {kind} {t}" for t in range(len(totals))], title, "weight", top=count,
                         order=order, customdata=np.arange(len(totals)))
        event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=f"nx_out_bars_{unit.key}")
        if summed:
            st.caption("A channel reaches each target through several cells; each bar sums them (what one unit of "
                       "activation on every cell sends). Click a bar to open that unit.")
        else:
            st.caption("Click a bar to open that unit.")
        clicked = clicked_id(event)
        if clicked is not None:
            open_unit(target, clicked)
    csv_button("Output weights (CSV)", lambda: pd.DataFrame({f"{target}_unit": np.arange(len(totals)),
                                                             "output_weight": totals}),
               f"{unit.stem}-output-weights.csv", key="nx_dl_out")


def filters_section(unit: Unit) -> None:
    """A conv channel's kernels on each input channel, and the whole layer's in an expander."""
    found = filters(unit.model, unit.layer)
    source = unit.source or "pixels"
    st.plotly_chart(conv_viz.channel_filters(found.weights[unit.index], unit.layer, unit.index,
                                             source if unit.source else "input"), key="nx_fig_filters")
    note = " They act on the normalised input." if (unit.source is None and
                                                    unit.model.config.normalization.std != 1.0) else ""
    active = "a pixel is inked" if unit.source is None else f"{source} is active"
    st.caption(f"Bias {found.bias[unit.index]:+.4g}. Red weights raise the channel where {active}, blue ones lower "
               f"it.{note}")
    with st.expander(f"All of {unit.layer}'s filters"):
        st.plotly_chart(conv_viz.filters_grid(found.weights, unit.layer, unit.source or "input"),
                        key="nx_fig_all_filters")
    npz_button("Filters (NPZ)", lambda: {"weights": found.weights, "bias": found.bias}, f"{unit.stem}-filters.npz",
               key="nx_dl_filters")


# -- one input -------------------------------------------------------------------------------------


def on_input_section(unit: Unit, on_input: OnInput) -> None:
    """The unit on one input: the digit, its effective weights and embedding, and (conv) its map."""
    digit = digit_figure(on_input.image, title=f"{on_input.shown.split} #{on_input.shown.index} "
                                               f"(digit {on_input.digit})", height=280)
    w_eff, embedding = on_input.w_eff, on_input.embedding
    where = ""
    if on_input.box is not None:  # nothing lies outside the receptive field: show that, large
        conv_viz.add_box(digit, on_input.box)
        w_eff, embedding = receptive_field_crops(np.stack([w_eff, embedding]), np.stack([on_input.box] * 2))
        r0, c0, r1, c1 = on_input.box
        where = f" (pixels {r0}–{r1} × {c0}–{c1})"
    weights = signed_heatmap(w_eff, title=f"Effective pixel weights{where}", colorbar_title="weight",
                             hover_label="w_eff", height=280)
    embedding = signed_heatmap(embedding, title="Its Hadamard embedding", colorbar_title="pixel ×<br>weight",
                               hover_label="pixel × weight", height=280)
    channel = unit.conv and not unit.is_latent
    columns = st.columns(4 if channel else 3)
    columns[0].plotly_chart(digit, key="nx_fig_input")
    columns[1].plotly_chart(weights, key="nx_fig_weff")
    columns[2].plotly_chart(embedding, key="nx_fig_embedding")
    if channel:
        with columns[3]:
            _feature_map(unit, on_input)
    total = float(on_input.embedding.sum(dtype=np.float64))
    where = "" if on_input.position is None else \
        (f" It is taken at ({on_input.position[0]}, {on_input.position[1]}) of its map; the box is what that cell "
         "sees, and the weights and embedding are shown inside it (they are zero outside).")
    what = "latent's encoder pre-activation" if unit.is_latent else "unit's pre-activation"
    st.caption(
        (f"The effective weights are the exact gradient of the {what} with respect to the pixels, "
         "given which units below it are on (for a first-layer neuron, its own weights). " if on_input.exact else
         linearity.approximation_note(unit.model) + " ")
        + f"Embedding sum {total:+.4g} + effective bias {on_input.b_eff:+.4g} = {total + on_input.b_eff:+.4g}; "
        + linearity.identity(on_input.exact, total + on_input.b_eff, on_input.pre) + f".{where}"
    )
    npz_button("On this input (NPZ)", lambda: {"image": on_input.image, "w_eff": on_input.w_eff,
                                               "b_eff": on_input.b_eff, "embedding": on_input.embedding,
                                               "pre_activation": on_input.pre},
               f"{unit.stem}-{on_input.shown.split}-{on_input.shown.index}.npz", key="nx_dl_on_input")
    if unit.conv and not unit.is_latent:
        with st.expander(f"Every channel of {unit.layer} on this input (after its activation)"), one_thread():
            st.plotly_chart(conv_viz.feature_maps_grid(feature_maps(unit.model, unit.layer, on_input.image),
                                                       unit.layer), key="nx_fig_all_maps")


def _feature_map(unit: Unit, on_input: OnInput) -> None:
    """A conv channel's pre-activation map on the input, clickable to take the channel at a cell."""
    with one_thread():
        maps = feature_maps(unit.model, unit.layer, on_input.image, stage="pre")
    fig = conv_viz.channel_map(maps[unit.index], f"ch{unit.index}'s map on it (pre-activation)", "pre",
                               marked=on_input.position, height=280)
    event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=f"nx_fig_map_{unit.key}")
    st.caption("Red: where the channel fires. Outlined: where the unit is taken. Click a cell to take the channel "
               "there.")
    clicked = clicked_xy(event)
    if clicked is not None and (clicked[1], clicked[0]) != unit.position:
        open_unit(unit.layer, unit.index, (clicked[1], clicked[0]), on_input.shown)


def _source_links(unit: Unit, on_input: OnInput, parts: Contributions) -> tuple[list[int], list[tuple | None]]:
    """Per source, the unit to open: its index and (conv sources) the map position behind its pooled cell."""
    sources = parts.sources
    if sources.positions is None:
        return sources.units.tolist(), [None] * len(sources.units)
    with one_thread():
        where = pooled_cell_positions(unit.model, sources.layer, on_input.image)
    cells = where[sources.units, sources.positions[:, 0], sources.positions[:, 1]]
    return sources.units.tolist(), [(int(r), int(c)) for r, c in cells]


def upstream_section(unit: Unit, on_input: OnInput) -> None:
    """Which units of the previous layer built this unit's pre-activation on the input, exactly."""
    with one_thread():
        parts = upstream_contributions(unit.model, unit.layer, unit.index, on_input.image, on_input.position)
    _, count = bars_controls()
    order = parts.order()[:count]
    units, positions = _source_links(unit, on_input, parts)
    labels = parts.sources.labels()
    total = float(parts.contributions.sum(dtype=np.float64))
    magnitude = float(np.abs(parts.contributions).sum(dtype=np.float64)) or 1.0
    same_input = on_input_link(on_input.shown.params())  # each source opens on this input
    table = pd.DataFrame({
        "source": [labels[i] for i in order],
        "activation": parts.activations[order],
        "weight": parts.weights[order],
        "activation × weight": parts.contributions[order],
        "share of |parts|": np.abs(parts.contributions[order]) / magnitude,
        "open": [neuron_href(unit.model_name, parts.sources.layer, units[i], positions[i], **same_input)
                 for i in order],
    })
    selection = st.dataframe(
        table, hide_index=True, key=f"nx_upstream_{unit.key}", on_select="rerun", selection_mode="single-row",
        column_config={"open": st.column_config.LinkColumn(display_text="open in a new tab"),
                       "share of |parts|": st.column_config.NumberColumn(format="percent")},
    )
    rest = total - float(parts.contributions[order].sum(dtype=np.float64))
    st.caption(
        f"The {len(order)} largest of {len(parts.contributions)} parts (select a row to open that unit on this input; "
        f"the others add {rest:+.4g}). All parts sum to {total:+.4g}; with the bias {parts.bias:+.4g} that is "
        f"{total + parts.bias:+.4g}, the pre-activation of the forward pass {parts.pre:+.4g} "
        f"(difference {abs(total + parts.bias - parts.pre):.1e})."
    )
    rows = selection["selection"]["rows"]
    if rows:
        chosen = int(order[rows[0]])
        open_unit(parts.sources.layer, units[chosen], positions[chosen], on_input.shown)
    if parts.sources.positions is not None:
        channels, sums = parts.by_channel()
        st.plotly_chart(ranked_bar(sums, [f"{parts.sources.layer} ch{c}" for c in channels],
                                   f"Summed per {parts.sources.layer} channel", "activation × weight", top=None,
                                   order="index"), key="nx_fig_upstream_channels")
    csv_button("All parts (CSV)", lambda: pd.DataFrame({
        "source": labels, "activation": parts.activations, "weight": parts.weights,
        "activation_x_weight": parts.contributions}), f"{unit.stem}-upstream.csv", key="nx_dl_upstream")


# -- top examples and clusters ---------------------------------------------------------------------


def clusters_exact(unit: Unit) -> bool:
    """Whether the unit's embeddings add up exactly: every activation below it piecewise linear (and, for a
    latent, the layer's own, since the latent reads the layer's activation)."""
    exact = unit.model.layout.exact_below(unit.layer)
    if unit.is_latent:
        own = unit.model.layout[unit.layer].activation
        exact = exact and (own is None or own.piecewise_linear)
    return exact


def top_examples_section(unit: Unit, top: TopExamples, clusters: UnitClusters, params: AtlasParameters,
                         shown: int) -> None:
    train = loaders.mnist(params.split)
    gap = float(np.abs(clusters.embeddings.sum(axis=(1, 2)) + clusters.biases - top.pre).max())
    what = ("activation" if unit.is_latent else
            "channel maximum" if unit.conv and unit.position is None else "pre-activation")
    boxes = "" if clusters.boxes is None else " The box on each is the receptive field of the cell it was taken at."
    identity = (f"an embedding's sum plus the effective bias is the pre-activation (largest difference over the "
                f"{params.top_k} examples: {gap:.1e})" if clusters_exact(unit) else
                "an embedding's sum plus the effective bias is the local linear approximation of the pre-activation "
                f"(gradient × input; largest residual over the {params.top_k} examples: {gap:.3g})")
    st.caption(f"The {shown} training images (of the {params.top_k} analysed) with the highest {what}, each above "
               "its Hadamard embedding: every pixel times its effective input weight on that image. Red pixels push "
               f"the unit up, blue ones down; {identity}.{boxes}")
    first = slice(0, shown)
    st.plotly_chart(viz.examples_figure(train.images[top.indices[first]], top.indices[first], top.labels[first],
                                        top.activations[first], clusters.embeddings[first],
                                        boxes=None if clusters.boxes is None else clusters.boxes[first]),
                    key="nx_fig_top")
    columns = st.columns(2)
    with columns[0]:
        csv_button(f"Top {params.top_k} examples (CSV)", lambda: _top_table(top, clusters),
                   f"{unit.stem}-top-examples.csv", key="nx_dl_top")
    with columns[1]:
        npz_button("Their embeddings (NPZ)", lambda: {"train_index": top.indices, "embeddings": clusters.embeddings,
                                                      "bias": clusters.biases, "pre_activation": top.pre},
                   f"{unit.stem}-embeddings.npz", key="nx_dl_emb")


def _top_table(top: TopExamples, clusters: UnitClusters) -> pd.DataFrame:
    table = pd.DataFrame({"rank": np.arange(len(top.indices)), "train_index": top.indices, "label": top.labels,
                          "pre_activation": top.pre, "activation": top.activations, "cluster": clusters.labels})
    if clusters.positions is not None:
        table["row"], table["col"] = clusters.positions[:, 0], clusters.positions[:, 1]
    return table


def cluster_names(clusters: UnitClusters | int) -> list[str]:
    """``C0``, ``C1``, ... : how the page, its URL (``cluster=``) and the members picker name the clusters
    (of ``clusters``, or that many)."""
    count = clusters if isinstance(clusters, int) else len(clusters.stats.sizes)
    return [f"C{c}" for c in range(count)]


def clusters_section(unit: Unit, top: TopExamples, clusters: UnitClusters, params: AtlasParameters) -> None:
    """The feature clusters: their quality, table, figures and downloads."""
    stats = clusters.stats
    train = loaders.mnist(params.split)
    if clusters.boxes is None:
        what = "by the direction of their embeddings"
    else:
        h, w = clusters.clustered_maps.shape[1:]
        what = (f"by the direction of their embeddings cut to the {h}x{w}-pixel receptive field of the cell where "
                "the channel was taken, so examples compare by the pattern that drove it wherever it sat on the "
                "digit")
    st.caption(
        f"The {params.top_k} top examples grouped {what} (Ward clustering on cosine geometry): each cluster is one "
        f"way the unit is driven. {len(stats.sizes)} clusters explain {clusters.explained:.0%} of the spread; "
        f"{clusters.share_in_clusters_of_three_or_more:.0%} of the examples are in clusters of 3 or more."
    )
    quality = st.columns(2)
    quality[0].metric("Mean cosine similarity within clusters", f"{stats.mean_intra:.3f}")
    quality[1].metric("Mean cosine similarity between clusters", f"{stats.mean_inter:.3f}",
                      delta=f"{stats.mean_inter - stats.mean_intra:+.3f} vs within", delta_color="off")
    main_digits = clusters.class_counts.argmax(axis=1)
    central = stats.central
    table = pd.DataFrame({
        "cluster": cluster_names(clusters),
        "size": stats.sizes,
        "main digit": main_digits,
        "digits": [", ".join(f"{k}: {n}" for k, n in sorted(enumerate(row), key=lambda kv: -kv[1]) if n)
                   for row in clusters.class_counts],
        "similarity within": stats.intra,
        "similarity to others": stats.inter,
        "central train_index": top.indices[central],
    })
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "similarity within": st.column_config.NumberColumn(format="%.3f"),
        "similarity to others": st.column_config.NumberColumn(format="%.3f"),
    }, key="nx_cluster_table")
    images = train.images[top.indices[central]]
    embeddings = clusters.embeddings[central]
    if clusters.boxes is not None:
        images = receptive_field_crops(images, clusters.boxes[central])
        embeddings = clusters.clustered_maps[central]
    st.plotly_chart(viz.clusters_figure(images, embeddings, clusters.mean_embeddings, stats.sizes, main_digits,
                                        top.indices[central],
                                        what="" if clusters.boxes is None else ", in the receptive field"),
                    key="nx_fig_clusters")
    st.plotly_chart(viz.cluster_classes_figure(clusters.class_counts), key="nx_fig_cluster_classes")
    columns = st.columns(2)
    with columns[0]:
        csv_button("Clusters (CSV)", lambda: table, f"{unit.stem}-clusters.csv", key="nx_dl_clusters")
    with columns[1]:
        npz_button("Cluster embeddings (NPZ)", lambda: {
            "cluster_of_example": clusters.labels, "train_index": top.indices, "sizes": stats.sizes,
            "central_train_index": top.indices[central], "central_embeddings": clusters.clustered_maps[central],
            "mean_embeddings": clusters.mean_embeddings, "class_counts": clusters.class_counts,
            "intra_similarity": stats.intra, "inter_similarity": stats.inter},
            f"{unit.stem}-clusters.npz", key="nx_dl_cluster_npz")


def members_figure(top: TopExamples, clusters: UnitClusters, params: AtlasParameters, chosen: str,
                   shown: int) -> None:
    train = loaders.mnist(params.split)
    members = np.flatnonzero(clusters.labels == cluster_names(clusters).index(chosen))[:shown]
    st.plotly_chart(viz.examples_figure(train.images[top.indices[members]], top.indices[members], top.labels[members],
                                        top.activations[members], clusters.embeddings[members],
                                        title=f"Members of {chosen} with the highest activation, and their embeddings",
                                        boxes=None if clusters.boxes is None else clusters.boxes[members]),
                    key="nx_fig_members")
