"""The Dictionaries page's tabs: quality, training, sweeps, feature splitting and the polysemanticity scoreboard.

Each function draws one tab for ``layer`` of the model named ``model_name``;
the numbers come from ``mechmnistic.dictionaries`` and
``mechmnistic.analysis`` (``dictionary_quality``, ``feature_splitting``,
``polysemanticity``), the figures from ``mechmnistic.viz.dictionaries``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from mechmnistic.analysis.atlas import AtlasParameters
from mechmnistic.analysis.feature_splitting import best_matches, split_latents
from mechmnistic.analysis.latents import NEURONS
from mechmnistic.analysis.polysemanticity import ONE_DIGIT_SHARE, Scoreboard
from mechmnistic.analysis.unit_behaviour import top_indices
from mechmnistic.cache import model_fingerprint
from mechmnistic.data import N_DIGITS, SIZES
from mechmnistic.dictionaries import (
    MAX_LATENTS,
    SparseAutoencoder,
    default_dictionary_id,
    save_dictionary,
    train_dictionary,
)
from mechmnistic.dictionaries.dictionary import dictionary_dir
from mechmnistic.dictionaries.sweep import SWEEP_KS, SWEEP_SIZES, pareto_front, train_sweep
from mechmnistic.dictionaries.training import MAX_STEPS
from mechmnistic.errors import MechMNISTicError
from mechmnistic.viz import dictionaries as viz
from mechmnistic.viz.neuron import examples_figure

from . import bound, dictionary_data, loaders, neuron_data
from .downloads import csv_button
from .links import NEURON_PAGE, go_to, neuron_href

METRIC_COLUMNS = {"variance_explained": "variance explained", "l0": "L0", "dead_fraction": "dead %",
                  "dense_fraction": "dense %", "spliced_accuracy": "spliced acc %", "model_accuracy": "model acc %",
                  "kl": "KL"}
PERCENT = {"dead_fraction", "dense_fraction", "spliced_accuracy", "model_accuracy"}
#: Where a trained dictionary's id goes until the next run can select it (a widget's value cannot change once
#: the widget is drawn in a run).
PENDING_SAE = "dict_pending_sae"
LAST_TRAINED = "dict_last_trained"
EXAMPLES_SHOWN = 8


def quality_table(model_name: str, layer: str, rows: list[dict]) -> pd.DataFrame:
    """One row per dictionary of the layer with its card's metrics (percentages as percent)."""
    table = []
    for row in rows:
        if "problem" in row:
            table.append({"id": row["id"], "problem": row["problem"]})
            continue
        metrics = row.get("metrics") or {}
        entry = {"id": row["id"], "kind": row["kind"], "latents": row["d_sae"],
                 "k / L1": row["k"] if row["kind"] == "topk" else row["l1_coefficient"]}
        for key, label in METRIC_COLUMNS.items():
            value = metrics.get(key)
            entry[label] = None if value is None else (100 * value if key in PERCENT else value)
        entry["usable"] = row["usable"]
        entry["Neuron Explorer"] = (neuron_href(model_name, layer, 0, basis=f"dictionary:{row['id']}")
                                    if row["usable"] else None)
        table.append(entry)
    return pd.DataFrame(table)


def quality_tab(model_name: str, layer: str, rows: list[dict], chosen: str | None) -> None:
    if not rows:
        st.info(f"{layer} has no dictionary yet: train one in the **Train** tab.")
        return
    table = quality_table(model_name, layer, rows)
    st.dataframe(table, hide_index=True, key="dict_quality_table", column_config={
        "Neuron Explorer": st.column_config.LinkColumn(display_text="open its latents"),
        **{label: st.column_config.NumberColumn(format="%.2f") for key, label in METRIC_COLUMNS.items()
           if key in PERCENT}})
    st.caption("Measured on the 10,000 test images (dead and dense: on the training set): variance explained "
               "= 1 − reconstruction error / variance of the layer; L0 = latents active per input; *spliced* = the "
               "model with the layer replaced by the reconstruction (no error term), against the model's own "
               "accuracy; KL = mean KL(model ‖ spliced). Dense latents fire on over 10% of inputs. A dictionary "
               "trained on other weights is listed but not usable.")
    csv_button("Download the table (CSV)", table.drop(columns=["Neuron Explorer"], errors="ignore"),
               f"dictionaries_{layer}.csv", key="dict_dl_quality")
    if chosen is not None:
        card = next(row for row in rows if row["id"] == chosen)
        with st.expander(f"The card of {chosen}"):
            st.json(card)


