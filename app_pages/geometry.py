"""Activation geometry: a layer's PCA over the training set, directions as arrows, units' loadings."""

import numpy as np
import pandas as pd
import streamlit as st

from mechmnistic.analysis import geometry as g
from mechmnistic.analysis.templates import resolve_template
from mechmnistic.errors import MechMNISTicError
from mechmnistic.viz.geometry import explained_variance_figure, loadings_bars, loadings_scatter, pca_scatter
from ui import bound, circuit_data, loaders
from ui import geometry as data
from ui.downloads import csv_button, npz_button
from ui.links import CLASSIFY_PAGE, NEURON_PAGE, go_to, neuron_href
from ui.params import set_params

COLOURINGS = {"label": "true label", "prediction": "model prediction", "score": "template score",
              "region": "template-score band"}
#: Settings that belong to one model's view; dropped when the model changes.
VIEW = {"geometry_layer": "layer", "geometry_x": "x", "geometry_y": "y", "geometry_dirs": "dirs",
        "geometry_sort": "sort"}

st.title("Activation geometry")
st.write(
    "Every training image as a point in a layer's activation space, seen through its principal components, "
    "with directions drawn as arrows: principal components, the logit difference, lines fitted to a group of "
    "points, and real inputs. Click a point to open that image in the Classification Explorer; box-select a "
    "group of points to fit a direction to it."
)

model_name = st.session_state["active_model"]
model = loaders.load_model(model_name)
layers = list(model.layer_names)
bound.forget_on_model_change("geometry", model_name, VIEW)

left, middle, right = st.columns([2, 1, 1])
layer = bound.select(left, "Layer", layers, "geometry_layer", "layer", layers[-2] if len(layers) > 1 else layers[0],
                     help="Hidden layers: units after their activation. The output layer: the logits. "
                          "Conv layers: the output maps (after pooling), flattened (what the next layer reads).")
try:
    fit = data.layer_pca(model_name, layer)
except MechMNISTicError as exc:
    st.error(str(exc))
    st.stop()
n_components = fit.pca.n_components_
if n_components < 2:
    st.error(f"{fit.space.describe()}: a plane needs at least two dimensions.")
    st.stop()
for key in ("geometry_x", "geometry_y"):  # another layer may have fewer components
    if st.session_state.get(key, 1) > n_components:
        del st.session_state[key]
x_pc = bound.integer(middle, "Horizontal axis: PC", 1, n_components, "geometry_x", "x", 1)
y_pc = bound.integer(right, "Vertical axis: PC", 1, n_components, "geometry_y", "y", 2)
if x_pc == y_pc:
    st.warning("The two axes show the same component; pick two different ones.")
plane = (x_pc - 1, y_pc - 1)
st.caption(f"{fit.space.describe()}. PCA over all {fit.pca.n_samples_:,} training images.")

# ------------------------------------------------------------------------------------ colouring
colour_column, template_column, center_column, low_column, high_column = st.columns([2.2, 1.4, 0.8, 1, 1])
colouring = bound.radio(colour_column, "Colour points by", list(COLOURINGS), "geometry_color", "color", "label",
                        format_func=COLOURINGS.get, horizontal=True)
scored = colouring in ("score", "region")
with template_column:
    reference = bound.text(st, "Template", "geometry_template", "template", "train:6", max_chars=80,
                           disabled=not scored, help="train:N, test:N or unit:LAYER:N. Score: s(x) = sum(x · (t − c)) "
                                                     "with pixels in [0, 1].")
    inverted = bound.flag(st, "Inverse (1 − t)", "geometry_invert", "invert", disabled=not scored)
center = bound.number(center_column, "c", "geometry_center", "center", 0.5, -1.0, 2.0, step=0.05, disabled=not scored)
low = bound.number(low_column, "Band low", "geometry_low", "low", None, disabled=colouring != "region")
high = bound.number(high_column, "Band high", "geometry_high", "high", None, disabled=colouring != "region")

labels = loaders.mnist("train").labels
predictions = circuit_data.predictions(model_name, "train")
customdata = np.stack([np.arange(len(labels)), labels, predictions], axis=1)
colour, names, colour_title = labels, [str(d) for d in range(10)], "true label"
if colouring == "prediction":
    colour, names, colour_title = predictions, [f"class {c}" for c in range(model.n_classes)], "prediction"
scores = None
if scored:
    try:
        template = resolve_template(reference, model, invert=inverted)
        scores = circuit_data.scores(template.image, float(center), "train")
    except MechMNISTicError as exc:
        st.error(f"Template: {exc}")
if scores is not None and colouring == "score":
    colour, names, colour_title = scores, None, f"s(x), t = {template.label}"
if scores is not None and colouring == "region":
    if low is None or high is None or not low < high:
        st.info("Type a band (low < high) to colour the three regions; showing the score meanwhile.")
        colour, names, colour_title = scores, None, f"s(x), t = {template.label}"
    else:
        colour, names, colour_title = g.band_regions(scores, low, high), list(g.REGION_NAMES), "region"

# ----------------------------------------------------------------------------------- directions
spec_text = bound.text(st, "Directions (separate with ;)", "geometry_dirs", "dirs", "logit:1-0", max_chars=1000,
                       help=g.SPEC_HELP + ". Box-select points on the plot to fit a direction to them.")
specs = [s.strip() for s in spec_text.split(";") if s.strip()]
directions, problems = data.directions(model_name, layer, specs)
for problem in problems:
    st.warning(problem)
scale = g.arrow_scale(fit, plane)
arrows = [g.plane_arrow(fit, d, plane, scale) for d in directions]

