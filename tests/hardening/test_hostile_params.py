"""Hostile query parameters: every parameter of every page, with junk in it.

Each row opens one page (AppTest, as a link would) with one bad value: out of
range, negative, not a number, huge, empty, script-like, shell-like; unknown
and path-like model names. Every row states what the visitor is told (a
substring of the page's warnings, errors and notes) and the value the page
falls back to (the widget's state), and proves that the page raised nothing
and that nothing changed on disk (zoo, MNIST folder, analysis cache); a
row naming an explorer's tab also states a chart the default tab shows, and
proves the junk gone from the URL. For
path-like model names it also proves that the name never reached the zoo's
code and no file was opened under it.

The parameter table is written per kind (whole number, choice, number, flag,
free text) from each page's own bounds and defaults, so a row's expectation
reads off the table below.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mechmnistic.analysis.atlas import DEFAULT_TOP_K, MAX_TOP_K
from mechmnistic.models import zoo
from mechmnistic.paths import zoo_root
from ui import page_list
from ui.links import (
    CLASSIFY_PANEL_PARAM,
    CLUSTERS,
    EFFECTS,
    IMPORTANT,
    NEURON_VIEW_PARAM,
    ON_INPUT,
    READS,
    TOP_EXAMPLES,
)
from ui.tabs import Tab

from .disk import changes, snapshot

pytestmark = pytest.mark.slow

APP = "../../app.py"
ZOO, NEURON, CLASSIFY, IMPORT = "zoo", "neuron_explorer", "classification_explorer", "import_model"
ABLATIONS, HYPOTHESIS, GEOMETRY, FEATURES = "ablations", "hypothesis", "geometry", "feature_viz"
WALKTHROUGH, DICTIONARIES = "walkthrough", "dictionaries"
PAGES = (ZOO, NEURON, CLASSIFY, IMPORT, ABLATIONS, HYPOTHESIS, GEOMETRY, FEATURES, WALKTHROUGH, DICTIONARIES)

SCRIPT = "<script>alert(1)</script>"
SHELL = '"; rm -rf /'
HUGE = str(10**30)
PATH_LIKE = {"dotdot-passwd": "../../etc/passwd", "abs-passwd": "/etc/passwd", "dotdot": "..",
             "up-from-models": "models/../..", "dot": "."}
NO_MESSAGE = ""


@dataclass(frozen=True)
class Row:
    """Open ``page`` with ``params`` (plus ``context``, the valid settings that make the page read the
    parameter); expect ``message`` among the notes (``NO_MESSAGE``: none naming the parameter), when
    ``state`` is given ``session_state[state] == fallback``, and when ``chart`` is given (a tab's name), that
    chart shown and the parameter gone from the URL."""

    page: str
    params: dict[str, str]
    message: str
    state: str | None = None
    fallback: object = None
    context: dict[str, str] = field(default_factory=dict)
    chart: str | None = None
    #: Falls back to a default and the page goes on (so it can share a page run with others); free text
    #: whose error stops the page, and the model, run alone.
    falls_back: bool = False


def whole_number(page: str, name: str, low: int, high: int, state: str | None, fallback, **context) -> dict:
    bad = {"negative": ("-1", f"`{name}`=-1 is out of range ({low}–{high})"),
           "above-range": (str(high + 1), f"`{name}`={high + 1} is out of range ({low}–{high})"),
           "huge": (HUGE, f"`{name}`={HUGE} is out of range"),
           "non-numeric": ("abc", f"`{name}` must be a whole number; got 'abc'"),
           "decimal": ("1.5", f"`{name}` must be a whole number"),
           "script": (SCRIPT, f"`{name}` must be a whole number"),
           "empty": ("", NO_MESSAGE)}
    return {f"{page}-{name}-{label}": Row(page, {name: value}, message, state, fallback, context, falls_back=True)
            for label, (value, message) in bad.items()}


def choice(page: str, name: str, state: str | None, fallback, **context) -> dict:
    bad = {"unknown": ("no-such-thing", f"Unknown `{name}` 'no-such-thing'"),
           "script": (SCRIPT, f"Unknown `{name}` '<script>alert(1)</script>'"),
           "shell": (SHELL, f"Unknown `{name}`"),
           "huge": ("x" * 10_000, f"Unknown `{name}` '{'x' * 64}…'"),
           "negative": ("-1", f"Unknown `{name}` '-1'"),
           "empty": ("", NO_MESSAGE)}
    return {f"{page}-{name}-{label}": Row(page, {name: value}, message, state, fallback, context, falls_back=True)
            for label, (value, message) in bad.items()}


def number(page: str, name: str, state: str, fallback, low: float = -1e12, high: float = 1e12, **context) -> dict:
    expected = f"`{name}` must be a number between {low:g} and {high:g}"
    bad = {"non-numeric": ("abc", expected), "huge": (HUGE, expected), "nan": ("nan", expected),
           "inf": ("inf", expected), "overflow": ("1e999", expected), "script": (SCRIPT, expected),
           "empty": ("", NO_MESSAGE)}
    if low > -1e12:
        bad["below-range"] = (f"{low - 1:g}", expected)
    return {f"{page}-{name}-{label}": Row(page, {name: value}, message, state, fallback, context, falls_back=True)
            for label, (value, message) in bad.items()}


def flag(page: str, name: str, state: str, **context) -> dict:
    """A flag is on only for ``1``: anything else leaves it off, silently."""
    return {f"{page}-{name}-{label}": Row(page, {name: value}, NO_MESSAGE, state, False, context, falls_back=True)
            for label, value in {"script": SCRIPT, "huge": HUGE, "true": "true", "empty": ""}.items()}


def tab(page: str, name: str, default: Tab, chart: str, other: Tab, elsewhere: Tab) -> dict:
    """The explorer's open tab, named by its slug (or, in older links, verbatim by its label): anything else is
    reported (an empty value means the default, silently), dropped from the URL, and the first tab, ``default``,
    is open, showing ``chart``. ``other``: another of its tabs; ``elsewhere``: a tab of the other explorer."""
    bad = {"unknown": "no-such-tab", "huge": "x" * 10_000, "script": SCRIPT, "shell": SHELL,
           "lower-case-label": other.label.lower(), "upper-case-slug": other.slug.upper(),
           "padded": f" {other.slug} ", "plus-for-space": other.label.replace(" ", "+"),
           "other-explorers": elsewhere.slug}
    rows = {f"{page}-{name}-{label}": Row(page, {name: value}, f"Unknown `{name}`", name, default.label, chart=chart,
                                          falls_back=True) for label, value in bad.items()}
    rows[f"{page}-{name}-empty"] = Row(page, {name: ""}, NO_MESSAGE, name, default.label, chart=chart,
                                       falls_back=True)
    return rows


def model_rows(page: str) -> dict:
    named = {**PATH_LIKE, "unknown": "no-such-model", "script": SCRIPT, "shell": SHELL}
    rows = {f"{page}-model-{label}": Row(page, {"model": value}, f"Unknown `model` {value!r}", "active_model",
                                         "mlp-1x64") for label, value in named.items()}
    rows[f"{page}-model-other-sessions-private"] = Row(
        page, {"model": "../x@0123abcd"}, "was imported privately in another browser session", "active_model",
        "mlp-1x64")
    rows[f"{page}-model-empty"] = Row(page, {"model": ""}, NO_MESSAGE, "active_model", "mlp-1x64")
    return rows


def text(page: str, name: str, cases: dict[str, tuple[str, str]], **context) -> dict:
    """A free-text parameter: its value reaches the page's parser, whose error is the message."""
    return {f"{page}-{name}-{label}": Row(page, {name: value}, message, context=context)
            for label, (value, message) in cases.items()}


ON_CNN = {"model": "cnn-digits", "layer": "conv1"}
BAND = {"lo": "-50", "hi": "50"}

ROWS = {
    **{key: row for page in PAGES for key, row in model_rows(page).items()},
    # -- Neuron Explorer
    **choice(NEURON, "layer", "nx_layer", "layers.0"),
    **choice(NEURON, "basis", "nx_basis", "neurons"),
    **whole_number(NEURON, "unit", 0, 63, "nx_unit", 0),
    **whole_number(NEURON, "test_index", 0, 9_999, None, None),
    **whole_number(NEURON, "train_index", 0, 59_999, None, None),
    **whole_number(NEURON, "top_k", 10, MAX_TOP_K, "nx_top_k", DEFAULT_TOP_K),
    **choice(NEURON, "clusters", "nx_clusters", "auto"),
    **whole_number(NEURON, "explained", 5, 95, "nx_explained", 30),
    **whole_number(NEURON, "show", 4, 64, "nx_show", 16),
    **choice(NEURON, "cluster", "nx_cluster", "C0", **{NEURON_VIEW_PARAM: CLUSTERS.slug}),  # read on its tab
    **tab(NEURON, NEURON_VIEW_PARAM, READS, "nx_fig_hist", TOP_EXAMPLES, EFFECTS),
    **text(NEURON, "pos", {"on-a-linear-layer": ("3,4", "`pos` applies to conv channels only")}),
    **{key: Row(NEURON, row.params, row.message, "nx_at", "its maximum", ON_CNN) for key, row in text(NEURON, "pos", {
        "outside": ("26,0", "`pos`=26,0 is outside the 26x26 map"),
        "negative": ("-1,3", "`pos`=-1,3 is outside the 26x26 map"),
        "huge": (f"{HUGE},1", "`pos` must be a row and a column"),
        "one-number": ("4", "`pos` must be a row and a column"),
        "non-numeric": ("a,b", "`pos` must be a row and a column"),
        "script": (SCRIPT, "`pos` must be a row and a column")}).items()},
    # -- Dictionaries (mlp-1x64: its bundled dictionaries of layers.0, the smallest with 64 latents)
    **choice(DICTIONARIES, "layer", "dict_layer", "layers.0"),
    **choice(DICTIONARIES, "sae", "dict_sae", "layers.0-topk512"),
    **choice(DICTIONARIES, "section", "section", "Quality"),
    **choice(DICTIONARIES, "small", "dict_small", "layers.0-topk64", section="splitting"),
    **choice(DICTIONARIES, "large", "dict_large", "layers.0-topk2048", section="splitting"),
    **whole_number(DICTIONARIES, "latent", 0, 63, "dict_split_latent", 0, section="splitting"),
    # -- Classification Explorer
    **whole_number(CLASSIFY, "test_index", 0, 9_999, "classify_test_index", 0),
    **whole_number(CLASSIFY, "train_index", 0, 59_999, "classify_source", "Test example"),
    **tab(CLASSIFY, CLASSIFY_PANEL_PARAM, EFFECTS, "classify_effects", IMPORTANT, ON_INPUT),
    # -- Attribution & ablations (mlp-1x64: ten classes, 64 units)
    **text(ABLATIONS, "agroups", {
        "script": (SCRIPT, "needs a ':' between the group name and its units"),
        "out-of-range": ("mine:0-999", "is out of range: this layer has units 0..63"),
        "huge": (f"mine:{HUGE}", "is out of range"),
        "negative": ("mine:-1", "unknown unit group '-1'"),
        "shell": (SHELL, "needs a ':' between the group name and its units")}),
    **choice(ABLATIONS, "target_a", "abl_target_a", 0),
    **choice(ABLATIONS, "target_b", "abl_target_b", "none"),
    **whole_number(ABLATIONS, "sample", 10, 1000, "abl_sample", 100),
    **choice(ABLATIONS, "sort", "abl_sort", "target value"),
    **whole_number(ABLATIONS, "example", 0, 9_999, "abl_example", 0),
    **text(ABLATIONS, "units", {
        "out-of-range": ("70", "unit 70 is out of range: this layer has units 0..63"),
        "negative": ("-1", "-1"),
        "huge": (HUGE, "is out of range"),
        "script": (SCRIPT, "<script>"),
        "shell": (SHELL, "rm -rf")}),
    **choice(ABLATIONS, "method", "abl_method", "min"),
    **whole_number(ABLATIONS, "aseed", 0, 2**31 - 1, "abl_seed", 0),
    **choice(ABLATIONS, "by", "abl_by", "true class"),
    **choice(ABLATIONS, "source", "abl_patch_source", "test image"),
    **whole_number(ABLATIONS, "psource", 0, 9_999, "abl_psource", 1),
    **whole_number(ABLATIONS, "ptarget", 0, 9_999, "abl_ptarget", 0),
    **text(ABLATIONS, "punits", {
        "out-of-range": ("64", "unit 64 is out of range"),
        "script": (SCRIPT, "<script>")}),
    **flag(ABLATIONS, "hyp", "abl_use_hyp"),
    # -- Hypothesis & causal scrubbing (challenge-cnn: two classes, fc1 feeds the output)
    **choice(HYPOTHESIS, "layer", "hyp_layer", "fc1", model="challenge-cnn"),
    **flag(HYPOTHESIS, "invert", "hyp_invert"),
    **text(HYPOTHESIS, "template", {
        "index-out-of-range": ("train:60000", "template index 60000 is out of range for train (0..59999)"),
        "huge": (f"train:{HUGE}", "is not 'train:N', 'test:N' or 'unit:LAYER:N'"),
        "negative": ("test:-1", "is not 'train:N', 'test:N' or 'unit:LAYER:N'"),
        "unit-out-of-range": ("unit:layers.0:64", "unit 64 is out of range for layers.0 (0..63)"),
        "unknown-layer": ("unit:../../etc:1", "unit template: no layer '../../etc'"),
        "script": (SCRIPT, "is not 'train:N', 'test:N' or 'unit:LAYER:N'"),
        "file-on-the-server": ("/etc/passwd.npy", "is not 'train:N', 'test:N' or 'unit:LAYER:N'"),
        "relative-file": ("../../models/x.png", "is not 'train:N', 'test:N' or 'unit:LAYER:N'")}),
    **number(HYPOTHESIS, "center", "hyp_center", 0.5),
    **choice(HYPOTHESIS, "rule", "hyp_rule", "band"),
    **flag(HYPOTHESIS, "fit", "hyp_fit"),
    **choice(HYPOTHESIS, "label_a", "hyp_label_a", "0"),
    **choice(HYPOTHESIS, "label_b", "hyp_label_b", "1"),
    **number(HYPOTHESIS, "lo", "hyp_lo", None, hi="50"),
    **number(HYPOTHESIS, "hi", "hyp_hi", None, lo="-50"),
    **number(HYPOTHESIS, "t", "hyp_t", None, rule="threshold"),
    **text(HYPOTHESIS, "lo", {"above-hi": ("60", "band low (60) is above band high (50); swap them")}, hi="50"),
    **text(HYPOTHESIS, "label_b", {"same-as-a": ("0", "both sides of the rule predict class 0")}, **BAND),
    **text(HYPOTHESIS, "label_a", {"both-other": ("other", "at most one side of a rule can be 'any other class'")},
           label_b="other", **BAND),
    **text(HYPOTHESIS, "groups", {
        "script": (SCRIPT, "Unit groups:"),
        "out-of-range": ("dead:0-99", "Unit groups:"),
        "unknown-region": ("evil:0-63", "Unit groups:")}, **BAND),
    **text(HYPOTHESIS, "detectors", {"script": (SCRIPT, NO_MESSAGE)}, **BAND),
    **text(HYPOTHESIS, "tol", {
        "non-numeric": ("abc", "Tolerances must be numbers separated by commas"),
        "script": (SCRIPT, "Tolerances must be numbers separated by commas"),
        "negative": ("-1", "tolerance"),
        "huge": (HUGE, "tolerance"),
        "nan": ("nan", "tolerance")}, **BAND),
    **whole_number(HYPOTHESIS, "seed", 0, 2**31 - 1, "hyp_seed", 0, **BAND),
    **choice(HYPOTHESIS, "scrub_split", "hyp_scrub_split", "train", **BAND),
    **choice(HYPOTHESIS, "component", "hyp_component", 1, **BAND),
    **text(HYPOTHESIS, "scrub", {"script": (SCRIPT, "Press **Run causal scrubbing**")}, **BAND),
    # -- Activation geometry
    **choice(GEOMETRY, "layer", "geometry_layer", "layers.0"),
    **whole_number(GEOMETRY, "x", 1, 10, "geometry_x", 1),
    **whole_number(GEOMETRY, "y", 1, 10, "geometry_y", 2),
    **choice(GEOMETRY, "color", "geometry_color", "label"),
    **text(GEOMETRY, "template", {
        "index-out-of-range": ("train:60000", "Template: template index 60000 is out of range"),
        "script": (SCRIPT, "Template: template '<script>alert(1)</script>' is not"),
        "file-on-the-server": ("/etc/passwd.npy", "Template: template '/etc/passwd.npy' is not")}, color="score"),
    **number(GEOMETRY, "center", "geometry_center", 0.5, -1.0, 2.0, color="score"),
    **number(GEOMETRY, "low", "geometry_low", None, color="region"),
    **number(GEOMETRY, "high", "geometry_high", None, color="region"),
    **text(GEOMETRY, "low", {"above-high": ("5", "Type a band (low < high)")}, color="region", high="1"),
    **text(GEOMETRY, "dirs", {
        "script": (SCRIPT, "<script>"),
        "pc-out-of-range": ("pc99", "pc99"),
        "class-out-of-range": ("logit:11-0", "class 11 does not exist"),
        "file-template": ("template:/etc/passwd.npy", "use train:N, test:N or unit:LAYER:N")}),
    **choice(GEOMETRY, "sort", "geometry_sort", "logit 1 − logit 0"),
    # -- Feature visualisation
    **choice(FEATURES, "layer", "features_layer", "layers.0"),
    **choice(FEATURES, "target", "features_target", "units"),
    **text(FEATURES, "units", {
        "out-of-range": ("64", "unit 64 is out of range"),
        "script": (SCRIPT, "<script>"),
        "huge": (HUGE, "is out of range")}),
    **text(FEATURES, "dirs", {
        "script": (SCRIPT, "<script>"),
        "class-out-of-range": ("logit:11-0", "class 11 does not exist")}, target="directions"),
    **whole_number(FEATURES, "steps", 1, 1000, "features_steps", 100),
    **number(FEATURES, "lr", "features_lr", 0.05, 1e-4, 1.0),
    **choice(FEATURES, "init", "features_init", "zeros"),
    **whole_number(FEATURES, "start", 0, 59_999, "features_start", 6),
    **number(FEATURES, "l2", "features_l2", 0.0, 0.0, 100.0),
    **number(FEATURES, "blur", "features_blur", 0.0, 0.0, 5.0),
    **whole_number(FEATURES, "jitter", 0, 8, "features_jitter", 0),
    **whole_number(FEATURES, "seed", 0, 2**31 - 1, "features_seed", 0),
    **flag(FEATURES, "free", "features_free"),
    **whole_number(FEATURES, "nearest", 0, 10, "features_nearest", 3),
    **whole_number(FEATURES, "columns", 1, 12, "features_columns", 5),
}


def _open(page: str, params: dict[str, str]) -> AppTest:
    """A new session on ``page`` whose URL holds exactly ``params`` (after the app's first run)."""
    at = AppTest.from_file(APP, default_timeout=600)
    at.run()
    at.switch_page(f"app_pages/{page}.py")
    at.query_params.clear()
    at.query_params.update(params)
    return at.run()


def _notes(at: AppTest) -> list[str]:
    return [element.value for kind in ("warning", "error", "info") for element in getattr(at, kind)]


@pytest.fixture(scope="module")
def warmed(tmp_path_factory):
    """A private analysis cache (no other test's writes in the snapshots), filled by opening every page
    once in every context the rows use, with valid values only: it then holds whatever the pages'
    defaults compute, so a hostile row has nothing legitimate to write."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MECHMNISTIC_CACHE", str(tmp_path_factory.mktemp("hostile-params-cache")))
    for page, context in sorted({(row.page, tuple(sorted(row.context.items()))) for row in ROWS.values()}):
        at = _open(page, dict(context))
        assert not at.exception, f"{page} {context}: {at.exception[0].value}"
    yield
    patch.undo()


class FileWatch:
    """Every path the interpreter opens or lists while ``active`` (a ``sys.addaudithook`` hook cannot be
    removed, so one is installed once and switched on per test)."""

    def __init__(self) -> None:
        self.active = False
        self.paths: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if self.active and event in ("open", "os.listdir", "os.scandir") and args and \
                isinstance(args[0], (str, bytes, Path)):
            self.paths.append(str(args[0]))


FILES = FileWatch()


@pytest.fixture
def zoo_names(monkeypatch) -> list[str]:
    """The names that reached the zoo's single gate to the disk (``zoo.model_dir``)."""
    seen: list[str] = []
    gate = zoo.model_dir

    def recording(name, zoo_folder=None):
        seen.append(name)
        return gate(name, zoo_folder)

    monkeypatch.setattr(zoo, "model_dir", recording)
    return seen


#: The ``model`` parameter is read by the sidebar, the same code on every page: every hostile name on the
#: model zoo page, and one of each kind (a name the zoo does not have, a path) on every other page.
MODEL_ROWS_ELSEWHERE = ("unknown", "dotdot-passwd")


def page_runs(rows: dict[str, Row]) -> dict[str, list[Row]]:
    """The rows batched into page runs: one run per page, context and kind of bad value (``script``,
    ``huge``, ``empty``...), with every parameter of that page set to its bad value of that kind at once.

    Only rows whose parameter falls back to a default (``Row.falls_back``) share runs: free text whose
    error stops the page, and the model, run alone. Every row's checks still run (its message, its
    fallback, its URL), on the run that holds it; a row whose parameter would appear twice in a run gets
    a run of its own. The hostile texts themselves meet
    every parser directly in ``test_hostile_parsers``.
    """
    runs: dict[str, list[Row]] = {}
    for key, row in rows.items():
        page, name, kind = key.split("-", 2)
        if name == "model" and page != ZOO and kind not in MODEL_ROWS_ELSEWHERE:
            continue
        context = ",".join(f"{k}={v}" for k, v in sorted(row.context.items()))
        run = (f"{page}-{kind}" if row.falls_back else key) + (f"[{context}]" if context else "")
        while run in runs and row.params.keys() & {p for other in runs[run] for p in other.params}:
            run += "+"  # that parameter is in this run already: one more run
        runs.setdefault(run, []).append(row)
    return runs


RUNS = page_runs(ROWS)


@pytest.mark.parametrize("rows", RUNS.values(), ids=RUNS.keys())
def test_hostile_parameters_get_a_clear_message_and_change_nothing(rows, warmed, zoo_names):
    page, context = rows[0].page, rows[0].context
    params = {name: value for row in rows for name, value in row.params.items()}
    before = snapshot()
    FILES.paths.clear()
    FILES.active = True
    try:
        at = _open(page, {**context, **params})
    finally:
        FILES.active = False
    assert not at.exception, at.exception[0].value
    assert FILES.paths, "the watch sees the files the app opens"
    notes = _notes(at)
    for row in rows:
        if row.message:
            assert any(row.message in note for note in notes), f"expected {row.message!r} in {notes}"
        else:
            for name in row.params:
                assert not any(f"`{name}`" in note for note in notes), f"a message about {name}: {notes}"
        if row.state is not None:
            assert at.session_state[row.state] == row.fallback, row
            if row.falls_back and row.message:  # the URL is corrected: the message is said once, a shared link is valid
                assert all(at.query_params.get(name) != value for name, value in row.params.items()), row
        if row.chart is not None:
            assert row.chart in {chart.key for chart in at.get("plotly_chart")}
            assert not row.params.keys() & at.query_params.keys(), "the URL names no tab: the default is open"
    assert changes(before, snapshot()) == []
    if "model" in params:
        hostile = params["model"]
        assert hostile not in zoo_names, "the name reached the zoo's code"
        target = (zoo_root() / hostile).resolve()
        if target != zoo_root().resolve():  # "" and "." name the zoo itself, which the app lists anyway
            assert not [p for p in FILES.paths if Path(p).resolve() == target or "passwd" in p]


def test_every_row_is_in_a_run_and_every_run_is_one_page():
    batched = [row for rows in RUNS.values() for row in rows]
    model_rows_dropped = [key for key in ROWS if key.split("-", 2)[1] == "model" and not key.startswith(f"{ZOO}-")
                          and key.split("-", 2)[2] not in MODEL_ROWS_ELSEWHERE]
    assert len(batched) == len(ROWS) - len(model_rows_dropped)
    assert all(len({(row.page, tuple(sorted(row.context.items()))) for row in rows}) == 1 for rows in RUNS.values())
    assert len(RUNS) < len(ROWS) / 2, f"{len(RUNS)} page runs for {len(ROWS)} rows"


@pytest.mark.parametrize("name", PATH_LIKE.values(), ids=PATH_LIKE.keys())
def test_the_zoo_refuses_a_path_like_name_before_building_any_path(name, monkeypatch):
    """The core's own gate, for callers other than the sidebar (the CLI, Python): refused before any
    path is built from the name or resolved."""
    monkeypatch.setattr(zoo, "Path", None)  # building a path here would raise TypeError, not the refusal
    with pytest.raises(zoo.ModelNotFoundError, match="is not a valid model name"):
        zoo.model_dir(name)


def test_every_registered_page_has_rows():
    registered = [page.script for page in page_list.PAGES]
    assert len(registered) >= 6 and sorted(registered) == sorted(PAGES), "a page without hostile-parameter rows"
