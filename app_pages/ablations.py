"""Attribution & ablations: which groups of units carry the logits, and what breaks without them.

Direct logit attribution splits the output (or a logit difference) exactly into
one contribution per group of units of the layer feeding the output layer.
Ablations replace a set of units (zero, mean, dataset minimum, or resampled
from random training images) over the whole test set; activation patching takes
their activations from a second input. Results are broken down by class or by
the regions of a hypothesis (see the Hypothesis page). Every number comes from
``mechmnistic.analysis.attribution`` / ``ablation``.
"""

import numpy as np
import pandas as pd
import streamlit as st

from mechmnistic.analysis.ablation import ABLATION_METHODS, InterventionSummary, patch_activations
from mechmnistic.analysis.attribution import LogitAttribution, group_contributions
from mechmnistic.analysis.units import layer_groups, parse_groups, select_units
from mechmnistic.errors import MechMNISTicError
from mechmnistic.viz.ablation import dla_example_figure, dla_stacked_figure, intervention_figure
from mechmnistic.viz.common import digit_figure
from ui import bound, loaders
from ui import circuit_data as data
from ui import hypothesis_controls as controls
from ui.downloads import csv_button
from ui.drawing import draw_digit
from ui.links import classify_href, hypothesis_href

st.title("Attribution & ablations")
st.caption(
    "Which groups of units carry the model's logits, and what breaks without them. Groups are the layer's "
    "standard ones (dead: never fire on the training set; alive), groups you type, or the groups a hypothesis "
    "implies (dead units and detectors of each region)."
)

model_name = st.session_state["active_model"]
net = loaders.load_model(model_name)
labels_hidden = bool(loaders.load_card(model_name).label_function.get("hidden"))
classes = list(range(net.n_classes))
percent = st.column_config.NumberColumn(format="percent")


def hypothesis_groups(values: np.ndarray):
    """Groups and test-set regions from the shared hypothesis settings, or ``None`` (with a message)."""
    template = controls.template_choice(net)
    if template is None:
        return None
    center = controls.center_choice()
    train_scores = data.scores(template.image, center, "train")
    choice = controls.rule_choice(net.n_classes, lambda: (train_scores, data.predictions(model_name, "train")))
    if choice.rule is None:
        st.info(choice.message or "Fix the rule to use the hypothesis.")
        return None
    st.markdown(f"**Rule:** {choice.rule.describe()}")
    groups = controls.groups_choice(values, choice.rule.regions(train_scores), choice.rule)
    if groups is None:
        return None
    test_scores = data.scores(template.image, center, "test")
    st.markdown(f"[Open this hypothesis on the Hypothesis & scrubbing page →]"
                f"({hypothesis_href(model_name, **controls.hypothesis_params())})")
    return groups, choice.rule.regions(test_scores), choice.rule.region_names, test_scores


def typed_groups(values: np.ndarray) -> dict[str, np.ndarray] | None:
    text = bound.text(st, "Your own groups (optional)", "abl_groups", "agroups", max_chars=controls.MAX_GROUPS_CHARS,
                      placeholder="e.g. early:0-9;late:10-19",
                      help="name:units;name:units. Units are indices, ranges (0-9) or standard groups.")
    standard = layer_groups(values)
    try:
        return {"dead": standard["dead"], "alive": standard["alive"], **parse_groups(text, values.shape[1], standard)}
    except MechMNISTicError as exc:
        st.error(str(exc))
        return None