figure = pca_scatter(fit.scores[:, list(plane)], customdata, colour, colour_title, names, arrows,
                     (fit.axis_title(plane[0]), fit.axis_title(plane[1])))
event = st.plotly_chart(figure, key="geometry_scatter", on_select="rerun", selection_mode=("points", "box"),
                        width="stretch")
st.caption(
    "Arrows: principal components and the logit difference are drawn from the mean activation (the origin) as unit "
    f"vectors times {scale:.3g}, so their length shows how much of them lies in this plane; a template's arrow ends "
    "at that input's own point; a fitted direction is its least-squares line over its group. A vector v projects "
    "to (v · u_x, v · u_y), u being the unit-norm components."
)

selection = event["selection"] if event else None
if selection and selection["box"]:
    box = selection["box"][0]
    (x0, x1), (y0, y1) = sorted(box["x"]), sorted(box["y"])
    spec = f"fit:pc{x_pc}={x0:.4g}..{x1:.4g},pc{y_pc}={y0:.4g}..{y1:.4g}@pc{y_pc}"
    st.info(f"{len(selection['points']):,} points selected: `{spec}`")
    if st.button("Fit a direction to these points", key="geometry_fit"):
        st.session_state.pop("geometry_dirs")
        set_params(dirs=";".join([*specs, spec]))
        st.rerun()
elif (clicked := data.clicked_customdata(event)) is not None:
    index = int(clicked[0])
    go_to(CLASSIFY_PAGE, model=model_name, train_index=index)

# ----------------------------------------------------------------------------------- tables
variance_column, directions_column = st.columns([1, 2])
variance_column.subheader("Explained variance")
variance_column.plotly_chart(explained_variance_figure(fit.pca.explained_variance_ratio_), key="geometry_variance")
variance_table = pd.DataFrame({"component": [f"PC{k + 1}" for k in range(n_components)],
                               "variance": fit.pca.explained_variance_,
                               "explained": fit.pca.explained_variance_ratio_})
with variance_column:
    csv_button("Explained variance (CSV)", variance_table, f"{model_name}-{layer}-variance.csv", "geometry_dl_var")
    npz_button("All scores and the fit (NPZ)", {
        "scores": fit.scores, "labels": labels, "predictions": predictions, "components": fit.pca.components_,
        "mean": fit.pca.mean_, "explained_variance": fit.pca.explained_variance_,
        "feature_std": fit.pca.feature_std_}, f"{model_name}-{layer}-pca.npz", "geometry_dl_scores")

directions_column.subheader("Directions")
if directions:
    direction_table = pd.DataFrame([{
        "direction": d.name, "spec": d.spec, "norm": d.norm, "in plane": a.in_plane,
        "arrow from": f"({a.start[0]:.3g}, {a.start[1]:.3g})", "arrow to": f"({a.end[0]:.3g}, {a.end[1]:.3g})",
        "exact": d.exact, "note": d.note} for d, a in zip(directions, arrows, strict=True)])
    directions_column.dataframe(direction_table, hide_index=True, column_config={
        "in plane": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f")})
    with directions_column:
        npz_button("Direction vectors (NPZ)", {"specs": np.array([d.spec for d in directions]),
                                               "vectors": np.stack([d.vector for d in directions])},
                   f"{model_name}-{layer}-directions.npz", "geometry_dl_dirs")
else:
    directions_column.info("Add directions above, for example `pc1;logit:1-0;template:train:6`.")

# ------------------------------------------------------------------------------------- loadings
st.subheader("Units' loadings")
if not directions:
    st.info("Loadings need at least one direction.")
    st.stop()
loadings = g.weighted_loadings(fit, directions)
st.caption("Loading of unit u on direction v: std(a_u) · v_u / ‖v‖, the standard deviation taken over the "
           "training set. Dead units load on nothing. Click a unit to open it in the Neuron Explorer.")
direction_names = list(loadings.directions)
sort_column, x_column, y_column = st.columns(3)
sort_by = bound.select(sort_column, "Sort units by", direction_names, "geometry_sort", "sort", direction_names[0])
scatter_x = x_column.selectbox("Loadings scatter: horizontal", direction_names, index=0, key="geometry_lx")
scatter_y = y_column.selectbox("vertical", direction_names, index=min(1, len(direction_names) - 1),
                               key="geometry_ly")
sort_index = direction_names.index(sort_by)

bars_column, scatter_column = st.columns(2)
bars = bars_column.plotly_chart(loadings_bars(loadings, sort_index, top=15), key="geometry_bars",
                                on_select="rerun", selection_mode="points")
scatter = scatter_column.plotly_chart(
    loadings_scatter(loadings, direction_names.index(scatter_x), direction_names.index(scatter_y)),
    key="geometry_loadings_scatter", on_select="rerun", selection_mode="points")
for chosen in (bars, scatter):
    if (clicked := data.clicked_customdata(chosen)) is not None:
        unit = int(clicked[0])
        go_to(NEURON_PAGE, model=model_name, layer=layer, unit=unit)

order = loadings.order(sort_index)
table = pd.DataFrame({"coordinate": [loadings.coordinates[u] for u in order], "unit": loadings.units[order]})
for d, name in enumerate(direction_names):
    table[name] = loadings.values[order, d]
table["std"] = fit.pca.feature_std_[order]
table["Neuron Explorer"] = [neuron_href(model_name, layer, int(u)) for u in loadings.units[order]]
st.dataframe(table, hide_index=True, height=320,
             column_config={"Neuron Explorer": st.column_config.LinkColumn(display_text="open")})
csv_button("Loadings (CSV)", table.drop(columns=["Neuron Explorer"]), f"{model_name}-{layer}-loadings.csv",
           "geometry_dl_loadings")