def _trainer_settings(prefix: str, sweep: bool) -> dict:
    """The trainer's widgets (inside a form); the chosen settings. In a sweep, ``latents`` and ``k`` are lists
    (every size with every k)."""
    columns = st.columns(4)
    kind = columns[0].radio("Kind", ["topk", "l1"], key=f"{prefix}_kind", horizontal=True,
                            help="topk: keep the k largest latents of each input; l1: ReLU with an L1 penalty on "
                                 "the latents (decoder rows kept at unit norm)")
    if sweep:
        latents = columns[1].multiselect("Sizes (latents)", SWEEP_SIZES, default=[512], key=f"{prefix}_sizes")
        k = columns[2].multiselect("k (TopK)", SWEEP_KS, default=[4, 8, 16, 32], key=f"{prefix}_ks",
                                   help="Several values sweep over k: L0 then varies along the Pareto plot")
    else:
        latents = columns[1].number_input("Latents", 1, MAX_LATENTS, 512, key=f"{prefix}_latents")
        k = int(columns[2].number_input("k (TopK)", 1, MAX_LATENTS, 16, key=f"{prefix}_k"))
    l1 = columns[3].number_input("L1 coefficient", 1e-4, 1e3, 1.0, format="%.4f", key=f"{prefix}_l1")
    columns = st.columns(4)
    steps = columns[0].number_input("Steps", 1, MAX_STEPS, 4000, key=f"{prefix}_steps",
                                    help="Adam steps of 512 rows each (about 36 s for 4,000 on 512 latents of a "
                                         "64-unit layer, 2 cores)")
    images = columns[1].number_input("Training images", 100, SIZES["train"], SIZES["train"], step=1000,
                                     key=f"{prefix}_images",
                                     help="The first N training images (all 60,000 by default; fewer for a quick "
                                          "look)")
    seed = columns[2].number_input("Seed", 0, 2**31 - 1, 0, key=f"{prefix}_seed")
    overwrite = columns[3].checkbox("Replace one of the same id", key=f"{prefix}_overwrite")
    return {"kind": kind, "latents": latents, "k": k, "l1": float(l1), "steps": int(steps),
            "images": int(images), "seed": int(seed), "overwrite": overwrite}


def _trainer(settings: dict, latents: int, k: int | None = None) -> SparseAutoencoder:
    return SparseAutoencoder(kind=settings["kind"], n_latents=int(latents),
                             k=int(settings["k"] if k is None else k) if settings["kind"] == "topk" else None,
                             l1_coefficient=settings["l1"] if settings["kind"] == "l1" else None,
                             steps=settings["steps"], random_state=settings["seed"])


def _images(settings: dict) -> np.ndarray | None:
    return None if settings["images"] >= SIZES["train"] else loaders.mnist("train").images[: settings["images"]]


def _trained(dictionaries: list) -> None:
    """Remember what was trained for the next run's message and select the last one."""
    dictionary_data.dictionaries_changed()
    st.session_state[LAST_TRAINED] = [(d.id, d.card.metrics, d.card.training["total_seconds"]) for d in dictionaries]
    st.session_state[PENDING_SAE] = dictionaries[-1].id
    st.rerun()