def attribution_section(groups, layer: str, scores: np.ndarray | None) -> None:
    st.subheader("Direct logit attribution")
    columns = st.columns(4)
    a = bound.select(columns[0], "Logit of class", classes, "abl_target_a", "target_a", classes[-1]
                     if net.n_classes == 2 else 0)
    b = bound.select(columns[1], "minus the logit of", ["none", *classes], "abl_target_b", "target_b",
                     0 if net.n_classes == 2 else "none")
    size = bound.integer(columns[2], "Images in the bar chart", 10, 1000, "abl_sample", "sample", 100)
    sort_options = ["target value"] + (["hypothesis score"] if scores is not None else [])
    sort_by = bound.select(columns[3], "Sort by", sort_options, "abl_sort", "sort", "target value")
    if b == a:
        st.error("Choose two different classes for a logit difference (or 'none').")
        return
    target = (a, None if b == "none" else b)
    dla_layer = net.layout.feeds_logits.name
    per_unit, bias = data.unit_contributions_on_test(model_name, target)
    if dla_layer != layer:
        st.info(f"Attribution is to the layer feeding the output, **{dla_layer}**; choose it above to use your "
                "groups here. Shown: all of its units together.")
        groups = {"all units": np.arange(per_unit.shape[1])}
    names, contributions = group_contributions(per_unit, groups)
    attribution = LogitAttribution(dla_layer, target, names, contributions, bias)
    picked = attribution.sorted_sample(size, seed=0, key=scores if sort_by == "hypothesis score" else None)
    st.plotly_chart(dla_stacked_figure(contributions[picked], names, bias, [f"test {i}" for i in picked],
                                       attribution.target_name,
                                       title=f"{attribution.target_name} split by group: {len(picked)} random "
                                             f"test images sorted by {sort_by}"), key="abl_dla_stack")
    st.caption("Each group's segment is exactly the change in the target if that group were zero-ablated; the "
               "segments plus the bias sum to the black dot, the target itself.")
    left, right = st.columns([1, 2])
    example = bound.integer(left, "Test image", 0, 9999, "abl_example", "example", 0)
    left.plotly_chart(digit_figure(loaders.test_image(example), height=200), key="abl_example_digit")
    left.markdown(f"[Open in the Classification Explorer →]({classify_href(model_name, test_index=example)})")
    right.plotly_chart(dla_example_figure(contributions[example], names, bias, attribution.target_name,
                                          title=f"test {example}: {attribution.target_name} = "
                                                f"{attribution.total[example]:.3f}"), key="abl_dla_example")
    table = pd.DataFrame(contributions, columns=list(names)).assign(bias=bias, total=attribution.total)
    csv_button("Download the attribution of every test image (CSV)", table.rename_axis("test_index").reset_index(),
               f"{model_name}-attribution.csv", key="abl_download_dla")


def summary_table(rows: list[InterventionSummary]) -> pd.DataFrame:
    """Summaries as a table, one column per class for the mean change in its logit."""
    records = []
    for row in rows:
        record = row.to_dict()
        changes = record.pop("mean_logit_change")
        records.append({**record, **{f"mean Δ logit {c}": change for c, change in enumerate(changes)}})
    return pd.DataFrame(records)


def ablation_section(groups, layer: str, n_units: int, regions, region_names) -> None:
    st.subheader("Ablation")
    columns = st.columns([2, 1, 1, 1])
    default_units = next((g for g in groups if g not in ("dead", "alive")), "dead")
    units_text = bound.text(columns[0], "Units", "abl_units", "units", default_units,
                            help=f"Indices (3,7), ranges (10-20), 'all' or group names ({', '.join(groups)}), "
                                 "comma-separated.")
    method = bound.select(columns[1], "Replace with", list(ABLATION_METHODS), "abl_method", "method", "min",
                          help="zero; the unit's mean or minimum over the training set; or its activation on a "
                               "random training image (seeded)")
    seed = bound.integer(columns[2], "Seed", 0, 2**31 - 1, "abl_seed", "aseed", 0, disabled=method != "resample")
    by_options = (["hypothesis region"] if regions is not None else []) + ["true class", "model prediction"]
    by = bound.select(columns[3], "Break down by", by_options, "abl_by", "by", by_options[0])

    def breakdown(result) -> list[InterventionSummary]:
        if by == "hypothesis region":
            return result.breakdown(regions, region_names)
        if by == "model prediction":
            return result.breakdown(result.clean_predictions, [f"predicted {c}" for c in classes])
        return result.by_class()

    try:
        chosen = select_units(units_text, n_units, groups)
    except MechMNISTicError as exc:
        st.error(str(exc))
        return
    table = summary_table(breakdown(data.ablation(model_name, layer, chosen, method, seed)))
    st.plotly_chart(intervention_figure(table["group"], table["fraction_changed"], table["accuracy_before"],
                                        table["accuracy_after"],
                                        title=f"{method}-ablating {len(chosen)} units of {layer} ({units_text}) "
                                              "on the test set"), key="abl_ablation_plot")
    st.dataframe(table, hide_index=True, key="abl_ablation_table",
                 column_config={**{c: percent for c in ("fraction_changed", "accuracy_before", "accuracy_after")},
                                **{c: st.column_config.NumberColumn(format="%.3f") for c in table.columns
                                   if c.startswith("mean Δ")}})
    if labels_hidden:
        st.caption("Accuracy is against the model's own (hidden) training labels; the labelling function stays "
                   "hidden.")
    csv_button("Download this table (CSV)", table, f"{model_name}-{layer}-{method}-ablation.csv",
               key="abl_download_ablation")
    if st.button("Compare every group (one at a time, then all but the dead ones together)", key="abl_compare"):
        rivals = {name: idx for name, idx in groups.items() if name != "alive"}
        rivals["all but dead"] = np.setdiff1d(np.arange(n_units), groups.get("dead", np.zeros(0, np.int64)))
        rows = [{"ablated": name, "images": row.name, "fraction changed": row.fraction_changed}
                for name, idx in rivals.items()
                for row in breakdown(data.ablation(model_name, layer, idx, method, seed))]
        comparison = pd.DataFrame(rows).pivot(index="ablated", columns="images", values="fraction changed")
        st.markdown(f"Fraction of test predictions changed by {method}-ablating each group:")
        st.dataframe(comparison, key="abl_compare_table", column_config={c: percent for c in comparison.columns})


