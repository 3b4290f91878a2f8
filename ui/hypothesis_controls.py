"""The hypothesis settings shared by the circuit pages: layer, template, rule, unit groups.

Every setting is a widget bound to a URL parameter (``ui.bound``), so a view is
a deep link: ``layer``, ``template`` (``train:N``, ``test:N``,
``unit:LAYER:N``), ``invert=1``, ``center``, ``rule`` (band/threshold),
``fit=1`` or ``lo``/``hi`` (``t`` for a threshold), ``label_a``/``label_b``
(a class or ``other``: any other class), ``detectors`` (regions with detector
units), ``groups`` (edited groups text). Drawn and uploaded templates cannot
travel in a URL; the page says so. Nothing here computes an analysis: it reads
widgets and calls the core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from mechmnistic.analysis.hypothesis import BandRule, Rule, ThresholdRule, derive_unit_groups, fit_rule
from mechmnistic.analysis.scrubbing import DEFAULT_TOLERANCES, check_groups, check_tolerances
from mechmnistic.analysis.templates import Template, image_from_bytes, resolve_template
from mechmnistic.analysis.units import format_groups, parse_groups
from mechmnistic.errors import MechMNISTicError
from mechmnistic.models.architectures import MNISTNet
from mechmnistic.viz.common import digit_figure

from . import bound
from .drawing import draw_digit
from .params import set_params

DEFAULT_TEMPLATE = "train:6"
SOURCES = ["MNIST image or unit", "Draw", "Upload"]
OTHER = "other"
MAX_GROUPS_CHARS = 2000

#: The query parameters that carry a hypothesis between the circuit pages.
HYPOTHESIS_PARAMS = ("layer", "template", "invert", "center", "rule", "fit", "lo", "hi", "t", "label_a", "label_b",
                     "detectors", "groups")


def hypothesis_params() -> dict[str, str]:
    """The current hypothesis settings from the URL, for links to the other circuit page."""
    return {name: st.query_params[name] for name in HYPOTHESIS_PARAMS if name in st.query_params}


def layer_choice(net: MNISTNet, label: str = "Layer", help: str | None = None) -> str:
    """A hidden layer (default: the one feeding the output), in ``?layer=``."""
    layers = list(net.layout.hidden_names)
    default = layers[-1] if layers else None
    return bound.select(st, label, layers, "hyp_layer", "layer", default, help=help)


def template_choice(net: MNISTNet) -> Template | None:
    """The template, from a reference, a drawing or an upload; errors are shown and give ``None``."""
    source = st.radio("Template", SOURCES, key="hyp_source", horizontal=True,
                      help="The image t in s(x) = sum(x * (t - c)).")
    invert = bound.flag(st, "Inverse template (1 - t)", "hyp_invert", "invert")
    try:
        if source == SOURCES[0]:
            ref = bound.text(st, "Reference", "hyp_template", "template", DEFAULT_TEMPLATE, max_chars=80,
                             help="train:N or test:N (an MNIST image), or unit:LAYER:N (a unit's effective input "
                                  "weights, rescaled to [0, 1] with zero at 0.5; for units past the first layer, "
                                  "taken on the unit's top-activating training image)")
            return resolve_template(ref, model=net, invert=invert)
        set_params(template=None)
        st.caption("A drawn or uploaded template is not part of the page's link.")
        image = draw_digit("hyp_canvas", "Draw a template on the canvas.") if source == SOURCES[1] \
            else _uploaded_template()
        return None if image is None else resolve_template(image, invert=invert, source=source.lower())
    except MechMNISTicError as exc:
        st.error(str(exc))
        return None


def _uploaded_template() -> np.ndarray | None:
    upload = st.file_uploader("A .png (28x28 as MNIST, or any drawing) or .npy (28x28)", type=["png", "npy"],
                              key="hyp_upload")
    if upload is None:
        st.info("Upload a template image.")
        return None
    return image_from_bytes(upload.getvalue(), upload.name)


def template_preview(template: Template) -> None:
    st.plotly_chart(digit_figure(template.image, title=f"t = {template.label}", height=200),
                    key="hyp_template_preview", config={"displayModeBar": False})
    if template.detail:
        st.caption(f"The unit's template: {template.detail}, mapped to [0, 1] with zero at 0.5.")


def center_choice() -> float:
    center = bound.number(st, "Centre c", "hyp_center", "center", 0.5, step=0.05, format="%.3f",
                          help="s(x) = sum(x * (t - c)); c = 0.5 makes s the similarity to t minus that to 1 - t")
    return 0.5 if center is None else float(center)


@dataclass(frozen=True)
class RuleChoice:
    rule: Rule | None
    fitted: bool
    message: str = ""


def rule_choice(n_classes: int, fit_data: Callable[[], tuple[np.ndarray, np.ndarray]]) -> RuleChoice:
    """Band or threshold, typed or fitted (``fit_data()`` gives training scores and model predictions)."""
    kind = bound.radio(st, "Rule", ["band", "threshold"], "hyp_rule", "rule", "band", horizontal=True,
                       help="band: label A inside (lo, hi), label B outside; threshold: A at or below t, B above")
    fit = bound.flag(st, "Fit the thresholds to the model's predictions", "hyp_fit", "fit", toggle=True,
                     help="Exact search over the sorted training scores for the thresholds that agree most "
                          "often with the model's predictions on the training set.")
    options = [str(c) for c in range(n_classes)] + [OTHER]
    names = ("inside", "outside") if kind == "band" else ("at or below", "above")
    columns = st.columns(2)
    first = bound.select(columns[0], f"Label {names[0]}", options, "hyp_label_a", "label_a", "0")
    second = bound.select(columns[1], f"Label {names[1]}", options, "hyp_label_b", "label_b", "1")
    labels = tuple(None if v == OTHER else int(v) for v in (first, second))
    try:
        if fit:
            set_params(lo=None, hi=None, t=None)
            scores, predictions = fit_data()
            return RuleChoice(fit_rule(kind, scores, predictions, labels), True)
        if kind == "band":
            set_params(t=None)
            low = bound.number(columns[0], "Band low (lo)", "hyp_lo", "lo", None, step=0.5, format="%.4f")
            high = bound.number(columns[1], "Band high (hi)", "hyp_hi", "hi", None, step=0.5, format="%.4f")
            if low is None or high is None:
                return RuleChoice(None, False, "Type the band's lo and hi, or switch on fitting.")
            return RuleChoice(BandRule(low, high, *labels), False)
        set_params(lo=None, hi=None)
        threshold = bound.number(columns[0], "Threshold t", "hyp_t", "t", None, step=0.5, format="%.4f")
        if threshold is None:
            return RuleChoice(None, False, "Type the threshold, or switch on fitting.")
        return RuleChoice(ThresholdRule(threshold, *labels), False)
    except MechMNISTicError as exc:
        st.error(str(exc))
        return RuleChoice(None, False)


def _detectors(rule: Rule) -> tuple[str, ...]:
    allowed = list(rule.region_names)
    default = list(rule.default_detector_regions)
    if "hyp_detectors" not in st.session_state:
        raw = [r for r in (st.query_params.get("detectors") or "").split(",") if r in allowed]
        st.session_state["hyp_detectors"] = raw or default
    st.session_state["hyp_detectors"] = [r for r in st.session_state["hyp_detectors"] if r in allowed] or default
    chosen = st.multiselect("Detector regions", allowed, key="hyp_detectors",
                            help="Regions that have detector units; every unit that ever fires goes to the one "
                                 "where its mean activation is highest.")
    set_params(detectors=None if list(chosen) == default else ",".join(chosen))
    return tuple(chosen) or rule.default_detector_regions


def groups_choice(values: np.ndarray, regions: np.ndarray, rule: Rule) -> dict[str, np.ndarray] | None:
    """Derived unit groups, or edited groups text (checked: 'dead' or regions, a partition of the units)."""
    try:
        derived = derive_unit_groups(values, regions, rule, _detectors(rule))
    except MechMNISTicError as exc:
        st.error(str(exc))
        return None
    buttons = st.columns(2)
    if buttons[0].button("Edit the derived groups", key="hyp_groups_edit"):
        st.session_state["hyp_groups"] = format_groups(derived)
    if buttons[1].button("Back to the derived groups", key="hyp_groups_reset"):
        st.session_state["hyp_groups"] = ""
    if "hyp_groups" not in st.session_state:
        st.session_state["hyp_groups"] = (st.query_params.get("groups") or "")[:MAX_GROUPS_CHARS]
    text = st.text_area("Unit groups (empty: the derived ones)", key="hyp_groups", max_chars=MAX_GROUPS_CHARS,
                        height=90, placeholder="Empty: the derived groups (listed below). 'Edit the derived "
                                               "groups' copies them here.",
                        help="name:units;name:units. Names are 'dead' or a region (below, inside, above); units "
                             "are indices and ranges like 0-3,7. Every unit must be in exactly one group.")
    set_params(groups=text.strip() or None)
    if not text.strip():
        return derived
    try:
        return check_groups(parse_groups(text, values.shape[1]), rule, values.shape[1])
    except MechMNISTicError as exc:
        st.error(f"Unit groups: {exc}")
        return None


@dataclass(frozen=True)
class ScrubSettings:
    tolerances: tuple[float, ...]
    seed: int
    split: str


def scrub_settings() -> ScrubSettings | None:
    """Tolerances (``?tol=``), seed (``?seed=``) and images (``?scrub_split=``) for a scrubbing sweep."""
    columns = st.columns(3)
    text = bound.text(columns[0], "Tolerances", "hyp_tolerances", "tol", ",".join(f"{t:g}" for t in
                      DEFAULT_TOLERANCES), help="Comma-separated fractions of the score range, e.g. 1e-4,1e-3,1e-2")
    seed = bound.integer(columns[1], "Seed", 0, 2**31 - 1, "hyp_seed", "seed", 0)
    split = bound.select(columns[2], "Images", ["train", "test"], "hyp_scrub_split", "scrub_split", "train")
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        st.error(f"Tolerances must be numbers separated by commas; got {text[:60]!r}.")
        return None
    try:
        tolerances = check_tolerances(values)
    except MechMNISTicError as exc:
        st.error(str(exc))
        return None
    return ScrubSettings(tuple(tolerances.tolist()), seed, split)