def _last_trained(model_name: str, layer: str) -> None:
    for dictionary_id, metrics, seconds in st.session_state.pop(LAST_TRAINED, []):
        spliced = metrics.get("spliced_accuracy")
        st.success(f"Trained and saved **{dictionary_id}** in {seconds:.0f} s: variance explained "
                   f"{metrics['variance_explained']:.3f}, L0 {metrics['l0']:.1f}, dead latents "
                   f"{100 * metrics['dead_fraction']:.1f}%, spliced accuracy "
                   f"{'n/a' if spliced is None else f'{100 * spliced:.2f}%'} "
                   f"([open its latents]({neuron_href(model_name, layer, 0, basis=f'dictionary:{dictionary_id}')}))")


def train_tab(model_name: str, layer: str) -> None:
    _last_trained(model_name, layer)
    model = loaders.load_model(model_name)
    st.write(f"Train a sparse autoencoder on {layer}'s activations over the training set"
             + (" (the channel vector at every position of its map)" if model.layout[layer].is_conv else "")
             + f". It is measured on the test set and stored with its card beside the model "
               f"(`models/{model_name}/dictionaries/ID/`, in SAELens's layout).")
    with st.form("dict_train_form"):
        settings = _trainer_settings("dict_train", sweep=False)
        name = st.text_input("Id (empty: LAYER-KINDN)", key="dict_train_name", max_chars=64)
        submitted = st.form_submit_button("Train", type="primary")
    if not submitted:
        return
    try:
        trainer = _trainer(settings, settings["latents"])
        dictionary_id = name.strip() or default_dictionary_id(layer, settings["kind"], int(settings["latents"]))
        trainer.check_params(model.layout[layer].n_units)
        if (dictionary_dir(model_name, dictionary_id) / "card.json").exists() and not settings["overwrite"]:
            st.error(f"{model_name} already has a dictionary {dictionary_id!r}: tick *Replace one of the same id* "
                     "or choose another id.")
            return
        dictionary = dictionary_data.with_progress(
            f"Training {dictionary_id} on {layer}…",
            lambda progress: train_dictionary(model, layer, trainer, dictionary_id, progress=progress,
                                              images=_images(settings)))
        save_dictionary(dictionary, overwrite=settings["overwrite"])
    except MechMNISTicError as exc:
        st.error(str(exc))
        return
    _trained([dictionary])


def sweep_tab(model_name: str, layer: str, rows: list[dict]) -> None:
    _last_trained(model_name, layer)
    usable = [row for row in rows if row.get("usable") and row.get("metrics")]
    if usable:
        l0 = np.array([row["metrics"]["l0"] for row in usable], dtype=float)
        ve = np.array([row["metrics"]["variance_explained"] for row in usable], dtype=float)
        spliced = np.array([np.nan if row["metrics"].get("spliced_accuracy") is None
                            else row["metrics"]["spliced_accuracy"] for row in usable])
        front = pareto_front(l0, ve)
        model_accuracy = usable[0]["metrics"].get("model_accuracy")
        labels = [row["id"].removeprefix(f"{layer}-") for row in usable]
        st.plotly_chart(viz.pareto_figure(labels, l0, ve, spliced, front, model_accuracy),
                        key="dict_pareto")
        st.caption(f"Every usable dictionary of {layer}; in orange the Pareto front of L0 against variance "
                   "explained (no other dictionary is both sparser and more faithful). The dashed line is the "
                   "model's own accuracy.")
        csv_button("Download the points (CSV)", pd.DataFrame({
            "id": [row["id"] for row in usable], "latents": [row["d_sae"] for row in usable], "l0": l0,
            "variance_explained": ve, "spliced_accuracy": spliced, "pareto_front": front}),
            f"sweep_{layer}.csv", key="dict_dl_sweep")
    else:
        st.info(f"{layer} has no dictionary to plot yet: train a sweep below.")
    st.markdown("#### Train a sweep")
    model = loaders.load_model(model_name)
    with st.form("dict_sweep_form"):
        settings = _trainer_settings("dict_sweep", sweep=True)
        submitted = st.form_submit_button("Train the sweep", type="primary")
    if not submitted:
        return
    ks = sorted(settings["k"]) if settings["kind"] == "topk" else [None]
    if not settings["latents"] or not ks:
        st.error("Choose at least one size" + (" and one k." if settings["kind"] == "topk" else "."))
        return
    try:
        trainers = [_trainer(settings, n, k) for n in sorted(settings["latents"]) for k in ks]
        trained = dictionary_data.with_progress(
            f"Training {len(trainers)} dictionaries on {layer}…",
            lambda progress: train_sweep(model, layer, trainers, progress=progress, images=_images(settings),
                                         overwrite=settings["overwrite"]))
    except MechMNISTicError as exc:
        st.error(str(exc))
        return
    _trained(trained)