def patching_section(groups, layer: str, n_units: int) -> None:
    st.subheader("Activation patching")
    st.caption("Run a test image with some units taking their activations on a second input instead.")
    columns = st.columns(3)
    kind = bound.radio(columns[0], "Source", ["test image", "drawing"], "abl_patch_source", "source", "test image",
                       horizontal=True)
    if kind == "test image":
        source = loaders.test_image(bound.integer(columns[0], "Source test image", 0, 9999, "abl_psource",
                                                  "psource", 1))
    else:
        with columns[0]:
            source = draw_digit("abl_canvas")
    target = bound.integer(columns[1], "Target test image", 0, 9999, "abl_ptarget", "ptarget", 0)
    units_text = bound.text(columns[2], "Units to patch", "abl_punits", "punits", "all")
    if source is None:
        return
    try:
        chosen = select_units(units_text, n_units, groups)
    except MechMNISTicError as exc:
        st.error(str(exc))
        return
    single = patch_activations(net, layer, chosen, source, images=loaders.test_image(target)[None])
    figures = st.columns([1, 1, 2])
    figures[0].plotly_chart(digit_figure(source, title="source", height=200), key="abl_patch_source_digit")
    figures[1].plotly_chart(digit_figure(loaders.test_image(target), title=f"target: test {target}", height=200),
                            key="abl_patch_target_digit")
    logits = pd.DataFrame({"class": classes, "logit before": single.clean_logits[0],
                           "logit after": single.patched_logits[0],
                           "change": single.patched_logits[0] - single.clean_logits[0]})
    figures[2].dataframe(logits, hide_index=True, key="abl_patch_logits")
    figures[2].markdown(f"Prediction **{single.clean_predictions[0]} → {single.patched_predictions[0]}**")
    whole = data.patching(model_name, layer, chosen, source)
    summary = whole.summary()
    accuracy = "" if summary.accuracy_before is None else \
        f"; accuracy {summary.accuracy_before:.1%} → {summary.accuracy_after:.1%}"
    st.markdown(f"With the same source patched into every test image: **{summary.fraction_changed:.1%}** of "
                f"predictions change{accuracy}.")
    table = pd.DataFrame(whole.patched_logits, columns=[f"logit {c}" for c in classes])
    csv_button("Download the patched logits of every test image (CSV)", table.rename_axis("test_index").reset_index(),
               f"{model_name}-{layer}-patched.csv", key="abl_download_patch")


layer = controls.layer_choice(net, "Layer", help="The layer whose units are grouped, ablated and patched.")
values = data.activations(model_name, layer, "train")
use_hypothesis = bound.flag(st, "Group units by a hypothesis", "abl_use_hyp", "hyp", toggle=True,
                            help="Dead units plus detectors of each region of a template-similarity rule; "
                                 "breakdowns by its regions too.")
regions = region_names = scores = None
if use_hypothesis:
    with st.expander("Hypothesis", expanded=True):
        found = hypothesis_groups(values)
    if found is None:
        st.stop()
    groups, regions, region_names, scores = found
else:
    groups = typed_groups(values)
    if groups is None:
        st.stop()
st.caption(" · ".join(f"**{name}**: {len(idx)} units" for name, idx in groups.items()))

attribution_section(groups, layer, scores)
ablation_section(groups, layer, values.shape[1], regions, region_names)
patching_section(groups, layer, values.shape[1])
