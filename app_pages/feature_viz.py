"""Feature visualisation: inputs that maximise a layer's units or directions, beside their nearest training images."""

import numpy as np
import pandas as pd
import streamlit as st

from mechmnistic.analysis import feature_viz as fv
from mechmnistic.analysis import geometry as g
from mechmnistic.analysis.units import resolve_units
from mechmnistic.data import SIZES
from mechmnistic.errors import MechMNISTicError
from mechmnistic.viz.feature_viz import feature_grid
from ui import bound, loaders
from ui import geometry as data
from ui.downloads import csv_button, npz_button
from ui.links import CLASSIFY_PAGE, NEURON_PAGE, classify_href, go_to, neuron_href

TARGETS = {"units": "units", "directions": "directions (PCA, logit difference, templates, fits)"}
INITS = {"zeros": "zeros", "noise": "uniform noise", "example": "a training image"}

st.title("Feature visualisation")
st.write(
    "For each unit (or direction) of a layer, the input that maximises it, found by gradient ascent on the pixels "
    "with Adam; every target is optimised at once, in one batch. Beside each result: the training images most "
    "similar to it (cosine similarity of the pixels). Click a result to open its unit in the Neuron Explorer, or a "
    "training image to open it in the Classification Explorer."
)

model_name = st.session_state["active_model"]
model = loaders.load_model(model_name)
layers = list(model.layer_names)
bound.forget_on_model_change("features", model_name,
                             {"features_layer": "layer", "features_units": "units", "features_dirs": "dirs"})

layer_column, target_column = st.columns([1, 2])
layer = bound.select(layer_column, "Layer", layers, "features_layer", "layer",
                     layers[-2] if len(layers) > 1 else layers[0])
target = bound.radio(target_column, "Maximise", list(TARGETS), "features_target", "target", "units",
                     format_func=TARGETS.get, horizontal=True)
if target == "units":
    units_text = bound.text(st, "Units", "features_units", "units", "all", max_chars=400,
                            help="Indices, ranges and groups: 0-9, 17, dead, alive or all")
else:
    dirs_text = bound.text(st, "Directions (separate with ;)", "features_dirs", "dirs", "logit:1-0;pc1;pc2",
                           max_chars=1000, help=g.SPEC_HELP)

with st.expander("Optimisation settings", expanded=False):
    columns = st.columns(4)
    steps = bound.integer(columns[0], "Adam steps", 1, 1000, "features_steps", "steps", 100)
    lr = bound.number(columns[1], "Learning rate", "features_lr", "lr", 0.05, 1e-4, 1.0, format="%.4f")
    init = bound.select(columns[2], "Start from", list(INITS), "features_init", "init", "zeros",
                        format_func=INITS.get)
    start = bound.integer(columns[3], "Training image", 0, SIZES["train"] - 1, "features_start", "start", 6,
                          disabled=init != "example")
    l2 = bound.number(columns[0], "L2 penalty", "features_l2", "l2", 0.0, 0.0, 100.0, format="%.4f")
    blur = bound.number(columns[1], "Blur (pixels)", "features_blur", "blur", 0.0, 0.0, 5.0, step=0.25)
    jitter = bound.integer(columns[2], "Jitter (pixels)", 0, 8, "features_jitter", "jitter", 0)
    seed = bound.integer(columns[3], "Seed", 0, 2**31 - 1, "features_seed", "seed", 0)
    free = bound.flag(columns[0], "Let pixels leave [0, 1]", "features_free", "free")
    nearest_k = bound.integer(columns[1], "Nearest training images", 0, 10, "features_nearest", "nearest", 3)
    grid_columns = bound.integer(columns[2], "Results per row", 1, 12, "features_columns", "columns", 5)

try:
    config = fv.FeatureVizConfig(steps=steps, lr=float(lr), init=f"train:{start}" if init == "example" else init,
                                 l2=float(l2), blur=float(blur), jitter=jitter, clamp=not free, seed=seed)
    if target == "units":
        chosen = resolve_units(model, layer, units_text or "all")
        if len(chosen) == 0:
            st.info(f"`{units_text}` selects none of {layer}'s units (a group such as `dead` can be empty): "
                    "choose others, e.g. `all` or `0-9`.")
            st.stop()
        result = data.unit_visualization(model_name, layer, config).subset(chosen.tolist())
    else:
        specs = tuple(s.strip() for s in dirs_text.split(";") if s.strip())
        if not specs:
            st.info("Type at least one direction, e.g. `logit:1-0;pc1`.")
            st.stop()
        result = data.direction_visualization(model_name, layer, specs, config)
except MechMNISTicError as exc:
    st.error(str(exc))
    st.stop()

nearest = data.nearest_examples(result.images, nearest_k) if nearest_k else None
train_images = loaders.mnist("train").images
st.caption(
    f"{len(result.names)} result(s), {config.steps} Adam steps (learning rate {config.lr:g}) from {config.init}; "
    + ("pixels clamped to [0, 1] after every step, shown in greys (ink dark)." if result.clamped else
       "pixels NOT clamped: shown on a diverging scale shared by all results (blue negative, white 0, red positive).")
    + " Nearest: cosine similarity of the flattened pixels."
)
grid = feature_grid(
    result.images, result.names, result.clamped, result.units,
    nearest_images=train_images[nearest.indices] if nearest else None,
    nearest_indices=nearest.indices if nearest else None,
    nearest_similarity=nearest.similarity if nearest else None,
    columns=int(grid_columns),
)
event = st.plotly_chart(grid, key="features_grid", on_select="rerun", selection_mode="points", width="content",
                        config={"displayModeBar": False})
if (clicked := data.clicked_customdata(event)) is not None:
    kind, value = int(clicked[0]), int(clicked[1])
    if kind == 1:
        go_to(CLASSIFY_PAGE, model=model_name, train_index=value)
    elif value >= 0:
        go_to(NEURON_PAGE, model=model_name, layer=layer, unit=value)

rows = []
for k, name in enumerate(result.names):
    row = {"target": name, "objective at start": result.initial[k], "objective at end": result.final[k]}
    if result.units[k] >= 0:
        row["Neuron Explorer"] = neuron_href(model_name, layer, result.units[k])
    if nearest:
        row["nearest (similarity)"] = ", ".join(
            f"#{i} ({s:.2f})" for i, s in zip(nearest.indices[k], nearest.similarity[k], strict=True))
        row["closest image"] = classify_href(model_name, train_index=int(nearest.indices[k, 0]))
    rows.append(row)
table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True, key="features_table", column_config={
    "Neuron Explorer": st.column_config.LinkColumn(display_text="open unit"),
    "closest image": st.column_config.LinkColumn(display_text="open image"),
})
download_csv, download_npz = st.columns(2)
with download_csv:
    csv_button("Objectives and nearest images (CSV)",
               table.drop(columns=[c for c in ("Neuron Explorer", "closest image") if c in table]),
               f"{model_name}-{layer}-features.csv", "features_dl_csv")
with download_npz:
    arrays = {"images": result.images, "objective_start": result.initial, "objective_end": result.final,
              "history": result.history, "names": np.array(result.names)}
    if nearest:
        arrays |= {"nearest_indices": nearest.indices, "nearest_similarity": nearest.similarity}
    npz_button("Images and history (NPZ)", arrays, f"{model_name}-{layer}-features.npz", "features_dl_npz")