def _top_examples_figure(model_name: str, layer: str, basis: str, latent: int, title: str):
    values = neuron_data.latent_values(model_name, layer, basis).values
    indices = top_indices(values[:, latent : latent + 1], EXAMPLES_SHOWN)[0]
    data = loaders.mnist("train")
    return examples_figure(data.images[indices], indices, data.labels[indices], values[indices, latent],
                           columns=EXAMPLES_SHOWN, title=title)


def splitting_tab(model_name: str, layer: str, rows: list[dict]) -> None:
    usable = sorted((row for row in rows if row.get("usable")), key=lambda row: (row["d_sae"], row["id"]))
    if len(usable) < 2:
        st.info(f"Feature splitting compares two dictionaries of {layer}; it has {len(usable)}. Train another "
                "size in the **Train** or **Sweep** tab.")
        return
    ids = [row["id"] for row in usable]
    columns = st.columns(3)
    small_id = bound.select(columns[0], "From the dictionary", ids, "dict_small", "small", ids[0])
    larger = [i for i in ids if i != small_id]
    large_id = bound.select(columns[1], "Into the dictionary", larger, "dict_large", "large", larger[-1])
    fingerprint = model_fingerprint(loaders.load_model(model_name))
    small = neuron_data.dictionary(model_name, fingerprint, layer, f"dictionary:{small_id}")
    large = neuron_data.dictionary(model_name, fingerprint, layer, f"dictionary:{large_id}")
    latent = bound.integer(columns[2], f"Latent of {small_id}", 0, small.d_sae - 1, "dict_split_latent", "latent", 0)
    matches = best_matches(small, large)
    st.caption(f"{100 * np.mean(matches >= 0.9):.0f}% of {small_id}'s latents have a latent in {large_id} whose "
               f"decoder row points the same way (cosine ≥ 0.9); the others were split or reshaped.")
    found = split_latents(small, large, latent)
    small_basis, large_basis = f"dictionary:{small_id}", f"dictionary:{large_id}"
    link = neuron_href(model_name, layer, latent, basis=small_basis)
    st.markdown(f"**Latent {latent} of {small_id}** ([open]({link}))")
    st.plotly_chart(_top_examples_figure(model_name, layer, small_basis, latent,
                                         f"Latent {latent} of {small_id}: top examples (label · activation)"),
                    key="dict_split_small")
    st.markdown(f"**Its closest latents in {large_id}** (decoder cosine similarity)")
    for rank, (index, cosine) in enumerate(zip(found.indices, found.cosines, strict=True)):
        link = neuron_href(model_name, layer, int(index), basis=large_basis)
        st.markdown(f"Latent {index} of {large_id}: cosine {cosine:.3f} ([open]({link}))")
        st.plotly_chart(_top_examples_figure(model_name, layer, large_basis, int(index),
                                             f"Latent {index} of {large_id} (cosine {cosine:.3f})"),
                        key=f"dict_split_large_{rank}")
    csv_button("Download the matches (CSV)", pd.DataFrame({"latent": found.indices, "cosine": found.cosines}),
               f"split_{small_id}_{latent}_into_{large_id}.csv", key="dict_dl_split")


def scoreboard_table(model_name: str, board: Scoreboard) -> pd.DataFrame:
    """Every unit of one basis with its scores and a link to it (units that never fire included)."""
    return pd.DataFrame({
        "unit": np.arange(board.n_units), "fires on (of top k)": board.n_firing,
        "label entropy (bits)": board.entropy,
        "top digit": pd.Series(board.top_class, dtype="Int64").mask(~board.alive),
        "top digit %": 100 * board.top_share,
        "clusters": board.n_clusters,
        "Neuron Explorer": [neuron_href(model_name, board.layer, unit, basis=board.basis)
                            for unit in range(board.n_units)]})


def _scoreboard_table(model_name: str, board: Scoreboard, name: str, key: str) -> None:
    """One basis's table: sortable, a selected row opens the unit in the Neuron Explorer."""
    st.markdown(f"**{name[0].upper()}{name[1:]}**")
    table = scoreboard_table(model_name, board)
    selection = st.dataframe(table, hide_index=True, key=key, height=300, on_select="rerun",
                             selection_mode="single-row", column_config={
                                 "Neuron Explorer": st.column_config.LinkColumn(display_text="open in a new tab"),
                                 "label entropy (bits)": st.column_config.NumberColumn(format="%.2f"),
                                 "top digit %": st.column_config.NumberColumn(format="%.0f")})
    rows = selection["selection"]["rows"]
    if rows:
        go_to(NEURON_PAGE, model=model_name, layer=board.layer, unit=int(table["unit"].iloc[rows[0]]),
              basis=None if board.basis == NEURONS else board.basis)
    csv_button("Download these scores (CSV)", table.drop(columns=["Neuron Explorer"]),
               f"scoreboard_{board.layer}_{board.basis.removeprefix('dictionary:')}.csv", key=f"{key}_dl")


def scoreboard_tab(model_name: str, layer: str, chosen: str | None, params: AtlasParameters) -> None:
    if chosen is None:
        st.info(f"The scoreboard compares {layer}'s neurons with a dictionary's latents: train a dictionary first.")
        return
    boards = dictionary_data.scoreboards(model_name, layer, f"dictionary:{chosen}", params)
    names = ["neurons", f"latents of {chosen}"]
    columns = st.columns(len(boards))
    for column, board, name in zip(columns, boards, names, strict=True):
        summary = board.summary()
        column.metric(f"{name}: median label entropy", f"{summary['median_entropy_bits']:.2f} bits")
        column.caption(f"{summary['alive']} of {summary['units']} fire; median {summary['median_clusters']:g} "
                       f"feature clusters; {100 * summary['one_digit_share']:.0f}% are one-digit units "
                       f"(≥ {100 * ONE_DIGIT_SHARE:.0f}% of their firing top examples one digit).")
    st.plotly_chart(viz.scoreboard_figure([b.entropy[b.alive] for b in boards], [b.n_clusters[b.alive] for b in boards],
                                          names, float(np.log2(N_DIGITS))), key="dict_scoreboard_figure")
    st.caption(f"Read from each unit's own top {params.top_k} training examples (no language model): the entropy "
               "of the digits it fires on among them, and the feature clusters among their Hadamard embeddings "
               "(the same clusters as the Neuron Explorer's Feature clusters tab); lower is more monosemantic. "
               "Compare cluster counts with care: a latent's effective weights change with the input (with which "
               "neurons are on), a first-layer neuron's do not, so a latent's embeddings vary more for that "
               "reason alone.")
    st.caption("Sort a table by any column (click its header); select a row to open that unit in the Neuron "
               "Explorer.")
    _scoreboard_table(model_name, boards[0], names[0], "dict_scoreboard_neurons")
    _scoreboard_table(model_name, boards[1], names[1], "dict_scoreboard_latents")
